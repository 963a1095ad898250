"""Where an environment's Terraform state lives: the S3 backend block of its root module.

Terraform allows only literal values in a backend block (no variables, no expressions), so its
string attributes can be read without evaluating HCL. After `terraform init`, the settings Terraform
recorded in ``.terraform/terraform.tfstate`` are the authority.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

_BLOCK = re.compile(r'\bbackend\s+"(?P<kind>[\w-]+)"\s*\{')
_STRING = re.compile(r'^\s*(?P<key>\w+)\s*=\s*"(?P<value>[^"]*)"\s*$', re.MULTILINE)


@dataclass(frozen=True)
class Backend:
    """An environment's state: bucket, key and region of its S3 backend."""

    bucket: str
    key: str
    region: str | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _block_body(text: str, start: int) -> str:
    """The text between the brace at ``start`` and its match (nested blocks included)."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index]
    return text[start + 1 :]


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"(^|\s)(#|//)[^\n]*", r"\1", text)


def declared_backend(module_dir: Path) -> Backend | None:
    """The S3 backend a root module declares (top-level attributes of its backend block), if any."""
    for path in sorted(module_dir.glob("*.tf")):
        try:
            text = _strip_comments(path.read_text(encoding="utf-8"))
        except OSError:
            continue
        match = _BLOCK.search(text)
        if match is None or match.group("kind") != "s3":
            continue
        body = _block_body(text, match.end() - 1)
        top = re.sub(r"\{[^{}]*\}", "", body)  # nested blocks (assume_role {...}) aside
        values = {m.group("key"): m.group("value") for m in _STRING.finditer(top)}
        if "bucket" in values and "key" in values:
            return Backend(values["bucket"], values["key"], values.get("region"))
    return None


def initialized_backend(module_dir: Path) -> Backend | None:
    """The backend `terraform init` recorded for the module, if it was initialised here."""
    try:
        data = json.loads((module_dir / ".terraform" / "terraform.tfstate").read_text("utf-8"))
        cfg = data["backend"]["config"]
        return Backend(str(cfg["bucket"]), str(cfg["key"]), cfg.get("region"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def backend_of(module_dir: Path) -> Backend | None:
    return initialized_backend(module_dir) or declared_backend(module_dir)
