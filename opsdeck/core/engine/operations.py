"""How each operation runs: here (its core coroutine), as a job on a worker (the JSON result it sends
back), and from here on the workers (send, follow, read the result back). `registry.py` names them.

Each body imports its core module when it first runs, for one reason: a read-only deck reads the
registry while it draws its first frame (which keys change anything, to disable them), and importing
every operation's module there would cost it 30-50 ms more (measured on this 2-core machine, the
registry on top of the deck's own modules: 0.02-0.03 s with the bodies' imports inside them, 0.04-0.08 s
with them at the top); the engine's own packages (Celery, Redis) are opt-in and load only when a job is
sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar

from opsdeck.core.engine.operation import (
    ApproveArgs,
    BakeArgs,
    Call,
    DeployArgs,
    EnvArgs,
    EnvsArgs,
    ExecuteArgs,
    GlassArgs,
    Here,
    Job,
    OnWorkers,
    PlanArgs,
    PromoteArgs,
    Ran,
    RefreshArgs,
    RejectArgs,
    RollbackArgs,
    args_json,
)
from opsdeck.core.estate.config import CONFIG_FILE
from opsdeck.core.safety.confirm import confirmed
from opsdeck.errors import OpsdeckError

if TYPE_CHECKING:
    from opsdeck.core.drift.reconcile import ApplyResult
    from opsdeck.core.drift.store import DriftReport
    from opsdeck.core.engine.dispatch import Engine
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter
    from opsdeck.core.model import PlanResult
    from opsdeck.core.observe.refresh import RefreshResult
    from opsdeck.core.release.results import ReleaseResult
    from opsdeck.core.release.standby import Expired
    from opsdeck.core.safety.breakglass import BreakGlass
    from opsdeck.core.sandbox.nuke import NukeResult
    from opsdeck.core.team.requests import Request

A = TypeVar("A")


class _OfEnv(Protocol):
    @property
    def env(self) -> str: ...


def dirty_env(deck: Deck, env: str) -> bool:
    """The environment's files differ from the commit a worker would plan."""
    rel = str(deck.env(env).path)
    try:
        return deck.tools.git.is_dirty(rel)
    except OpsdeckError:
        return True


def env_unseen(deck: Deck, args: _OfEnv) -> str:
    return args.env if dirty_env(deck, args.env) else ""


def _asks(call: Call) -> dict[str, Any]:
    """A job's flag that its caller answers confirmations (a "no" from here is a "no" there)."""
    return {"confirm": True} if call.confirm is not None else {}


# -- plan, drift, refresh -----------------------------------------------------------------------------


async def plan_here(deck: Deck, a: PlanArgs, rep: Reporter, call: Call) -> PlanResult:
    """Planned here, checked against the cloud's state bucket beside Terraform."""
    from opsdeck.core.plans import planning

    return await planning.checked(deck, planning.plan(deck, a.env, rep, reuse=a.reuse))


async def plan_job(deck: Deck, a: PlanArgs, rep: Reporter, call: Call) -> dict[str, Any]:
    """The plan, and its planfile shipped through the state bucket (checked by its SHA-256 there)."""
    from opsdeck.core.engine.planfiles import upload
    from opsdeck.core.plans import planning

    plan = await planning.plan(deck, a.env, rep, reuse=a.reuse)
    shipped = await asyncio.to_thread(upload, deck, a.env, Path(plan.planfile))
    return {"plan": plan.to_json(), "planfile": shipped.to_json()}


async def plan_on_workers(deck: Deck, engine: Engine, a: PlanArgs, rep: Reporter, call: Call) -> Ran[PlanResult]:
    from opsdeck.core.engine.remote import plan_env_on_workers

    await asyncio.to_thread(deck.check_cloud)
    plan, worker = await plan_env_on_workers(deck, engine, a.env, rep, reuse=a.reuse)
    return Ran(plan, sent=True, worker=worker)


async def drift_here(deck: Deck, a: EnvArgs, rep: Reporter, call: Call) -> DriftReport:
    from opsdeck.core.drift import check
    from opsdeck.core.drift.ignore import load_ignore
    from opsdeck.core.drift.ownership import ownerships

    owners = await ownerships(deck, rep)
    return await check.check_env(deck, a.env, owners, load_ignore(deck.root), rep)


async def drift_job(deck: Deck, a: EnvArgs, rep: Reporter, call: Call) -> dict[str, Any]:
    return {"drift": (await drift_here(deck, a, rep, call)).to_json()}


async def drift_on_workers(deck: Deck, engine: Engine, a: EnvArgs, rep: Reporter, call: Call) -> Ran[DriftReport]:
    from opsdeck.core.engine.remote import drift_on_worker

    head = await asyncio.to_thread(deck.tools.git.head)
    report, outcome = await drift_on_worker(engine, deck, a.env, rep, head=head)
    return Ran(report, sent=True, worker=outcome.worker, job=outcome.spec.id)


