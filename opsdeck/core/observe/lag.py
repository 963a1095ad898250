"""Lag: whether each service of an environment runs what the environment it promotes from runs, and
how far behind it is. Images are compared by their originals (a copy in another region is the same
image)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from opsdeck.core.estate.deck import Deck
from opsdeck.core.model import EnvStatus, Lag, ServiceStatus
from opsdeck.core.release.gates import minutes_live
from opsdeck.core.release.images import Catalog
from opsdeck.core.release.ledger import PinChange, service_history
from opsdeck.errors import OpsdeckError


def _since(history: list[PinChange], image_id: str, canonical: Callable[[str], str]) -> float | None:
    """When the environment started pinning ``image_id`` (its pin history, newest first)."""
    since = None
    for change in history:  # walk back while the pin is the same image
        if change.image_id is None or canonical(change.image_id) != canonical(image_id):
            break
        since = change.when.timestamp()
    return since


def _behind(catalog: Catalog, service: str, mine: str, theirs: str) -> int:
    """How many of the service's images came after ``mine`` up to ``theirs``, in the catalog's order
    (versions, or creation times when they do not compare: a pipeline's images count too). When the
    source runs an older image this one is not behind, but not in sync either (0)."""
    order = [i.id for i in catalog.service_images(service)]
    mine, theirs = catalog.canonical(mine), catalog.canonical(theirs)
    if theirs not in order:
        return 0
    low = order.index(mine) if mine in order else -1  # an image no longer there: behind all of them
    return max(0, order.index(theirs) - low)


def _service_lag(
    deck: Deck, env: str, mine: ServiceStatus, theirs: ServiceStatus, source: str, catalog: Catalog | None
) -> Lag | None:
    if mine.image is None or theirs.image is None:
        return None
    canonical = catalog.canonical if catalog is not None else (lambda i: i)
    if canonical(mine.image.id) == canonical(theirs.image.id):
        return Lag(source, theirs.image, 0, None, in_sync=True)
    behind = _behind(catalog, mine.name, mine.image.id, theirs.image.id) if catalog is not None else 0
    needed = deck.env(env).soak_minutes
    try:  # the whole history when the soak is counted over every stint, else the current stint's
        history = service_history(deck, source, mine.name, limit=200 if needed else 50)
    except OpsdeckError:
        history = []
    lag = Lag(source, theirs.image, behind, _since(history, theirs.image.id, canonical) if history else None)
    if needed and catalog is not None and history:
        soaked = minutes_live(history, canonical, theirs.image.id, time.time())
        lag = replace(lag, soaked=soaked, soak_needed=needed)
    return lag


def with_lag(deck: Deck, rows: list[EnvStatus], catalog: Catalog | None) -> list[EnvStatus]:
    """The rows, each with a promote_from given its services' Lag behind the source environment, and
    the row's own Lag summing them up (in sync when every service is; as far behind as the furthest)."""
    by_name = {row.name: row for row in rows}
    out = []
    for row in rows:
        source = by_name.get(row.promote_from or "")
        if source is None or not row.services or not source.services:
            out.append(row)
            continue
        services = []
        lags = []
        for mine in row.services:
            theirs = source.service(mine.name)
            lag = _service_lag(deck, row.name, mine, theirs, source.name, catalog) if theirs else None
            services.append(replace(mine, lag=lag))
            if lag is not None:
                lags.append(lag)
        summary = None
        if lags:
            in_sync = all(lag.in_sync for lag in lags)
            furthest = max(lags, key=lambda lag: lag.behind)
            sinces = [lag.since for lag in lags if lag.since is not None and not lag.in_sync]
            summary = Lag(
                source.name,
                furthest.source_image if len(lags) == 1 else None,
                furthest.behind,
                min(sinces) if sinces else None,
                in_sync=in_sync,
            )
        out.append(replace(row, services=tuple(services), lag=summary))
    return out
