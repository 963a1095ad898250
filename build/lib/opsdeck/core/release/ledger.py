"""Git as the ledger: a service's releases in an environment are the commits that changed its pin.

The history of a pin says which images the service ran there and in which order, so rollback finds
the previous pin here (not "the newest older image"), and the chain check asks here whether an image
ran in the source environment. A release train is one commit that changed several services' pins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import pin_or_none, pin_rel, pin_spec
from opsdeck.errors import RefusedError


@dataclass(frozen=True)
class PinChange:
    """One commit that changed a service's pin in an environment."""

    commit: str
    when: datetime
    author: str
    message: str
    service: str
    image_id: str | None  # what it pinned (None: the pin was missing or broken there)
    before: str | None  # what it pinned before this commit


def service_history(deck: Deck, env: str, service: str, limit: int = 200) -> list[PinChange]:
    """Commits where ``service``'s pin in ``env`` changed, newest first."""
    spec = pin_spec(deck.config, service)
    versions = deck.tools.git.history(pin_rel(deck, env, service), limit)
    values = [pin_or_none(v.text, spec) for v in versions]
    changes = []
    for index, version in enumerate(versions):
        before = values[index + 1] if index + 1 < len(values) else None
        if values[index] != before or index + 1 == len(values):
            if values[index] is None and before is None:
                continue
            changes.append(
                PinChange(
                    version.commit,
                    version.when,
                    version.author,
                    version.message,
                    service,
                    values[index],
                    before,
                )
            )
    return changes


def pinned_history(deck: Deck, env: str, service: str) -> list[str]:
    """Images ``service`` has pinned in ``env`` in git, newest first (each once)."""
    seen: list[str] = []
    for change in service_history(deck, env, service):
        if change.image_id and change.image_id not in seen:
            seen.append(change.image_id)
    return seen


def previous_pin(deck: Deck, env: str, service: str) -> str:
    """The image ``service`` pinned in ``env`` before its current one."""
    history = service_history(deck, env, service)
    if not history:
        raise RefusedError(f"{service} has no pin history in {env}")
    current = history[0].image_id
    for change in history[1:]:
        if change.image_id and change.image_id != current:
            return change.image_id
    raise RefusedError(f"{service} has pinned only {current} in {env} so far; there is nothing to roll back to")


def last_release(deck: Deck, env: str, services: list[str]) -> dict[str, str]:
    """The services the environment's newest release changed, each with the image it pinned before it
    (what rolling back that release returns to)."""
    newest: dict[str, PinChange] = {}
    for service in services:
        history = service_history(deck, env, service)
        if history and history[0].before:
            newest[service] = history[0]
    if not newest:
        raise RefusedError(f"{env} has no release to roll back: no service's pin has a previous image in git")
    order = _order(deck, env, services)
    latest = min(newest.values(), key=lambda c: order.get(c.commit, len(order)))
    back: dict[str, str] = {}
    for service, change in newest.items():
        if change.commit == latest.commit and change.before:
            back[service] = change.before
    return back


def _order(deck: Deck, env: str, services: list[str]) -> dict[str, int]:
    """Position of each commit of the environment's pin files, newest first."""
    files = list(dict.fromkeys(pin_rel(deck, env, s) for s in services))
    return {sha: index for index, sha in enumerate(deck.tools.git.commits(files))}


@dataclass(frozen=True)
class Release:
    """One commit of an environment's pins: every service it moved."""

    commit: str
    when: float
    author: str
    message: str
    changes: list[PinChange] = field(default_factory=list)


def history(deck: Deck, env: str, services: list[str] | None = None) -> list[Release]:
    """The environment's releases (of ``services``, default all), newest first."""
    deck.env(env)
    names = deck.config.services_named(services)
    by_commit: dict[str, Release] = {}
    for service in names:
        for change in service_history(deck, env, service):
            release = by_commit.get(change.commit)
            if release is None:
                first_line = change.message.splitlines()[0] if change.message else ""
                release = Release(change.commit, change.when.timestamp(), change.author, first_line)
                by_commit[change.commit] = release
            release.changes.append(change)
    order = _order(deck, env, names)
    return sorted(by_commit.values(), key=lambda r: order.get(r.commit, len(order)))
