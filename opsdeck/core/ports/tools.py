"""The command-line tools core drives: Terraform in one root module, Packer, and the policy engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from opsdeck.core.types.tools import BuildResult, PackerLine, Report

JsonSink = Callable[[dict[str, Any]], None]


class TerraformPort(Protocol):
    """Terraform in one environment's root module, with that environment's credentials."""

    @property
    def workdir(self) -> Path: ...

    @property
    def env(self) -> dict[str, str]: ...

    async def init(self, backend_config: Mapping[str, str], *, reconfigure: bool = False) -> None: ...

    async def plan(
        self,
        out: Path,
        *,
        refresh_only: bool = False,
        destroy: bool = False,
        lock: bool = False,
        on_event: JsonSink | None = None,
        var_files: tuple[Path, ...] = (),
        refresh: bool = True,
    ) -> None:
        """A saved plan into ``out``; ``var_files`` override the root module's own variable files (a plan of
        other pins without touching the working tree); ``refresh=False`` plans against the state as it is,
        reading nothing back from the cloud (a plan right after this operation's own apply)."""
        ...

    async def show_json(self, planfile: Path) -> dict[str, Any]: ...

    async def apply(self, planfile: Path, *, on_event: JsonSink | None = None) -> None: ...

    async def destroy(self, *, on_event: JsonSink | None = None) -> None: ...

    async def force_unlock(self, lock_id: str) -> None: ...


class PackerPort(Protocol):
    """Packer, with the build account's credentials."""

    async def build(
        self, template: Path, variables: Mapping[str, str], on_line: Callable[[PackerLine], None] | None = None
    ) -> BuildResult: ...


class PolicyPort(Protocol):
    """The policy engine (Checkov) that checks a plan before it is applied."""

    async def scan(self, plan_json: Path, *, checks_dir: Path | None = None, skip: tuple[str, ...] = ()) -> Report: ...
