"""`opsdeck status`, `opsdeck plan ENV` and `opsdeck images`: what the deck runs and what is pending."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from opsdeck.commands import open_deck, print_json, reporter, run, table
from opsdeck.core.model import DeckState, EnvStatus, ImageRef, InstanceCounts, Lag, PlanResult
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


def _image_json(image: ImageRef | None) -> dict[str, Any] | None:
    return {"id": image.id, "version": image.version, "revoked": image.revoked} if image else None


def _counts_json(counts: InstanceCounts) -> dict[str, int]:
    return {"desired": counts.desired, "running": counts.running, "on_pinned_image": counts.on_pinned_image}


def _lag_json(lag: Lag | None) -> dict[str, Any] | None:
    if lag is None:
        return None
    return {
        "source": lag.source,
        "source_image": lag.source_image.id if lag.source_image else None,
        "in_sync": lag.in_sync,
        "behind": lag.behind,
        "since": lag.since,
        **(
            {"soaked_minutes": round(lag.soaked or 0.0, 1), "soak_minutes": lag.soak_needed}
            if lag.soak_needed and not lag.in_sync
            else {}
        ),
    }


def status_json(state: DeckState) -> dict[str, Any]:
    def env_json(e: EnvStatus) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": e.name,
            "account": e.account,
            "region": e.region,
            "sandbox": e.sandbox,
            "protected": e.protected,
            "services": [
                {"name": s.name, "image": _image_json(s.image), "instances": _counts_json(s.instances)}
                | {"rollout": s.rollout, "refresh": s.refresh}  # how it takes a new image; its newest refresh
                | ({"lag": _lag_json(s.lag)} if e.promote_from else {})
                | ({"traffic": s.traffic} if s.traffic is not None else {})
                for s in e.services
            ],
            "image": _image_json(e.image),  # the image every service runs, when they run one (else null)
            "instances": _counts_json(e.instances),  # the sum over its services
            "instances_at": state.taken_at,
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
            data["lag"] = _lag_json(e.lag)
        data["lock"] = e.lock  # None, or {"state": "running" | "interrupted", "operation", "who", "host", ...}
        data["request"] = e.request  # None, or the change waiting for approvals: {"id", "approvals", "needed"}
        data["copies"] = list(e.copies)  # regions of its recovered copies (`opsdeck recovered` has the detail)
        data["last"] = e.last  # its last change from this clone's audit log: {"action", "result", "at", ...}
        data["freeze"] = e.freeze  # None, or the freeze in force: {"by", "reason", "until"} (epoch seconds)
        if e.freeze_problem:
            data["freeze_problem"] = e.freeze_problem  # a freeze record in the ledger that does not count
        if e.lifetime is not None:  # a sandbox with ttl_hours: when it ends (None: no build recorded, or destroyed)
            data["expires_at"] = e.lifetime.get("expires_at")
            data["lifetime"] = e.lifetime
        if e.error:
            data["error"] = e.error
        return data

    return {
        "deck": state.deck,
        "cloud": state.cloud,
        "taken_at": state.taken_at,
        "ledger": state.ledger,
        "environments": [env_json(e) for e in state.environments],
    }


def ledger_text(ledger: dict[str, Any] | None) -> str:
    from opsdeck.core.ledger.remote import Ledger

    if not ledger:
        return "unknown"
    if ledger.get("error") and not ledger.get("remote"):
        return f"unknown ({ledger['error']})"
    return Ledger(**ledger).describe()


def _lag_text(e: EnvStatus) -> str:
    if e.lag is None:
        return "-"
    if e.lag.in_sync:
        return f"= {e.lag.source}"
    behind = f"{e.lag.behind} behind" if e.lag.behind else "differs"
    return f"{behind} {e.lag.source} (for {age(e.lag.since)})" if e.lag.since else f"{behind} {e.lag.source}"


def governance_text(e: EnvStatus, now: float | None = None) -> str:
    """A row's freeze and sandbox lifetime, in words."""
    from opsdeck.core.estate.lifetimes import time_left

    parts = []
    if e.freeze:
        until = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(e.freeze["until"])))
        parts.append(f"FROZEN by {e.freeze['by']} until {until}: {e.freeze['reason']}")
    life = e.lifetime or {}
    if life.get("expires_at"):
        left = time_left(float(life["expires_at"]), now)
        parts.append("lifetime ended (sandbox expire destroys it)" if left == "ended" else f"lifetime {left} left")
    elif life.get("destroyed_at"):
        parts.append("expired (destroyed)")
    elif life:
        parts.append(f"lifetime {life.get('ttl_hours', 0):g}h from its next build")
    return " · ".join(parts)


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
        where = f"{e.account or '?'} {e.region}"
        plan = f"{e.plan} ({age(e.plan_at)} ago)" if e.plan else "unknown"
        drift = f"{e.drift} ({age(e.drift_at)} ago)" if e.drift_at else e.drift
        services = e.services or ()
        first = True
        for s in services or [None]:
            if s is None:
                image, inst, name = "-", "-", "-"
            else:
                image = f"{s.image.version or '?'} {s.image.id}" if s.image else "-"
                if s.image and s.image.revoked:
                    image += " REVOKED"
                n = s.instances
                inst, name = f"{n.on_pinned_image}/{n.running}/{n.desired}", s.name
                if s.refresh and s.refresh.get("status") not in (None, "Successful"):
                    inst += f" refresh {s.refresh['status']} {s.refresh.get('percentage', 0)}%"
            head = [e.name, where, flags or "-"] if first else ["", "", ""]
            state_text = e.error or ""
            if e.request:
                state_text = f"awaiting {e.request['approvals']}/{e.request['needed']} approvals ({e.request['id']})"
            if e.freeze or e.lifetime:
                state_text = " · ".join(t for t in (governance_text(e), state_text) if t)
            if e.lock:
                who = e.lock.get("who") or e.lock.get("user", "")
                by = f" by {who}@{e.lock.get('host', '')}" if who else ""
                problem = f": {e.lock['problem']}" if e.lock.get("problem") else ""
                state_text = f"{e.lock.get('state')} {e.lock.get('operation')}{by}{problem}"
            tail = [plan, drift, _lag_text(e), state_text] if first else ["", "", "", ""]
            rows.append([*head, name, image, inst, *tail])
            first = False
    stopped = [e for e in state.environments if e.last and e.last.get("result") not in ("ok", "requested")]
    read = time.strftime("%H:%M:%S", time.localtime(state.taken_at))
    print(f"{state.deck}   cloud: {state.cloud}   images and instances read at {read} ({age(state.taken_at)} ago)")
    print(f"ledger: {ledger_text(state.ledger)}")
    headers = ["ENV", "ACCOUNT/REGION", "FLAGS", "SERVICE", "IMAGE", "ON-PIN/RUN/WANT", "PLAN", "DRIFT", "LAG", "STATE"]
    print(table(headers, rows))
    for e in state.environments:
        if e.freeze_problem:
            print(f"{e.name}: warning: {e.freeze_problem}")
    for e in stopped:
        last = e.last or {}
        why = last.get("stopped") or last.get("error") or ""
        back = "; refreshed back to the previous pins" if last.get("refreshed_back") else ""
        print(f"{e.name}: last {last.get('action')} {last.get('result')} at {last.get('at')}: {why}{back}")
    return 0


