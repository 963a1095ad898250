"""Checkov, the policy engine, as an external command: it reads a plan as `terraform show -json`
prints it and answers which checks pass and fail.

Checkov 3.3 pins its own boto3 and brings numpy, aiohttp and networkx, so it is never a dependency of
opsdeck: it runs from its own virtual environment (scripts/bootstrap.sh installs one and records it
as the ``checkov.binary`` setting), found through OPSDECK_CHECKOV, that setting, or PATH. It is run
with ``--skip-download`` and no credentials: a policy check never talks to any network.
"""

from __future__ import annotations

import json
import os
import shutil
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
        """Check a plan (`terraform show -json` output in ``plan_json``)."""
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BC_", "PRISMA_")) and k != "CKV_API_KEY"
        }
        env["LOG_LEVEL"] = "ERROR"
        argv = self.argv(plan_json, checks_dir=checks_dir, skip=skip)
        code, out, err = await run_captured(argv, cwd=plan_json.parent, env=env, tool="checkov")
        if code not in (0, 1) or not out.strip():
            last = next((line for line in reversed(err.splitlines()) if line.strip()), f"exit code {code}")
            raise ToolError("checkov", last.strip())
        return parse(out)
