"""Checkov, the policy engine, as an external command: it reads a plan as `terraform show -json`
prints it and answers which checks pass and fail.

Checkov 3.3 pins its own boto3 and brings numpy, aiohttp and networkx, so it is never a dependency of
opsdeck: it runs from its own virtual environment (scripts/bootstrap.sh installs one and records it
as the ``checkov.binary`` setting), found through OPSDECK_CHECKOV, that setting, or PATH. It is run
with ``--skip-download`` and no credentials: a policy check never talks to any network.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from opsdeck.adapters.process import run_captured
from opsdeck.core.types.tools import Failure, Report
from opsdeck.errors import ToolError, ToolMissingError

INSTALL_HINT = (
    "Checkov is not installed: run scripts/bootstrap.sh (it installs Checkov into its own venv), or "
    "`pipx install checkov` and `opsdeck config set checkov.binary PATH`"
)


def find_binary(configured: str | None) -> str:
    """The checkov command to run, or ToolMissingError with how to get it."""
    named = os.environ.get("OPSDECK_CHECKOV") or configured
    if named:
        found = shutil.which(named)
        if found is None:
            which = "OPSDECK_CHECKOV" if os.environ.get("OPSDECK_CHECKOV") else "the checkov.binary setting"
            raise ToolMissingError(f"Checkov is not installed at {named} ({which}); {INSTALL_HINT.split(': ', 1)[1]}")
        return found
    found = shutil.which("checkov")
    if found is None:
        raise ToolMissingError(INSTALL_HINT)
    return found


def parse(stdout: str) -> Report:
    """Checkov's `-o json` output (one framework: an object; several: a list; nothing to check: a
    summary object alone)."""
    try:
        data: Any = json.loads(stdout)
    except json.JSONDecodeError:
        raise ToolError("checkov", f"its output is not JSON: {stdout.strip()[:200]!r}") from None
    runs = data if isinstance(data, list) else [data]
    passed = skipped = 0
    failed: list[Failure] = []
    version = ""
    for run in runs:
        summary = run.get("summary") or {}
        version = str(summary.get("checkov_version", version))
        results = run.get("results") or {}
        passed += len(results.get("passed_checks") or []) or int(summary.get("passed", 0))
        skipped += len(results.get("skipped_checks") or [])
        for check in results.get("failed_checks") or []:
            failed.append(
                Failure(
                    str(check.get("check_id", "?")),
                    str(check.get("check_name", "")),
                    str(check.get("resource", "?")),
                    str(check.get("guideline") or ""),
                )
            )
    return Report(passed, tuple(failed), skipped, version)


class Checkov:
    """The policy engine behind the gate: one checkov command."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def argv(self, plan_json: Path, *, checks_dir: Path | None = None, skip: tuple[str, ...] = ()) -> list[str]:
        """The command that checks a plan with Checkov's terraform_plan checks (its built-in ones, plus
        ``checks_dir``'s)."""
        argv = [
            self.binary,
            "--file",
            str(plan_json),
            "--framework",
            "terraform_plan",
            "--output",
            "json",
            "--compact",
            "--quiet",
            "--skip-download",
        ]
        if checks_dir is not None:
            argv += ["--external-checks-dir", str(checks_dir)]
        if skip:
            argv += ["--skip-check", ",".join(skip)]
        return argv

    async def scan(self, plan_json: Path, *, checks_dir: Path | None = None, skip: tuple[str, ...] = ()) -> Report:
        """Check a plan (`terraform show -json` output in ``plan_json``): by this process's warm Checkov
        when Checkov's Python can run one (its checks loaded once, not once per plan), else by the
        checkov command."""
        argv = self.argv(plan_json, checks_dir=checks_dir, skip=skip)
        warm = warm_server(self.binary)
        answer = await asyncio.to_thread(warm.check, argv[1:]) if warm is not None else None
        if answer is not None:
            code, out, err = answer
        else:
            code, out, err = await run_captured(argv, cwd=plan_json.parent, env=_env(), tool="checkov")
        if code not in (0, 1) or not out.strip():
            last = next((line for line in reversed(err.splitlines()) if line.strip()), f"exit code {code}")
            raise ToolError("checkov", last.strip())
        return parse(out)


def _env() -> dict[str, str]:
    """Checkov's environment: no cloud credentials or platform keys (a policy check talks to no network)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BC_", "PRISMA_")) and k != "CKV_API_KEY"}
    env["LOG_LEVEL"] = "ERROR"
    return env


class WarmServer:
    """One Checkov process that stays up for this opsdeck process (adapters/checkov_server.py), asked one
    plan at a time. Its answers are what the checkov command would print."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str] | None:
        server = Path(__file__).with_name("checkov_server.py")
        try:
            proc = subprocess.Popen(
                [self.python, "-I", str(server)],  # -I: its folder (and a checkov.py in it) is not on its path
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=_env(),
            )
        except OSError:
            return None
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        if not ready.strip().startswith('{"ready"'):
            self.proc = proc
            self._drop()
            return None
        return proc

    def check(self, args: list[str]) -> tuple[int, str, str] | None:
        """(exit code, stdout, stderr) of checkov with ``args``; None when the warm process cannot answer
        (it is started again next time, and the caller runs the command instead)."""
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._drop()
                self.proc = self._start()
            proc = self.proc
            if proc is None or proc.stdin is None or proc.stdout is None:
                return None
            try:
                proc.stdin.write(json.dumps({"argv": args}) + "\n")
                proc.stdin.flush()
                answer = json.loads(proc.stdout.readline())
            except (OSError, ValueError):
                self._drop()
                return None
            return int(answer["rc"]), str(answer["out"]), str(answer["err"])

    def _drop(self) -> None:
        """End the process (when it still runs) and close its pipes."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=5)
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()

    def close(self) -> None:
        with self.lock:
            self._drop()


_SERVERS: dict[str, WarmServer | None] = {}


def warm_server(binary: str) -> WarmServer | None:
    """The warm Checkov of ``binary``: a checkov script's own Python (its shebang) runs it; None for a
    checkov that is not a Python script (a binary build), which is run as a command each time."""
    if binary not in _SERVERS:
        python = None
        with contextlib.suppress(OSError):
            first = Path(binary).read_bytes()[:200].split(b"\n", 1)[0].decode(errors="replace")
            if first.startswith("#!") and "python" in first:
                python = first[2:].strip().split()[0]
        _SERVERS[binary] = WarmServer(python) if python and Path(python).is_file() else None
        if _SERVERS[binary] is not None:
            atexit.register(_SERVERS[binary].close)  # type: ignore[union-attr]
    return _SERVERS[binary]
