"""The seam operations go through: in this process (no broker: today's code path, unchanged) or on the
engine's workers (a broker configured). The deck and scripts call these; the CLI's commands do the same
choice themselves (they print each path's own result).

    result = await refresh_deck(deck, rep, with_drift=False)      # a RefreshResult either way
    result = await release(deck, "promote", "dev", rep, src="sandbox", confirm=ask)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsdeck.core.engine.jobs import JobSpec
from opsdeck.core.engine.settings import broker_url
from opsdeck.core.estate.config import CONFIG_FILE
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.model import PlanResult
from opsdeck.core.observe.refresh import RefreshResult, refresh
from opsdeck.core.plans import planning
from opsdeck.core.release.bake import bake
from opsdeck.core.release.promote import deploy_newest, promote, rollback
from opsdeck.core.safety.confirm import Confirm, confirmed
from opsdeck.core.sandbox import nuke
from opsdeck.core.team.requests import Request, load
from opsdeck.errors import OpsdeckError


def runs_on_workers(deck: Deck) -> bool:
    """Whether the deck's operations run on the engine's workers (a broker is configured)."""
    return bool(broker_url(deck))


async def refresh_deck(
    deck: Deck,
    rep: Reporter,
    *,
    with_drift: bool = True,
    reuse: bool = True,
    envs: list[str] | None = None,
    drift_envs: list[str] | None = None,
) -> RefreshResult:
    """`refresh` here, or with each environment's Terraform on a worker of its account (``workers`` names them)."""
    broker = broker_url(deck)
    if not broker:
        return await refresh(deck, rep, with_drift=with_drift, reuse=reuse, envs=envs, drift_envs=drift_envs)
    from opsdeck.core.engine.dispatch import Engine  # lazy: needs redis (the engine extra)
    from opsdeck.core.engine.remote import refresh_on_workers  # lazy: needs redis (the engine extra)

    engine = Engine(deck, broker)
    try:
        return await refresh_on_workers(
            deck, engine, rep, with_drift=with_drift, reuse=reuse, envs=envs, drift_envs=drift_envs
        )
    finally:
        engine.close()


async def plan_env(deck: Deck, env: str, rep: Reporter, *, reuse: bool = False) -> tuple[PlanResult, str | None]:
    """`plan ENV`: here (checked against the cloud's state bucket beside Terraform), or on a worker of
    its account. Returns the plan and the worker that made it (None: a saved plan reused, or made here)."""
    broker = broker_url(deck)
    if not broker:
        return await planning.checked(deck, planning.plan(deck, env, rep, reuse=reuse)), None
    from opsdeck.core.engine.dispatch import Engine  # lazy: needs redis (the engine extra)
    from opsdeck.core.engine.remote import plan_env_on_workers  # lazy: needs redis (the engine extra)

    engine = Engine(deck, broker)
    try:
        await asyncio.to_thread(deck.check_cloud)
        await asyncio.to_thread(engine.check)
        plan, worker = await plan_env_on_workers(deck, engine, env, rep, reuse=reuse)
        return plan, worker or None
    finally:
        engine.close()


