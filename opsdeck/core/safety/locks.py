"""An environment's lock: one mutating operation at a time, across processes and across the team.

Terraform's state lock covers the apply; this lock covers the whole operation, the git commit of the
pins included. It has two parts:

- **team-wide**: an object beside the environment's Terraform state, created with a conditional write
  (``If-None-Match: *``, what Terraform's ``use_lockfile`` does), so every engineer's opsdeck sees it
  and exactly one of two contenders gets it. It names who, where, what and since when, and its holder
  refreshes a heartbeat while it works: a lock whose heartbeat stopped is an interrupted operation.
- **on this machine**: an flock on ``.opsdeck/locks/<env>.lock``, which tells at once whether a holder
  on this machine is still alive (and guards decks without an S3 backend).

A second operation fails at once naming the holder. A holder that dies (SIGKILL, a laptop that
sleeps) leaves its record: the environment shows as interrupted until ``opsdeck unlock ENV``. A record
that cannot be read (a write cut short, something else's file) counts as an interrupted operation too,
never as no lock; a newer opsdeck's record is read with the fields this one knows.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import getpass
import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsdeck.core.estate.deck import Deck
from opsdeck.errors import LockedError, OpsdeckError

if TYPE_CHECKING:
    from opsdeck.core.types.cloud import Credentials

HEARTBEAT_SECONDS = 15.0
STALE_SECONDS = 90.0  # a team-wide lock whose heartbeat is older is an interrupted operation
LOCK_SUFFIX = ".opsdeck.lock"

# The engine's worker an operation runs on ("name@host"); its locks name it (core/engine sets it).
WORKER: contextvars.ContextVar[str] = contextvars.ContextVar("opsdeck_worker", default="")


@dataclass(frozen=True)
class LockRecord:
    """Who holds (or held) an environment's lock."""

    id: str
    env: str
    operation: str
    pid: int
    host: str
    user: str
    since: float
    detail: dict[str, str] | None = None  # what the operation was changing
    who: str = ""  # the operator's git identity
    heartbeat: float = 0.0
    where: str = field(default="", compare=False)  # "team" (beside the state) or "local"
    worker: str = ""  # the engine's worker ("name@host") that ran the operation, "" in the operator's opsdeck
    root: str = ""  # the holder's deck directory (a worker runs in a clone of its own)
    unreadable: str = field(default="", compare=False)  # a record found but not read: where, and why

    def describe(self) -> str:
        if self.unreadable:
            return self.unreadable
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        by = f"{self.who}, " if self.who else ""
        on = f" on worker {self.worker}" if self.worker else ""
        return f"{self.operation} by {by}{self.user}@{self.host}{on} (pid {self.pid}) since {when}, lock id {self.id}"

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("where")
        data.pop("unreadable")
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str, where: str, env: str, source: str) -> LockRecord:
        """The record ``source`` holds: the fields this opsdeck knows (a newer one's others are left aside,
        an optional one of another type too); without the fields every record has, an unreadable record."""
        try:
            data = json.loads(text)
        except ValueError:
            return cls.unreadable_at(source, where, env, text, "not JSON: a write cut short?")
        if not isinstance(data, dict):
            return cls.unreadable_at(source, where, env, text, "not a lock record")
        for name in _REQUIRED:
            if not _fits(name, data.get(name)):
                return cls.unreadable_at(source, where, env, text, f"its {name} is missing or not a lock record's")
        values = {k: v for k, v in data.items() if _fits(k, v)}
        if values.get("detail") is not None:  # what it was changing, as far as it is text
            values["detail"] = {k: v for k, v in values["detail"].items() if isinstance(v, str)}
        return cls(**values, where=where)

    @classmethod
    def unreadable_at(cls, source: str, where: str, env: str, text: str, why: str) -> LockRecord:
        """What stands for a record that cannot be read: an interrupted operation that `opsdeck unlock`
        clears. Its id is its content's hash, so unlock removes exactly the record it was shown."""
        digest = hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()[:12]
        return cls(
            id=f"unreadable-{digest}",
            env=env,
            operation="unreadable lock record",
            pid=0,
            host="",
            user="",
            since=0.0,
            where=where,
            unreadable=f"its lock record {source} cannot be read ({why})",
        )


