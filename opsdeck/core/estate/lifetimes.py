"""Sandbox lifetimes: when a sandbox with ``ttl_hours`` was last built, and so when it ends.

The build is a record in the ledger (``lifetimes/ENV.json``), committed by the operation that built the
sandbox and pushed with its change, so every clone and worker counts from the same moment. The audit
log cannot be that source (each clone has its own), nor can the cloud: a VPC or a subnet carries no
creation time, and the groups, templates and instances that do are replaced by every promote, so the
lifetime would restart with each release.

A lifetime starts at the first apply opsdeck makes while the sandbox has none running (never built,
or destroyed by `sandbox expire`), and again at each nuke-and-rebuild. ``sandbox extend`` adds hours
(counted from the end, or from the moment of the extension when the lifetime had already ended).
The record is not signed: the worst an edit can do is end a disposable sandbox early or late, and
`sandbox expire` lists what it would destroy before it does.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from opsdeck.errors import OpsdeckError, RefusedError

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck

FOLDER = "lifetimes"
WARNINGS = (2 * 3600.0, 30 * 60.0)  # the deck warns when this little of a lifetime is left


@dataclass(frozen=True)
class Extension:
    hours: float
    by: str
    at: float
    reason: str = ""


@dataclass(frozen=True)
class Lifetime:
    """A sandbox's last build, its extensions, and whether `sandbox expire` destroyed it since."""

    environment: str
    built_at: float
    built_by: str = ""
    build: str = "apply"  # "apply" (its first) or "nuke-rebuild"
    extensions: tuple[Extension, ...] = field(default=())
    destroyed_at: float | None = None
    destroyed_by: str = ""

    @property
    def running(self) -> bool:
        return self.destroyed_at is None

    def expires_at(self, ttl_hours: float) -> float:
        end = self.built_at + ttl_hours * 3600.0
        for ext in self.extensions:
            end = max(end, ext.at) + ext.hours * 3600.0
        return end

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["extensions"] = [asdict(e) for e in self.extensions]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lifetime:
        exts = tuple(
            Extension(float(e["hours"]), str(e["by"]), float(e["at"]), str(e.get("reason", "")))
            for e in data.get("extensions") or ()
        )
        destroyed = data.get("destroyed_at")
        return cls(
            environment=str(data["environment"]),
            built_at=float(data["built_at"]),
            built_by=str(data.get("built_by", "")),
            build=str(data.get("build", "apply")),
            extensions=exts,
            destroyed_at=float(destroyed) if destroyed is not None else None,
            destroyed_by=str(data.get("destroyed_by", "")),
        )


def time_left(expires_at: float, now: float | None = None) -> str:
    """What is left of a lifetime as people read it: "1h05m", "12m", "ended"."""
    seconds = expires_at - (time.time() if now is None else now)
    if seconds <= 0:
        return "ended"
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def lifetime_path(env: str) -> str:
    return f"{FOLDER}/{env}.json"


def ttl_of(deck: Deck, env: str) -> float | None:
    """``env``'s lifetime in hours, None when it has none (not a sandbox, or no ttl_hours)."""
    settings = deck.env(env)
    return settings.ttl_hours if settings.sandbox else None


def read_lifetime(deck: Deck, env: str) -> Lifetime | None:
    """The ledger's record of ``env``'s last build (None: none recorded); a damaged record is an error."""
    path = deck.root / lifetime_path(env)
    if not path.is_file():
        return None
    try:
        return Lifetime.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError):
        raise OpsdeckError(f"{lifetime_path(env)}: not a lifetime record opsdeck can read") from None


def expires_at(deck: Deck, env: str) -> float | None:
    """When ``env``'s lifetime ends; None without a ttl, a recorded build, or once destroyed."""
    ttl = ttl_of(deck, env)
    if ttl is None:
        return None
    record = read_lifetime(deck, env)
    if record is None or not record.running:
        return None
    return record.expires_at(ttl)


def status_of(deck: Deck, env: str) -> dict[str, Any] | None:
    """What status shows of ``env``'s lifetime: None for an environment without one."""
    ttl = ttl_of(deck, env)
    if ttl is None:
        return None
    data: dict[str, Any] = {"ttl_hours": ttl, "expires_at": None, "built_at": None, "build": None}
    try:
        record = read_lifetime(deck, env)
    except OpsdeckError as exc:
        return data | {"problem": str(exc)}
    if record is None:
        return data
    data |= {"built_at": record.built_at, "build": record.build, "built_by": record.built_by}
    data["extended_hours"] = sum(e.hours for e in record.extensions)
    if record.running:
        data["expires_at"] = record.expires_at(ttl)
    else:
        data["destroyed_at"] = record.destroyed_at
    return data


def ended(deck: Deck, now: float | None = None) -> list[tuple[str, float]]:
    """Sandboxes whose lifetime has ended and that still run, with when it ended."""
    now = time.time() if now is None else now
    found = []
    for env in deck.config.env_names:
        end = expires_at(deck, env)
        if end is not None and end <= now:
            found.append((env, end))
    return found


def _who(deck: Deck) -> str:
    try:
        return deck.tools.git.identity()
    except OpsdeckError:
        return ""


def _commit(deck: Deck, record: Lifetime, message: str) -> str:
    rel = lifetime_path(record.environment)
    path = deck.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return deck.tools.git.commit([rel], message)


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def note_build(deck: Deck, env: str, build: str, *, renew: bool = False) -> Lifetime | None:
    """After an apply: start ``env``'s lifetime when it has none running (``renew``: a nuke-and-rebuild,
    which always starts a new one). Committed, not pushed (the operation's own push takes it). None
    when nothing was recorded."""
    ttl = ttl_of(deck, env)
    if ttl is None:
        return None
    try:
        current = read_lifetime(deck, env)
    except OpsdeckError:
        current = None  # a damaged record is replaced by the build that just happened
    if current is not None and current.running and not renew:
        return None
    record = Lifetime(env, time.time(), _who(deck), build)
    end = record.expires_at(ttl)
    _commit(deck, record, f"sandbox {env}: built ({build}); its lifetime of {ttl:g}h ends at {_when(end)}\n")
    return record


def extend(deck: Deck, env: str, hours: float, reason: str = "") -> Lifetime:
    """Add ``hours`` to ``env``'s running lifetime (committed, not pushed)."""
    ttl = ttl_of(deck, env)
    if ttl is None:
        raise RefusedError(f"{env} has no lifetime to extend (ttl_hours on a sandbox environment in opsdeck.toml)")
    current = read_lifetime(deck, env)
    if current is None or not current.running:
        raise RefusedError(
            f"{env} has no build recorded{' since it was destroyed' if current else ''}: its lifetime starts "
            "at its next apply or nuke-and-rebuild"
        )
    now = time.time()
    record = replace(current, extensions=(*current.extensions, Extension(hours, _who(deck), now, reason)))
    end = record.expires_at(ttl)
    _commit(deck, record, f"sandbox {env}: lifetime extended by {hours:g}h, now ends at {_when(end)}\n")
    return record


def note_destroyed(deck: Deck, env: str) -> Lifetime | None:
    """`sandbox expire` destroyed ``env``: its lifetime ends here (committed, not pushed)."""
    current = read_lifetime(deck, env)
    if current is None:
        return None
    record = replace(current, destroyed_at=time.time(), destroyed_by=_who(deck))
    _commit(deck, record, f"sandbox {env}: destroyed, its lifetime ended\n")
    return record
