"""What a release moves: each service's target image, resolved from what a person asked (an
environment to promote from, an image id or version, the previous release) and checked against the
deck's rules (the promotion chain, the soak gate) before anything is read from the cloud or locked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import pin_files, read_pin
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.remote import sync_before_change
from opsdeck.core.release import gates
from opsdeck.core.release.images import Catalog, service_of
from opsdeck.core.release.ledger import last_release, pinned_history, previous_pin
from opsdeck.core.safety import locks
from opsdeck.core.safety.breakglass import BreakGlass, guard
from opsdeck.core.safety.freeze import check_freeze
from opsdeck.core.types.cloud import Image
from opsdeck.errors import RefusedError


@dataclass
class Target:
    """Where a service is going: the original image, and the id to pin (the original or its copy)."""

    service: str
    image: Image
    pin_id: str | None = None  # None: made usable in the environment first (promote)
    extras: dict[str, str] = field(default_factory=dict)


def preflight(deck: Deck, env: str, action: str, glass: BreakGlass | None, rep: Reporter) -> bool:
    """What refuses a release before anything is read from the cloud: a protected environment without
    break-glass, a freeze (core/safety/freeze.py), a detached HEAD, an operation running in (or
    interrupted in) ``env``, uncommitted changes to its pin files. Checked again under the lock; here so
    the first refusal names the real reason."""
    guard(deck, env, glass, action, approved=deck.env(env).approvals > 0)  # approvals: it becomes a request
    ledger = sync_before_change(deck, rep, offline_ok=glass is not None and glass.env == env)
    check_freeze(deck, env, glass, action)
    git = deck.tools.git
    if git.is_detached():
        raise RefusedError(
            f"the deck's git HEAD is detached; check out a branch before {action} (the commit would be lost)"
        )
    locks.check_unlocked(deck, env)
    for rel in pin_files(deck, env):
        if git.is_dirty(rel):
            raise RefusedError(f"{rel} has uncommitted changes; commit or discard them before {action}")
    return ledger.offline


def resolve_promotion(
    deck: Deck, catalog: Catalog, src: str, dst: str, services: list[str] | None
) -> tuple[list[Target], str | None]:
    """What a promote moves: each service's image from SRC (an environment: every service that
    differs, or those named; an image id or version: that image's service)."""
    names = deck.config.services_named(services)
    if src in deck.config.env_names:
        if src == dst:
            raise RefusedError(f"cannot promote {dst} to itself")
        wanted = deck.env(dst).promote_from
        if wanted is not None and src != wanted:
            raise RefusedError(f"{dst} promotes from {wanted}, not from {src}")
        targets = []
        for service in names:
            pin = read_pin(deck, src, service)
            image = catalog.original(pin)
            if image is None or service_of(image) != service:
                raise RefusedError(f"{src} pins {pin} for {service}, which is not one of {service}'s images")
            if catalog.canonical(read_pin(deck, dst, service)) != image.id:
                targets.append(Target(service, image))
        if not targets:
            which = ", ".join(names)
            raise RefusedError(f"{dst} already runs what {src} runs ({which}): nothing to promote")
        return targets, src
    image = catalog.find(src, names) or (catalog.find(src, deck.config.service_names) if services else None)
    if image is None:
        known = ", ".join(deck.config.env_names)
        raise RefusedError(f"{src!r} is neither an environment ({known}) nor an image id or version of this deck")
    own = service_of(image)
    if own is None or own not in names:
        raise RefusedError(
            f"{src} is an image of {own or 'the base layer'}, not of {', '.join(names)}: "
            "an image is only ever promoted as its own service's"
        )
    return [Target(own, image)], None


def check_chain(deck: Deck, catalog: Catalog, targets: list[Target], source_env: str | None, dst: str) -> None:
    """Only an image that has run in DST's source environment may be promoted to DST."""
    wanted = deck.env(dst).promote_from
    if wanted is None:
        return
    if source_env is not None and source_env != wanted:
        raise RefusedError(f"{dst} promotes from {wanted}, not from {source_env}")
    for target in targets:
        ran = {catalog.canonical(i) for i in pinned_history(deck, wanted, target.service)}
        if target.image.id not in ran:
            raise RefusedError(
                f"{target.service} {target.image.version or target.image.id} ({target.image.id}) has not run in "
                f"{wanted}, and {dst} only takes images that have: promote it to {wanted} first"
            )


def soak_notes(soaks: list[gates.Soak]) -> dict[str, Any]:
    if not soaks:
        return {}
    notes: dict[str, Any] = {
        "soak": [
            {"service": s.service, "image": s.image, "minutes": round(s.minutes_live, 1), "needed": s.minutes_needed}
            for s in soaks
        ]
    }
    short = [s for s in soaks if not s.ok]
    if short:
        notes["soak_bypassed"] = "break-glass: " + ", ".join(f"{s.service} {s.image}" for s in short)
    return notes


def resolve_rollback(
    deck: Deck, catalog: Catalog, env: str, services: list[str] | None, to: str | None
) -> list[Target]:
    """What a rollback returns to: the services of the last release (or those named) to their previous
    images, or one service to an image it ran before (``to``)."""
    names = deck.config.services_named(services)
    if to is not None:
        image = catalog.find(to, names)
        if image is None:
            raise RefusedError(f"--to {to}: not an image id or version of {', '.join(names)}")
        service = service_of(image)
        assert service is not None
        ran = pinned_history(deck, env, service)
        found = next((i for i in ran if catalog.canonical(i) == image.id), None)
        if found is None:
            raise RefusedError(f"{env} never ran {service} {to}; rollback only returns to images it ran (use promote)")
        return [Target(service, image, found)]
    wanted: dict[str, str] = (
        {s: previous_pin(deck, env, s) for s in names} if services else last_release(deck, env, names)
    )
    targets = []
    for service, image_id in wanted.items():
        original = catalog.original(image_id)
        if original is None:
            raise RefusedError(f"{env}'s previous {service} image {image_id} no longer exists (deregistered?)")
        targets.append(Target(service, original, image_id))
    return targets
