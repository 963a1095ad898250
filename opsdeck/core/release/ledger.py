"""Git as the ledger: an environment's releases are the commits of its pin file.

The history of ``envs/<env>/image.auto.tfvars.json`` says which images the environment ran and in
which order, so rollback finds the previous pin here (not "the newest older image"), and the chain
check asks here whether an image ran in the source environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsdeck.core.estate.deck import Deck
from opsdeck.core.release.images import app_images
from opsdeck.errors import RefusedError


def pinned_history(deck: Deck, env: str) -> list[str]:
    """Images ``env`` has pinned in git, newest first (each once)."""
    seen: list[str] = []
    for change in deck.git.pin_history(deck.pin_rel(env)):
        if change.image_id and change.image_id not in seen:
            seen.append(change.image_id)
    return seen


def previous_pin(deck: Deck, env: str) -> str:
    """The image ``env`` pinned before its current one, from the pin file's git history."""
    history = deck.git.pin_history(deck.pin_rel(env))
    if not history:
        raise RefusedError(f"{env}'s pin file has no git history")
    current = history[0].image_id
    for change in history[1:]:
        if change.image_id and change.image_id != current:
            return change.image_id
    raise RefusedError(f"{env} has pinned only {current} so far; there is nothing to roll back to")


@dataclass(frozen=True)
class Release:
    commit: str
    when: float
    author: str
    image_id: str | None
    version: str
    message: str


def history(deck: Deck, env: str) -> list[Release]:
    """The environment's releases: every commit of its pin file, newest first."""
    deck.env(env)
    versions = {i.id: i.version for i in app_images(deck)}
    return [
        Release(
            commit=c.commit,
            when=c.when.timestamp(),
            author=c.author,
            image_id=c.image_id,
            version=versions.get(c.image_id or "", ""),
            message=c.message.splitlines()[0] if c.message else "",
        )
        for c in deck.git.pin_history(deck.pin_rel(env))
    ]
