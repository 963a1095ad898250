"""`opsdeck schedule drift`, `schedule bake` and `schedule sandbox-expire`: print ready-to-install
schedules for the nightly drift check, the nightly base bake and each service's bake on a merge (CI),
and the hourly expiry of sandboxes whose lifetime ended."""

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
    bake = kinds.add_parser("bake", help="the nightly base bake, and a CI job baking each service on a merge")
    bake.add_argument(
        "--service", dest="services", action="append", metavar="S", help="only this service's CI job (repeatable)"
    )
    bake.add_argument("--at", default="02:17", metavar="HH:MM", help="time of day of the base bake (default 02:17)")
    bake.add_argument(
        "--only",
        choices=("cron", "systemd", "github", "gitlab"),
        action="append",
        help="print only this kind (repeatable)",
    )
    bake.set_defaults(handler=schedule_bake_cmd)
    expire = kinds.add_parser("sandbox-expire", help="`sandbox expire --yes`: destroy sandboxes whose lifetime ended")
    expire.add_argument("--every", default="1h", metavar="PERIOD", help="how often: 15m, 30m, 1h (default), 6h ...")
    expire.add_argument(
        "--only", choices=("cron", "systemd"), action="append", help="print only this kind (repeatable)"
    )
    expire.set_defaults(handler=schedule_expire_cmd)


def schedule_drift_cmd(args: argparse.Namespace) -> int:
    from opsdeck import __version__
    from opsdeck.core.hygiene.notify import parse_target
    from opsdeck.core.schedules.drift import KINDS, Schedule, parse_at, render

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


def schedule_bake_cmd(args: argparse.Namespace) -> int:
    from opsdeck import __version__
    from opsdeck.core.schedules.bake import KINDS, NIGHTLY, BakeSchedule, render, watched
    from opsdeck.core.schedules.drift import parse_at
    from opsdeck.errors import ConfigError

    hour, minute = parse_at(args.at)
    deck = open_deck(args)
    config = deck.config
    names = config.services_named(args.services)
    kinds = tuple(args.only) if args.only else KINDS
    if config.base_recipe is None:
        if args.only and set(kinds) & set(NIGHTLY):
            raise ConfigError("opsdeck.toml: base.recipe: not set, so there is no base layer to bake nightly")
        print("note: the deck has no base layer ([base] recipe): no nightly base bake", file=sys.stderr)
        kinds = tuple(k for k in kinds if k not in NIGHTLY)
    in_repo = _in_repo(deck.root)
    schedule = BakeSchedule(
        opsdeck=_executable(),
        git=shutil.which("git") or "git",
        deck=deck.root,
        hour=hour,
        minute=minute,
        services=tuple((name, watched(config, deck.root, name, in_repo)) for name in names),
        region=config.build_region,
        branch=config.team.branch or "main",
        deck_in_repo=in_repo,
        version=__version__,
        packer=_packer_version(deck),
    )
    print(render(schedule, kinds), end="")
    return 0


def schedule_expire_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.schedules.expire import KINDS, ExpireSchedule, parse_every, render

    every = parse_every(args.every)
    deck = open_deck(args)
    if not any(e.sandbox and e.ttl_hours for e in deck.config.environments):
        print("note: no sandbox of this deck has a lifetime (ttl_hours) yet: expire finds nothing", file=sys.stderr)
    schedule = ExpireSchedule(opsdeck=_executable(), deck=deck.root, every_minutes=every)
    print(render(schedule, tuple(args.only) if args.only else KINDS), end="")
    return 0


def _packer_version(deck: Any) -> str:
    """The Packer this deck bakes with here (1.6.6), for the CI jobs to use the same; "" if unknown.
    Asked without credentials: printing a schedule reaches no account."""
    import os
    import re

    from opsdeck.adapters.packer import Packer
    from opsdeck.commands import run
    from opsdeck.errors import OpsdeckError

    try:
        text = run(Packer(os.environ, binary=deck.settings.packer.binary).version())
    except OpsdeckError:
        return ""
    match = re.search(r"(\d+\.\d+\.\d+)", text)
    return match.group(1) if match else ""


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
