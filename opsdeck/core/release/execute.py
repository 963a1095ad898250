"""Execute an approved request: exactly the saved plan that was approved, nothing else.

Refused with one line, nothing applied, audited: a request with too few valid approvals, one that is
rejected or already executed, one whose pins or state moved on since it was planned (stale), one
whose record was edited since it was filed or approved, a saved plan whose SHA-256 is not the one the
approvers signed, and a record that does not say what that plan does (its pins, services and diff).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.identity import operator
from opsdeck.core.ledger.remote import sync_before_change
from opsdeck.core.model import ImageRef, PlanResult
from opsdeck.core.plans import planning
from opsdeck.core.plans.planning import keep_shown
from opsdeck.core.plans.shown import parse_plan
from opsdeck.core.release import fleet
from opsdeck.core.release.bluegreen_rollout import BlueGreen
from opsdeck.core.release.results import Moved, ReleaseResult
from opsdeck.core.release.transaction import Release
from opsdeck.core.safety import audit
from opsdeck.core.safety.confirm import Confirm, Preview, ServiceChange, confirmed
from opsdeck.core.safety.operation import audited
from opsdeck.core.team import plan_match
from opsdeck.core.team.requests import Request, load, staleness
from opsdeck.errors import OpsdeckError, RefusedError


def check_runnable(request: Request, needed_now: int = 0) -> None:
    """Refused unless the request may run: open, fresh, and approved by as many signers as it needs
    (or as its environment needs now, when that is more)."""
    if request.status == "executed":
        raise RefusedError(f"request {request.id} was executed already")
    if request.status == "rejected":
        by = (request.rejected or {}).get("by", "?")
        raise RefusedError(f"request {request.id} was rejected by {by}: {(request.rejected or {}).get('reason', '')}")
    if request.status == "stale":
        raise RefusedError(f"request {request.id} is stale ({request.stale}): plan and request it again")
    valid = request.valid_approvers
    needed = max(request.needed, needed_now)
    if len(valid) < needed:
        invalid = [f"{a.by} ({a.problem})" for a in request.approvals if not a.valid]
        have = f"{len(valid)} of {needed} approvals" + (f" ({', '.join(valid)})" if valid else "")
        extra = f"; not counted: {', '.join(invalid)}" if invalid else ""
        raise RefusedError(f"request {request.id} has {have}{extra}: it cannot run yet")


async def execute(deck: Deck, request_id: str, rep: Reporter, *, confirm: Confirm = confirmed) -> ReleaseResult:
    """Apply an approved request's saved plan and commit its pins (see the module's docstring)."""
    started = time.monotonic()
    request = await _runnable(deck, request_id, rep)
    env = request.environment
    fields = {
        "request": request.id,
        "approved_by": request.valid_approvers,
        "services": [s["name"] for s in request.services],
        "from": {s["name"]: s.get("from_image", "") for s in request.services},
        "to": {s["name"]: s.get("to_image", "") for s in request.services},
        "reason": request.reason,
        "plan_sha256": request.plan_sha256,
    }
    detail = {"request": request.id, "pin": ",".join(request.pins)}
    async with (
        audited(deck, request.action, env, rep, fields=fields, lock_detail=detail, approved=True, sync=False) as run,
        Release(
            deck, env, rep, run, action=request.action, files=list(request.pins), label=f"request {request.id}"
        ) as release,
    ):
        plan = await _approved_plan(deck, request, rep)
        try:
            release.write_texts(request.pins)
            changes = tuple(
                ServiceChange(
                    s["name"],
                    ImageRef(s.get("from_image", ""), s.get("from_version", "")),
                    ImageRef(s.get("to_image", ""), s.get("version", "")),
                )
                for s in request.services
            )
            preview = Preview(request.action, env, "confirm", changes, plan, request.reason, f"request {request.id}")
            await release.confirm(preview, confirm)
            text = request.message or f"{request.action} {env}"
            if deck.env(env).blue_green:  # the approved plan stages the idle colors, or is a switch back
                names = [s["name"] for s in request.services]
                colors = BlueGreen.from_request(release, names, smoke=request.action != "rollback")
                await colors.roll(plan)
            else:
                await release.roll(plan, await asyncio.to_thread(fleet.expected_pins, deck, env))
            executed = await asyncio.to_thread(mark_executed, deck, request)
            text += f"\n\nrequest: {request.id}\napproved by: {', '.join(request.valid_approvers)}"
            sha = await release.commit(text, extra=[executed])
            _, sha = await release.publish()
            release.finish(sha)
        finally:
            Path(plan.planfile).unlink(missing_ok=True)
    if release.unverified is not None:
        raise OpsdeckError(f"request {request.id} applied and committed ({sha[:12]}), but {release.unverified}")
    moved = tuple(
        Moved(
            s["name"], s.get("from_image", ""), s.get("to_image", ""), s.get("version", ""), s.get("from_version", "")
        )
        for s in request.services
    )
    return ReleaseResult(request.action, env, moved, sha, time.monotonic() - started, tuple(rep.phases))


async def _runnable(deck: Deck, request_id: str, rep: Reporter) -> Request:
    """The request, loaded from the team's ledger and checked runnable; a refusal is audited."""
    request: Request | None = None
    try:
        await asyncio.to_thread(sync_before_change, deck, rep)
        request = await asyncio.to_thread(load, deck, request_id)
        check_runnable(request, deck.env(request.environment).approvals)
    except RefusedError as exc:
        who = await asyncio.to_thread(audit.who, deck, request.environment if request else None)
        audit.append(
            deck,
            action="execute",
            environment=request.environment if request else None,
            result="refused",
            request=request_id,
            error=str(exc),
            who=who,
        )
        raise
    return request


