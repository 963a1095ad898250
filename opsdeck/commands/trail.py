"""`opsdeck trail`: changes made outside the pipeline, read from each account's CloudTrail log files."""

from __future__ import annotations

import argparse
from typing import Any

from opsdeck.commands import open_deck, print_json, reporter, run, table
from opsdeck.errors import OpsdeckError


def register(sub: Any) -> None:
    trail = sub.add_parser(
        "trail", help="changes made outside the pipeline, from CloudTrail (exit 0 none, 2 found, 1 error)"
    )
    trail.add_argument("envs", nargs="*", metavar="ENV", help="environments (default: every one with a trail)")
    trail.add_argument("--since", default="24h", metavar="DURATION", help="how far back: 90m, 24h, 7d (default 24h)")
    trail.add_argument("--json", action="store_true", help="print JSON")
    trail.add_argument("-v", "--verbose", action="store_true", help="print progress")
    trail.set_defaults(handler=trail_cmd)


def trail_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.hygiene.trail import iso, parse_since, read_trail, trail_env_names

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        raise OpsdeckError(f"trail: --since: {exc}") from None
    deck = open_deck(args)
    trail_env_names(deck, args.envs)  # every one named exists and has a trail, before the cloud is asked
    deck.check_cloud()
    reports = run(read_trail(deck, args.envs or None, since, reporter(args, "trail")))
    found = any(r.findings for r in reports)
    failed = [r for r in reports if r.error]
    if args.json:
        print_json({"environments": [r.to_json() for r in reports]})
        return _exit(failed, found)
    rows = [
        [r.name, iso(f.time), f.who, f.action, ", ".join(f.resources) or "-", f.source_ip or "-"]
        for r in reports
        for f in r.findings
    ]
    if rows:
        print(table(["ENV", "TIME", "WHO", "ACTION", "RESOURCES", "SOURCE IP"], rows))
    named: set[str] = set()  # environments of one account share its files: name each bad one once
    for r in reports:
        print(r.summary())
        for skipped in (s for s in r.files_skipped if s.key not in named):
            named.add(skipped.key)
            print(f"  skipped {skipped.key}: {skipped.reason}")
    return _exit(failed, found)


def _exit(failed: list[Any], found: bool) -> int:
    """1 when a trail could not be read (after printing what was), else 2 when something was found."""
    if failed:
        names = ", ".join(r.name for r in failed)
        raise OpsdeckError(f"trail of {names} not read: {failed[0].error}")
    return 2 if found else 0
