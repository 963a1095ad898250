"""Apply a saved plan with progress, then wait until each service runs its pinned image.

"Runs the image" means what a red/black rollout promises: the service's groups are in service with
every desired instance running the image, and no group of an older image is left. A service's groups
are the environment's groups that carry the deck's service tag with the service's name.

In a blue/green environment each color is such a rollout of its own (its groups carry ``color``):
the live color runs the live image; the idle color runs its image while it is a warm standby and is
at zero once it is cold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsdeck.adapters.aws import Credentials, Group
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import COLORS, Color, ColorPin, read_color_pin, read_pin
from opsdeck.core.events import Reporter
from opsdeck.core.model import InstanceCounts, PlanResult
from opsdeck.core.ports import CloudPort, TerraformPort
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


COLOR_TAG = "color"


@dataclass(frozen=True)
class ColorRollout:
    """A blue/green service: each color's rollout against what its pin wants of it."""

    pin: ColorPin
    colors: dict[Color, Rollout]

    @property
    def live(self) -> Rollout:
        return self.colors[self.pin.live]

    @property
    def idle(self) -> Rollout:
        return self.colors[self.pin.idle]

    @property
    def complete(self) -> bool:
        if not self.live.complete:
            return False
        if self.pin.standby == "warm" and self.pin.idle_image is not None:
            return self.idle.complete
        return self.idle.desired == 0  # cold: scaled to zero (its group may stay, empty)

    @property
    def counts(self) -> InstanceCounts:
        return self.live.counts


Expected = str | ColorPin


def color_state(groups: list[Group], pin: ColorPin) -> ColorRollout:
    colors: dict[Color, Rollout] = {}
    for color in COLORS:
        mine = [g for g in groups if g.tags.get(COLOR_TAG) == color]
        colors[color] = rollout_state(mine, pin.image(color) or "") if mine else Rollout(0, 0, 0, ())
    return ColorRollout(pin, colors)


def state_of(groups: list[Group], expected: Expected) -> Rollout | ColorRollout:
    return color_state(groups, expected) if isinstance(expected, ColorPin) else rollout_state(groups, expected)


def expected_pins(deck: Deck, env: str, services: list[str] | None = None) -> dict[str, Expected]:
    """What each service of ``env`` should run, from its pin file: an image, or (blue/green) its colors."""
    found: dict[str, Expected] = {}
    for service in services or deck.config.service_names:
        pin = read_color_pin(deck, env, service) if deck.env(env).blue_green else None
        found[service] = pin if pin is not None else read_pin(deck, env, service)
    return found


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
    terraform: TerraformPort | None = None,
) -> None:
    """Apply exactly this saved plan, once it passes the policy gate, reporting each resource as it
    completes; with the environment's Terraform, or ``terraform`` (a recovered copy's)."""
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

    if terraform is None:
        terraform = (await asyncio.to_thread(deck.tools.env, env, credentials)).terraform
    with rep.phase("apply"):
        await terraform.apply(Path(plan.planfile), on_event=on_event)


async def wait_for_images(
    deck: Deck,
    env: str,
    images: Mapping[str, Expected],
    rep: Reporter,
    *,
    credentials: Credentials | None = None,
    timeout: float = 600.0,
    interval: float = 1.0,
    cloud: CloudPort | None = None,
) -> dict[str, Rollout | ColorRollout]:
    """Poll until each service in ``images`` (service -> image, or its blue/green pin) runs its image on
    every desired instance, its older groups gone; in the environment's account and region, or in
    ``cloud`` (a recovered copy's region)."""
    with rep.phase("verify instances"):
        deadline = time.monotonic() + timeout
        while True:
            if cloud is None:
                groups = await asyncio.to_thread(env_groups, deck, env, credentials)
            else:
                groups = await asyncio.to_thread(cloud.groups, deck.config.conventions.env_tag, env)
            states = {s: state_of(service_groups(deck, groups, s), want) for s, want in images.items()}
            on_image = sum(st.counts.on_pinned_image for st in states.values())
            desired = sum(st.counts.desired for st in states.values())
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
                detail = "; ".join(_pending(s, states[s]) for s in pending)
                raise OpsdeckError(f"{env}: after {timeout:.0f}s not every instance runs its pinned image ({detail})")
            await asyncio.sleep(interval)


def _pending(service: str, state: Rollout | ColorRollout) -> str:
    if isinstance(state, Rollout):
        return f"{service}: {state.on_image} of {state.desired} on its image ({len(state.groups)} groups)"
    parts = []
    for color, roll in state.colors.items():
        image = state.pin.image(color) or "no image"
        role = "live" if color == state.pin.live else state.pin.standby
        parts.append(f"{color} ({role}) {roll.on_image} of {roll.desired} on {image}")
    return f"{service}: " + ", ".join(parts)
