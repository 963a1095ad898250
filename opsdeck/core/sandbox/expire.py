"""`sandbox expire` and `sandbox extend`: sandboxes whose lifetime ended are destroyed, not rebuilt.

Expiry is nuke-and-rebuild's teardown alone (core/sandbox/nuke.py: inventory, delete unmanaged,
terraform destroy, verify empty) under the same rules: a sandbox only, never in a protected account,
audited and locked, and refused by a freeze. Its lifetime record then says it was destroyed, so it is
not listed again until an apply builds it anew. Without ``yes`` it is a dry run: what each would
destroy. An extension is a ledger record too (core/estate/lifetimes.py), pushed and audited.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

from opsdeck.core.drift import store as drift_store
from opsdeck.core.estate import lifetimes
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.remote import latest, publish, sync_before_change
from opsdeck.core.safety import audit
from opsdeck.core.safety.freeze import iso, read_freeze
from opsdeck.core.safety.operation import audited
from opsdeck.core.sandbox import nuke
from opsdeck.errors import ConfigError, LockedError, OpsdeckError, RefusedError


@dataclass(frozen=True)
class Expiry:
    """One sandbox past its lifetime: what expire would do (dry run) or did."""

    environment: str
    ended_at: float
    result: str  # "would destroy", "destroyed", "refused" or "failed"
    detail: str = ""
    plan: nuke.NukePlan | None = None
    destroyed: int = 0
    unmanaged_deleted: int = 0
    deleted: tuple[dict[str, str], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "environment": self.environment,
            "ended_at": self.ended_at,
            "result": self.result,
            "detail": self.detail,
        }
        if self.plan is not None:
            data["plan"] = self.plan.to_json()
        if self.result == "destroyed":
            data |= {"destroyed": self.destroyed, "unmanaged_deleted": self.unmanaged_deleted}
        return data


async def expire(deck: Deck, rep: Reporter, *, yes: bool = False, now: float | None = None) -> list[Expiry]:
    """Every sandbox whose lifetime ended: listed with what it would destroy, or (``yes``) destroyed one
    after another (one that is refused or fails does not stop the others)."""
    await asyncio.to_thread(latest, deck)  # the lifetimes and freezes as the team's remote has them
    due = await asyncio.to_thread(lifetimes.ended, deck, now)
    found = []
    for env, ended_at in due:
        child = rep.child(env=env)
        if yes:
            found.append(await _expire_one(deck, env, ended_at, child))
            continue
        try:
            plan = await nuke.inventory(deck, env, child)
        except (RefusedError, LockedError) as exc:
            found.append(Expiry(env, ended_at, "refused", str(exc)))
            continue
        frozen = (await asyncio.to_thread(read_freeze, deck, env)).freeze
        if frozen is not None:
            found.append(Expiry(env, ended_at, "refused", f"{frozen.describe()}: expire will skip it", plan))
        else:
            what = f"destroy {len(plan.managed)} managed and delete {len(plan.unmanaged)} unmanaged resources"
            found.append(
                Expiry(env, ended_at, "would destroy", f"{what} (account {plan.account}, {plan.region})", plan)
            )
    return found


async def _expire_one(deck: Deck, env: str, ended_at: float, rep: Reporter) -> Expiry:
    try:
        async with audited(deck, "sandbox-expire", env, rep, fields={"ended_at": iso(ended_at)}) as run:
            await asyncio.to_thread(nuke.check_allowed, deck, env)
            down = await nuke.teardown(deck, env, rep, None)
            drift_store.forget(deck, env)
            await asyncio.to_thread(lifetimes.note_destroyed, deck, env)
            pushed, sha = await asyncio.to_thread(publish, deck, rep)
            deleted = tuple(r.to_json() for r in down.gone)
            run.note(
                destroyed=down.destroyed,
                unmanaged_deleted=len(down.gone),
                deleted=list(deleted),
                commit=sha,
                pushed=pushed,
            )
    except (RefusedError, LockedError) as exc:
        return Expiry(env, ended_at, "refused", str(exc))
    except OpsdeckError as exc:
        return Expiry(env, ended_at, "failed", str(exc))
    summary = f"destroyed {down.destroyed} managed and {len(down.gone)} unmanaged resources"
    return Expiry(env, ended_at, "destroyed", summary, down.plan, down.destroyed, len(down.gone), deleted)


async def extend(deck: Deck, env: str, hours: float, rep: Reporter, *, reason: str = "") -> lifetimes.Lifetime:
    """Add ``hours`` to the running lifetime of the sandbox ``env``: committed, pushed, audited."""
    deck.env(env)
    if not math.isfinite(hours) or hours <= 0:
        raise ConfigError(f"--hours {hours:g}: expected a number of hours above 0")
    who = await asyncio.to_thread(audit.who, deck, env)
    try:
        await asyncio.to_thread(sync_before_change, deck, rep)
        record = await asyncio.to_thread(lifetimes.extend, deck, env, hours, reason)
    except OpsdeckError as exc:
        audit.append(
            deck, action="sandbox-extend", environment=env, result="refused", error=str(exc), hours=hours, who=who
        )
        raise
    pushed, sha = await asyncio.to_thread(publish, deck, rep)
    ttl = lifetimes.ttl_of(deck, env) or 0.0
    audit.append(
        deck,
        action="sandbox-extend",
        environment=env,
        result="ok",
        hours=hours,
        reason=reason,
        expires_at=iso(record.expires_at(ttl)),
        commit=sha,
        pushed=pushed,
        who=who,
    )
    return record
