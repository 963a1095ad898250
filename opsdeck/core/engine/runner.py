"""The seam every operation goes through: `run` finds where it runs, in this process or on the engine's
workers, and runs it there. `sends` is the one place that choice is made; `run_job` is what a worker
does with a job once it checked the ledger.

    ran = await run(deck, registry.REFRESH, RefreshArgs(with_drift=False), rep)   # ran.result: a RefreshResult
    ran = await run(deck, registry.PROMOTE, PromoteArgs("sandbox", "dev"), rep, confirm=ask)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from opsdeck.core.engine.operation import Ask, Call, Operation, Ran, args_from_job
from opsdeck.core.engine.registry import job_operation
from opsdeck.core.engine.settings import broker_url
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.safety.confirm import Confirm, confirmed

if TYPE_CHECKING:
    from opsdeck.core.engine.dispatch import Engine
    from opsdeck.core.engine.jobs import JobSpec
    from opsdeck.core.release.preplan import PrePlan
    from opsdeck.core.safety.breakglass import BreakGlass

A = TypeVar("A")
R = TypeVar("R")


async def sends(
    deck: Deck,
    op: Operation[A, R],
    args: A,
    rep: Reporter,
    glass: BreakGlass | None = None,
    engine: Engine | None = None,
) -> bool:
    """Whether ``op`` runs on the engine's workers: only where it may (the registry says), with a broker
    configured (or an ``engine`` already open on one: a refresh spreading its jobs), and not under
    break-glass (its credentials are here). Files a worker's clone would not see (uncommitted changes)
    keep it here, said as a notice."""
    if not op.sendable or glass is not None or (engine is None and not broker_url(deck)):
        return False
    unseen = await asyncio.to_thread(op.unseen, deck, args) if op.unseen is not None else ""
    if unseen:
        rep.log(f"{unseen} has uncommitted changes a worker cannot see: {op.done_here} here", "notice")
        return False
    return True


async def run(
    deck: Deck,
    op: Operation[A, R],
    args: A,
    rep: Reporter,
    *,
    confirm: Ask | None = None,
    glass: BreakGlass | None = None,
    engine: Engine | None = None,
    check_cloud: bool = False,
    preplanned: PrePlan | None = None,
) -> Ran[R]:
    """Run ``op`` here or on a worker; ``confirm`` is asked before a change wherever it runs (None: not
    asked, as with --yes). ``engine``: one already open (a refresh sends many jobs through one).
    ``check_cloud``: first check that the cloud answers and holds the deck's state (on the way to the
    workers after the engine is loaded, so an engine that is not installed is what is said). ``preplanned``:
    a release's plan made ahead whose confirmation the caller showed (used here only: a worker plans its own)."""
    call = Call(confirm, glass, preplanned)
    if not await sends(deck, op, args, rep, glass, engine) or op.on_workers is None:
        if check_cloud:
            await asyncio.to_thread(deck.check_cloud)
        return Ran(await op.here(deck, args, rep, call))
    if engine is not None:
        return await op.on_workers(deck, engine, args, rep, call)
    from opsdeck.core.engine.dispatch import Engine  # Celery and Redis: loaded only when a job is sent

    if check_cloud:
        await asyncio.to_thread(deck.check_cloud)
    opened = Engine(deck, broker_url(deck))
    try:
        await asyncio.to_thread(opened.check)
        return await op.on_workers(deck, opened, args, rep, call)
    finally:
        opened.close()


async def run_job(deck: Deck, spec: JobSpec, rep: Reporter, confirm: Confirm = confirmed) -> dict[str, Any]:
    """Run ``spec`` on ``deck`` (a worker's) and return its result as JSON; ``confirm`` asks the caller,
    when the caller said it answers."""
    op = job_operation(spec.op, spec.id)
    args = args_from_job(op.args, spec.env, spec.args, spec.id)
    assert op.job is not None  # job_operation returns only operations with a job
    return await op.job(deck, args, rep, Call(confirm if spec.args.get("confirm") else None))
