"""What a service runs: an environment's groups and plain instances, read from the cloud, and each
service's rollout state against what its pin wants.

A service's instances are found by the deck's tags: its auto scaling groups (the environment's groups
carrying the service tag), else its plain instances (``aws_instance``s no group runs). "Runs the
image" means every desired instance of the service is running and in service on its pinned image:
for groups, in exactly one group (a red/black rollout leaves no older group behind, an instance
refresh keeps the one group); for plain instances, every instance not yet terminated.

In a blue/green environment each color is such a rollout of its own (its groups carry ``color``): the
live color runs the live image; the idle color runs its image while it is a warm standby and is at
zero once it is cold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import COLORS, Color, ColorPin, read_color_pin, read_pin
from opsdeck.core.events import Reporter
from opsdeck.core.model import InstanceCounts
from opsdeck.core.ports.cloud import GroupsPort
from opsdeck.core.types.cloud import Credentials, Group, Instance
from opsdeck.errors import OpsdeckError

COLOR_TAG = "color"
IN_SERVICE = (None, "InService")


@dataclass(frozen=True)
class Rollout:
    desired: int
    running: int
    on_image: int
    groups: tuple[str, ...]
    plain: bool = False  # plain instances, in no group

    @property
    def complete(self) -> bool:
        one_fleet = self.plain or len(self.groups) == 1
        return self.desired > 0 and self.running == self.desired == self.on_image and one_fleet

    @property
    def counts(self) -> InstanceCounts:
        return InstanceCounts(self.desired, self.running, self.on_image)


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
NOTHING = Rollout(0, 0, 0, ())


@dataclass(frozen=True)
class Snapshot:
    """An environment's groups and plain instances, read at one moment."""

    groups: list[Group]
    plain: list[Instance] = field(default_factory=list)

    @property
    def images(self) -> dict[str, str]:
        """Every running instance's image (instance id -> image id)."""
        found = {i.id: i.image_id for g in self.groups for i in g.instances if i.state == "running"}
        found.update({i.id: i.image_id for i in self.plain if i.state == "running"})
        return found


def rollout_state(groups: list[Group], image_id: str) -> Rollout:
    managed = [g for g in groups if g.tags.get("managed_by") == "terraform"] or groups
    desired = sum(g.desired for g in managed)
    live = [i for g in managed for i in g.instances if i.state == "running" and i.lifecycle in IN_SERVICE]
    return Rollout(
        desired=desired,
        running=len(live),
        on_image=sum(1 for i in live if i.image_id == image_id),
        groups=tuple(g.name for g in managed),
    )


def plain_state(instances: list[Instance], image_id: str) -> Rollout:
    """Plain instances: every one not yet terminated is wanted, and should run ``image_id``."""
    running = [i for i in instances if i.state == "running"]
    on_image = sum(1 for i in running if i.image_id == image_id)
    return Rollout(desired=len(instances), running=len(running), on_image=on_image, groups=(), plain=True)


def color_state(groups: list[Group], pin: ColorPin) -> ColorRollout:
    colors: dict[Color, Rollout] = {}
    for color in COLORS:
        mine = [g for g in groups if g.tags.get(COLOR_TAG) == color]
        colors[color] = rollout_state(mine, pin.image(color) or "") if mine else NOTHING
    return ColorRollout(pin, colors)


def service_groups(deck: Deck, groups: list[Group], service: str) -> list[Group]:
    """The groups of ``service`` among an environment's groups (by the deck's service tag). In a deck
    of one service, groups without the tag are that service's too."""
    tag = deck.config.conventions.service_tag
    mine = [g for g in groups if g.tags.get(tag) == service]
    if not mine and len(deck.config.services) == 1:
        mine = [g for g in groups if tag not in g.tags]
    return mine


def service_plain(deck: Deck, instances: list[Instance], service: str) -> list[Instance]:
    """The plain instances of ``service`` (by the service tag; in a deck of one service, untagged too)."""
    tag = deck.config.conventions.service_tag
    mine = [i for i in instances if i.tags.get(tag) == service]
    if not mine and len(deck.config.services) == 1:
        mine = [i for i in instances if tag not in i.tags]
    return mine


def state_of(deck: Deck, snap: Snapshot, service: str, expected: Expected) -> Rollout | ColorRollout:
    """``service``'s rollout state in ``snap`` against what its pin wants."""
    groups = service_groups(deck, snap.groups, service)
    if isinstance(expected, ColorPin):
        return color_state(groups, expected)
    if groups:
        return rollout_state(groups, expected)
    plain = service_plain(deck, snap.plain, service)
    return plain_state(plain, expected) if plain else NOTHING


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


def snapshot(
    deck: Deck,
    env: str,
    credentials: Credentials | None = None,
    cloud: GroupsPort | None = None,
    *,
    services: list[str] | None = None,
) -> Snapshot:
    """``env``'s groups and plain instances, in its account and region (or in ``cloud``). With ``services``,
    plain instances are read only when one of them runs in no group (a poll's call saved)."""
    cloud = cloud or deck.tools.env(env, credentials).cloud
    tag = deck.config.conventions.env_tag
    groups = cloud.groups(tag, env)
    if services is not None and all(service_groups(deck, groups, s) for s in services):
        return Snapshot(groups)
    return Snapshot(groups, cloud.fleet().standalone(tag, env))


async def wait_for_images(
    deck: Deck,
    env: str,
    images: Mapping[str, Expected],
    rep: Reporter,
    *,
    credentials: Credentials | None = None,
    timeout: float = 600.0,
    interval: float = 1.0,
    cloud: GroupsPort | None = None,
) -> dict[str, Rollout | ColorRollout]:
    """Poll until each service in ``images`` (service -> image, or its blue/green pin) runs its image on
    every desired instance, its older groups gone; in the environment's account and region, or in
    ``cloud`` (a recovered copy's region)."""
    with rep.phase("verify instances"):
        deadline = time.monotonic() + timeout
        while True:
            snap = await asyncio.to_thread(snapshot, deck, env, credentials, cloud, services=list(images))
            states = {s: state_of(deck, snap, s, want) for s, want in images.items()}
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
                detail = "; ".join(pending_detail(s, states[s]) for s in pending)
                raise OpsdeckError(f"{env}: after {timeout:.0f}s not every instance runs its pinned image ({detail})")
            await asyncio.sleep(interval)


def pending_detail(service: str, state: Rollout | ColorRollout) -> str:
    if isinstance(state, Rollout):
        where = "plain instances" if state.plain else f"{len(state.groups)} groups"
        return f"{service}: {state.on_image} of {state.desired} on its image ({where})"
    parts = []
    for color, roll in state.colors.items():
        image = state.pin.image(color) or "no image"
        role = "live" if color == state.pin.live else state.pin.standby
        parts.append(f"{color} ({role}) {roll.on_image} of {roll.desired} on {image}")
    return f"{service}: " + ", ".join(parts)