# Every record has these (their types as written since the first opsdeck); the rest are optional.
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "env": str,
    "operation": str,
    "pid": int,
    "host": str,
    "user": str,
    "since": (int, float),
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "detail": (dict, type(None)),
    "who": str,
    "heartbeat": (int, float),
    "worker": str,
    "root": str,
}


def _fits(name: str, value: object) -> bool:
    kinds = _REQUIRED.get(name) or _OPTIONAL.get(name)
    if kinds is None or isinstance(value, bool):
        return False
    return isinstance(value, kinds)


# -- on this machine ---------------------------------------------------------------------------------


def _path(deck: Deck, env: str) -> Path:
    folder = deck.local_dir / "locks"
    folder.mkdir(exist_ok=True)
    return folder / f"{env}.lock"


def _read(path: Path, env: str) -> LockRecord | None:
    """The record on this machine; None when there is none (an empty file: its holder let go)."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return LockRecord.unreadable_at(str(path), "local", env, "", exc.strerror or type(exc).__name__)
    return LockRecord.from_json(text, "local", env, str(path)) if text else None


def _local_holder(deck: Deck, env: str) -> tuple[LockRecord | None, bool]:
    path = _path(deck, env)
    record = _read(path, env)
    if record is None:
        return None, False
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return record, True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return record, False


# -- team-wide, beside the state ----------------------------------------------------------------------


def _location(deck: Deck, env: str) -> tuple[str, str] | None:
    backend = deck.backend(env)
    return (backend.bucket, backend.key + LOCK_SUFFIX) if backend else None


def _remote_holder(deck: Deck, env: str, credentials: Credentials | None = None) -> LockRecord | None:
    location = _location(deck, env)
    if location is None:
        return None
    body = deck.tools.env(env, credentials).cloud.read_object(*location)
    if body is None:
        return None
    source = f"s3://{location[0]}/{location[1]}"  # never emptied: released, it is deleted
    return LockRecord.from_json(body.decode("utf-8", errors="replace"), "team", env, source)


def _alive(record: LockRecord, now: float | None = None) -> bool:
    """A team-wide lock is alive while its heartbeat is fresh (its holder may be on another machine)."""
    if record.host == socket.gethostname():
        try:
            os.kill(record.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
    return (now or time.time()) - (record.heartbeat or record.since) < STALE_SECONDS


def holder(deck: Deck, env: str) -> tuple[LockRecord | None, bool]:
    """The lock's record and whether its holder is alive (False: an interrupted operation), whichever
    machine holds it. The team-wide record wins; a deck without a backend has the local one only."""
    local, local_alive = _local_holder(deck, env)
    if local is not None and local_alive:
        return local, True
    try:
        remote = _remote_holder(deck, env)
    except OpsdeckError:
        remote = None  # the cloud cannot be read: what this machine knows is all there is
        if local is not None:
            return local, False
    if remote is not None:
        if local is not None and local.id == remote.id:
            return remote, False  # held here by a process that is gone
        return remote, _alive(remote)
    if local is not None and local.worker and _location(deck, env) is not None:
        return None, False  # a worker's record whose team-wide twin is gone: released by `opsdeck unlock` elsewhere
    return local, False


def check_unlocked(deck: Deck, env: str) -> None:
    """LockedError naming the holder when ``env``'s lock is held by a running operation, or was left by an
    interrupted one (with how to release it): a change checks this before it plans."""
    record, alive = holder(deck, env)
    if record is not None and alive:
        raise LockedError(f"{env} is locked: {record.describe()}")
    if record is not None:
        raise LockedError(
            f"{env} has an interrupted operation: {record.describe()}; "
            f"check the environment, then release it with `opsdeck unlock {env}`"
        )


class _Heartbeat:
    """Refreshes the team-wide lock's heartbeat while its operation runs (a daemon thread)."""

    def __init__(self, deck: Deck, env: str, record: LockRecord, credentials: Credentials | None) -> None:
        self.deck, self.env, self.record, self.credentials = deck, env, record, credentials
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"lock-heartbeat-{env}", daemon=True)

    def run(self) -> None:
        location = _location(self.deck, self.env)
        assert location is not None
        while not self.stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OpsdeckError):
                current = _remote_holder(self.deck, self.env, self.credentials)
                if current is None or current.id != self.record.id:
                    return  # released (or broken by `unlock`): nothing of ours to refresh
                fresh = replace(self.record, heartbeat=time.time())
                cloud = self.deck.tools.env(self.env, self.credentials).cloud
                cloud.put_object(*location, fresh.to_json().encode())