def refresh_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import RefreshArgs

    deck = open_deck(args)
    # With the engine, each environment's Terraform runs on a worker of its account.
    what = RefreshArgs(with_drift=not args.no_drift, reuse=not args.fresh, envs=args.envs)
    ran = run(runner.run(deck, registry.REFRESH, what, reporter(args, "refresh")))
    result = ran.result
    if args.json:
        print_json(
            {
                **status_json(result.state),
                "seconds": round(result.seconds, 3),
                "errors": result.errors,
                "skipped": result.skipped,
            }
            | ({"workers": result.workers} if ran.sent else {})
        )
    else:
        for env, error in result.errors.items():
            print(f"{env}: {error}", file=sys.stderr)
        for env, operation in result.skipped.items():
            print(f"{env}: skipped, {operation} is running there", file=sys.stderr)
        print(f"refreshed {len(result.plans)} plans and {len(result.drift)} drift checks in {result.seconds:.1f}s")
    return 1 if result.errors else 0


def plan_text(result: PlanResult) -> str:
    """The plan for a person: each resource, then each changed attribute's before → after."""
    from opsdeck.core.plans.shown import plan_lines

    return "\n".join(plan_lines(result))


def plan_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import PlanArgs

    deck = open_deck(args)
    deck.env(args.env)
    deck.check_endpoint()
    # A real plan (refresh included) unless --cached: only a plan that reads the cloud sees a change made
    # there outside Terraform. The state bucket check runs beside Terraform, not before it.
    started = time.time()
    ran = run(runner.run(deck, registry.PLAN, PlanArgs(args.env, args.cached), reporter(args, "plan", args.env)))
    result, worker = ran.result, ran.worker
    cached = result.created_at < started
    if args.json:
        print_json(
            {**result.to_json(detail=False), "planned_at": result.created_at, "cached": cached}
            | ({"worker": worker} if worker else {})
        )
    else:
        print(plan_text(result))
        if worker:
            print(f"(planned on {worker})")
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
    from opsdeck.core.release.images import catalog_rows

    data = run(asyncio.to_thread(catalog_rows, deck))
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
                i["service"] or "(base)",
                i["version"],
                i["id"],
                i["git_sha"] or "-",
                i["created"][:19],
                i["built_by"] or "-",
                ",".join(i["environments"]) or "-",
                ",".join(i["regions"]),
                ",".join(i.get("accounts", [])) or "-",
                "; ".join(notes),
            ]
        )
    headers = ["SERVICE", "VERSION", "ID", "GIT", "CREATED", "BUILT BY", "PINNED IN", "REGIONS", "ACCOUNTS", "NOTES"]
    print(table(headers, rows))
    return 0
