"""Helpers shared by the tests: the repository root and the real `opsdeck` command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def opsdeck(*args: str, deck: Path | None = None, check: bool = False, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run the real `opsdeck` command line in a subprocess."""
    argv = [sys.executable, "-m", "opsdeck"]
    if deck is not None:
        argv += ["--deck", str(deck)]
    result = subprocess.run([*argv, *args], capture_output=True, text=True, cwd=kw.pop("cwd", ROOT), **kw)
    if check and result.returncode != 0:
        raise AssertionError(
            f"opsdeck {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result
