"""`opsdeck bake | promote | rollback | revoke | history`: the image lifecycle, headless."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any, TypeVar

from opsdeck.commands import open_deck, print_json, reporter, run, table, when
from opsdeck.commands.inspect import plan_text
from opsdeck.core.estate.deck import Deck

if TYPE_CHECKING:
    from opsdeck.core.engine.operation import Operation
    from opsdeck.core.engine.operations import Released

A = TypeVar("A")


def _mutating(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", action="store_true", help="confirm without asking (needed without a terminal)")
    parser.add_argument("--reason", default="", help="why (recorded in the commit and the audit log)")
    parser.add_argument("--break-glass", action="store_true", help="use the environment's elevated credentials")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print progress")


def _services(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--service", dest="services", action="append", metavar="NAME", help=f"{what} (repeatable; default: all)"
    )


def register(sub: Any) -> None:
    bake = sub.add_parser("bake", help="bake new images with the deck's Packer recipes (one per service)")
    _services(bake, "the service to bake")
    bake.add_argument("--version", help="MAJOR.MINOR.PATCH (default: the next patch after the service's newest)")
    bake.add_argument("--base", action="store_true", help="bake the shared base layer instead")
    bake.add_argument("--json", action="store_true", help="print JSON")
    bake.add_argument("-v", "--verbose", action="store_true", help="print Packer's progress")
    bake.set_defaults(handler=bake_cmd)

    promote = sub.add_parser("promote", help="promote an environment's images (or one image) to an environment")
    promote.add_argument("src", help="source environment, or an image id or version")
    promote.add_argument("dst", help="target environment")
    _services(promote, "only this service")
    _mutating(promote)
    promote.set_defaults(handler=promote_cmd)

    deploy = sub.add_parser("deploy", help="deploy each service's newest image to an environment (sandbox, dev)")
    deploy.add_argument("env", help="environment")
    _services(deploy, "only this service")
    _mutating(deploy)
    deploy.set_defaults(handler=deploy_cmd)

    rollback = sub.add_parser("rollback", help="point an environment back at the images it ran before")
    rollback.add_argument("env", help="environment")
    rollback.add_argument("--to", help="an image id or version the environment ran before")
    _services(rollback, "only this service")
    _mutating(rollback)
    rollback.set_defaults(handler=rollback_cmd)

    ahead = sub.add_parser(
        "preplan", help="plan ahead what promote, deploy and rollback would apply (the deck does it when idle)"
    )
    ahead.add_argument("envs", nargs="*", metavar="ENV", help="environments (default: all)")
    ahead.add_argument("--json", action="store_true", help="print JSON")
    ahead.add_argument("-v", "--verbose", action="store_true", help="print progress")
    ahead.set_defaults(handler=preplan_cmd)

    revoke = sub.add_parser("revoke", help="mark an image revoked: promote refuses it, status flags it")
    revoke.add_argument("image", help="image id or version")
    revoke.add_argument("--reason", required=True, help="why (recorded on the image and in the audit log)")
    revoke.add_argument("--json", action="store_true", help="print JSON")
    revoke.set_defaults(handler=revoke_cmd)

    history = sub.add_parser("history", help="an environment's releases, from git")
    history.add_argument("env", help="environment")
    _services(history, "only this service's releases")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(handler=history_cmd)


def bake_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import BakeArgs

    deck = open_deck(args)
    deck.check_cloud()
    baking = BakeArgs(args.services, args.version, args.base)
    ran = run(runner.run(deck, registry.BAKE, baking, reporter(args, "bake")))
    if args.json:
        print_json(ran.result)
    else:
        where = f" on {ran.worker}" if ran.worker else ""
        for r in ran.result:
            what = "base image" if r["service"] is None else f"{r['service']} image"
            print(f"baked {what} {r['version']}: {r['id']} (git {r['git_sha']}, {r['seconds']:.1f}s{where})")
    return 0


def cli_confirm(args: argparse.Namespace) -> Any:
    """Show the plan, then confirm as the environment's approval setting says (headless: --yes)."""
    from opsdeck.core.safety.confirm import NotConfirmedError, Preview

    async def ask(preview: Preview) -> bool:
        out = sys.stderr
        moving = [c for c in preview.changes if c.from_image.id != c.to_image.id]
        if not moving:
            print(f"{preview.action} {preview.environment}", file=out)
        for change in moving:
            print(
                f"{preview.action} {preview.environment} {change.service}: {change.from_image.version} "
                f"({change.from_image.id}) -> {change.to_image.version} ({change.to_image.id})",
                file=out,
            )
        if preview.note:
            print(preview.note, file=out)
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


