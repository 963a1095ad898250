"""The last orphan scan, kept so the deck shows it per environment without a scan; and what one
environment's pane shows of hygiene (`env_hygiene`): the ledger's recovered copies, the orphans where
it runs, and its last trail read (kept by `read_trail` itself).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.hygiene.trail_report import load_report
from opsdeck.core.sandbox.copies import recovered_copies
from opsdeck.files import write_atomic

if TYPE_CHECKING:
    from opsdeck.core.hygiene.orphans import OrphanReport


def _path(deck: Deck, kind: str) -> Path:
    folder = deck.local_dir / "hygiene"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{kind}.json"


def _write(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data))


def _read(deck: Deck, kind: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_path(deck, kind).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_orphans(deck: Deck, report: OrphanReport) -> None:
    _write(_path(deck, "orphans"), {"saved_at": time.time(), "report": report.to_json()})


def load_orphans(deck: Deck) -> dict[str, Any] | None:
    return _read(deck, "orphans")


@dataclass(frozen=True)
class EnvHygiene:
    """One environment's recovered copies, the orphans where it runs, and its last trail read."""

    env: str
    copies: list[dict[str, Any]] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)
    orphans_scanned: float | None = None  # when the last scan ran (None: never)
    usd_per_hour: float = 0.0  # the known estimates' sum
    unknown_cost: int = 0  # orphans the price table has no price for
    price_table: str = ""  # the table's date
    trail: dict[str, Any] | None = None  # the TrailReport JSON
    trail_read: float | None = None

    @property
    def last_finding(self) -> dict[str, Any] | None:
        findings = (self.trail or {}).get("findings") or []
        return findings[0] if findings else None


def env_hygiene(deck: Deck, env: str) -> EnvHygiene:
    """What the deck shows for ``env`` (file reads only: cheap enough for the details worker)."""
    copies = [c.to_json() for c in recovered_copies(deck) if c.env == env]
    stored = load_orphans(deck)
    orphans: list[dict[str, Any]] = []
    scanned, usd, unknown, table = None, 0.0, 0, ""
    if stored is not None:
        report = stored.get("report") or {}
        scanned = stored.get("saved_at")
        table = str((report.get("price_table") or {}).get("date", ""))
        place = (deck.env(env).account or "", deck.config.region_of(env))
        orphans = [o for o in report.get("orphans", []) if _belongs(o, env, place)]
        usd = sum((o.get("cost") or {}).get("usd_per_hour") or 0.0 for o in orphans)
        unknown = sum(1 for o in orphans if (o.get("cost") or {}).get("usd_per_hour") is None)
    trail = load_report(deck, env)
    return EnvHygiene(
        env=env,
        copies=copies,
        orphans=orphans,
        orphans_scanned=scanned,
        usd_per_hour=usd,
        unknown_cost=unknown,
        price_table=table,
        trail=trail.to_json() if trail is not None else None,
        trail_read=trail.checked_at if trail is not None else None,
    )


def _belongs(orphan: dict[str, Any], env: str, place: tuple[str, str]) -> bool:
    """An orphan shows with the environments of its account and region, and a recovered copy or an
    old sandbox with its own environment."""
    if orphan.get("kind") in ("recovered-copy", "sandbox"):
        return env in (orphan.get("tags") or {}).values() or orphan.get("id", "").split("@")[0] == env
    return (orphan.get("account"), orphan.get("region")) == place