async def bake_images(
    deck: Deck,
    rep: Reporter,
    *,
    services: list[str] | None = None,
    version: str | None = None,
    base: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    """`bake`: here, or on a worker of the build account; each image's JSON (as `bake --json` prints
    it) and the worker that baked them (None: here). Recipes (or an opsdeck.toml, whose conventions
    name the image's tags) with uncommitted changes bake here: a worker bakes what its clone holds."""
    broker = broker_url(deck)
    names = [] if base else deck.config.services_named(services)
    if broker:
        recipes = [deck.config.base_recipe] if base else [deck.config.service(n).recipe for n in names]
        folders = sorted({str(Path(str(r)).parent) for r in recipes})  # a recipe and what it provisions with
        folders.append(CONFIG_FILE)
        dirty = [f for f in folders if await asyncio.to_thread(deck.tools.git.is_dirty, f)]
        if dirty:
            rep.log(f"{', '.join(map(str, dirty))} has uncommitted changes a worker cannot see: baked here", "notice")
        else:
            return await _bake_on_worker(deck, broker, rep, {"services": services, "version": version, "base": base})
    return [r.to_json() for r in await bake(deck, rep, services=services, version=version, base=base)], None


async def _bake_on_worker(
    deck: Deck, broker: str, rep: Reporter, args: dict[str, Any]
) -> tuple[list[dict[str, Any]], str | None]:
    from opsdeck.core.engine.dispatch import Engine  # lazy: needs redis (the engine extra)

    engine = Engine(deck, broker)
    try:
        await asyncio.to_thread(engine.check)
        head = await asyncio.to_thread(deck.tools.git.head)
        outcome = await engine.run(JobSpec.new(deck, "bake", "", args, head), rep)
    finally:
        engine.close()
    baked = outcome.result.get("bake")
    if not isinstance(baked, list):
        raise OpsdeckError(f"bake on {outcome.worker}: the worker's result has no images")
    return [{**image, "worker": outcome.worker} for image in baked], outcome.worker


async def nuke_rebuild(
    deck: Deck, env: str, rep: Reporter, *, confirm: Any = None, glass: Any = None
) -> tuple[Any, str | None]:
    """nuke-and-rebuild: here, or on a worker of the sandbox's account; the NukeResult and the worker
    (None: here). ``confirm`` gets the NukePlan either way (from the worker, before it deletes).
    Break-glass (``glass``) runs here, where it was opened."""
    broker = broker_url(deck)
    here = not broker or glass is not None
    if broker:
        from opsdeck.core.engine.remote import dirty_env  # lazy: needs redis (the engine extra)

        if await asyncio.to_thread(dirty_env, deck, env):
            rep.log(f"{env} has uncommitted changes a worker cannot see: nuked and rebuilt here", "notice")
            here = True
    if here:
        return await nuke.nuke_rebuild(deck, env, rep, confirm=confirm, glass=glass), None
    from opsdeck.core.engine.dispatch import Engine  # lazy: needs redis (the engine extra)
    from opsdeck.core.engine.remote import nuke_on_worker  # lazy: needs redis (the engine extra)

    engine = Engine(deck, broker)
    try:
        outcome = await nuke_on_worker(deck, engine, env, rep, confirm)
    finally:
        engine.close()
    data = outcome.result.get("nuke")
    if not isinstance(data, dict):
        raise OpsdeckError(f"nuke-and-rebuild of {env} on {outcome.worker}: the worker's result has none")
    return nuke.NukeResult.from_json(data), outcome.worker


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


async def release(
    deck: Deck,
    action: str,
    env: str,
    rep: Reporter,
    *,
    src: str = "",
    services: list[str] | None = None,
    to: str | None = None,
    reason: str = "",
    confirm: Confirm = confirmed,
) -> Any:
    """promote (from ``src``), rollback (to ``to``) or deploy ``env``: here (a ReleaseResult, or the Request
    it became) or on a worker (a RemoteRelease, or the Request it became). Break-glass releases are not
    sent: call promote/rollback/deploy_newest with the glass here."""
    broker = broker_url(deck)
    if not broker:
        if action == "promote":
            return await promote(deck, src, env, rep, services=services, reason=reason, confirm=confirm)
        if action == "rollback":
            return await rollback(deck, env, rep, services=services, to=to, reason=reason, confirm=confirm)
        return await deploy_newest(deck, env, rep, services=services, reason=reason, confirm=confirm)
    from opsdeck.core.engine.dispatch import Engine  # lazy: needs redis (the engine extra)
    from opsdeck.core.engine.remote import release_on_worker  # lazy: needs redis (the engine extra)

    args: dict[str, Any] = {"services": services, "reason": reason}
    if action == "promote":
        args["src"] = src
    if action == "rollback":
        args["to"] = to
    engine = Engine(deck, broker)
    try:
        outcome = await release_on_worker(deck, engine, action, env, args, rep, confirm)
    finally:
        engine.close()
    if "request" in outcome.result:  # the worker pushed it to the ledger; this clone followed
        request: Request = load(deck, str(outcome.result["request"]["id"]))
        return request
    data = dict(outcome.result.get("release") or {})
    return RemoteRelease(
        action,
        env,
        outcome.worker,
        outcome.spec.id,
        str(outcome.result.get("commit", "")),
        outcome.seconds,
        str(outcome.result.get("summary", "")),
        data,
    )
