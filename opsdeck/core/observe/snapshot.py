"""The deck's stored snapshot (`.opsdeck/snapshot.json`) and age formatting: the fast start path.

Nothing here touches git, AWS or Terraform, and nothing heavy is imported: the deck's first frame
is drawn from this while the live data is still on its way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from opsdeck.core.model import DeckState
from opsdeck.files import write_atomic

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck

SNAPSHOT = "snapshot.json"


def snapshot_path(deck_root: Path) -> Path:
    return deck_root / ".opsdeck" / SNAPSHOT


def store_snapshot(deck: Deck, state: DeckState) -> None:
    path = snapshot_path(deck.root)
    path.parent.mkdir(exist_ok=True)
    write_atomic(path, json.dumps(state.to_json()))


def load_snapshot(deck_root: Path) -> DeckState | None:
    """The last stored snapshot, without touching git, AWS or Terraform (the fast start path)."""
    try:
        return DeckState.from_json(json.loads(snapshot_path(deck_root).read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def age(seconds_since_epoch: float | None, now: float | None = None) -> str:
    """'42s', '5m', '3h', '2d' ago."""
    if seconds_since_epoch is None:
        return "-"
    delta = max(0, (now or time.time()) - seconds_since_epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit}"
    return f"{int(delta)}s"
