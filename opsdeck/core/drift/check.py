"""Drift: what differs between code and cloud, in three kinds, per environment.

- managed: resources Terraform manages that changed outside it (`plan -refresh-only`, per attribute);
- unmanaged: resources that belong to the environment (its tag or its VPC) but not to its state;
- image: running instances of the environment whose AMI is not their service's pinned image.
Each environment is read in its own account and region, with its own credentials.
Accepted drift is listed in the deck's `.driftignore`. Environments are checked concurrently, and
each report is stored so `status` shows it with its age.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from opsdeck.core.drift import store as drift_store
from opsdeck.core.drift.ignore import DriftIgnore, load_ignore
from opsdeck.core.drift.ownership import Ownership, among_peers, owner, ownerships, unmanaged
from opsdeck.core.drift.store import DriftReport
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import ColorPin
from opsdeck.core.events import Reporter
from opsdeck.core.model import ResourceChange
from opsdeck.core.plans import planning
from opsdeck.core.plans.shown import parse_drift
from opsdeck.core.release.fleet import expected_pins
from opsdeck.core.tasks import all_or_nothing, concurrency
from opsdeck.core.types.cloud import CloudResource


def filter_managed(changes: list[ResourceChange], ignore: DriftIgnore) -> tuple[list[ResourceChange], int]:
    """Drop ignored resources and attributes; a change left with no attribute is no drift."""
    kept, ignored = [], 0
    for change in changes:
        if ignore.resource(change.address):
            ignored += 1
            continue
        attrs = tuple(a for a in change.attributes if not ignore.attribute(change.address, change.type, a))
        ignored += len(change.attributes) - len(attrs)
        if change.action == "update" and not attrs:
            continue
        kept.append(replace(change, attributes=attrs, changes=tuple(c for c in change.changes if c.name in attrs)))
    return kept, ignored


async def managed_drift(deck: Deck, env: str, rep: Reporter) -> list[ResourceChange]:
    """`terraform plan -refresh-only`, read back with `show -json`."""
    await planning.ensure_init(deck, env, rep)
    tf = (await asyncio.to_thread(deck.tools.env, env)).terraform
    planfile = planning.scratch_planfile(deck, env, "refresh")
    try:
        with rep.phase("refresh"):
            await tf.plan(planfile, refresh_only=True, on_event=lambda e: _progress(rep, e))
            shown = await tf.show_json(planfile)
    finally:
        planfile.unlink(missing_ok=True)
    return parse_drift(shown)


def _progress(rep: Reporter, event: dict[str, object]) -> None:
    if event.get("type") in ("refresh_complete", "resource_drift"):
        rep.progress(str(event.get("@message", "")))


def image_drift(
    resources: list[CloudResource], pins: Mapping[str, str | ColorPin], service_tag: str
) -> list[dict[str, str]]:
    """Live instances whose image is not their service's pin (an instance naming no service: not any pin).
    A blue/green service may also run its warm standby's image."""
    allowed = {service: _images_of(pin) for service, pin in pins.items()}
    out = []
    for r in resources:
        if r.type != "ec2:instance" or r.state not in ("pending", "running"):
            continue
        service = r.tags.get(service_tag)
        expected = allowed[service] if service in allowed else set().union(*allowed.values())
        if r.image_id not in expected:
            out.append({"instance": r.id, "image_id": r.image_id or "", "service": service or ""})
    return out


def _images_of(pin: str | ColorPin) -> set[str]:
    if isinstance(pin, str):
        return {pin}
    images = {pin.live_image}
    if pin.standby == "warm" and pin.idle_image is not None:
        images.add(pin.idle_image)
    return images


async def check_env(
    deck: Deck, env: str, owners: dict[str, Ownership], ignore: DriftIgnore, rep: Reporter
) -> DriftReport:
    """One environment's drift report (stored)."""
    started = time.monotonic()
    managed, ignored = filter_managed(await managed_drift(deck, env, rep), ignore)
    conventions = deck.config.conventions
    local = among_peers(deck, env, owners)
    with rep.phase("inventory"):
        cloud = (await asyncio.to_thread(deck.tools.env, env)).cloud
        found = await asyncio.to_thread(cloud.find, env, local[env].vpc_ids, conventions.env_tag)
        mine = [r for r in found if r.id not in ignore.ids]
        ignored += len(found) - len(mine)
        strays = unmanaged(env, mine, local, conventions.env_tag)
        pins = await asyncio.to_thread(expected_pins, deck, env)
        images = image_drift(
            [r for r in mine if owner(r, local, conventions.env_tag) == env], pins, conventions.service_tag
        )
    drifted = bool(managed or strays or images)
    report = DriftReport(
        name=env,
        status="drifted" if drifted else "clean",
        managed=[{"address": c.address, "attributes": list(c.attributes), "action": c.action} for c in managed],
        unmanaged=[r.to_json() for r in strays],
        image=images,
        ignored=ignored,
        checked_at=time.time(),
        seconds=round(time.monotonic() - started, 3),
    )
    drift_store.save(deck, report)
    return report


def drift_json(reports: list[DriftReport]) -> dict[str, Any]:
    """The drift report as `opsdeck drift --json` prints it (and an alarm carries it)."""
    return {
        "environments": [
            {
                "name": r.name,
                "status": r.status,
                "managed": [{"address": m["address"], "attributes": m["attributes"]} for m in r.managed],
                "unmanaged": r.unmanaged,
                "image": r.image,
                "ignored": r.ignored,
                "seconds": r.seconds,
            }
            for r in reports
        ]
    }


async def check(deck: Deck, envs: list[str] | None, rep: Reporter) -> list[DriftReport]:
    """Drift of ``envs`` (default: all), checked concurrently, bounded by the cores."""
    names = envs or deck.config.env_names
    for name in names:
        deck.env(name)
    ignore = load_ignore(deck.root)  # a broken ignore file fails before any work
    with rep.phase("state"):
        owners = await ownerships(deck, rep, names)
    gate = asyncio.Semaphore(concurrency())

    async def one(name: str) -> DriftReport:
        async with gate:
            return await check_env(deck, name, owners, ignore, rep.child(env=name))

    return await all_or_nothing(*(one(n) for n in names))
