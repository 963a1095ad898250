"""The deck's audit log: one JSON record per line, each carrying the hash of the one before.

Every mutating operation writes a "started" record before it changes anything and a closing record
(ok, failed, refused) when it ends, so an operation killed midway stays visible. ``verify`` recomputes
the chain and names the first record that was edited, removed or moved. Promote and rollback commits
carry their audit record's hash as a git trailer, which also catches records cut off the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.ledger.identity import operator
from opsdeck.core.types.cloud import Credentials
from opsdeck.errors import OpsdeckError, RefusedError

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64


def audit_path(deck: Deck) -> Path:
    return deck.local_dir / AUDIT_FILE


def _digest(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_suffix(".lock"), "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read(deck: Deck) -> list[dict[str, Any]]:
    """Every record, oldest first (unparseable lines raise: the log is evidence, not best-effort)."""
    path = audit_path(deck)
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise OpsdeckError(f"{path}: line {number} is not a JSON record (the log was damaged)") from None
    return records


_identity_cache: dict[tuple[str, str | None, str], dict[str, str]] = {}


def who(deck: Deck, env: str | None = None, credentials: Credentials | None = None) -> dict[str, str]:
    """The git identity, the OS user, and the AWS caller (STS) of the credentials the operation uses:
    the environment's own, break-glass ``credentials``, or the build account's for deck-wide work."""
    key = (str(deck.root), env, credentials.access_key if credentials else "")
    if key not in _identity_cache:
        me = operator(deck)
        ident = {"user": f"{getpass.getuser()}@{socket.gethostname()}", "git": me.git}
        if me.fingerprint:
            ident["key"] = me.fingerprint
        try:
            cloud = deck.tools.env(env, credentials).cloud if env else deck.tools.build()
            ident["aws"] = cloud.caller_identity()["arn"]
        except OpsdeckError:
            ident["aws"] = ""
        _identity_cache[key] = ident
    return dict(_identity_cache[key])


def append(deck: Deck, **fields: Any) -> dict[str, Any]:
    """Append one record (secrets opsdeck holds are redacted) and return it with its hash."""
    path = audit_path(deck)
    with _locked(path):
        records = read(deck)
        last = records[-1] if records else None
        record: dict[str, Any] = {
            "seq": (last["seq"] + 1) if last else 1,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "ts": time.time(),
            **fields,
            "prev": last["hash"] if last else GENESIS,
        }
        record = json.loads(deck.redact(json.dumps(record)))
        record["hash"] = _digest(record)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
    return record


def outcome(exc: BaseException) -> str:
    """How an operation that raised ``exc`` ended, the same everywhere: a safety rule said no
    (refused), it was stopped from outside (interrupted: cancelled, Ctrl-C, exit), or it broke (failed,
    whatever the error's class: a TypeError is a failure, not an interruption)."""
    if isinstance(exc, RefusedError):
        return "refused"
    if isinstance(exc, Exception):
        return "failed"
    return "interrupted"


@dataclass
class AuditedRun:
    """An operation's pair of records: 'started' now, the closing one from ``close``."""

    deck: Deck
    action: str
    environment: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    who: dict[str, str] | None = None
    started: dict[str, Any] = field(default_factory=dict)
    t0: float = field(default_factory=time.monotonic)

    def open(self) -> AuditedRun:
        if self.who is None:
            self.who = who(self.deck, self.environment)
        self.started = append(
            self.deck,
            action=self.action,
            environment=self.environment,
            result="started",
            who=self.who,
            **self.fields,
        )
        return self

    @property
    def hash(self) -> str:
        return str(self.started.get("hash", ""))

    def close(
        self, result: str, *, error: str = "", phases: list[dict[str, Any]] | None = None, **more: Any
    ) -> dict[str, Any]:
        """Write the closing record; it is returned with its hash."""
        return append(
            self.deck,
            action=self.action,
            environment=self.environment,
            result=result,
            started=self.started.get("seq"),
            error=error,
            seconds=round(time.monotonic() - self.t0, 3),
            phases=phases or [],
            who=self.who or who(self.deck, self.environment),
            **{**self.fields, **more},
        )


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    problem: str = ""


def verify(deck: Deck) -> Verification:
    """Recompute the chain; name the first record that was edited, removed or moved."""
    try:
        records = read(deck)
    except OpsdeckError as exc:
        return Verification(False, 0, str(exc))
    seqs = [r.get("seq") for r in records]
    prev = GENESIS
    for index, record in enumerate(records):
        seq, expected, line = record.get("seq"), index + 1, index + 1
        if record.get("hash") != _digest(record):
            return Verification(False, len(records), f"record {seq} (line {line}) was edited: its hash does not match")
        if record.get("prev") != prev or seq != expected:
            if expected in seqs[index + 1 :] or (isinstance(seq, int) and seq < expected):
                problem = f"record {seq} (line {line}) is out of order: record {expected} should come here"
            elif isinstance(seq, int) and seq > expected:
                gone = f"record {expected}" if seq == expected + 1 else f"records {expected} to {seq - 1}"
                problem = f"{gone} (before line {line}) were removed"
            else:
                problem = f"record {seq} (line {line}) does not follow the record before it"
            return Verification(False, len(records), problem)
        prev = record["hash"]
    missing = _anchors_missing(deck, {r["hash"] for r in records})
    if missing:
        return Verification(
            False, len(records), f"git commit {missing[0][:12]} names audit record {missing[1][:12]}, which is gone"
        )
    return Verification(True, len(records))


TRAILER = "Opsdeck-Audit"
CLONE_FILE = "clone-id"


def clone_id(deck: Deck) -> str:
    """This clone's stable id: made once from the host name and a hash of the clone's path."""
    path = deck.local_dir / CLONE_FILE
    if path.is_file():
        found = path.read_text(encoding="utf-8").strip()
        if found:
            return found
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"
    made = f"{host}-{hashlib.sha256(str(deck.root.resolve()).encode()).hexdigest()[:12]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(made + "\n", encoding="utf-8")
    return made


def anchor(deck: Deck, record_hash: str) -> str:
    """The commit trailer that anchors an audit record in the ledger: the record's hash and the clone
    whose log holds it (a teammate's or a worker's commits name records of their own logs)."""
    return f"{TRAILER}: {record_hash} {clone_id(deck)}"


def _anchors_missing(deck: Deck, hashes: set[str]) -> tuple[str, str] | None:
    """A commit whose audit trailer names a record of this clone's log that the log no longer has
    (records cut off the end). Commits anchored in another clone's log are that log's to check."""
    mine = clone_id(deck)
    for commit, value in deck.tools.git.trailers(TRAILER):  # no history to cross-check is not a broken log
        record_hash, _, clone = value.strip().partition(" ")
        if clone.strip() and clone.strip() != mine:
            continue
        if record_hash not in hashes:
            return commit, record_hash
    return None
