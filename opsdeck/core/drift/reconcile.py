"""Reconcile: apply an environment's pending saved plan, putting code back over managed drift.

The plan shown is the plan applied. A saved plan that went stale (the environment's files, pins or
state changed since) is planned again and shown again, never applied blind; Terraform itself also
refuses a saved plan whose state moved on, and that too leads to a new plan and a new confirmation.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from opsdeck.core.drift import store as drift_store
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.model import ImageRef, PlanResult
from opsdeck.core.observe import planning
from opsdeck.core.release import rollout
from opsdeck.core.release.promote import Confirm, NotConfirmedError, Preview, confirmed
from opsdeck.core.safety import audit
from opsdeck.core.safety.breakglass import BreakGlass, guard
from opsdeck.core.safety.locks import env_lock
from opsdeck.errors import RefusedError, ToolError


@dataclass(frozen=True)
class ApplyResult:
    environment: str
    applied: bool
    add: int
    change: int
    destroy: int
    replanned: bool
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "applied": self.applied,
            "add": self.add,
            "change": self.change,
            "destroy": self.destroy,
            "replanned": self.replanned,
            "seconds": round(self.seconds, 3),
        }


async def _current_plan(deck: Deck, env: str, rep: Reporter) -> tuple[PlanResult, bool]:
    fresh = await planning.fresh_plan(deck, env)
    if fresh is not None:
        return fresh, False
    if planning.stored_plan(deck, env) is not None:
        rep.log(f"the saved plan of {env} is stale: planning again", "notice")
    return await planning.plan(deck, env, rep, reuse=False), True


async def apply_env(
    deck: Deck, env: str, rep: Reporter, *, confirm: Confirm = confirmed, glass: BreakGlass | None = None
) -> ApplyResult:
    """Apply ``env``'s pending plan after it was shown and confirmed; audited, locked."""
    started = time.monotonic()
    deck.env(env)
    try:
        guard(deck, env, glass, "apply")
    except RefusedError as exc:
        audit.append(deck, action="apply", environment=env, result="refused", error=str(exc), who=audit.who(deck, env))
        raise
    await planning.ensure_init(deck, env, rep)
    pin = await asyncio.to_thread(deck.git.pin, deck.pin_rel(env))
    with env_lock(deck, env, "apply"):
        run = audit.AuditedRun(
            deck, "apply", env, {"break_glass": bool(glass), "reason": glass.reason if glass else ""}
        )
        run.open()
        replanned = False
        try:
            plan, replanned = await _current_plan(deck, env, rep)
            for attempt in range(2):
                if not plan.summary.has_changes:
                    run.close("ok", phases=rep.phase_list(), note="nothing to apply")
                    return ApplyResult(env, False, 0, 0, 0, replanned, time.monotonic() - started)
                here = ImageRef(pin)
                if not await confirm(Preview("apply", env, deck.env(env).confirmation, here, here, plan)):
                    raise NotConfirmedError(f"apply of {env} was not confirmed; nothing changed")
                try:
                    await rollout.apply_plan(deck, env, plan, rep)
                    break
                except ToolError as exc:
                    if "stale" not in str(exc).lower() or attempt:
                        raise
                    rep.log(f"terraform found the saved plan of {env} stale: planning again", "notice")
                    plan, replanned = await planning.plan(deck, env, rep, reuse=False), True
            await rollout.wait_for_image(deck, env, pin, rep)
        except BaseException as exc:
            planning.forget_plan(deck, env)
            run.close(audit.outcome(exc), error=str(exc), phases=rep.phase_list())
            raise
        planning.forget_plan(deck, env)
        drift_store.forget(deck, env)  # the last drift report described the cloud before this apply
        run.close(
            "ok",
            phases=rep.phase_list(),
            add=plan.summary.add,
            change=plan.summary.change,
            destroy=plan.summary.destroy,
        )
    s = plan.summary
    return ApplyResult(env, True, s.add, s.change, s.destroy, replanned, time.monotonic() - started)