def _release(args: argparse.Namespace, op: Operation[A, Released], what: A, env: str) -> int:
    """A release, here or on a worker (the runner chooses; break-glass runs here, where its credentials are)."""
    from opsdeck.core.engine import runner
    from opsdeck.core.engine.operations import RemoteRelease
    from opsdeck.core.safety.breakglass import close_break_glass
    from opsdeck.core.team.requests import Request

    deck = open_deck(args)
    deck.env(env)
    deck.config.services_named(args.services)
    if args.break_glass:  # it runs here: the cloud answers before its credentials are opened
        deck.check_cloud()
    glass = _glass(deck, args, env)
    try:
        rep = reporter(args, op.name, env)
        ask = cli_confirm(args)
        ran = run(runner.run(deck, op, what, rep, confirm=ask, glass=glass, check_cloud=glass is None))
    finally:
        if glass is not None:
            close_break_glass(deck, glass)
    result = ran.result
    if isinstance(result, Request):  # the environment needs approvals: nothing was applied
        data = dict(ran.data["request"]) if ran.sent else result.to_json()  # as the worker filed it
        if args.json:
            print_json({**data, "worker": ran.worker} if ran.sent else data)
        else:
            from opsdeck.commands.team import request_line

            print(request_line(data))
            print(f"approve it with `opsdeck approve {result.id}`; once approved, `opsdeck execute {result.id}`")
        return 0
    if args.json:
        print_json(result.to_json())
    elif isinstance(result, RemoteRelease):
        print(f"{op.name} {env} on {result.worker}: {result.text}, commit {result.commit[:12]} ({result.seconds:.1f}s)")
    else:
        print(f"{op.name} {env}: {result.summary()}, commit {result.commit[:12]} ({result.seconds:.1f}s)")
    follow_up = getattr(result, "follow_up", None)  # a release run here (a worker's prepares nothing here)
    if follow_up is not None:  # once reported: the operator has the result, this tidies after it
        sys.stdout.flush()
        run(follow_up(reporter(args, "prepare switch back", env)))
    return 0


def promote_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry
    from opsdeck.core.engine.operation import PromoteArgs

    return _release(args, registry.PROMOTE, PromoteArgs(args.src, args.dst, args.services, args.reason), args.dst)


def deploy_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry
    from opsdeck.core.engine.operation import DeployArgs

    return _release(args, registry.DEPLOY, DeployArgs(args.env, args.services, args.reason), args.env)


def rollback_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry
    from opsdeck.core.engine.operation import RollbackArgs

    return _release(args, registry.ROLLBACK, RollbackArgs(args.env, args.services, args.to, args.reason), args.env)


def revoke_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.release.images import revoke, service_of

    deck = open_deck(args)
    deck.check_cloud()
    image = revoke(deck, args.image, args.reason)
    if args.json:
        print_json(
            {
                "id": image.id,
                "service": service_of(image),
                "version": image.version,
                "revoked": True,
                "reason": args.reason,
            }
        )
    else:
        print(f"revoked {service_of(image) or 'base'} {image.version} ({image.id}): {args.reason}")
    return 0


def history_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.release.images import load_catalog
    from opsdeck.core.release.ledger import history

    deck = open_deck(args)
    deck.check_cloud()
    releases = history(deck, args.env, args.services)
    catalog = load_catalog(deck)

    def version(image_id: str | None) -> str:
        found = catalog.by_id.get(image_id or "")
        return found.version if found else ""

    if args.json:
        print_json(
            [
                {
                    "commit": r.commit,
                    "when": r.when,
                    "author": r.author,
                    "message": r.message,
                    "services": [
                        {
                            "name": c.service,
                            "image_id": c.image_id,
                            "version": version(c.image_id),
                            "from_image": c.before,
                            "from_version": version(c.before),
                        }
                        for c in r.changes
                    ],
                }
                for r in releases
            ]
        )
        return 0
    rows = []
    for r in releases:
        moved = ", ".join(f"{c.service} {version(c.image_id) or c.image_id or '-'}" for c in r.changes)
        rows.append([r.commit[:12], when(r.when), moved, r.author, r.message])
    print(table(["COMMIT", "WHEN", "SERVICES", "AUTHOR", "MESSAGE"], rows))
    return 0


def preplan_cmd(args: argparse.Namespace) -> int:
    """Make the plans that are missing or no longer current; list every current one."""
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import EnvsArgs
    from opsdeck.core.release.preplan import stored

    deck = open_deck(args)
    for env in args.envs:
        deck.env(env)
    deck.check_cloud()
    made = run(runner.run(deck, registry.PREPLAN, EnvsArgs(args.envs or None), reporter(args, "preplan"))).result
    rows: list[dict[str, Any]] = []
    for env in args.envs or deck.config.env_names:
        for action in ("promote", "deploy", "rollback"):
            pre = stored(deck, env, action)
            if pre is None:
                continue
            plan = pre.result()
            rows.append(
                {
                    "environment": env,
                    "action": action,
                    "images": pre.usable,
                    "plan": {"add": plan.summary.add, "change": plan.summary.change, "destroy": plan.summary.destroy},
                    "made_at": pre.created_at,
                    "made_now": any(m.env == env and m.action == action for m in made),
                    "refused": pre.refused or None,
                }
            )
    if args.json:
        print_json(rows)
        return 0
    lines = [
        [
            r["environment"],
            r["action"],
            ", ".join(f"{s} {i}" for s, i in r["images"].items()),
            _plan_cell(r),
            when(r["made_at"]),
        ]
        for r in rows
    ]
    print(table(["ENV", "KEY", "IMAGES", "PLAN", "MADE"], lines))
    return 0


def _plan_cell(row: dict[str, Any]) -> str:
    plan = row["plan"]
    text = f"+{plan['add']} ~{plan['change']} -{plan['destroy']}"
    return f"{text} (refused: {row['refused']})" if row["refused"] else text
