"""opsdeck's own lock per environment: one mutating operation at a time, across processes.

Terraform's state lock covers the apply; this lock covers the whole operation, the git pin commit
included. It is an flock on ``.opsdeck/locks/<env>.lock`` whose content names the holder. A second
operation fails at once, naming the holder and since when. A holder that dies (SIGKILL, power loss)
loses the flock but leaves its record: the environment then shows as interrupted until
``opsdeck unlock ENV`` clears it, so nobody proceeds over a half-finished operation unknowingly.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from opsdeck.core.estate.deck import Deck
from opsdeck.errors import LockedError


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
    detail: dict[str, str] | None = None  # what the operation was changing (pin from/to)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"{self.operation} by {self.user}@{self.host} (pid {self.pid}) since {when}, lock id {self.id}"


def _path(deck: Deck, env: str) -> Path:
    folder = deck.local_dir / "locks"
    folder.mkdir(exist_ok=True)
    return folder / f"{env}.lock"


def _read(path: Path) -> LockRecord | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
        return LockRecord(**json.loads(text)) if text else None
    except (OSError, ValueError, TypeError):
        return None


def holder(deck: Deck, env: str) -> tuple[LockRecord | None, bool]:
    """The lock's record and whether its holder is alive (False: an interrupted operation)."""
    path = _path(deck, env)
    record = _read(path)
    if record is None:
        return None, False
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return record, True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return record, False


@contextlib.contextmanager
def env_lock(deck: Deck, env: str, operation: str, detail: dict[str, str] | None = None) -> Iterator[LockRecord]:
    """Hold ``env``'s lock for ``operation``; LockedError at once when someone else holds it."""
    path = _path(deck, env)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole operation
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            current = _read(path)
            who = current.describe() if current else "another opsdeck process"
            raise LockedError(f"{env} is locked: {who}") from None
        stale = _read(path)
        if stale is not None:
            raise LockedError(
                f"{env} has an interrupted operation: {stale.describe()}; "
                f"check the environment, then release it with `opsdeck unlock {env}`"
            )
        record = LockRecord(
            id=str(uuid.uuid4()),
            env=env,
            operation=operation,
            pid=os.getpid(),
            host=socket.gethostname(),
            user=getpass.getuser(),
            since=time.time(),
            detail=detail,
        )
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(asdict(record)))
        handle.flush()
        os.fsync(handle.fileno())
        try:
            yield record
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
    finally:
        handle.close()


def status(deck: Deck, env: str) -> dict[str, object] | None:
    """The lock as the deck shows it: held by a live operation, or left by an interrupted one."""
    record, alive = holder(deck, env)
    if record is None:
        return None
    return {**asdict(record), "state": "running" if alive else "interrupted"}


def clear_stale(deck: Deck, env: str) -> LockRecord | None:
    """Remove an interrupted operation's record; LockedError if its holder is still alive."""
    record, alive = holder(deck, env)
    if record is None:
        return None
    if alive:
        raise LockedError(f"{env} is locked by a running operation: {record.describe()}")
    path = _path(deck, env)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{env} was locked again while unlocking; try again") from None
        handle.seek(0)
        handle.truncate()
    return record
