"""Refresh the whole deck: every environment's plan and drift, concurrently, then one snapshot.

Plans are reused while nothing they depend on changed (see planning), so refreshing an unchanged
deck costs hashes and HEAD requests; Terraform runs only where something moved. Work is bounded
by the cores: on a 2-core box, more concurrent Terraform processes only fight over CPU.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from opsdeck.core.drift import check as drift
from opsdeck.core.drift import store as drift_store
from opsdeck.core.drift.ignore import load_ignore
from opsdeck.core.drift.ownership import ownerships
from opsdeck.core.drift.store import DriftReport
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.model import DeckState, PlanResult
from opsdeck.core.observe.status import deck_status
from opsdeck.core.plans import planning
from opsdeck.core.safety import locks
from opsdeck.core.tasks import all_or_nothing, concurrency
from opsdeck.errors import OpsdeckError


@dataclass(frozen=True)
class RefreshResult:
    state: DeckState
    plans: dict[str, PlanResult]
    drift: dict[str, DriftReport]
    errors: dict[str, str]
    seconds: float
    skipped: dict[str, str] = field(default_factory=dict)  # env -> the operation running there
    workers: dict[str, str] = field(default_factory=dict)  # env -> the engine's worker that planned it


def stale_drift(deck: Deck, now: float | None = None) -> list[str]:
    """Environments whose last drift check is missing or older than the deck's ``drift_minutes``."""
    limit = deck.config.drift_minutes * 60
    if limit <= 0:
        return []
    now = now or time.time()
    stale = []
    for name in deck.config.env_names:
        report = drift_store.load(deck, name)
        if report is None or now - report.checked_at > limit:
            stale.append(name)
    return stale


async def refresh(
    deck: Deck,
    rep: Reporter,
    *,
    with_drift: bool = True,
    reuse: bool = True,
    envs: list[str] | None = None,
    drift_envs: list[str] | None = None,
) -> RefreshResult:
    """Plan every environment (or ``envs``) and drift-check them (or only ``drift_envs``), then store
    the snapshot."""
    started = time.monotonic()
    names = envs or deck.config.env_names
    for name in names:
        deck.env(name)
    drift_names = [n for n in names if drift_envs is None or n in drift_envs] if with_drift else []
    await asyncio.to_thread(deck.check_cloud)
    gate = asyncio.Semaphore(concurrency())
    plans: dict[str, PlanResult] = {}
    reports: dict[str, DriftReport] = {}
    errors: dict[str, str] = {}
    skipped: dict[str, str] = {}
    ignore = load_ignore(deck.root) if drift_names else None
    owners = await ownerships(deck, rep) if drift_names else {}

    async def busy(env: str, what: str) -> bool:
        """An operation runs in ``env``: it plans and applies for itself, and a plan or drift check
        beside it would replace its saved plan or report its half-done work as drift."""
        record, alive = await asyncio.to_thread(locks.holder, deck, env)
        if record is not None and alive:
            rep.child(env=env).log(f"{env}: {what} skipped, {record.operation} is running", level="notice")
            skipped[env] = record.operation
            return True
        return False

    async def plan_one(env: str) -> None:
        if await busy(env, "plan"):
            return
        async with gate:
            try:
                plans[env] = await planning.plan(deck, env, rep.child(op="plan", env=env), reuse=reuse)
            except OpsdeckError as exc:
                errors[env] = str(exc)

    async def drift_one(env: str) -> None:
        assert ignore is not None
        if await busy(env, "drift check"):
            return
        async with gate:
            try:
                reports[env] = await drift.check_env(deck, env, owners, ignore, rep.child(op="drift", env=env))
            except OpsdeckError as exc:
                errors.setdefault(env, str(exc))

    jobs = [plan_one(env) for env in names]
    jobs += [drift_one(env) for env in drift_names]
    await all_or_nothing(*jobs)
    state = await deck_status(deck, rep)
    return RefreshResult(state, plans, reports, errors, time.monotonic() - started, skipped)
