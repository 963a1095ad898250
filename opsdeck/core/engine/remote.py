"""Refresh and releases on the engine's workers, with the same results as in this process.

A refresh sends each environment's plan (and drift check) to a worker of its account; each plan comes
back through the state bucket (checked by its SHA-256) and becomes this deck's saved plan, each drift
report this deck's stored report, and the snapshot is built here as usual. A release (promote,
rollback, deploy) runs on a worker, which commits and pushes the pins; this clone then follows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from opsdeck.core.drift import store as drift_store
from opsdeck.core.drift.store import DriftReport
from opsdeck.core.engine import runner
from opsdeck.core.engine.dispatch import Engine, EngineError, JobOutcome, WorkerLostError
from opsdeck.core.engine.jobs import JobSpec
from opsdeck.core.engine.operation import EnvArgs, PlanArgs
from opsdeck.core.engine.planfiles import ShippedPlan, store_shipped
from opsdeck.core.engine.registry import DRIFT, PLAN
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.remote import check, latest
from opsdeck.core.model import PlanResult
from opsdeck.core.observe.refresh import RefreshResult
from opsdeck.core.observe.status import deck_status
from opsdeck.core.plans import planning
from opsdeck.core.safety import audit, audit_shipping, locks
from opsdeck.core.safety.confirm import Confirm, confirmed
from opsdeck.core.tasks import all_or_nothing
from opsdeck.errors import OpsdeckError, RefusedError


async def plan_on_worker(
    engine: Engine, deck: Deck, env: str, rep: Reporter, *, reuse: bool = True, head: str = ""
) -> tuple[PlanResult, JobOutcome]:
    """Plan ``env`` on a worker and make that plan this deck's saved plan of ``env``."""
    # What the plan depends on, as this deck sees it while the job starts (as planning.plan takes it while
    # Terraform starts); should the state move meanwhile, Terraform refuses to apply the stale plan.
    key_task = asyncio.ensure_future(asyncio.to_thread(planning.inputs_key, deck, env))
    spec = JobSpec.new(deck, "plan", env, {"reuse": reuse}, head)
    try:
        outcome = await engine.run(spec, rep)
    finally:
        key = await key_task
    try:
        shipped = ShippedPlan.from_json(outcome.result["planfile"])
        plan_json = outcome.result["plan"]
    except (KeyError, TypeError):
        raise OpsdeckError(f"plan of {env} on {outcome.worker}: the worker's result has no plan") from None
    plan = await asyncio.to_thread(store_shipped, deck, env, plan_json, shipped, key)
    return plan, outcome


async def drift_on_worker(
    engine: Engine, deck: Deck, env: str, rep: Reporter, *, head: str = ""
) -> tuple[DriftReport, JobOutcome]:
    """Drift-check ``env`` on a worker and store its report here."""
    outcome = await engine.run(JobSpec.new(deck, "drift", env, {}, head), rep)
    try:
        report = DriftReport(**outcome.result["drift"])
    except (KeyError, TypeError):
        raise OpsdeckError(f"drift check of {env} on {outcome.worker}: the worker's result has no report") from None
    await asyncio.to_thread(drift_store.save, deck, report)
    return report, outcome


async def plan_env_on_workers(
    deck: Deck, engine: Engine, env: str, rep: Reporter, *, reuse: bool = True, head: str = ""
) -> tuple[PlanResult, str | None]:
    """Plan ``env`` on a worker of its account, and that worker's name. A saved plan nothing has moved
    since is reused with no job at all (None)."""
    if reuse:
        cached = await planning.fresh_plan(deck, env)
        if cached is not None:
            return cached, None
    head = head or await asyncio.to_thread(deck.tools.git.head)
    plan, outcome = await plan_on_worker(engine, deck, env, rep, reuse=reuse, head=head)
    return plan, outcome.worker


