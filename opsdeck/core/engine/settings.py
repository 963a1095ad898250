"""Whether a deck uses the engine: its broker URL and how long a job waits for a worker (no imports
of Celery or Redis here, so a deck without a broker pays nothing for the engine)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from opsdeck.core.estate.deck import Deck
from opsdeck.errors import ConfigError


def broker_url(deck: Deck) -> str:
    """$OPSDECK_BROKER, else the deck's ``[engine] broker``; "" means operations run in this process."""
    url = os.environ.get("OPSDECK_BROKER", "").strip() or deck.config.engine.broker.strip()
    if url and (urlsplit(url).scheme not in ("redis", "rediss") or not urlsplit(url).hostname):
        raise ConfigError(f"the engine's broker {url!r} is not a Redis URL (redis://HOST:PORT/DB)")
    return url


def wait_seconds(deck: Deck) -> float:
    """How long a job waits for a worker of its account: $OPSDECK_ENGINE_WAIT, else ``[engine] wait_seconds``."""
    raw = os.environ.get("OPSDECK_ENGINE_WAIT", "").strip()
    if not raw:
        return deck.config.engine.wait_seconds
    try:
        seconds = float(raw)
    except ValueError:
        raise ConfigError(f"OPSDECK_ENGINE_WAIT={raw!r} is not a number of seconds") from None
    if seconds < 0:
        raise ConfigError(f"OPSDECK_ENGINE_WAIT={raw!r}: not negative")
    return seconds