async def drift_check_here(deck: Deck, a: EnvsArgs, rep: Reporter, call: Call) -> list[DriftReport]:
    from opsdeck.core.drift.check import check

    return await check(deck, a.envs, rep)


async def refresh_here(deck: Deck, a: RefreshArgs, rep: Reporter, call: Call) -> RefreshResult:
    from opsdeck.core.observe.refresh import refresh

    return await refresh(deck, rep, with_drift=a.with_drift, reuse=a.reuse, envs=a.envs, drift_envs=a.drift_envs)


async def refresh_on_workers(
    deck: Deck, engine: Engine, a: RefreshArgs, rep: Reporter, call: Call
) -> Ran[RefreshResult]:
    from opsdeck.core.engine.remote import refresh_on_workers as spread

    result = await spread(
        deck, engine, rep, with_drift=a.with_drift, reuse=a.reuse, envs=a.envs, drift_envs=a.drift_envs
    )
    return Ran(result, sent=True)


# -- bake ---------------------------------------------------------------------------------------------


def bake_unseen(deck: Deck, a: BakeArgs) -> str:
    """Recipes (each with what it provisions with) or an opsdeck.toml (whose conventions name the image's
    tags) with uncommitted changes: a worker bakes what its clone holds."""
    names = [] if a.base else deck.config.services_named(a.services)
    recipes = [deck.config.base_recipe] if a.base else [deck.config.service(n).recipe for n in names]
    folders = sorted({str(Path(str(r)).parent) for r in recipes})
    folders.append(CONFIG_FILE)
    return ", ".join(f for f in folders if deck.tools.git.is_dirty(f))


async def bake_here(deck: Deck, a: BakeArgs, rep: Reporter, call: Call) -> list[dict[str, Any]]:
    """Each image's JSON, as `bake --json` prints it."""
    from opsdeck.core.release.bake import bake

    return [r.to_json() for r in await bake(deck, rep, services=a.services, version=a.version, base=a.base)]


async def bake_job(deck: Deck, a: BakeArgs, rep: Reporter, call: Call) -> dict[str, Any]:
    baked = await bake_here(deck, a, rep, call)
    return {"bake": baked, "commit": await asyncio.to_thread(deck.tools.git.head)}


async def bake_on_workers(
    deck: Deck, engine: Engine, a: BakeArgs, rep: Reporter, call: Call
) -> Ran[list[dict[str, Any]]]:
    from opsdeck.core.engine.jobs import JobSpec

    head = await asyncio.to_thread(deck.tools.git.head)
    outcome = await engine.run(JobSpec.new(deck, "bake", "", args_json(a), head), rep)
    baked = outcome.result.get("bake")
    if not isinstance(baked, list):
        raise OpsdeckError(f"bake on {outcome.worker}: the worker's result has no images")
    images = [{**image, "worker": outcome.worker} for image in baked]
    return Ran(images, sent=True, worker=outcome.worker, job=outcome.spec.id, data=outcome.result)


# -- releases: promote, deploy, rollback ----------------------------------------------------------------


@dataclass(frozen=True)
class RemoteRelease:
    """A release a worker ran, read back from its JSON: what the deck needs to show it."""

    action: str
    environment: str
    worker: str
    job: str
    commit: str
    seconds: float
    text: str  # the release's own one-line summary
    data: dict[str, Any] = field(default_factory=dict)  # its JSON, as `promote --json` prints it

    def summary(self) -> str:
        return f"{self.text} (on {self.worker})"

    def to_json(self) -> dict[str, Any]:
        return {**self.data, "worker": self.worker, "job": self.job}


Released: TypeAlias = "ReleaseResult | Request | RemoteRelease"  # a release here or on a worker, or its request


def release_json(result: Any) -> dict[str, Any]:
    """A release's JSON, or the request it became (an environment with approvals)."""
    from opsdeck.core.team.requests import Request

    if isinstance(result, Request):
        return {"request": result.to_json()}
    return {"release": result.to_json(), "summary": result.summary(), "commit": result.commit}


async def promote_here(deck: Deck, a: PromoteArgs, rep: Reporter, call: Call) -> ReleaseResult | Request:
    from opsdeck.core.release.promote import promote

    confirm = call.confirm or confirmed
    return await promote(
        deck,
        a.src,
        a.env,
        rep,
        services=a.services,
        reason=a.reason,
        confirm=confirm,
        glass=call.glass,
        preplanned=call.preplanned,
    )


async def deploy_here(deck: Deck, a: DeployArgs, rep: Reporter, call: Call) -> ReleaseResult | Request:
    from opsdeck.core.release.promote import deploy_newest

    confirm = call.confirm or confirmed
    return await deploy_newest(
        deck,
        a.env,
        rep,
        services=a.services,
        reason=a.reason,
        confirm=confirm,
        glass=call.glass,
        preplanned=call.preplanned,
    )


