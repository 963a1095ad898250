"""The Terraform CLI: init, saved plans, `show -json`, apply and destroy, streamed as `-json` events.

python-terraform builds every argv (``generate_cmd_string``); its wrappers are not used, because with
Terraform 1.x they misbehave: ``destroy()`` passes ``-force`` (removed in 1.x), ``plan()`` adds
``-detailed-exitcode`` and an empty ``-var-file``, ``apply()`` adds ``-auto-approve=false`` and an
empty ``-var-file`` (refused with a saved plan), ``cmd(synchronous=False)`` leaks ``-synchronous``,
``-stdout`` and ``-stderr`` flags, and ``plan('.')`` is "too many command line arguments". Here the
options are always spelled out, runs happen in the working directory, and output is streamed with
asyncio. tests/unit/test_terraform_argv.py pins each argv.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged, IsNotFlagged
from python_terraform import Terraform as _ArgvBuilder

from opsdeck.adapters.process import run_captured, run_streaming
from opsdeck.errors import LockedError, ToolError

JsonSink = Callable[[dict[str, Any]], None]

CLI_CONFIG_TEMPLATE = """\
# Written by opsdeck: install providers from a local filesystem mirror instead of the registry.
provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["registry.terraform.io/*/*"]
  }}
  direct {{
    exclude = ["registry.terraform.io/*/*"]
  }}
}}
"""


def write_cli_config(mirror: Path, directory: Path) -> Path:
    """A Terraform CLI config that takes providers from ``mirror`` (the folder above registry.terraform.io)."""
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(mirror.resolve()).encode()).hexdigest()[:12]
    path = directory / f"terraform-mirror-{digest}.tfrc"
    text = CLI_CONFIG_TEMPLATE.format(mirror=str(mirror.resolve()).replace("\\", "/"))
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class LockInfo:
    """Who holds a Terraform state lock (from the 'Error acquiring the state lock' diagnostic)."""

    id: str
    path: str = ""
    operation: str = ""
    who: str = ""
    created: str = ""

    @classmethod
    def parse(cls, detail: str) -> LockInfo | None:
        fields = dict(re.findall(r"^\s*(ID|Path|Operation|Who|Created):\s*(.*?)\s*$", detail, re.MULTILINE))
        if "ID" not in fields:
            return None
        return cls(
            id=fields["ID"],
            path=fields.get("Path", ""),
            operation=fields.get("Operation", ""),
            who=fields.get("Who", ""),
            created=fields.get("Created", ""),
        )


@dataclass
class RunOutcome:
    """The end of a streamed run: exit code, error diagnostics, and the last stderr lines."""

    returncode: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""

    def message(self) -> str:
        for diag in self.errors:
            summary = diag.get("summary", "").strip()
            detail = (diag.get("detail") or "").strip().splitlines()
            where = diag.get("address") or (diag.get("range") or {}).get("filename", "")
            text = f"{summary}: {detail[0]}" if detail else summary
            return f"{text} ({where})" if where else text
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip() and "│" not in line[:1]]
        errors = [line for line in lines if line.lower().startswith("error")]
        return (errors or lines or [f"exit code {self.returncode}"])[0].removeprefix("╷").strip()


class Terraform:
    """Terraform in one root module's directory, with the environment opsdeck gives it."""

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str],
        *,
        binary: str = "terraform",
        redact: Callable[[str], str] = lambda s: s,
    ) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.binary = binary
        self.redact = redact
        self._argv = _ArgvBuilder(working_dir=str(workdir), terraform_bin_path=binary)

    # -- argv ---------------------------------------------------------------------------------

    def argv(self, command: str, *args: str, **options: Any) -> list[str]:
        """The argv of ``terraform <command>``; options use python-terraform's conventions."""
        return list(self._argv.generate_cmd_string(command, *args, **options))

    def init_argv(self, backend_config: Mapping[str, str], *, reconfigure: bool = False) -> list[str]:
        return self.argv(
            "init",
            input=False,
            no_color=IsFlagged,
            reconfigure=IsFlagged if reconfigure else IsNotFlagged,
            backend_config=[f"{key}={value}" for key, value in backend_config.items()],
        )

    def plan_argv(
        self,
        out: Path,
        *,
        refresh_only: bool = False,
        destroy: bool = False,
        lock: bool = False,
        var_files: tuple[Path, ...] = (),
        refresh: bool = True,
    ) -> list[str]:
        # Plans write no state, so by default they take no state lock (like HCP Terraform's speculative
        # plans): a refresh never blocks, or is blocked by, an apply. Applying a saved plan does lock,
        # and Terraform refuses it if the state moved on since the plan was made.
        return self.argv(
            "plan",
            input=False,
            json=IsFlagged,
            lock=IsNotFlagged if lock else False,
            lock_timeout="0s" if lock else None,
            refresh=None if refresh else False,
            refresh_only=IsFlagged if refresh_only else IsNotFlagged,
            destroy=IsFlagged if destroy else IsNotFlagged,
            # Given on the command line, a variable file wins over the *.auto.tfvars files it names.
            var_file=[str(f) for f in var_files] or None,
            out=str(out),
        )

    def show_argv(self, planfile: Path) -> list[str]:
        return self.argv("show", str(planfile), json=IsFlagged, no_color=IsFlagged)

    def apply_argv(self, planfile: Path) -> list[str]:
        # A saved plan is its own approval: no -auto-approve, no variables.
        return self.argv("apply", str(planfile), input=False, json=IsFlagged, lock_timeout="0s")

    def destroy_argv(self) -> list[str]:
        return self.argv("destroy", input=False, json=IsFlagged, auto_approve=IsFlagged, lock_timeout="0s")

    def force_unlock_argv(self, lock_id: str) -> list[str]:
        return self.argv("force-unlock", lock_id, force=IsFlagged)

    def validate_argv(self) -> list[str]:
        return self.argv("validate", json=IsFlagged, no_color=IsFlagged)

    # -- runs ---------------------------------------------------------------------------------

    async def stream(self, argv: list[str], step: str, on_event: JsonSink | None = None) -> RunOutcome:
        """Run a ``-json`` command, feeding each event to ``on_event``; errors are kept in the outcome."""
        outcome = RunOutcome(returncode=0)

        def line(text: str) -> None:
            try:
                event = json.loads(text)
            except ValueError:
                event = {"type": "log", "@level": "info", "@message": text}
            if not isinstance(event, dict):
                return
            if event.get("type") == "diagnostic" and (event.get("diagnostic") or {}).get("severity") == "error":
                outcome.errors.append(event["diagnostic"])
            if on_event is not None:
                on_event(event)

        finished = await run_streaming(
            argv, cwd=self.workdir, env=self.env, on_stdout=line, redact=self.redact, tool="terraform"
        )
        outcome.returncode = finished.returncode
        outcome.stderr = finished.stderr
        return outcome

    def raise_for(self, outcome: RunOutcome, step: str) -> None:
        """Turn a failed run into one clear error; a held state lock becomes a LockedError."""
        for diag in outcome.errors:
            if "state lock" in diag.get("summary", "").lower():
                lock = LockInfo.parse(diag.get("detail", ""))
                holder = f" by {lock.who} ({lock.operation}, since {lock.created}, lock id {lock.id})" if lock else ""
                raise LockedError(f"{step}: the Terraform state is locked{holder}")
        raise ToolError(step, outcome.message())

    async def init(self, backend_config: Mapping[str, str], *, reconfigure: bool = False) -> None:
        rc, out, err = await run_captured(
            self.init_argv(backend_config, reconfigure=reconfigure),
            cwd=self.workdir,
            env=self.env,
            tool="terraform",
            redact=self.redact,
        )
        if rc != 0:
            raise ToolError(f"terraform init in {self.workdir.name}", RunOutcome(rc, [], err or out).message())

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
        kind = "plan -refresh-only" if refresh_only else "plan -destroy" if destroy else "plan"
        step = f"terraform {kind} in {self.workdir.name}"
        argv = self.plan_argv(
            out, refresh_only=refresh_only, destroy=destroy, lock=lock, var_files=var_files, refresh=refresh
        )
        outcome = await self.stream(argv, step, on_event)
        if outcome.returncode != 0:
            self.raise_for(outcome, step)

    async def show_json(self, planfile: Path) -> dict[str, Any]:
        rc, out, err = await run_captured(
            self.show_argv(planfile), cwd=self.workdir, env=self.env, tool="terraform", redact=self.redact
        )
        step = f"terraform show in {self.workdir.name}"
        if rc != 0:
            raise ToolError(step, RunOutcome(rc, [], err).message())
        try:
            data = json.loads(out)
        except ValueError as exc:
            raise ToolError(step, f"unreadable JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ToolError(step, "expected a JSON object")
        return data

    async def apply(self, planfile: Path, *, on_event: JsonSink | None = None) -> None:
        step = f"terraform apply in {self.workdir.name}"
        outcome = await self.stream(self.apply_argv(planfile), step, on_event)
        if outcome.returncode != 0:
            self.raise_for(outcome, step)

    async def destroy(self, *, on_event: JsonSink | None = None) -> None:
        step = f"terraform destroy in {self.workdir.name}"
        outcome = await self.stream(self.destroy_argv(), step, on_event)
        if outcome.returncode != 0:
            self.raise_for(outcome, step)

    async def force_unlock(self, lock_id: str) -> None:
        rc, out, err = await run_captured(
            self.force_unlock_argv(lock_id), cwd=self.workdir, env=self.env, tool="terraform", redact=self.redact
        )
        if rc != 0:
            raise ToolError(f"terraform force-unlock in {self.workdir.name}", RunOutcome(rc, [], err or out).message())

    async def version(self) -> str:
        rc, out, err = await run_captured(
            self.argv("version", json=IsFlagged), cwd=self.workdir, env=self.env, tool="terraform"
        )
        if rc != 0:
            raise ToolError("terraform version", err.strip() or f"exit code {rc}")
        return str(json.loads(out).get("terraform_version", "?"))