@contextlib.contextmanager
def env_lock(
    deck: Deck,
    env: str,
    operation: str,
    detail: dict[str, str] | None = None,
    credentials: Credentials | None = None,
) -> Iterator[LockRecord]:
    """Hold ``env``'s lock for ``operation``; LockedError at once when anyone anywhere holds it."""
    path = _path(deck, env)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole operation
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            current = _read(path, env)
            who = current.describe() if current else "another opsdeck process"
            raise LockedError(f"{env} is locked: {who}") from None
        stale = _read(path, env)
        if stale is not None and stale.worker and _released_elsewhere(deck, env, credentials):
            stale = None
        if stale is not None:
            raise LockedError(
                f"{env} has an interrupted operation: {stale.describe()}; "
                f"check the environment, then release it with `opsdeck unlock {env}`"
            )
        now = time.time()
        record = LockRecord(
            id=str(uuid.uuid4()),
            env=env,
            operation=operation,
            pid=os.getpid(),
            host=socket.gethostname(),
            user=getpass.getuser(),
            since=now,
            detail=detail,
            who=_identity(deck),
            heartbeat=now,
            worker=WORKER.get(),
            root=str(deck.root),
        )
        location = _location(deck, env)
        beat: _Heartbeat | None = None
        if location is not None:
            cloud = deck.tools.env(env, credentials).cloud
            if not cloud.put_object(*location, record.to_json().encode(), if_absent=True):
                other = _remote_holder(deck, env, credentials)
                if other is not None and not _alive(other):
                    raise LockedError(
                        f"{env} has an interrupted operation: {other.describe()}; "
                        f"check the environment, then release it with `opsdeck unlock {env}`"
                    )
                raise LockedError(f"{env} is locked: {other.describe() if other else 'by a teammate'}")
            beat = _Heartbeat(deck, env, record, credentials)
            beat.thread.start()
        handle.seek(0)
        handle.truncate()
        handle.write(record.to_json())
        handle.flush()
        os.fsync(handle.fileno())
        try:
            yield record
        finally:
            if beat is not None:
                beat.stop.set()
                with contextlib.suppress(OpsdeckError):
                    current = _remote_holder(deck, env, credentials)
                    if current is not None and current.id == record.id and location is not None:
                        deck.tools.env(env, credentials).cloud.delete_object(*location)
            handle.seek(0)
            handle.truncate()
            handle.flush()
    finally:
        handle.close()


def _released_elsewhere(deck: Deck, env: str, credentials: Credentials | None) -> bool:
    """A worker's record left in its clone whose team-wide twin is gone was released by `opsdeck unlock`
    on another machine (the holder writes the team-wide record first and removes it first)."""
    if _location(deck, env) is None:
        return False
    try:
        return _remote_holder(deck, env, credentials) is None
    except OpsdeckError:
        return False


def _identity(deck: Deck) -> str:
    try:
        return deck.tools.git.identity()
    except OpsdeckError:
        return ""


def status(deck: Deck, env: str) -> dict[str, Any] | None:
    """The lock as the deck shows it: held by a live operation (here or on a teammate's machine), or
    left by an interrupted one."""
    record, alive = holder(deck, env)
    if record is None:
        return None
    data = json.loads(record.to_json())
    problem = {"problem": record.unreadable} if record.unreadable else {}
    return {**data, "where": record.where, "state": "running" if alive else "interrupted", **problem}


def clear_stale(deck: Deck, env: str) -> LockRecord | None:
    """Remove an interrupted operation's records (team-wide and here); LockedError if it still runs."""
    record, alive = holder(deck, env)
    if record is None:
        return None
    if alive:
        raise LockedError(f"{env} is locked by a running operation: {record.describe()}")
    if record.where == "team":
        location = _location(deck, env)
        if location is not None:
            current = _remote_holder(deck, env)
            if current is not None and current.id == record.id:
                deck.tools.env(env).cloud.delete_object(*location)
    path = _path(deck, env)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{env} was locked again while unlocking; try again") from None
        handle.seek(0)
        handle.truncate()
    return record