async def rollback_here(deck: Deck, a: RollbackArgs, rep: Reporter, call: Call) -> ReleaseResult | Request:
    from opsdeck.core.release.promote import rollback

    confirm = call.confirm or confirmed
    return await rollback(
        deck,
        a.env,
        rep,
        services=a.services,
        to=a.to,
        reason=a.reason,
        confirm=confirm,
        glass=call.glass,
        preplanned=call.preplanned,
    )


def release_job(here: Here[A, Any]) -> Job[A]:
    """A release as a job: the same coroutine, its result as JSON."""

    async def job(deck: Deck, a: A, rep: Reporter, call: Call) -> dict[str, Any]:
        return release_json(await here(deck, a, rep, call))

    return job


def release_on_workers(action: str) -> OnWorkers[_OfEnv, Released]:
    """A release on a worker of its environment's account: a RemoteRelease, or the Request it became
    (the worker pushed it to the ledger; this clone followed)."""

    async def run(deck: Deck, engine: Engine, a: _OfEnv, rep: Reporter, call: Call) -> Ran[Released]:
        from opsdeck.core.engine.remote import release_on_worker
        from opsdeck.core.team.requests import load

        job = args_json(a) | _asks(call)
        outcome = await release_on_worker(deck, engine, action, a.env, job, rep, call.confirm or confirmed)
        found: Released
        if "request" in outcome.result:
            found = load(deck, str(outcome.result["request"]["id"]))
        else:
            result = outcome.result
            found = RemoteRelease(
                action,
                a.env,
                outcome.worker,
                outcome.spec.id,
                str(result.get("commit", "")),
                outcome.seconds,
                str(result.get("summary", "")),
                dict(result.get("release") or {}),
            )
        return Ran(found, sent=True, worker=outcome.worker, job=outcome.spec.id, data=outcome.result)

    return run


# -- nuke-and-rebuild ---------------------------------------------------------------------------------


async def nuke_here(deck: Deck, a: EnvArgs, rep: Reporter, call: Call) -> NukeResult:
    """``call.confirm`` gets the NukePlan before anything is deleted (None: nothing asked, as with --yes);
    ``call.glass`` passes the sandbox's freeze (break-glass, audited)."""
    from opsdeck.core.sandbox.nuke import nuke_rebuild

    return await nuke_rebuild(deck, a.env, rep, confirm=call.confirm, glass=call.glass)


async def nuke_job(deck: Deck, a: EnvArgs, rep: Reporter, call: Call) -> dict[str, Any]:
    return {"nuke": (await nuke_here(deck, a, rep, call)).to_json()}


async def nuke_on_workers(deck: Deck, engine: Engine, a: EnvArgs, rep: Reporter, call: Call) -> Ran[NukeResult]:
    from opsdeck.core.engine.remote import nuke_on_worker
    from opsdeck.core.sandbox.nuke import NukeResult

    outcome = await nuke_on_worker(deck, engine, a.env, rep, call.confirm)
    data = outcome.result.get("nuke")
    if not isinstance(data, dict):
        raise OpsdeckError(f"nuke-and-rebuild of {a.env} on {outcome.worker}: the worker's result has none")
    return Ran(NukeResult.from_json(data), sent=True, worker=outcome.worker, job=outcome.spec.id, data=outcome.result)


# -- here only: requests, standbys, break-glass, apply ---------------------------------------------------


async def approve_here(deck: Deck, a: ApproveArgs, rep: Reporter, call: Call) -> Request:
    from opsdeck.core.team.approvals import approve

    return await approve(deck, a.request, rep, key=a.key)


async def reject_here(deck: Deck, a: RejectArgs, rep: Reporter, call: Call) -> Request:
    from opsdeck.core.team.approvals import reject

    return await reject(deck, a.request, a.reason, rep, key=a.key)


async def execute_here(deck: Deck, a: ExecuteArgs, rep: Reporter, call: Call) -> ReleaseResult:
    from opsdeck.core.release.execute import execute

    return await execute(deck, a.request, rep, confirm=call.confirm or confirmed)


async def standby_expire_here(deck: Deck, a: EnvArgs, rep: Reporter, call: Call) -> Expired:
    from opsdeck.core.release import standby

    return await standby.expire(deck, a.env, rep)


async def break_glass_here(deck: Deck, a: GlassArgs, rep: Reporter, call: Call) -> BreakGlass:
    from opsdeck.core.safety.breakglass import open_break_glass

    return await asyncio.to_thread(open_break_glass, deck, a.env, a.reason)


async def apply_here(deck: Deck, a: EnvArgs, rep: Reporter, call: Call) -> ApplyResult | Request:
    from opsdeck.core.drift.reconcile import apply_env

    return await apply_env(deck, a.env, rep, confirm=call.confirm or confirmed, glass=call.glass)
