"""Apply a saved plan with progress, then wait until the environment runs the pinned image.

"Runs the image" means what a red/black rollout promises: the environment's groups are in service
with every desired instance running the image, and no group of an older image is left.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsdeck.adapters.aws import Group
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.model import PlanResult
from opsdeck.errors import OpsdeckError


@dataclass(frozen=True)
class Rollout:
    desired: int
    running: int
    on_image: int
    groups: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return self.desired > 0 and self.running == self.desired == self.on_image and len(self.groups) == 1


def rollout_state(groups: list[Group], image_id: str) -> Rollout:
    managed = [g for g in groups if g.tags.get("managed_by") == "terraform"] or groups
    desired = sum(g.desired for g in managed)
    live = [i for g in managed for i in g.instances if i.state == "running" and i.lifecycle in (None, "InService")]
    return Rollout(
        desired=desired,
        running=len(live),
        on_image=sum(1 for i in live if i.image_id == image_id),
        groups=tuple(g.name for g in managed),
    )


async def apply_plan(deck: Deck, env: str, plan: PlanResult, rep: Reporter) -> None:
    """Apply exactly this saved plan, reporting each resource as it completes."""
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

    with rep.phase("apply"):
        await deck.terraform(env).apply(Path(plan.planfile), on_event=on_event)


async def wait_for_image(
    deck: Deck, env: str, image_id: str, rep: Reporter, *, timeout: float = 600.0, interval: float = 1.0
) -> Rollout:
    """Poll the environment's groups until every desired instance runs ``image_id`` and old groups are gone."""
    with rep.phase("verify instances"):
        deadline = time.monotonic() + timeout
        while True:
            groups = await asyncio.to_thread(deck.aws(env).groups, env)
            state = rollout_state(groups, image_id)
            rep.progress(
                f"{state.on_image}/{state.desired} instances on {image_id}, {len(state.groups)} group(s)",
                state.on_image,
                state.desired or None,
            )
            if state.complete:
                return state
            if time.monotonic() > deadline:
                raise OpsdeckError(
                    f"{env}: after {timeout:.0f}s only {state.on_image} of {state.desired} instances run "
                    f"{image_id} ({len(state.groups)} groups)"
                )
            await asyncio.sleep(interval)
