"""Packer templates already in the repository: each service's recipe, and the base image's."""

from __future__ import annotations

import json
import os
from pathlib import Path

from opsdeck.core.adopt.modules import SKIPPED_DIRS

MAX_JSON_BYTES = 1_000_000


def packer_templates(repo: Path) -> list[str]:
    """Packer templates under ``repo`` (HCL ``*.pkr.hcl``, JSON ``*.pkr.json`` or a JSON file with
    ``builders``), relative to it, sorted."""
    found: list[str] = []
    for current, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for file in sorted(files):
            path = Path(current) / file
            if file.endswith((".pkr.hcl", ".pkr.json")) or (file.endswith(".json") and _json_template(path)):
                found.append(path.relative_to(repo).as_posix())
    return found


def _json_template(path: Path) -> bool:
    if path.name.endswith(".tfvars.json") or path.name == "modules.json":
        return False
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "builders" in data


def _stem(template: str) -> str:
    name = template.rsplit("/", 1)[-1]
    for suffix in (".pkr.hcl", ".pkr.json", ".json"):
        name = name.removesuffix(suffix)
    return name.lower().replace("_", "-")


def recipe_for(service: str, templates: list[str]) -> str | None:
    """The template named after the service (``web.json``, ``packer/web.pkr.hcl``, ``web-image.json``)."""
    exact = [t for t in templates if _stem(t) == service]
    if exact:
        return exact[0]
    close = [t for t in templates if service in _stem(t).split("-")]
    return close[0] if len(close) == 1 else None


def base_recipe(templates: list[str]) -> str | None:
    bases = [t for t in templates if _stem(t) in ("base", "base-image", "golden", "base-ami")]
    return bases[0] if bases else None
