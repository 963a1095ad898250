"""What `opsdeck trail` found per environment, and the last report of each, stored for the deck and `status`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.hygiene.trail_records import Event
from opsdeck.files import write_atomic


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class SkippedFile:
    """A log file that could not be read as CloudTrail's format."""

    key: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "reason": self.reason}


@dataclass(frozen=True)
class Finding:
    """A change in an environment's account and region made by someone outside its pipeline."""

    time: datetime
    who: str  # the principal's ARN
    principal_type: str  # AssumedRole, IAMUser, Root ...
    action: str  # service:call, e.g. ec2:RunInstances
    resources: tuple[str, ...]
    source_ip: str
    event_id: str
    region: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        return cls(
            parse_iso(data["time"]),
            data["who"],
            data["principal_type"],
            data["action"],
            tuple(data["resources"]),
            data["source_ip"],
            data["event_id"],
            data["region"],
        )

    @classmethod
    def of(cls, event: Event) -> Finding:
        return cls(
            event.time,
            event.who,
            event.principal_type,
            event.action,
            event.resources,
            event.source_ip,
            event.event_id,
            event.region,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "time": iso(self.time),
            "who": self.who,
            "principal_type": self.principal_type,
            "action": self.action,
            "resources": list(self.resources),
            "source_ip": self.source_ip,
            "event_id": self.event_id,
            "region": self.region,
        }

    def line(self) -> str:
        what = f" {', '.join(self.resources)}" if self.resources else ""
        return f"{self.action}{what} by {self.who} at {iso(self.time)}"


@dataclass
class TrailReport:
    """One environment's changes outside the pipeline since a moment, and how its trail was read."""

    name: str
    account: str
    region: str
    trail: str
    since: datetime
    findings: list[Finding] = field(default_factory=list)  # newest first
    files_read: int = 0  # of the environment's account (shared by the environments in it)
    files_skipped: list[SkippedFile] = field(default_factory=list)
    records_skipped: int = 0  # records in readable files that are not events
    denied: int = 0  # write calls by others that failed (nothing changed)
    seconds: float = 0.0
    error: str = ""  # the trail could not be listed (no bucket, no access): nothing is known
    checked_at: float = field(default_factory=time.time)

    @property
    def status(self) -> str:
        return "error" if self.error else "changed" if self.findings else "clean"

    @property
    def last_finding(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def summary(self) -> str:
        since = self.since.strftime("%Y-%m-%d %H:%MZ")
        if self.error:
            return f"{self.name}: trail not read: {self.error}"
        skipped = f", {len(self.files_skipped)} unreadable file(s) skipped" if self.files_skipped else ""
        if not self.findings:
            read = (
                f"{self.files_read} trail files"
                if self.files_read
                else f"no trail file at all: is {self.trail} where CloudTrail delivers?"
            )
            return f"{self.name}: no changes outside the pipeline since {since} ({read}{skipped})"
        last = self.findings[0]
        return (
            f"{self.name}: {len(self.findings)} change(s) outside the pipeline since {since}, "
            f"last {last.line()}{skipped}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "account": self.account,
            "region": self.region,
            "trail": self.trail,
            "since": iso(self.since),
            "status": self.status,
            "findings": [f.to_json() for f in self.findings],
            "files_read": self.files_read,
            "files_skipped": [s.to_json() for s in self.files_skipped],
            "records_skipped": self.records_skipped,
            "denied": self.denied,
            "seconds": round(self.seconds, 3),
            "error": self.error or None,
            "checked_at": self.checked_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrailReport:
        return cls(
            name=data["name"],
            account=data["account"],
            region=data["region"],
            trail=data["trail"],
            since=parse_iso(data["since"]),
            findings=[Finding.from_json(f) for f in data["findings"]],
            files_read=data["files_read"],
            files_skipped=[SkippedFile(s["key"], s["reason"]) for s in data["files_skipped"]],
            records_skipped=data["records_skipped"],
            denied=data["denied"],
            seconds=data["seconds"],
            error=data.get("error") or "",
            checked_at=data["checked_at"],
        )


def _path(deck: Deck, env: str) -> Path:
    folder = deck.local_dir / "trail"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{env}.json"


def save_report(deck: Deck, report: TrailReport) -> None:
    path = _path(deck, report.name)
    write_atomic(path, json.dumps(report.to_json()))


def load_report(deck: Deck, env: str) -> TrailReport | None:
    """The last trail report of ``env`` (None when there is none, or it cannot be read)."""
    try:
        return TrailReport.from_json(json.loads(_path(deck, env).read_text("utf-8")))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
