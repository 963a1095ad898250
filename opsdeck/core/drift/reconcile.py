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
from opsdeck.core.estate import lifetimes
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import pin_files, read_pins
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.remote import publish
from opsdeck.core.model import ImageRef, PlanResult
from opsdeck.core.plans import planning
from opsdeck.core.plans.shown import plan_lines
from opsdeck.core.release import fleet, gates
from opsdeck.core.release.transaction import Release
from opsdeck.core.safety.breakglass import BreakGlass
from opsdeck.core.safety.confirm import Confirm, NotConfirmedError, Preview, ServiceChange, confirmed
from opsdeck.core.safety.operation import audited
from opsdeck.core.team import requests
from opsdeck.core.team.requests import Request
from opsdeck.core.types.cloud import Credentials
from opsdeck.errors import ToolError


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


async def _current_plan(
    deck: Deck, env: str, rep: Reporter, credentials: Credentials | None
) -> tuple[PlanResult, bool]:
    fresh = await planning.fresh_plan(deck, env)
    if fresh is not None:
        return fresh, False
    if planning.stored_plan(deck, env) is not None:
        rep.log(f"the saved plan of {env} is stale: planning again", "notice")
    return await planning.plan(deck, env, rep, reuse=False, credentials=credentials), True


async def apply_env(
    deck: Deck, env: str, rep: Reporter, *, confirm: Confirm = confirmed, glass: BreakGlass | None = None
) -> ApplyResult | Request:
    """Apply ``env``'s pending plan after it was shown and confirmed; audited, locked. An environment
    that needs approvals gets a request for the plan instead (break-glass bypasses, audited)."""
    started = time.monotonic()
    deck.env(env)
    credentials = glass.credentials if glass is not None and glass.env == env else None
    fields = {"reason": glass.reason if glass else ""}
    to_request = requests.needs_approval(deck, env, credentials is not None)
    if deck.env(env).approvals and not to_request:
        fields["approvals_bypassed"] = f"break-glass: {glass.reason if glass else ''}"
    async with audited(deck, "apply", env, rep, glass=glass, fields=fields, approved=to_request) as run:
        await planning.ensure_init(deck, env, rep, credentials)
        pins = await asyncio.to_thread(read_pins, deck, env)
        release = Release(deck, env, rep, run, action="apply", files=[], credentials=credentials)
        replanned = False
        try:
            plan, replanned = await _current_plan(deck, env, rep, credentials)
            for attempt in range(2):
                if not plan.summary.has_changes:
                    run.note(note="nothing to apply")
                    return ApplyResult(env, False, 0, 0, 0, replanned, time.monotonic() - started)
                verdict = await gates.policy(deck, env, plan, rep, break_glass=credentials is not None)
                if verdict is not None:
                    run.note(policy=verdict.to_json())
                if to_request:
                    files = pin_files(deck, env)
                    request = await requests.create(
                        deck,
                        env,
                        "apply",
                        plan,
                        rep,
                        services=[],
                        pins={},
                        base={rel: (deck.root / rel).read_text(encoding="utf-8") for rel in files},
                        reason=fields["reason"],
                        message=f"apply {env}: put code back over drift",
                        diff=plan_lines(plan),
                        credentials=credentials,
                    )
                    run.note(request=request.id, needed=request.needed)
                    run.end_as("requested")
                    return request
                unchanged = tuple(ServiceChange(s, ImageRef(i), ImageRef(i)) for s, i in pins.items())
                chosen = release.choose(plan, list(pins))  # how each service's instances take the plan
                note = "; ".join(n for n in (c.note() for c in chosen.values()) if n)
                if not await confirm(Preview("apply", env, deck.env(env).confirmation, unchanged, plan, note=note)):
                    raise NotConfirmedError(f"apply of {env} was not confirmed; nothing changed")
                try:
                    expected = await asyncio.to_thread(fleet.expected_pins, deck, env, list(pins))
                    await release.roll(plan, expected, back=False)  # the code is what runs: nothing to go back to
                    break
                except ToolError as exc:
                    if "stale" not in str(exc).lower() or attempt:
                        raise
                    rep.log(f"terraform found the saved plan of {env} stale: planning again", "notice")
                    plan = await planning.plan(deck, env, rep, reuse=False, credentials=credentials)
                    release.strategies = {}  # chosen again from the new plan
                    replanned = True
            if release.unverified is not None:
                raise release.unverified
        finally:
            planning.forget_plan(deck, env)
        drift_store.forget(deck, env)  # the last drift report described the cloud before this apply
        if lifetimes.ttl_of(deck, env) is not None:  # a first build's lifetime record goes to the team
            await asyncio.to_thread(publish, deck, rep)
        s = plan.summary
        run.note(add=s.add, change=s.change, destroy=s.destroy)
    return ApplyResult(env, True, s.add, s.change, s.destroy, replanned, time.monotonic() - started)
