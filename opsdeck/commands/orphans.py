"""`opsdeck orphans`: what the deck left behind, its age and hourly cost, and its removal (dry run first)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from opsdeck.commands import open_deck, print_json, reporter, run, table


def register(sub: Any) -> None:
    orphans = sub.add_parser(
        "orphans",
        help="orphaned resources, state files and images with their age and hourly cost (exit 0 none, 2 found)",
    )
    orphans.add_argument("--json", action="store_true", help="print JSON")
    orphans.add_argument("--keep-images", type=int, metavar="N", help="keep each service's newest N images")
    orphans.add_argument("--delete", action="store_true", help="remove them (without --yes in a script: dry run)")
    orphans.add_argument("--only", action="append", metavar="ID", help="with --delete: only this orphan (repeatable)")
    orphans.add_argument("--dry-run", action="store_true", help="with --delete: print what would go, and exit")
    orphans.add_argument("--yes", action="store_true", help="with --delete: delete without asking")
    orphans.add_argument(
        "--refresh-prices", action="store_true", help="read the price table again from the AWS Price List API first"
    )
    orphans.add_argument("-v", "--verbose", action="store_true", help="print progress")
    orphans.set_defaults(handler=orphans_cmd)


def orphans_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.hygiene.orphans import find_orphans
    from opsdeck.core.hygiene.store import save_orphans
    from opsdeck.errors import OpsdeckError

    if (args.only or args.yes or args.dry_run) and not args.delete:
        raise OpsdeckError("--only, --yes and --dry-run go with --delete")
    deck = open_deck(args)
    deck.check_cloud()
    if args.refresh_prices:
        from opsdeck.core.hygiene.price_list import refresh_from_aws

        fresh, notes, path = refresh_from_aws(deck)
        print(f"price table of {fresh.date} written to {path}", file=sys.stderr)
        for note in notes:
            print(f"  note: {note}", file=sys.stderr)
    report = run(find_orphans(deck, reporter(args, "orphans"), keep_images=args.keep_images))
    save_orphans(deck, report)  # what the deck shows per environment until its next scan
    if args.delete:
        return _delete(deck, args, report)
    if args.json:
        print_json(report.to_json())
        return 2 if report.orphans else 0
    _print_report(report)
    return 2 if report.orphans else 0


def _age(hours: float | None) -> str:
    if hours is None:
        return "?"
    if hours < 1:
        return f"{hours * 60:.0f}m"
    if hours < 48:
        return f"{hours:.1f}h"
    return f"{hours / 24:.1f}d"


def _rows(orphans: Any, now: float) -> list[list[str]]:
    return [
        [o.kind, o.account, o.region, o.type, o.id, _age(o.age_hours(now)), o.cost.label(), o.detail] for o in orphans
    ]


HEADERS = ["KIND", "ACCOUNT", "REGION", "TYPE", "ID", "AGE", "COST", "WHY"]


def _print_report(report: Any) -> None:
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if not report.orphans:
        print(f"no orphans in {len(report.places)} accounts and regions")
        return
    print(table(HEADERS, _rows(report.orphans, report.scanned_at)))
    unknown = f" (+ {report.unknown} unknown)" if report.unknown else ""
    print(
        f"{len(report.orphans)} orphans, about ${report.usd_per_hour:.4f} per hour{unknown}: estimates from "
        f"the {report.prices.source} on-demand price table of {report.prices.date}"
    )


def _delete(deck: Any, args: argparse.Namespace, report: Any) -> int:
    from opsdeck.core.hygiene.removal import Removal, plan_removal, remove_orphans
    from opsdeck.core.safety.confirm import NotConfirmedError

    now = report.scanned_at
    dry = args.dry_run or (not args.yes and not sys.stdin.isatty())
    if dry:
        removal = plan_removal(deck, report, args.only)
        if args.json:
            print_json({"dry_run": True, **removal.to_json(now), "total": report.total_json()})
        else:
            _print_removal(removal, now)
            if removal.selected:
                print("dry run: re-run with --yes to delete them (or in a terminal, to be asked)", file=sys.stderr)
        return 2 if removal.selected else 0

    async def ask(removal: Removal) -> bool:
        _print_removal(removal, now, stream=sys.stderr)
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise NotConfirmedError("deleting orphans needs confirmation: re-run with --yes; nothing deleted")
        answer = await asyncio.to_thread(input, f"Type {deck.name} to delete these {len(removal.selected)} orphans: ")
        return bool(answer.strip() == deck.name)

    result = run(remove_orphans(deck, report, reporter(args, "orphans-delete"), only=args.only, confirm=ask))
    if args.json:
        print_json(result.to_json(now))
    else:
        for orphan in result.deleted:
            print(f"deleted  {orphan.type} {orphan.id} ({orphan.account} {orphan.region})")
        for orphan, why in result.refused:
            print(f"refused  {orphan.type} {orphan.id}: {why}")
        for orphan, why in result.skipped:
            print(f"skipped  {orphan.type} {orphan.id}: {why}")
    if result.failed:
        from opsdeck.errors import OpsdeckError

        orphan, why = result.failed[0]
        raise OpsdeckError(
            f"{len(result.failed)} orphans could not be deleted; first: {orphan.type} {orphan.id}: {why}"
        )
    if result.refused:
        from opsdeck.errors import RefusedError

        orphan, why = result.refused[0]
        raise RefusedError(f"{len(result.refused)} orphans refused (not deleted); first: {orphan.id}: {why}")
    return 0


def _print_removal(removal: Any, now: float, stream: Any = None) -> None:
    out = stream or sys.stdout
    if removal.selected:
        print(table(HEADERS, _rows(removal.selected, now)), file=out)
        print(f"would delete {len(removal.selected)} orphans", file=out)
    else:
        print("nothing to delete", file=out)
    for orphan, why in removal.refused:
        print(f"refused  {orphan.type} {orphan.id}: {why}", file=out)
    for orphan, why in removal.skipped:
        print(f"skipped  {orphan.type} {orphan.id}: {why}", file=out)
