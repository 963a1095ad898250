"""`opsdeck freeze | unfreeze` and `opsdeck sandbox expire | extend`: change freezes, and sandboxes that
end (see core/safety/freeze.py, core/team/freezing.py, core/estate/lifetimes.py, core/sandbox/expire.py)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from opsdeck.commands import open_deck, print_json, reporter, run, table
from opsdeck.core.estate.deck import Deck
from opsdeck.errors import ConfigError


def _targets(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("env", nargs="?", help=f"the environment to {what}")
    parser.add_argument("--all", action="store_true", help=f"{what} every environment")
    parser.add_argument("--key", help="an SSH private key file to sign with instead of git's user.signingkey")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print progress")


def register(sub: Any) -> None:
    freeze = sub.add_parser("freeze", help="freeze changes to an environment (or --all) until a time, signed")
    _targets(freeze, "freeze")
    freeze.add_argument("--until", required=True, metavar="WHEN", help="a duration (90m, 2h, 3d) or an ISO 8601 time")
    freeze.add_argument("--reason", required=True, help="why (shown in every refusal)")
    freeze.set_defaults(handler=freeze_cmd)

    unfreeze = sub.add_parser("unfreeze", help="lift an environment's freeze (or --all), signed")
    _targets(unfreeze, "unfreeze")
    unfreeze.set_defaults(handler=unfreeze_cmd)

    sandbox = sub.add_parser("sandbox", help="sandbox lifetimes: `sandbox expire` and `sandbox extend`")
    actions = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    expire = actions.add_parser("expire", help="destroy sandboxes whose lifetime ended (dry run without --yes)")
    expire.add_argument("--yes", action="store_true", help="destroy them (without: list what would be destroyed)")
    expire.add_argument("--json", action="store_true", help="print JSON")
    expire.add_argument("-v", "--verbose", action="store_true", help="print progress")
    expire.set_defaults(handler=expire_cmd)
    extend = actions.add_parser("extend", help="add hours to a sandbox's lifetime")
    extend.add_argument("env", help="the sandbox")
    extend.add_argument("--hours", required=True, metavar="N", help="hours to add")
    extend.add_argument("--reason", default="", help="why (recorded in the ledger and the audit log)")
    extend.add_argument("--json", action="store_true", help="print JSON")
    extend.set_defaults(handler=extend_cmd)


def _envs(deck: Deck, args: argparse.Namespace) -> list[str]:
    if args.all and args.env:
        raise ConfigError(f"{args.command}: give an environment or --all, not both")
    if not args.all and not args.env:
        raise ConfigError(f"{args.command}: name an environment, or --all")
    if args.all:
        return deck.config.env_names
    deck.env(args.env)
    return [args.env]


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(epoch))


def freeze_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import FreezeArgs
    from opsdeck.core.safety.freeze import parse_until

    until = parse_until(args.until)  # bad input fails before the deck is read
    deck = open_deck(args)
    what = FreezeArgs(_envs(deck, args), until, args.reason, args.key)
    done = run(runner.run(deck, registry.FREEZE, what, reporter(args, "freeze"))).result
    if args.json:
        print_json([d.to_json() for d in done])
        return 0
    for d in done:
        replaced = f" (replaces {d.replaced.by}'s until {_when(d.replaced.until)})" if d.replaced else ""
        print(f"froze {d.environment} until {_when(d.until or 0.0)} as {d.by}: {d.reason}{replaced}")
    if done and not done[0].pushed:
        print("note: not pushed: teammates see the freeze once it reaches the team's remote", file=sys.stderr)
    return 0


def unfreeze_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import UnfreezeArgs

    deck = open_deck(args)
    what = UnfreezeArgs(_envs(deck, args), args.key)
    done = run(runner.run(deck, registry.UNFREEZE, what, reporter(args, "unfreeze"))).result
    if args.json:
        print_json([d.to_json() for d in done])
        return 0
    for d in done:
        if d.decision == "unfreeze" and d.replaced is not None:
            print(f"unfroze {d.environment} as {d.by} (frozen by {d.replaced.by}: {d.replaced.reason})")
        elif d.decision == "tidy":
            print(f"{d.environment} was not frozen; its freeze record that no longer counted is replaced")
        else:
            print(f"{d.environment} is not frozen; nothing to lift")
    return 0


def expire_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import ExpireArgs

    deck = open_deck(args)
    deck.check_cloud()
    rep = reporter(args, "sandbox-expire")
    found = run(runner.run(deck, registry.SANDBOX_EXPIRE, ExpireArgs(args.yes), rep)).result
    if args.json:
        print_json({"dry_run": not args.yes, "sandboxes": [e.to_json() for e in found]})
    elif not found:
        print("no sandbox's lifetime has ended")
    else:
        rows = [[e.environment, _when(e.ended_at), e.result, e.detail] for e in found]
        print(table(["SANDBOX", "ENDED", "RESULT", "DETAIL"], rows))
        if not args.yes:
            print("re-run with --yes to destroy them (they are not rebuilt)", file=sys.stderr)
    return 1 if any(e.result in ("refused", "failed") for e in found) and args.yes else 0


def extend_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import ExtendArgs
    from opsdeck.core.estate.lifetimes import ttl_of

    try:
        hours = float(args.hours)
    except ValueError:
        raise ConfigError(f"--hours {args.hours}: expected a number of hours above 0") from None
    deck = open_deck(args)
    rep = reporter(args, "sandbox-extend", args.env)
    record = run(runner.run(deck, registry.SANDBOX_EXTEND, ExtendArgs(args.env, hours, args.reason), rep)).result
    ends = record.expires_at(ttl_of(deck, args.env) or 0.0)
    if args.json:
        print_json({"environment": args.env, "expires_at": ends, **record.to_json()})
    else:
        print(f"extended {args.env} by {hours:g}h: its lifetime ends at {_when(ends)}")
    return 0
