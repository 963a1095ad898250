"""Refresh the whole deck: every environment's plan and drift, concurrently, then one snapshot.

Plans are reused while nothing they depend on changed (see planning), so refreshing an unchanged
deck costs hashes and HEAD requests; Terraform runs only where something moved. Work is bounded
by the cores: on a 2-core box, more concurrent Terraform processes only fight over CPU.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from opsdeck.core import drift, planning
from opsdeck.core.deck import Deck
from opsdeck.core.drift_store import DriftReport
from opsdeck.core.driftignore import load_ignore
from opsdeck.core.events import Reporter
from opsdeck.core.model import DeckState, PlanResult
from opsdeck.core.ownership import ownerships
from opsdeck.core.status import concurrency, deck_status
from opsdeck.errors import OpsdeckError


@dataclass(frozen=True)
class RefreshResult:
    state: DeckState
    plans: dict[str, PlanResult]
    drift: dict[str, DriftReport]
    errors: dict[str, str]
    seconds: float


async def refresh(
    deck: Deck, rep: Reporter, *, with_drift: bool = True, reuse: bool = True, envs: list[str] | None = None
) -> RefreshResult:
    """Plan (and drift-check) every environment (or ``envs``), then build and store the snapshot."""
    started = time.monotonic()
    names = envs or deck.config.env_names
    for name in names:
        deck.env(name)
    await asyncio.to_thread(deck.check_cloud)
    gate = asyncio.Semaphore(concurrency())
    plans: dict[str, PlanResult] = {}
    reports: dict[str, DriftReport] = {}
    errors: dict[str, str] = {}
    ignore = load_ignore(deck.root) if with_drift else None
    owners = await ownerships(deck, rep) if with_drift else {}

    async def plan_one(env: str) -> None:
        async with gate:
            try:
                plans[env] = await planning.plan(deck, env, rep.child(op="plan", env=env), reuse=reuse)
            except OpsdeckError as exc:
                errors[env] = str(exc)

    async def drift_one(env: str) -> None:
        assert ignore is not None
        async with gate:
            try:
                reports[env] = await drift.check_env(deck, env, owners, ignore, rep.child(op="drift", env=env))
            except OpsdeckError as exc:
                errors.setdefault(env, str(exc))

    jobs = [plan_one(env) for env in names]
    if with_drift:
        jobs += [drift_one(env) for env in names]
    await asyncio.gather(*jobs)
    state = await deck_status(deck, rep)
    return RefreshResult(state, plans, reports, errors, time.monotonic() - started)
