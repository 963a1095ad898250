"""The Packer CLI: `packer build -machine-readable`, streamed line by line.

Machine-readable lines are ``timestamp,target,type,data...``; commas inside data arrive as
``%!(PACKER_COMMA)`` and newlines as a literal ``\\n``. The artifact line
``<target>,artifact,0,id,<region>:<ami>`` gives the image id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opsdeck.adapters.process import run_captured, run_streaming
from opsdeck.errors import ToolError

COMMA = "%!(PACKER_COMMA)"


@dataclass(frozen=True)
class PackerLine:
    """One machine-readable line."""

    timestamp: str
    target: str
    type: str
    data: tuple[str, ...]

    @classmethod
    def parse(cls, line: str) -> PackerLine | None:
        parts = line.split(",")
        if len(parts) < 3 or not parts[0].isdigit():
            return None
        data = tuple(p.replace(COMMA, ",").replace("\\n", "\n") for p in parts[3:])
        return cls(parts[0], parts[1], parts[2], data)

    @property
    def text(self) -> str:
        """The human text of a ui line (``ui,say,<text>``)."""
        return self.data[1] if self.type == "ui" and len(self.data) > 1 else ",".join(self.data)


@dataclass
class BuildResult:
    """What a build produced."""

    artifacts: list[str] = field(default_factory=list)  # "region:ami-..." ids
    errors: list[str] = field(default_factory=list)

    @property
    def image_ids(self) -> list[str]:
        ids = []
        for artifact in self.artifacts:
            for part in artifact.split(","):
                ami = part.split(":")[-1].strip()
                if ami.startswith("ami-") and ami not in ids:
                    ids.append(ami)
        return ids


class Packer:
    """Packer with the environment opsdeck gives it."""

    def __init__(self, env: Mapping[str, str], *, binary: str = "packer", redact: Callable[[str], str] = str) -> None:
        self.env = dict(env)
        self.binary = binary
        self.redact = redact

    def build_argv(self, template: Path, variables: Mapping[str, str]) -> list[str]:
        argv = [self.binary, "build", "-machine-readable", "-color=false"]
        for key, value in variables.items():
            argv += ["-var", f"{key}={value}"]
        return [*argv, template.name]

    async def build(
        self, template: Path, variables: Mapping[str, str], on_line: Callable[[PackerLine], None] | None = None
    ) -> BuildResult:
        """Run a build; ToolError with Packer's own error text when it produced no image."""
        result = BuildResult()

        def line(text: str) -> None:
            parsed = PackerLine.parse(text)
            if parsed is None:
                return
            if parsed.type == "artifact" and len(parsed.data) >= 3 and parsed.data[1] == "id":
                result.artifacts.append(parsed.data[2])
            elif parsed.type == "ui" and parsed.data and parsed.data[0] == "error":
                result.errors.append(parsed.text)
            elif parsed.type == "error" and parsed.data:
                result.errors.append(parsed.data[0])
            if on_line is not None:
                on_line(parsed)

        finished = await run_streaming(
            self.build_argv(template, variables),
            cwd=template.parent,
            env=self.env,
            on_stdout=line,
            redact=self.redact,
            tool="packer",
        )
        if finished.returncode != 0 or not result.image_ids:
            raise ToolError(f"packer build {template.name}", _first_error(result.errors, finished.stderr))
        return result

    async def version(self) -> str:
        rc, out, err = await run_captured([self.binary, "version"], cwd=Path.cwd(), env=self.env, tool="packer")
        if rc != 0:
            raise ToolError("packer version", err.strip() or f"exit code {rc}")
        return out.strip().splitlines()[0] if out.strip() else "?"


def _first_error(errors: list[str], stderr: str) -> str:
    for text in errors:
        lines = [ln.strip() for ln in text.replace("==>", "").splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith("Some builds didn't complete")]
        if lines:
            first = lines[0].removeprefix("--> ").strip()
            return re.sub(r"^Build '[^']*' errored after [^:]*: ", "", first)
    tail = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return tail[-1] if tail else "the build produced no image"
