"""Apply a saved plan with progress: exactly that plan, once it passes the policy gate.

What follows an apply (waiting for the instances, following a group's instance refresh) is the
service's rollout strategy's (core/release/strategies); what a service runs is core/release/fleet.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.model import PlanResult
from opsdeck.core.ports.tools import TerraformPort
from opsdeck.core.release import gates
from opsdeck.core.types.cloud import Credentials


async def apply_plan(
    deck: Deck,
    env: str,
    plan: PlanResult,
    rep: Reporter,
    credentials: Credentials | None = None,
    *,
    policy_missing_ok: str = "",
    terraform: TerraformPort | None = None,
) -> None:
    """Apply exactly this saved plan, once it passes the policy gate, reporting each resource as it
    completes; with the environment's Terraform, or ``terraform`` (a recovered copy's)."""
    await gates.policy(deck, env, plan, rep, break_glass=credentials is not None, missing_ok=policy_missing_ok)
    total = max(1, plan.summary.add + plan.summary.change + plan.summary.destroy)
    done = 0

    def on_event(event: dict[str, Any]) -> None:
        nonlocal done
        kind = event.get("type")
        if kind == "apply_complete":
            done += 1
            rep.progress(event.get("@message", ""), min(done, total), total)
        elif kind in ("apply_start", "apply_progress"):
            rep.progress(event.get("@message", ""), done, total)
        elif kind == "apply_errored":
            rep.log(event.get("@message", ""), "error")

    if terraform is None:
        terraform = (await asyncio.to_thread(deck.tools.env, env, credentials)).terraform
    with rep.phase("apply"):
        await terraform.apply(Path(plan.planfile), on_event=on_event)
