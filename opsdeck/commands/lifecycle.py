"""`opsdeck bake | promote | rollback | revoke | history`: the image lifecycle, headless."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from opsdeck.commands import open_deck, print_json, reporter, run, table, when
from opsdeck.commands.inspect import plan_text
from opsdeck.core.estate.deck import Deck


def _mutating(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", action="store_true", help="confirm without asking (needed without a terminal)")
    parser.add_argument("--reason", default="", help="why (recorded in the commit and the audit log)")
    parser.add_argument("--break-glass", action="store_true", help="use the environment's elevated credentials")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print progress")


def register(sub: Any) -> None:
    bake = sub.add_parser("bake", help="bake a new image with the deck's Packer recipe")
    bake.add_argument("--version", help="MAJOR.MINOR.PATCH (default: the next patch after the newest image)")
    bake.add_argument("--base", action="store_true", help="bake the base layer instead of the app image")
    bake.add_argument("--json", action="store_true", help="print JSON")
    bake.add_argument("-v", "--verbose", action="store_true", help="print Packer's progress")
    bake.set_defaults(handler=bake_cmd)

    promote = sub.add_parser("promote", help="promote an environment's image (or an image) to an environment")
    promote.add_argument("src", help="source environment, or an image id or version")
    promote.add_argument("dst", help="target environment")
    _mutating(promote)
    promote.set_defaults(handler=promote_cmd)

    rollback = sub.add_parser("rollback", help="point an environment back at the image it ran before")
    rollback.add_argument("env", help="environment")
    rollback.add_argument("--to", help="an image id or version the environment ran before")
    _mutating(rollback)
    rollback.set_defaults(handler=rollback_cmd)

    revoke = sub.add_parser("revoke", help="mark an image revoked: promote refuses it, status flags it")
    revoke.add_argument("image", help="image id or version")
    revoke.add_argument("--reason", required=True, help="why (recorded on the image and in the audit log)")
    revoke.add_argument("--json", action="store_true", help="print JSON")
    revoke.set_defaults(handler=revoke_cmd)

    history = sub.add_parser("history", help="an environment's releases, from git")
    history.add_argument("env", help="environment")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(handler=history_cmd)


def bake_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.release.images import bake

    deck = open_deck(args)
    deck.check_cloud()
    result = run(bake(deck, reporter(args, "bake"), version=args.version, base=args.base))
    if args.json:
        print_json(result.to_json())
    else:
        print(f"baked {result.layer} image {result.version}: {result.id} (git {result.git_sha}, {result.seconds:.1f}s)")
    return 0


def cli_confirm(args: argparse.Namespace) -> Any:
    """Show the plan, then confirm as the environment's approval setting says (headless: --yes)."""
    from opsdeck.core.release.promote import NotConfirmedError, Preview

    async def ask(preview: Preview) -> bool:
        out = sys.stderr
        if preview.from_image.id == preview.to_image.id:
            print(f"{preview.action} {preview.environment} (image {preview.to_image.id})", file=out)
        else:
            print(
                f"{preview.action} {preview.environment}: {preview.from_image.version} ({preview.from_image.id}) -> "
                f"{preview.to_image.version} ({preview.to_image.id})",
                file=out,
            )
        print(plan_text(preview.plan), file=out)
        if args.yes or preview.approval == "none":
            return True
        if not sys.stdin.isatty():
            raise NotConfirmedError(
                f"{preview.action} of {preview.environment} needs confirmation "
                f"(approval = {preview.approval}): re-run with --yes; nothing changed"
            )
        if preview.approval == "typed":
            answer = await asyncio.to_thread(input, f"Type {preview.environment} to apply: ")
            return answer.strip() == preview.environment
        answer = await asyncio.to_thread(input, "Apply this plan? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    return ask


def _glass(deck: Deck, args: argparse.Namespace, env: str) -> Any:
    if not args.break_glass:
        return None
    from opsdeck.core.safety.breakglass import open_break_glass

    return open_break_glass(deck, env, args.reason)


def _release(args: argparse.Namespace, env: str, action: str, call: Any) -> int:
    from opsdeck.core.safety.breakglass import close_break_glass

    deck = open_deck(args)
    deck.env(env)
    deck.check_cloud()
    glass = _glass(deck, args, env)
    try:
        result = run(call(deck, reporter(args, action, env), glass))
    finally:
        if glass is not None:
            close_break_glass(deck, glass)
    if args.json:
        print_json(result.to_json())
    else:
        print(
            f"{action} {env}: {result.from_image} -> {result.to_image} {result.version}, "
            f"commit {result.commit[:12]} ({result.seconds:.1f}s)"
        )
    return 0


def promote_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.release.promote import promote

    return _release(
        args,
        args.dst,
        "promote",
        lambda deck, rep, glass: promote(
            deck, args.src, args.dst, rep, reason=args.reason, confirm=cli_confirm(args), glass=glass
        ),
    )


def rollback_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.release.promote import rollback

    return _release(
        args,
        args.env,
        "rollback",
        lambda deck, rep, glass: rollback(
            deck, args.env, rep, to=args.to, reason=args.reason, confirm=cli_confirm(args), glass=glass
        ),
    )


def revoke_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.release.images import revoke

    deck = open_deck(args)
    deck.check_cloud()
    image = revoke(deck, args.image, args.reason)
    if args.json:
        print_json({"id": image.id, "version": image.version, "revoked": True, "reason": args.reason})
    else:
        print(f"revoked {image.version} ({image.id}): {args.reason}")
    return 0


def history_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.release.ledger import history

    deck = open_deck(args)
    deck.check_cloud()
    releases = history(deck, args.env)
    if args.json:
        print_json(
            [
                {
                    "commit": r.commit,
                    "when": r.when,
                    "author": r.author,
                    "image_id": r.image_id,
                    "version": r.version,
                    "message": r.message,
                }
                for r in releases
            ]
        )
        return 0
    rows = [[r.commit[:12], when(r.when), r.version or "?", r.image_id or "-", r.author, r.message] for r in releases]
    print(table(["COMMIT", "WHEN", "VERSION", "IMAGE", "AUTHOR", "MESSAGE"], rows))
    return 0
