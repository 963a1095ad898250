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

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.model import ImageRef
from opsdeck.core.observe import planning
from opsdeck.core.observe.plans import parse_plan
from opsdeck.core.release import bluegreen, rollout
from opsdeck.core.release.gates import keep_shown
from opsdeck.core.release.promote import Moved, ReleaseProgress, ReleaseResult, blue_green_release
from opsdeck.core.safety import audit
from opsdeck.core.safety.audit import TRAILER
from opsdeck.core.safety.confirm import Confirm, NotConfirmedError, Preview, ServiceChange, confirmed
from opsdeck.core.safety.operation import audited
from opsdeck.core.team import plan_match
from opsdeck.core.team.identity import operator
from opsdeck.core.team.remote import publish, sync_before_change
from opsdeck.core.team.requests import Request, load, staleness
from opsdeck.errors import OpsdeckError, RefusedError, reworded


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
    env = request.environment
    fields = {
        "request": request.id,
        "approved_by": request.valid_approvers,
        "services": [s["name"] for s in request.services],
        "reason": request.reason,
        "plan_sha256": request.plan_sha256,
    }
    detail = {"request": request.id, "pin": ",".join(request.pins)}
    async with audited(
        deck, request.action, env, rep, fields=fields, lock_detail=detail, approved=True, sync=False
    ) as run:
        stale = await asyncio.to_thread(staleness, deck, request)  # again, under the lock
        if stale:
            raise RefusedError(f"request {request.id} is stale ({stale}): plan and request it again")
        cloud = deck.tools.env(env).cloud
        body = await asyncio.to_thread(cloud.read_object, *request.plan_object)
        if body is None:
            raise RefusedError(
                f"the saved plan of request {request.id} is gone from s3://{'/'.join(request.plan_object)}"
            )
        digest = hashlib.sha256(body).hexdigest()
        if digest != request.plan_sha256:
            raise RefusedError(
                f"the saved plan of request {request.id} is not the one approved (SHA-256 {digest[:12]}, approved "
                f"{request.plan_sha256[:12]}): nothing applied; plan and request it again"
            )
        planfile = planning.scratch_planfile(deck, env, f"request-{request.id}")
        planfile.write_bytes(body)
        try:
            await ensure_init(deck, env, rep)
            with rep.phase("show"):
                shown = await deck.tools.env(env).terraform.show_json(planfile)
            plan_match.check(deck, request, shown)
        except BaseException:
            planfile.unlink(missing_ok=True)
            raise
        await asyncio.to_thread(keep_shown, deck, planfile, shown)  # what the policy gate reads
        originals = {rel: (deck.root / rel).read_text(encoding="utf-8") for rel in request.pins}
        applied = False
        step = "pin"
        try:
            for rel, text in request.pins.items():
                (deck.root / rel).write_text(text, encoding="utf-8")
            plan = parse_plan(env, shown, planfile=str(planfile))
            changes = tuple(
                ServiceChange(
                    s["name"],
                    ImageRef(s.get("from_image", ""), s.get("from_version", "")),
                    ImageRef(s.get("to_image", ""), s.get("version", "")),
                )
                for s in request.services
            )
            step = "confirm"
            preview = Preview(request.action, env, "confirm", changes, plan, request.reason, f"request {request.id}")
            if not await confirm(preview):
                raise NotConfirmedError(f"request {request.id} was not confirmed; nothing changed")
            step = "apply"
            unverified: OpsdeckError | None = None
            if deck.env(env).blue_green:
                # The approved plan stages the idle colors (or, for a switch back to a warm standby, is
                # the switch); the gates and the switch follow as in any blue/green release.
                names = [s["name"] for s in request.services]
                before = bluegreen.pins_in_texts(deck, env, originals, names)
                mine = bluegreen.color_pins(deck, env, names)
                instant = any(mine[s].live != before[s].live for s in names)
                marks = ReleaseProgress("apply")
                try:
                    await blue_green_release(
                        deck,
                        env,
                        plan,
                        rep,
                        before=before,
                        staged={} if instant else mine,
                        final=mine if instant else {},
                        instant=instant,
                        smoke=request.action != "rollback",
                        credentials=None,
                        originals=originals,
                        note=run.note,
                        marks=marks,
                    )
                finally:
                    step, applied = marks.step, marks.applied
            else:
                await rollout.apply_plan(deck, env, plan, rep)
                applied = True
                step = "verify instances"
                try:
                    await rollout.wait_for_images(
                        deck, env, await asyncio.to_thread(rollout.expected_pins, deck, env), rep
                    )
                except OpsdeckError as exc:
                    unverified = exc
            step = "commit"
            with rep.phase("commit"):
                me = operator(deck)
                executed = f"requests/{request.id}/executed.json"
                marker = {"by": me.git or me.user, "at": time.time(), "approved_by": request.valid_approvers}
                (deck.root / executed).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
                text = request.message or f"{request.action} {env}"
                text += f"\n\nrequest: {request.id}\napproved by: {', '.join(request.valid_approvers)}"
                if unverified is not None:
                    text += f"\n\nunverified: {unverified}"
                caller = run.record.who.get("aws", "") if run.record.who else ""
                text += f"\n\n{me.trailers(caller)}\n{TRAILER}: {run.hash}\n"
                sha = await asyncio.to_thread(deck.tools.git.commit, [*request.pins, executed], text)
            pushed, sha = await asyncio.to_thread(publish, deck, rep)
        except BaseException as exc:
            if not applied:
                for rel, original in originals.items():
                    (deck.root / rel).write_text(original, encoding="utf-8")
            if isinstance(exc, OpsdeckError) and not isinstance(exc, RefusedError):
                kept = "applied, pins left uncommitted" if applied else "pins restored"
                raise reworded(exc, f"request {request.id} failed at {step} ({kept}): {exc}") from exc
            raise
        finally:
            planfile.unlink(missing_ok=True)
        planning.forget_plan(deck, env)
        run.note(commit=sha, pushed=pushed)
        if unverified is not None:
            run.end_as("failed", f"verify instances: {unverified}")
    if unverified is not None:
        raise OpsdeckError(f"request {request.id} applied and committed ({sha[:12]}), but {unverified}")
    moved = tuple(
        Moved(
            s["name"], s.get("from_image", ""), s.get("to_image", ""), s.get("version", ""), s.get("from_version", "")
        )
        for s in request.services
    )
    return ReleaseResult(request.action, env, moved, sha, time.monotonic() - started, tuple(rep.phases))


async def ensure_init(deck: Deck, env: str, rep: Reporter) -> None:
    await planning.ensure_init(deck, env, rep)
