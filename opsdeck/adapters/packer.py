"""The Packer CLI: `packer build -machine-readable`, streamed line by line.

Machine-readable lines are ``timestamp,target,type,data...``; commas inside data arrive as
``%!(PACKER_COMMA)`` and newlines as a literal ``\\n``. The artifact line
``<target>,artifact,0,id,<region>:<ami>`` gives the image id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from opsdeck.adapters.process import run_captured, run_streaming
from opsdeck.core.types.tools import BuildResult, PackerLine
from opsdeck.errors import ToolError

COMMA = "%!(PACKER_COMMA)"


def parse_line(line: str) -> PackerLine | None:
    """One machine-readable line (``timestamp,target,type,data...``); None for anything else."""
    parts = line.split(",")
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    data = tuple(p.replace(COMMA, ",").replace("\\n", "\n") for p in parts[3:])
    return PackerLine(parts[0], parts[1], parts[2], data)


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
            parsed = parse_line(text)
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
