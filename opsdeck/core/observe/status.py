"""Build the deck's snapshot: per environment its account and region, each service's pin, image and
instances, the pending plan and drift.

Environments are read concurrently, each in its own account and region; an environment that fails
(cloud gone, broken pin, a role that cannot be assumed) gets an error in its row instead of failing
the whole deck. The result is stored as the deck's snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from opsdeck.core.drift import store as drift_store
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import ColorPin
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.remote import check, follow
from opsdeck.core.model import DeckState, EnvStatus, ImageRef, InstanceCounts, ServiceStatus
from opsdeck.core.observe.governance import with_governance
from opsdeck.core.observe.lag import with_lag
from opsdeck.core.observe.rollouts import last_changes, rollout_of
from opsdeck.core.observe.snapshot import store_snapshot
from opsdeck.core.plans import planning
from opsdeck.core.release.bluegreen import traffic_json
from opsdeck.core.release.fleet import expected_pins, snapshot, state_of
from opsdeck.core.release.images import Catalog, describe_images, is_revoked, load_catalog
from opsdeck.core.safety import locks
from opsdeck.core.sandbox.copies import recovered_copies
from opsdeck.core.tasks import all_or_nothing, concurrency
from opsdeck.core.team.requests import pending_for
from opsdeck.errors import CloudUnavailableError, OpsdeckError


def _ref(catalog: Catalog | None, image_id: str) -> ImageRef:
    image = catalog.by_id.get(image_id) if catalog is not None else None
    return ImageRef(image_id, image.version if image else "", is_revoked(image))


def _copies(deck: Deck, name: str) -> tuple[str, ...]:
    """The regions of ``name``'s recovered copies, from the ledger (a damaged record: none shown here,
    the hygiene view and `opsdeck recovered` name it)."""
    try:
        return tuple(sorted(c.region for c in recovered_copies(deck) if c.env == name))
    except OpsdeckError:
        return ()


def _base(deck: Deck, name: str) -> EnvStatus:
    env = deck.env(name)
    return EnvStatus(
        name=name,
        sandbox=env.sandbox,
        protected=env.protected,
        promote_from=env.promote_from,
        account=env.account,
        region=deck.config.region_of(name),
    )


async def env_status(
    deck: Deck, name: str, rep: Reporter, *, refresh_plan: bool = False, catalog: Catalog | None = None
) -> EnvStatus:
    """One environment's row; errors are kept in the row."""
    row = _base(deck, name)
    drift = drift_store.load(deck, name)
    if drift is not None:
        row = replace(row, drift=drift.status, drift_at=drift.checked_at)
    lock = locks.status(deck, name)
    if lock is not None:
        row = replace(row, lock=lock)
    row = replace(row, copies=_copies(deck, name))
    try:
        expected = await asyncio.to_thread(expected_pins, deck, name)
        pins = {s: (e.live_image if isinstance(e, ColorPin) else e) for s, e in expected.items()}
    except OpsdeckError as exc:
        return replace(row, error=str(exc))
    images = {s: _ref(catalog, pin) for s, pin in pins.items()}
    same = set(pins.values())
    row = replace(row, image=images[next(iter(pins))] if len(same) == 1 else None)
    try:
        if row.account is None:
            tools = await asyncio.to_thread(deck.tools.env, name)
            row = replace(row, account=(await asyncio.to_thread(tools.cloud.caller_identity)).get("account"))
        snap = await asyncio.to_thread(snapshot, deck, name)
    except OpsdeckError as exc:
        return replace(row, services=tuple(ServiceStatus(s, images[s]) for s in pins), error=str(exc))
    services: list[ServiceStatus] = []
    for service, pin in pins.items():
        want = expected.get(service, pin)
        state = state_of(deck, snap, service, want)
        traffic = traffic_json(want) if isinstance(want, ColorPin) else None
        how, refresh = await asyncio.to_thread(rollout_of, deck, name, snap, service)
        services.append(
            ServiceStatus(service, images[service], state.counts, traffic=traffic, rollout=how, refresh=refresh)
        )
    total = InstanceCounts()
    for item in services:
        total = total + item.instances
    row = replace(
        row,
        services=tuple(services),
        instances=total,
        instance_images=snap.images,
    )
    try:
        plan = await (planning.plan(deck, name, rep) if refresh_plan else planning.fresh_plan(deck, name))
    except OpsdeckError as exc:
        return replace(row, error=str(exc))
    if plan is not None:
        row = replace(row, plan=plan.summary, plan_at=plan.created_at)
    return row


async def deck_status(
    deck: Deck,
    rep: Reporter,
    *,
    refresh_plan: bool = False,
    envs: list[str] | None = None,
    on_env: Callable[[EnvStatus], None] | None = None,
    fetch: bool = True,
) -> DeckState:
    """The snapshot of the whole deck, built concurrently (bounded by the cores) and stored. It first
    looks at the team's remote (``fetch``): a clone that is behind and clean follows it, so what it
    shows is the team's ledger; otherwise the snapshot says how far behind it is."""
    names = envs or deck.config.env_names
    ledger = await asyncio.to_thread(_ledger, deck, fetch)
    try:
        await asyncio.to_thread(deck.check_cloud)
        catalog = await asyncio.to_thread(load_catalog, deck)
    except CloudUnavailableError as exc:
        rows = [replace(_base(deck, n), error=str(exc)) for n in names]
        rows = await asyncio.to_thread(with_governance, deck, rows)
        return DeckState(deck=deck.name, environments=tuple(rows), cloud="unreachable", ledger=ledger)
    except OpsdeckError as exc:  # the build account cannot be read: rows still come, without versions
        rep.log(f"images: {exc}", "warning")
        catalog = None
    gate = asyncio.Semaphore(concurrency())

    async def one(name: str) -> EnvStatus:
        async with gate:
            row = await env_status(deck, name, rep.child(env=name), refresh_plan=refresh_plan, catalog=catalog)
        if on_env is not None:
            on_env(row)
        return row

    rows = await all_or_nothing(*(one(n) for n in names))
    waiting = await asyncio.to_thread(_waiting, deck)
    lasts = await asyncio.to_thread(last_changes, deck)
    rows = [replace(r, request=waiting.get(r.name), last=lasts.get(r.name)) for r in rows]

    rows = await asyncio.to_thread(with_lag, deck, rows, catalog)
    rows = await asyncio.to_thread(with_governance, deck, rows)  # freezes and sandbox lifetimes
    images: tuple[dict[str, Any], ...] = ()
    if catalog is not None:
        pins = {r.name: {s.name: s.image.id for s in r.services if s.image} for r in rows}
        running = {r.name: set(r.instance_images.values()) for r in rows}
        images = tuple(describe_images(catalog, pins, running))
    state = DeckState(deck=deck.name, environments=tuple(rows), cloud="reachable", images=images, ledger=ledger)
    if envs is None:
        store_snapshot(deck, state)
    return state


def _ledger(deck: Deck, fetch: bool) -> dict[str, Any] | None:
    try:
        return follow(deck, check(deck, fetch=fetch)).to_json()
    except OpsdeckError as exc:
        return {"remote": None, "error": str(exc), "offline": True}


def _waiting(deck: Deck) -> dict[str, dict[str, Any]]:
    """Per environment, the change waiting for approvals (checked signatures, not staleness)."""
    try:
        found = pending_for(deck)
    except OpsdeckError:
        return {}
    return {
        env: {"id": r.id, "approvals": len(r.valid_approvers), "needed": r.needed, "status": r.status}
        for env, r in found.items()
    }
