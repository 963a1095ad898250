"""`opsdeck schedule drift`: print ready-to-install schedules for the nightly drift check."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from opsdeck.commands import open_deck


def register(sub: Any) -> None:
    schedule = sub.add_parser("schedule", help="print schedules for nightly checks (cron, systemd, CI)")
    kinds = schedule.add_subparsers(dest="schedule_command", metavar="CHECK", required=True)
    drift = kinds.add_parser("drift", help="the nightly drift check, with its alarms")
    drift.add_argument("--notify", action="append", default=[], metavar="TARGET", help="webhook URL or SNS topic ARN")
    drift.add_argument("--at", default="03:17", metavar="HH:MM", help="time of day (default 03:17)")
    drift.add_argument("--trail", action="store_true", help="include changes made outside the pipeline (CloudTrail)")
    drift.add_argument(
        "--only", choices=("cron", "systemd", "github"), action="append", help="print only this kind (repeatable)"
    )
    drift.set_defaults(handler=schedule_drift_cmd)


def schedule_drift_cmd(args: argparse.Namespace) -> int:
    from opsdeck import __version__
    from opsdeck.core.hygiene.notify import parse_target
    from opsdeck.core.hygiene.schedule import KINDS, Schedule, parse_at, render

    # A target kept in an environment variable stays a reference (only its name is checked here: the
    # variable is set where the schedule runs); the others are checked as drift would check them.
    targets = [t if t.startswith("env:") and _env_name(t) else parse_target(t).value for t in args.notify]
    hour, minute = parse_at(args.at)
    deck = open_deck(args)  # a deck that does not load is refused now, not at 03:17
    if not targets:
        print("note: no --notify target: the check's exit code is the only alarm", file=sys.stderr)
    schedule = Schedule(
        opsdeck=_executable(),
        deck=deck.root,
        notify=tuple(targets),
        hour=hour,
        minute=minute,
        trail=args.trail,
        deck_in_repo=_in_repo(deck.root),
        version=__version__,
    )
    print(render(schedule, tuple(args.only) if args.only else KINDS), end="")
    return 0


def _env_name(target: str) -> bool:
    import re

    from opsdeck.errors import ConfigError

    if not re.fullmatch(r"env:[A-Za-z_][A-Za-z0-9_]*", target):
        raise ConfigError(f"--notify {target}: expected env:NAME, NAME an environment variable")
    return True


def _executable() -> tuple[str, ...]:
    """The opsdeck this command runs as (a venv's script), so the schedule runs the same one."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "opsdeck" and argv0.exists():
        return (str(argv0.absolute()),)
    found = shutil.which("opsdeck")
    if found:
        return (str(Path(found).absolute()),)
    return (str(Path(sys.executable).absolute()), "-m", "opsdeck")


def _in_repo(root: Path) -> str:
    for parent in [root, *root.parents]:
        if (parent / ".git").exists():
            return str(root.relative_to(parent)) or "."
    return "."
