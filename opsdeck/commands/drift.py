"""`opsdeck drift`, `opsdeck apply ENV` and `opsdeck nuke-rebuild ENV`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from opsdeck.commands import open_deck, print_json, reporter, run, table
from opsdeck.commands.lifecycle import cli_confirm


def register(sub: Any) -> None:
    drift = sub.add_parser("drift", help="managed, unmanaged and image drift (exit 0 clean, 2 drifted, 1 error)")
    drift.add_argument("envs", nargs="*", metavar="ENV", help="environments (default: all)")
    drift.add_argument("--json", action="store_true", help="print JSON")
    drift.add_argument("-v", "--verbose", action="store_true", help="print progress")
    drift.set_defaults(handler=drift_cmd)

    apply = sub.add_parser("apply", help="apply ENV's pending plan (puts code back over managed drift)")
    apply.add_argument("env")
    apply.add_argument("--yes", action="store_true", help="confirm without asking (needed without a terminal)")
    apply.add_argument("--break-glass", action="store_true", help="use the environment's elevated credentials")
    apply.add_argument("--reason", default="", help="why (needed with --break-glass)")
    apply.add_argument("--json", action="store_true", help="print JSON")
    apply.add_argument("-v", "--verbose", action="store_true", help="print progress")
    apply.set_defaults(handler=apply_cmd)

    nuke = sub.add_parser("nuke-rebuild", help="delete everything of a sandbox and rebuild it from code")
    nuke.add_argument("env")
    nuke.add_argument("--yes", action="store_true", help="do it (without: print what would be deleted, and exit)")
    nuke.add_argument("--json", action="store_true", help="print JSON")
    nuke.add_argument("-v", "--verbose", action="store_true", help="print progress")
    nuke.set_defaults(handler=nuke_cmd)


def drift_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.drift.check import check

    deck = open_deck(args)
    for env in args.envs:
        deck.env(env)
    deck.check_cloud()
    reports = run(check(deck, args.envs or None, reporter(args, "drift")))
    drifted = any(r.status == "drifted" for r in reports)
    if args.json:
        print_json(
            {
                "environments": [
                    {
                        "name": r.name,
                        "status": r.status,
                        "managed": [{"address": m["address"], "attributes": m["attributes"]} for m in r.managed],
                        "unmanaged": r.unmanaged,
                        "image": r.image,
                        "ignored": r.ignored,
                        "seconds": r.seconds,
                    }
                    for r in reports
                ]
            }
        )
        return 2 if drifted else 0
    rows = []
    for r in reports:
        details = [f"{m['address']} [{', '.join(m['attributes'])}]" for m in r.managed]
        details += [f"unmanaged {u['type']} {u['id']}" for u in r.unmanaged]
        details += [f"instance {i['instance']} runs {i['image_id']}" for i in r.image]
        rows.append([r.name, r.status, f"{r.seconds:.1f}s", "; ".join(details) or "-"])
    print(table(["ENV", "DRIFT", "TOOK", "DETAILS"], rows))
    return 2 if drifted else 0


def apply_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.drift.reconcile import apply_env
    from opsdeck.core.safety.breakglass import close_break_glass, open_break_glass

    deck = open_deck(args)
    deck.env(args.env)
    deck.check_cloud()
    glass = open_break_glass(deck, args.env, args.reason) if args.break_glass else None
    try:
        result = run(
            apply_env(deck, args.env, reporter(args, "apply", args.env), confirm=cli_confirm(args), glass=glass)
        )
    finally:
        if glass is not None:
            close_break_glass(deck, glass)
    from opsdeck.core.team.requests import Request

    if isinstance(result, Request):
        from opsdeck.commands.team import request_line

        if args.json:
            print_json(result.to_json())
        else:
            print(request_line(result.to_json()))
        return 0
    if args.json:
        print_json(result.to_json())
    elif result.applied:
        print(f"applied {args.env}: +{result.add} ~{result.change} -{result.destroy} ({result.seconds:.1f}s)")
    else:
        print(f"{args.env}: nothing to apply")
    return 0


def nuke_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.sandbox import nuke

    deck = open_deck(args)
    deck.env(args.env)
    deck.check_cloud()
    rep = reporter(args, "nuke-rebuild", args.env)
    if not args.yes:
        plan = run(nuke.inventory(deck, args.env, rep))
        if args.json:
            print_json({"dry_run": True, **plan.to_json()})
            return 0
        print(f"dry run: {plan.summary()}")
        for address in plan.managed:
            print(f"  terraform destroy  {address}")
        for res in plan.unmanaged:
            print(f"  delete unmanaged   {res.type} {res.id}")
        print(f"re-run with --yes to nuke and rebuild {args.env}", file=sys.stderr)
        return 0
    result = run(nuke.nuke_rebuild(deck, args.env, rep))
    if args.json:
        print_json(result.to_json())
        return 0
    print(
        f"nuked and rebuilt {args.env}: destroyed {result.destroyed}, deleted {result.unmanaged_deleted} "
        f"unmanaged, created {result.created} ({result.seconds:.1f}s)"
    )
    for name, seconds in result.phases:
        print(f"  {name:<20} {seconds:6.1f}s")
    return 0
