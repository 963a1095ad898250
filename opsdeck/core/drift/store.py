"""The stored result of the last drift check per environment, so `status` can show it with its age."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.files import write_atomic


@dataclass(frozen=True)
class DriftReport:
    """What a drift check found in one environment."""

    name: str
    status: str  # clean | drifted
    managed: list[dict[str, Any]] = field(default_factory=list)  # {"address", "attributes"}
    unmanaged: list[dict[str, Any]] = field(default_factory=list)  # {"type", "id"}
    image: list[dict[str, Any]] = field(default_factory=list)  # {"instance", "image_id"}
    ignored: int = 0
    checked_at: float = field(default_factory=time.time)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _path(deck: Deck, env: str) -> Any:
    folder = deck.local_dir / "drift"
    folder.mkdir(exist_ok=True)
    return folder / f"{env}.json"


def save(deck: Deck, report: DriftReport) -> None:
    path = _path(deck, report.name)
    write_atomic(path, json.dumps(report.to_json()))


def load(deck: Deck, env: str) -> DriftReport | None:
    try:
        return DriftReport(**json.loads(_path(deck, env).read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def forget(deck: Deck, env: str) -> None:
    """Drop the stored report (it no longer describes the cloud)."""
    _path(deck, env).unlink(missing_ok=True)