async def _approved_plan(deck: Deck, request: Request, rep: Reporter) -> PlanResult:
    """The saved plan the approvers signed, checked under the lock: the request still fresh, the plan's
    SHA-256 the approved one, and the request's record what the plan does (core/team/plan_match.py)."""
    env = request.environment
    stale = await asyncio.to_thread(staleness, deck, request)  # again, under the lock
    if stale:
        raise RefusedError(f"request {request.id} is stale ({stale}): plan and request it again")
    body = await asyncio.to_thread(deck.tools.env(env).cloud.read_object, *request.plan_object)
    if body is None:
        raise RefusedError(f"the saved plan of request {request.id} is gone from s3://{'/'.join(request.plan_object)}")
    digest = hashlib.sha256(body).hexdigest()
    if digest != request.plan_sha256:
        raise RefusedError(
            f"the saved plan of request {request.id} is not the one approved (SHA-256 {digest[:12]}, approved "
            f"{request.plan_sha256[:12]}): nothing applied; plan and request it again"
        )
    planfile = planning.scratch_planfile(deck, env, f"request-{request.id}")
    planfile.write_bytes(body)
    try:
        await planning.ensure_init(deck, env, rep)
        with rep.phase("show"):
            shown = await deck.tools.env(env).terraform.show_json(planfile)
        plan_match.check(deck, request, shown)
        await asyncio.to_thread(keep_shown, deck, planfile, shown)  # what the policy gate reads
    except BaseException:
        planfile.unlink(missing_ok=True)
        raise
    return parse_plan(env, shown, planfile=str(planfile))


def mark_executed(deck: Deck, request: Request, settled: str = "") -> str:
    """requests/ID/executed.json: who ran it, when, with whose approvals (committed with the pins). One
    the killed run wrote already is kept. ``settled``: the lock id of an interrupted execute whose pins
    `opsdeck unlock` committed."""
    rel = f"requests/{request.id}/executed.json"
    if (deck.root / rel).is_file():
        return rel
    me = operator(deck)
    marker: dict[str, object] = {"by": me.git or me.user, "at": time.time(), "approved_by": request.valid_approvers}
    if settled:
        marker["settled_by_unlock"] = settled
    (deck.root / rel).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return rel
