"""What each job runs: the same core operations the CLI and the deck call in-process, with a JSON result.

``run_job`` is all a worker does with a job once it checked the ledger; the caller turns the JSON back
into its own records (a saved plan, a drift report) or prints it (a release).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from opsdeck.core.drift import check
from opsdeck.core.drift.ignore import load_ignore
from opsdeck.core.drift.ownership import ownerships
from opsdeck.core.engine.jobs import JobSpec
from opsdeck.core.engine.planfiles import upload
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.plans import planning
from opsdeck.core.release.bake import bake
from opsdeck.core.release.promote import deploy_newest, promote, rollback
from opsdeck.core.safety.confirm import Confirm, confirmed
from opsdeck.core.sandbox.nuke import nuke_rebuild
from opsdeck.core.team.requests import Request
from opsdeck.errors import OpsdeckError


def _services(spec: JobSpec) -> list[str] | None:
    services = spec.args.get("services")
    if services is None:
        return None
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise OpsdeckError(f"job {spec.id}: services must be a list of names")
    return services


def _text(spec: JobSpec, name: str) -> str:
    value = spec.args.get(name, "")
    if not isinstance(value, str):
        raise OpsdeckError(f"job {spec.id}: {name} must be a string")
    return value


def release_json(result: Any) -> dict[str, Any]:
    """A release's JSON, or the request it became (an environment with approvals)."""
    if isinstance(result, Request):
        return {"request": result.to_json()}
    return {"release": result.to_json(), "summary": result.summary(), "commit": result.commit}


async def run_job(deck: Deck, spec: JobSpec, rep: Reporter, confirm: Confirm = confirmed) -> dict[str, Any]:
    """Run ``spec`` on ``deck`` and return its result as JSON."""
    if spec.op == "plan":
        plan = await planning.plan(deck, spec.env, rep, reuse=bool(spec.args.get("reuse", True)))
        shipped = await asyncio.to_thread(upload, deck, spec.env, Path(plan.planfile))
        return {"plan": plan.to_json(), "planfile": shipped.to_json()}
    if spec.op == "drift":
        owners = await ownerships(deck, rep)
        report = await check.check_env(deck, spec.env, owners, load_ignore(deck.root), rep)
        return {"drift": report.to_json()}
    if spec.op == "nuke":
        # The caller asked for a confirmation (the deck's typed one): the plan goes to it, "no" is "no".
        nuked = await nuke_rebuild(deck, spec.env, rep, confirm=confirm if spec.args.get("confirm") else None)
        return {"nuke": nuked.to_json()}
    if spec.op == "bake":
        version = spec.args.get("version")
        baked = await bake(
            deck,
            rep,
            services=_services(spec),
            version=version if isinstance(version, str) else None,
            base=bool(spec.args.get("base")),
        )
        return {"bake": [r.to_json() for r in baked], "commit": await asyncio.to_thread(deck.tools.git.head)}

    services, reason = _services(spec), _text(spec, "reason")
    if spec.op == "promote":
        result: Any = await promote(
            deck, _text(spec, "src"), spec.env, rep, services=services, reason=reason, confirm=confirm
        )
    elif spec.op == "rollback":
        to = spec.args.get("to")
        result = await rollback(
            deck,
            spec.env,
            rep,
            services=services,
            to=to if isinstance(to, str) else None,
            reason=reason,
            confirm=confirm,
        )
    elif spec.op == "deploy":
        result = await deploy_newest(deck, spec.env, rep, services=services, reason=reason, confirm=confirm)
    else:
        raise OpsdeckError(f"job {spec.id}: the engine does not run {spec.op!r}")
    return release_json(result)
