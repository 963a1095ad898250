"""Lag: whether an environment runs what the environment it promotes from runs, and how far behind it is."""

from __future__ import annotations

from dataclasses import replace

from opsdeck.adapters.aws import Image
from opsdeck.core.estate.deck import Deck
from opsdeck.core.model import EnvStatus, Lag
from opsdeck.core.release.images import version_key
from opsdeck.errors import OpsdeckError


def _since(deck: Deck, env: str, image_id: str) -> float | None:
    """When ``env`` started pinning ``image_id`` (its pin file's commit), from git."""
    try:
        history = deck.git.pin_history(deck.pin_rel(env), limit=50)
    except OpsdeckError:
        return None
    since = None
    for change in history:  # newest first: walk back while the pin is the same image
        if change.image_id != image_id:
            break
        since = change.when.timestamp()
    return since


def with_lag(deck: Deck, rows: list[EnvStatus], images: dict[str, Image]) -> list[EnvStatus]:
    """The rows, each with a promote_from given its Lag behind the source environment."""
    by_name = {row.name: row for row in rows}
    out = []
    for row in rows:
        source = by_name.get(row.promote_from or "")
        if source is None or source.image is None or row.image is None:
            out.append(row)
            continue
        if source.image.id == row.image.id:
            out.append(replace(row, lag=Lag(source.name, source.image, 0, None, in_sync=True)))
            continue
        mine = version_key(row.image.version)
        theirs = version_key(source.image.version)
        app = deck.config.image.app
        between = {
            img.version
            for img in images.values()
            if img.tags.get("app") == app and mine < version_key(img.version) <= theirs
        }
        # When the source runs an older image this one is not behind, but not in sync either.
        behind = len(between) if theirs > mine else 0
        lag = Lag(source.name, source.image, behind, _since(deck, source.name, source.image.id))
        out.append(replace(row, lag=lag))
    return out
