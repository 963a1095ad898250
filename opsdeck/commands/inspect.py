"""`opsdeck status`, `opsdeck plan ENV` and `opsdeck images`: what the deck runs and what is pending."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from opsdeck.commands import open_deck, print_json, reporter, run, table
from opsdeck.core.model import DeckState, EnvStatus, PlanResult
from opsdeck.core.observe.snapshot import age


def register(sub: Any) -> None:
    status = sub.add_parser("status", help="every environment: image, instances, pending plan, drift")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--refresh", action="store_true", help="plan environments whose saved plan is stale")
    status.set_defaults(handler=status_cmd)

    plan = sub.add_parser("plan", help="plan one environment (exit 0: no changes, 2: changes, 1: error)")
    plan.add_argument("env", help="environment name")
    plan.add_argument("--json", action="store_true", help="print JSON")
    plan.add_argument(
        "--cached",
        action="store_true",
        help="answer from the saved plan while the code and the state it was made from are unchanged "
        "(it cannot see changes made in the cloud outside Terraform; its age is printed)",
    )
    plan.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)  # the default since --cached
    plan.add_argument("-v", "--verbose", action="store_true", help="print progress")
    plan.set_defaults(handler=plan_cmd)

    refresh = sub.add_parser("refresh", help="plan and drift-check every environment (what the deck's f and timer do)")
    refresh.add_argument("envs", nargs="*", metavar="ENV", help="environments (default: all)")
    refresh.add_argument("--no-drift", action="store_true", help="plans only")
    refresh.add_argument("--fresh", action="store_true", help="plan again even where the saved plan is still fresh")
    refresh.add_argument("--json", action="store_true", help="print JSON (the status document)")
    refresh.add_argument("-v", "--verbose", action="store_true", help="print progress")
    refresh.set_defaults(handler=refresh_cmd)

    images = sub.add_parser("images", help="the deck's images and which environments run them")
    images.add_argument("--json", action="store_true", help="print JSON")
    images.set_defaults(handler=images_cmd)


def status_json(state: DeckState) -> dict[str, Any]:
    def env_json(e: EnvStatus) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": e.name,
            "sandbox": e.sandbox,
            "protected": e.protected,
            "image": {"id": e.image.id, "version": e.image.version, "revoked": e.image.revoked} if e.image else None,
            "instances": {
                "desired": e.instances.desired,
                "running": e.instances.running,
                "on_pinned_image": e.instances.on_pinned_image,
            },
            "instance_images": e.instance_images,
            "plan": (
                {"add": e.plan.add, "change": e.plan.change, "destroy": e.plan.destroy, "at": e.plan_at}
                if e.plan
                else None
            ),
            "drift": e.drift,
            "drift_at": e.drift_at,
        }
        if e.promote_from:
            data["promote_from"] = e.promote_from
            data["lag"] = (
                {
                    "source": e.lag.source,
                    "source_image": e.lag.source_image.id if e.lag.source_image else None,
                    "in_sync": e.lag.in_sync,
                    "behind": e.lag.behind,
                    "since": e.lag.since,
                }
                if e.lag
                else None
            )
        data["lock"] = e.lock  # None, or {"state": "running" | "interrupted", "operation", "id", "since", ...}
        if e.error:
            data["error"] = e.error
        return data

    return {
        "deck": state.deck,
        "cloud": state.cloud,
        "taken_at": state.taken_at,
        "environments": [env_json(e) for e in state.environments],
    }


def _lag_text(e: EnvStatus) -> str:
    if e.lag is None:
        return "-"
    if e.lag.in_sync:
        return f"= {e.lag.source}"
    behind = f"{e.lag.behind} behind" if e.lag.behind else "differs"
    return f"{behind} {e.lag.source} (for {age(e.lag.since)})" if e.lag.since else f"{behind} {e.lag.source}"


def status_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.observe.status import deck_status

    deck = open_deck(args)
    state = run(deck_status(deck, reporter(args, "status"), refresh_plan=args.refresh))
    if args.json:
        print_json(status_json(state))
        return 0
    rows = []
    for e in state.environments:
        flags = ",".join(f for f, on in (("sandbox", e.sandbox), ("protected", e.protected)) if on)
        image = f"{e.image.version or '?'} {e.image.id}" if e.image else "-"
        if e.image and e.image.revoked:
            image += " REVOKED"
        inst = f"{e.instances.on_pinned_image}/{e.instances.running}/{e.instances.desired}"
        plan = f"{e.plan} ({age(e.plan_at)} ago)" if e.plan else "unknown"
        drift = f"{e.drift} ({age(e.drift_at)} ago)" if e.drift_at else e.drift
        rows.append([e.name, flags or "-", image, inst, plan, drift, _lag_text(e), e.error or ""])
    read = time.strftime("%H:%M:%S", time.localtime(state.taken_at))
    print(f"{state.deck}   cloud: {state.cloud}   images and instances read at {read} ({age(state.taken_at)} ago)")
    print(table(["ENV", "FLAGS", "IMAGE", "ON-PIN/RUN/WANT", "PLAN", "DRIFT", "LAG", "ERROR"], rows))
    return 0


def refresh_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.observe.refresh import refresh

    deck = open_deck(args)
    result = run(
        refresh(deck, reporter(args, "refresh"), with_drift=not args.no_drift, reuse=not args.fresh, envs=args.envs)
    )
    if args.json:
        print_json(
            {
                **status_json(result.state),
                "seconds": round(result.seconds, 3),
                "errors": result.errors,
                "skipped": result.skipped,
            }
        )
    else:
        for env, error in result.errors.items():
            print(f"{env}: {error}", file=sys.stderr)
        for env, operation in result.skipped.items():
            print(f"{env}: skipped, {operation} is running there", file=sys.stderr)
        print(f"refreshed {len(result.plans)} plans and {len(result.drift)} drift checks in {result.seconds:.1f}s")
    return 1 if result.errors else 0


SYMBOL = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}


def plan_text(result: PlanResult) -> str:
    """The plan for a person: each resource, then each changed attribute's before → after."""
    from opsdeck.core.observe.plans import change_line

    if not result.summary.has_changes:
        return f"{result.environment}: no changes"
    lines = [
        f"{result.environment}: {result.summary.add} to add, {result.summary.change} to change, "
        f"{result.summary.destroy} to destroy"
    ]
    for r in result.resources:
        lines.append(f"  {SYMBOL.get(r.action, '?'):>3} {r.address}")
        if r.changes:
            lines += [f"        {change_line(c, r.action)}" for c in r.changes]
        elif r.attributes:
            lines.append(f"        {', '.join(r.attributes)}")
    return "\n".join(lines)


