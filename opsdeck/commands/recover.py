"""`opsdeck recover ENV --region R [--destroy]` and `opsdeck recovered`: copies of environments in other regions."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from opsdeck.commands import open_deck, print_json, reporter, run, table
from opsdeck.commands.lifecycle import cli_confirm
from opsdeck.errors import OpsdeckError


def register(sub: Any) -> None:
    recover = sub.add_parser(
        "recover", help="rebuild an environment in another region (its images copied there), or --destroy that copy"
    )
    recover.add_argument("env", help="environment")
    recover.add_argument("--region", required=True, help="the AWS region to build the copy in")
    recover.add_argument(
        "--destroy", action="store_true", help="destroy the copy in --region instead (without --yes: a dry run)"
    )
    recover.add_argument("--yes", action="store_true", help="confirm without asking (needed without a terminal)")
    recover.add_argument(
        "--break-glass", action="store_true", help="use the environment's elevated credentials (not with --destroy)"
    )
    recover.add_argument("--reason", default="", help="why (needed with --break-glass)")
    recover.add_argument("--json", action="store_true", help="print JSON")
    recover.add_argument("-v", "--verbose", action="store_true", help="print progress")
    recover.set_defaults(handler=recover_cmd)

    recovered = sub.add_parser("recovered", help="the recovered copies the deck's ledger records")
    recovered.add_argument("--json", action="store_true", help="print JSON")
    recovered.set_defaults(handler=recovered_cmd)


def timeline(phases: list[dict[str, Any]]) -> str:
    return "\n".join(f"  {p['name']:<18} {p['seconds']:7.1f}s" for p in phases)


def recover_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.sandbox import recover

    if args.destroy and (args.break_glass or args.reason):
        raise OpsdeckError(
            "--break-glass and --reason do not apply to --destroy: a copy is destroyed with the environment's "
            "own credentials (and never in a protected account); drop them"
        )
    deck = open_deck(args)
    run(recover.validate(deck, args.env, args.region))  # bad input before the cloud is even asked
    deck.check_cloud()
    if args.destroy:
        return _destroy(deck, args)
    from opsdeck.core.safety.breakglass import close_break_glass, open_break_glass

    glass = open_break_glass(deck, args.env, args.reason) if args.break_glass else None
    rep = reporter(args, "recover", args.env)
    try:
        result = run(recover.recover(deck, args.env, args.region, rep, confirm=cli_confirm(args), glass=glass))
    finally:
        if glass is not None:
            close_break_glass(deck, glass)
    data = result.to_json()
    if args.json:
        print_json(data)
        return 0
    images = ", ".join(f"{s} {i}" for s, i in result.copy.to_json()["images"].items())
    copied = sum(1 for d in result.distributions if d.copied)
    print(
        f"recovered {args.env} in {args.region}: {images} ({copied} images copied, "
        f"{len(result.distributions) - copied} reused; +{result.summary.add} ~{result.summary.change} "
        f"-{result.summary.destroy}), healthy, commit {result.commit[:12]} ({result.seconds:.1f}s)"
    )
    print(timeline(data["phases"]))
    return 0


def _destroy(deck: Any, args: argparse.Namespace) -> int:
    from opsdeck.core.safety.confirm import NotConfirmedError
    from opsdeck.core.sandbox import recover

    rep = reporter(args, "recover-destroy", args.env)
    name = f"{args.env}@{args.region}"
    if not args.yes and not sys.stdin.isatty():  # a dry run: the inventory, no lock taken, nothing changed
        plan = run(recover.inventory(deck, args.env, args.region, rep))
        if args.json:
            print_json({"dry_run": True, **plan.to_json()})
            return 0
        _print_inventory(plan, sys.stdout, dry=True)
        print(f"re-run with --yes to destroy the copy {name} (or in a terminal, to be asked)", file=sys.stderr)
        return 0

    async def ask(plan: recover.CopyInventory) -> bool:
        """What will be destroyed, as the inventory taken under the environment's lock says."""
        _print_inventory(plan, sys.stderr, dry=False)
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise NotConfirmedError(
                f"destroying the copy {name} needs confirmation: re-run with --yes; nothing changed"
            )
        answer = await asyncio.to_thread(input, f"Type {name} to destroy it (anything else: nothing happens): ")
        return bool(answer.strip() == name)

    result = run(recover.destroy_copy(deck, args.env, args.region, rep, confirm=ask))
    data = result.to_json()
    if args.json:
        print_json(data)
        return 0
    commit = f", commit {result.commit[:12]}" if result.commit else ""
    print(
        f"destroyed the copy of {args.env} in {args.region}: {result.destroyed} resources{commit} "
        f"({result.seconds:.1f}s)"
    )
    print(timeline(data["phases"]))
    return 0


def _print_inventory(plan: Any, stream: Any, *, dry: bool) -> None:
    print(f"{'dry run: ' if dry else ''}{plan.summary()}", file=stream)
    for address in plan.managed:
        print(f"  terraform destroy  {address}", file=stream)


def recovered_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.sandbox.copies import recovered_copies

    deck = open_deck(args)
    copies = recovered_copies(deck)
    if args.json:
        print_json([c.to_json() for c in copies])
        return 0
    if not copies:
        print("no recovered copies (opsdeck recover ENV --region R makes one)")
        return 0
    rows = [
        [
            c.env,
            c.region,
            c.account or "-",
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(c.created)) + "Z",
            "healthy" if c.healthy else "unhealthy",
            c.state_key,
        ]
        for c in copies
    ]
    print(table(["ENV", "REGION", "ACCOUNT", "CREATED (UTC)", "HEALTH", "STATE KEY"], rows))
    return 0
