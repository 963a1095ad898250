"""`opsdeck standby expire`: scale the warm standbys whose window has ended to zero.

After a blue/green switch the color that was live stays in service, out of traffic, for the
environment's ``standby_minutes``: a rollback inside that window is the switch alone. Once the window
ends the standby only costs money, so the open deck (on its clock) or a scheduler (this command)
makes it cold: its pin says ``"standby": "cold"``, and the plan may change nothing but the idle
groups' sizes. The image stays in the pin, so a later rollback can still scale it back up.

It runs under the environment's lock and is audited like any change, but asks for no confirmation or
approvals: it moves no traffic and launches nothing, and its plan is checked to only shrink groups.
An expiry that finds the environment busy (a rollback using that very standby) is refused and tried
again on the next tick.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import ColorPin, pin_files
from opsdeck.core.events import Reporter
from opsdeck.core.model import PlanResult
from opsdeck.core.release import bluegreen, fleet
from opsdeck.core.release.transaction import Release
from opsdeck.core.safety import locks
from opsdeck.core.safety.operation import audited
from opsdeck.errors import LockedError, OpsdeckError, RefusedError

GROUP_TYPE = "aws_autoscaling_group"
SIZE_FIELDS = {"min_size", "desired_capacity"}


@dataclass(frozen=True)
class Expired:
    environment: str
    services: dict[str, ColorPin] = field(default_factory=dict)  # as they were, warm
    commit: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "cooled": [
                {"service": s, "color": p.idle, "image": p.idle_image, "window_ended": _utc(p.warm_until)}
                for s, p in self.services.items()
            ],
            "commit": self.commit,
        }


def _utc(when: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)) if when is not None else None


def due(deck: Deck, env: str, now: float | None = None) -> dict[str, ColorPin]:
    """The services of ``env`` whose warm standby's window has ended (none unless blue/green)."""
    if not deck.env(env).blue_green:
        return {}
    return bluegreen.expired(bluegreen.color_pins(deck, env), now)


def check_cooling_plan(plan: PlanResult) -> None:
    """Cooling a standby shrinks auto scaling groups in place, and changes nothing else."""
    for change in plan.resources:
        # Computed values are the provider's, and an empty block read back differently is no change.
        known = {c.name for c in change.changes if not c.after_unknown and not (_empty(c.before) and _empty(c.after))}
        if change.type != GROUP_TYPE or change.actions != ("update",) or not known <= SIZE_FIELDS:
            raise RefusedError(
                f"scaling the standby of {plan.environment} to zero would {'/'.join(change.actions)} {change.address} "
                f"({', '.join(sorted(known)) or 'as a whole'}), not only shrink groups: nothing applied "
                "(plan and apply the environment first)"
            )


def _empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    if isinstance(value, list):
        return all(_empty(v) for v in value)
    return value in (None, "", False)


async def expire(deck: Deck, env: str, rep: Reporter, *, now: float | None = None) -> Expired:
    """Scale ``env``'s standbys whose window has ended to zero, and commit their pins as cold."""
    settings = deck.env(env)
    if not settings.blue_green:
        raise RefusedError(f"{env} rolls out by replacement, not blue-green: it keeps no standby")

    record, _alive = await asyncio.to_thread(locks.holder, deck, env)
    if record is not None:  # the pins in the working tree are that operation's, not the ledger's
        raise LockedError(f"{env} is locked: {record.describe()}; the standby expires on a later try")
    found = await asyncio.to_thread(due, deck, env, now)
    if not found:
        return Expired(env)
    files = pin_files(deck, env, list(found))
    fields = {"services": sorted(found), "colors": {s: p.idle for s, p in found.items()}}
    async with audited(deck, "standby-expire", env, rep, fields=fields, approved=True) as run:
        found = await asyncio.to_thread(due, deck, env, now)  # again, under the lock
        if not found:
            run.end_as("ok", "nothing left to expire")
            return Expired(env)
        try:
            async with Release(deck, env, rep, run, action="standby expire", files=files) as release:
                release.write_pins({s: p.cooled() for s, p in found.items()})
                plan = await release.plan()
                check_cooling_plan(plan)
                await release.policy(plan)
                if plan.summary.has_changes:
                    await release.apply(plan)
                await release.verify(await asyncio.to_thread(fleet.expected_pins, deck, env))
                body = "\n".join(
                    f"{s}: standby {p.idle} ({p.idle_image}) scaled to zero; its window ended {_utc(p.warm_until)}"
                    for s, p in found.items()
                )
                sha = await release.commit(f"standby expire {env}: {', '.join(sorted(found))}\n\n{body}")
                _, sha = await release.publish()
                release.finish(sha)
        finally:
            bluegreen.forget_prepared(deck, env)  # the switch back to a cold color is not instant
    if release.unverified is not None:
        raise OpsdeckError(f"standby expire of {env} committed ({sha[:12]}), but {release.unverified}")
    return Expired(env, found, sha)