async def refresh_on_workers(
    deck: Deck,
    engine: Engine,
    rep: Reporter,
    *,
    with_drift: bool = True,
    reuse: bool = True,
    envs: list[str] | None = None,
    drift_envs: list[str] | None = None,
) -> RefreshResult:
    """What `refresh` does, with each environment's Terraform run on a worker of its account (drift
    checked in every one, or only in ``drift_envs``)."""
    started = time.monotonic()
    names = envs or deck.config.env_names
    for name in names:
        deck.env(name)
    await asyncio.to_thread(deck.check_cloud)
    plans: dict[str, PlanResult] = {}
    reports: dict[str, DriftReport] = {}
    errors: dict[str, str] = {}
    skipped: dict[str, str] = {}
    workers: dict[str, str] = {}

    async def busy(env: str, what: str) -> bool:
        record, alive = await asyncio.to_thread(locks.holder, deck, env)
        if record is not None and alive:
            rep.child(env=env).log(f"{env}: {what} skipped, {record.operation} is running", level="notice")
            skipped[env] = record.operation
            return True
        return False

    async def plan_one(env: str) -> None:
        if await busy(env, "plan"):
            return
        try:
            ran = await runner.run(deck, PLAN, PlanArgs(env, reuse), rep.child(op="plan", env=env), engine=engine)
        except EngineError:
            raise
        except OpsdeckError as exc:
            errors[env] = str(exc)
            return
        plans[env] = ran.result
        if ran.worker is not None or not ran.sent:  # a saved plan reused names no one; "": planned here
            workers[env] = ran.worker or ""

    async def drift_one(env: str) -> None:
        if await busy(env, "drift check"):
            return
        try:
            ran = await runner.run(deck, DRIFT, EnvArgs(env), rep.child(op="drift", env=env), engine=engine)
        except EngineError:
            raise
        except OpsdeckError as exc:
            errors.setdefault(env, str(exc))
            return
        reports[env] = ran.result
        workers.setdefault(env, ran.worker or "")

    jobs = [plan_one(env) for env in names]
    if with_drift:
        jobs += [drift_one(env) for env in names if drift_envs is None or env in drift_envs]
    await all_or_nothing(*jobs)
    state = await deck_status(deck, rep)
    return RefreshResult(state, plans, reports, errors, time.monotonic() - started, skipped, workers)


async def release_on_worker(
    deck: Deck,
    engine: Engine,
    op: str,
    env: str,
    args: dict[str, Any],
    rep: Reporter,
    confirm: Confirm = confirmed,
) -> JobOutcome:
    """Run a release on a worker of ``env``'s account; this clone then follows the commit it pushed."""
    deck.env(env)
    deck.config.services_named(args.get("services"))
    ledger = await asyncio.to_thread(check, deck)
    if not ledger.shared:
        raise RefusedError(
            "the deck has no git remote: a worker's clone cannot share its ledger; run without a broker "
            "(unset OPSDECK_BROKER) or give the deck a remote"
        )
    if ledger.ahead:
        raise RefusedError(
            f"the deck has {ledger.ahead} commits {ledger.ref} lacks: push them first, a worker runs what the team's "
            "remote holds"
        )
    head = await asyncio.to_thread(deck.tools.git.head)

    def recorded(outcome: JobOutcome) -> dict[str, Any]:
        latest(deck)  # this clone follows the commit the worker pushed
        commit = outcome.result.get("commit") or ""
        requested = (outcome.result.get("request") or {}).get("id")
        return {"result": "requested" if requested else "ok"} | (
            {"commit": commit} if commit else {"request": requested}
        )

    return await _run_recorded(deck, engine, JobSpec.new(deck, op, env, args, head), rep, confirm, op, recorded)


async def _run_recorded(
    deck: Deck,
    engine: Engine,
    spec: JobSpec,
    rep: Reporter,
    confirm: Any,
    action: str,
    recorded: Callable[[JobOutcome], dict[str, Any]] = lambda _: {"result": "ok"},
) -> JobOutcome:
    """Run a change on a worker. The worker audits its run in its clone; this deck records that it asked
    and how it went (``recorded`` gives the fields of a run that ended well, off the event loop)."""
    who = await asyncio.to_thread(audit.who, deck, spec.env)
    job = {"job": spec.id, "queue": spec.queue}
    try:
        outcome = await engine.run(spec, rep, confirm)
    except OpsdeckError as exc:
        result = "interrupted" if isinstance(exc, WorkerLostError) else audit.outcome(exc)
        await asyncio.to_thread(
            audit.append, deck, action=action, environment=spec.env, result=result, error=str(exc), who=who, engine=job
        )
        await asyncio.to_thread(audit_shipping.ship_after, deck, rep)  # the worker ships its own chain
        raise
    fields = await asyncio.to_thread(recorded, outcome)
    await asyncio.to_thread(
        audit.append,
        deck,
        action=action,
        environment=spec.env,
        who=who,
        engine={**job, "worker": outcome.worker, "seconds": round(outcome.seconds, 3)},
        **fields,
    )
    await asyncio.to_thread(audit_shipping.ship_after, deck, rep)
    return outcome


async def nuke_on_worker(deck: Deck, engine: Engine, env: str, rep: Reporter, confirm: Any = None) -> JobOutcome:
    """nuke-and-rebuild ``env`` on a worker of its account (recorded here as a release is)."""
    deck.env(env)
    head = await asyncio.to_thread(deck.tools.git.head)
    spec = JobSpec.new(deck, "nuke", env, {"confirm": confirm is not None}, head)
    return await _run_recorded(deck, engine, spec, rep, confirm or confirmed, "nuke-rebuild")