def plan_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.observe import planning

    deck = open_deck(args)
    deck.env(args.env)
    deck.check_endpoint()
    # A real plan (refresh included) unless --cached: only a plan that reads the cloud sees a change made
    # there outside Terraform. The state bucket check runs beside Terraform, not before it.
    started = time.time()
    result = run(
        planning.checked(deck, planning.plan(deck, args.env, reporter(args, "plan", args.env), reuse=args.cached))
    )
    cached = result.created_at < started
    if args.json:
        print_json({**result.to_json(detail=False), "planned_at": result.created_at, "cached": cached})
    else:
        print(plan_text(result))
        if args.cached and not cached:
            print("(no saved plan was still valid: planned just now)")
        elif cached:
            print(
                f"(saved plan from {age(result.created_at)} ago: code and state unchanged since, but changes made "
                "in the cloud outside Terraform are not in it; run without --cached to plan again)"
            )
    return 2 if result.summary.has_changes else 0


def images_cmd(args: argparse.Namespace) -> int:
    deck = open_deck(args)
    deck.check_cloud()
    from opsdeck.core.release.images import catalog

    data = run(asyncio.to_thread(catalog, deck))
    if args.json:
        print_json(data)
        return 0
    rows = []
    for i in data:
        notes = []
        if i["revoked"]:
            notes.append(f"REVOKED: {i['revoked_reason']}")
        if i["base_outdated"]:
            notes.append("base outdated")
        rows.append(
            [
                i["layer"],
                i["version"],
                i["id"],
                i["git_sha"],
                i["created"][:19],
                ",".join(i["environments"]) or "-",
                i["base"] or "-",
                "; ".join(notes),
            ]
        )
    print(table(["LAYER", "VERSION", "ID", "GIT", "CREATED", "PINNED IN", "BASE", "NOTES"], rows))
    return 0
