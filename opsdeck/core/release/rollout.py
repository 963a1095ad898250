"""Apply a saved plan with progress, then wait until each service runs its pinned image.

"Runs the image" means what a red/black rollout promises: the service's groups are in service with
every desired instance running the image, and no group of an older image is left. A service's groups
are the environment's groups that carry the deck's service tag with the service's name.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsdeck.adapters.aws import Credentials, Group
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.model import InstanceCounts, PlanResult
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

    @property
    def counts(self) -> InstanceCounts:
        return InstanceCounts(self.desired, self.running, self.on_image)


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


def service_groups(deck: Deck, groups: list[Group], service: str) -> list[Group]:
    """The groups of ``service`` among an environment's groups (by the deck's service tag). In a deck
    of one service, groups without the tag are that service's too."""
    tag = deck.config.conventions.service_tag
    mine = [g for g in groups if g.tags.get(tag) == service]
    if not mine and len(deck.config.services) == 1:
        mine = [g for g in groups if tag not in g.tags]
    return mine


def env_groups(deck: Deck, env: str, credentials: Credentials | None = None) -> list[Group]:
    """Every auto scaling group of ``env`` (found by the deck's environment tag, in its own account)."""
    return deck.tools.env(env, credentials).cloud.groups(deck.config.conventions.env_tag, env)


async def apply_plan(
    deck: Deck,
    env: str,
    plan: PlanResult,
    rep: Reporter,
    credentials: Credentials | None = None,
    *,
    policy_missing_ok: str = "",
) -> None:
    """Apply exactly this saved plan, once it passes the policy gate, reporting each resource as it
    completes."""
    from opsdeck.core.release import gates

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

    terraform = (await asyncio.to_thread(deck.tools.env, env, credentials)).terraform
    with rep.phase("apply"):
        await terraform.apply(Path(plan.planfile), on_event=on_event)


async def wait_for_images(
    deck: Deck,
    env: str,
    images: dict[str, str],
    rep: Reporter,
    *,
    credentials: Credentials | None = None,
    timeout: float = 600.0,
    interval: float = 1.0,
) -> dict[str, Rollout]:
    """Poll until each service in ``images`` (service -> image) runs its image on every desired
    instance, its older groups gone."""
    with rep.phase("verify instances"):
        deadline = time.monotonic() + timeout
        while True:
            groups = await asyncio.to_thread(env_groups, deck, env, credentials)
            states = {s: rollout_state(service_groups(deck, groups, s), image) for s, image in images.items()}
            on_image = sum(st.on_image for st in states.values())
            desired = sum(st.desired for st in states.values())
            pending = [s for s, st in states.items() if not st.complete]
            rep.progress(
                f"{on_image}/{desired} instances on their pinned images"
                + (f"; waiting for {', '.join(pending)}" if pending else ""),
                on_image,
                desired or None,
            )
            if not pending:
                return states
            if time.monotonic() > deadline:
                detail = "; ".join(
                    f"{s}: {states[s].on_image} of {states[s].desired} on {images[s]} ({len(states[s].groups)} groups)"
                    for s in pending
                )
                raise OpsdeckError(f"{env}: after {timeout:.0f}s not every instance runs its pinned image ({detail})")
            await asyncio.sleep(interval)
