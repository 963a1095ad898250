"""Build the deck's snapshot: per environment its pin, image, instances, plan and drift.

Environments are read concurrently; an environment that fails (cloud gone, broken pin) gets an
error in its row instead of failing the whole deck. The result is stored as the deck's snapshot.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from opsdeck.adapters.aws import Image
from opsdeck.core.drift import store as drift_store
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.model import DeckState, EnvStatus, ImageRef, InstanceCounts
from opsdeck.core.observe import planning
from opsdeck.core.observe.snapshot import store_snapshot
from opsdeck.core.release.images import describe_images, is_revoked
from opsdeck.core.release.rollout import rollout_state
from opsdeck.core.safety import locks
from opsdeck.errors import CloudUnavailableError, OpsdeckError


def concurrency() -> int:
    return max(1, os.cpu_count() or 1)


async def env_status(
    deck: Deck, name: str, rep: Reporter, *, refresh_plan: bool = False, images: dict[str, Image] | None = None
) -> EnvStatus:
    """One environment's row; errors are kept in the row."""
    env = deck.env(name)
    base = EnvStatus(name=name, sandbox=env.sandbox, protected=env.protected, promote_from=env.promote_from)
    drift = drift_store.load(deck, name)
    if drift is not None:
        base = _replace(base, drift=drift.status, drift_at=drift.checked_at)
    lock = locks.status(deck, name)
    if lock is not None:
        base = _replace(base, lock=lock)
    try:
        pin = await asyncio.to_thread(deck.git.pin, deck.pin_rel(name))
    except OpsdeckError as exc:
        return _replace(base, error=str(exc))
    try:
        image = images.get(pin) if images is not None else None
        if image is None:
            image = await asyncio.to_thread(deck.aws().image, pin)
        groups = await asyncio.to_thread(deck.aws().groups, name)
    except OpsdeckError as exc:
        return _replace(base, image=ImageRef(pin), error=str(exc))
    state = rollout_state(groups, pin)
    ref = ImageRef(pin, image.version if image else "", is_revoked(image))
    row = _replace(
        base,
        image=ref,
        instances=InstanceCounts(state.desired, state.running, state.on_image),
        instance_images={i.id: i.image_id for g in groups for i in g.instances if i.state == "running"},
    )
    try:
        plan = await (planning.plan(deck, name, rep) if refresh_plan else planning.fresh_plan(deck, name))
    except OpsdeckError as exc:
        return _replace(row, error=str(exc))
    if plan is not None:
        row = _replace(row, plan=plan.summary, plan_at=plan.created_at)
    return row


def _replace(status: EnvStatus, **changes: Any) -> EnvStatus:
    from dataclasses import replace

    return replace(status, **changes)


async def deck_status(
    deck: Deck,
    rep: Reporter,
    *,
    refresh_plan: bool = False,
    envs: list[str] | None = None,
    on_env: Callable[[EnvStatus], None] | None = None,
) -> DeckState:
    """The snapshot of the whole deck, built concurrently (bounded by the cores) and stored."""
    names = envs or deck.config.env_names
    cloud = "reachable"
    images: dict[str, Image] = {}
    try:
        deck.check_cloud()
        images = {i.id: i for i in await asyncio.to_thread(deck.aws().images)}
    except CloudUnavailableError as exc:
        rows = [
            EnvStatus(name=n, sandbox=deck.env(n).sandbox, protected=deck.env(n).protected, error=str(exc))
            for n in names
        ]
        state = DeckState(deck=deck.name, environments=tuple(rows), cloud="unreachable")
        return state
    gate = asyncio.Semaphore(concurrency())

    async def one(name: str) -> EnvStatus:
        async with gate:
            row = await env_status(deck, name, rep.child(env=name), refresh_plan=refresh_plan, images=images)
        if on_env is not None:
            on_env(row)
        return row

    rows = await asyncio.gather(*(one(n) for n in names))
    from opsdeck.core.observe.lag import with_lag

    rows = with_lag(deck, list(rows), images)
    pins = {r.name: r.image.id for r in rows if r.image}
    running = {r.name: set(r.instance_images.values()) for r in rows}
    catalog = describe_images(
        sorted(images.values(), key=lambda i: (i.created, i.id)), deck.config.image.app, pins, running
    )
    state = DeckState(deck=deck.name, environments=tuple(rows), cloud=cloud, images=tuple(catalog))
    if envs is None:
        store_snapshot(deck, state)
    return state
