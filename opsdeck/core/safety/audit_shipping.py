"""The audit log shipped off the machine: batches of records written once to an S3 bucket with Object
Lock in compliance mode (``[audit]`` in opsdeck.toml), and the local chain checked against them.

Each clone (and each worker, which runs in a clone of its own) ships its own chain under
``<prefix>/<clone id>/``, one object per batch named by its first and last sequence numbers, holding the
records exactly as the local log has them (the last one carries the batch's chain hash). The clone id is
the host name and a hash of the clone's path, made once and kept in ``.opsdeck/clone-id``. What was
shipped is kept in ``.opsdeck/audit-shipped.json`` (the shipped-through marker): everything after it is
pending, stays in the local log, and ships with the next operation or ``opsdeck audit ship``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsdeck.core.safety import audit
from opsdeck.errors import OpsdeckError, RefusedError

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.estate.sections import AuditSettings
    from opsdeck.core.events import Reporter
    from opsdeck.core.ports.cloud import CloudPort

CLONE_FILE = audit.CLONE_FILE
clone_id = audit.clone_id  # the clone whose chain this is (its key prefix)
MARKER_FILE = "audit-shipped.json"
BATCH = 500  # records per object: a first ship of a long log is a few objects, not thousands
DAY = 86400.0
NOT_SHIPPED = "audit log not shipped"  # how the notice of a failure to ship begins (the deck shows it)


def settings(deck: Deck) -> AuditSettings:
    if deck.config.audit is None:
        raise RefusedError('this deck ships no audit log: set [audit] bucket = "..." in opsdeck.toml')
    return deck.config.audit


def key_prefix(deck: Deck) -> str:
    return f"{settings(deck).prefix}/{clone_id(deck)}/"


def _cloud(deck: Deck) -> CloudPort:
    return deck.tools.build(settings(deck).region)


def _marker(deck: Deck) -> dict[str, Any]:
    """What this clone shipped to the configured bucket and prefix: {"through": seq, "hash": hash}."""
    path = deck.local_dir / MARKER_FILE
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    place = f"{settings(deck).bucket}/{key_prefix(deck)}"
    found = data.get(place) if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {"through": 0, "hash": audit.GENESIS}


def _save_marker(deck: Deck, through: int, last_hash: str) -> None:
    path = deck.local_dir / MARKER_FILE
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data[f"{settings(deck).bucket}/{key_prefix(deck)}"] = {"through": through, "hash": last_hash}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)  # a kill mid-write leaves the old marker: the batch is written again, and found equal


@contextlib.contextmanager
def _one_shipper(deck: Deck) -> Iterator[None]:
    """Two processes of one clone never ship overlapping batches."""
    with open(deck.local_dir / "audit-ship.lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pending(deck: Deck) -> list[dict[str, Any]]:
    """The records not shipped yet (everything after the shipped-through marker)."""
    through = int(_marker(deck)["through"])
    return [r for r in audit.read(deck) if isinstance(r.get("seq"), int) and r["seq"] > through]


@dataclass(frozen=True)
class Shipped:
    bucket: str
    keys: tuple[str, ...]
    records: int
    through: int


def _body(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()


def _check_bucket(deck: Deck) -> None:
    bucket = settings(deck).bucket
    try:
        rule = _cloud(deck).locked_store().lock_retention(bucket)
    except OpsdeckError as exc:
        raise OpsdeckError(
            f"cannot read the audit bucket {bucket} ({exc}); `opsdeck audit ship --setup` creates it"
        ) from None
    if rule is None or rule[0] != "COMPLIANCE":
        raise RefusedError(
            f"the audit bucket {bucket} has no Object Lock retention in compliance mode; "
            "`opsdeck audit ship --setup` sets it"
        )


def ship(deck: Deck, now: float | None = None) -> Shipped:
    """Write every pending record to the bucket, locked for the retention; the marker moves after each
    batch is stored. A batch already there (an earlier attempt that was cut off) must be the same."""
    config = settings(deck)
    with _one_shipper(deck):
        marker = _marker(deck)
        records = audit.read(deck)
        through, last_hash = int(marker["through"]), str(marker["hash"])
        if through and (len(records) < through or records[through - 1].get("hash") != last_hash):
            raise OpsdeckError(
                f"the local audit log changed after record {through} was shipped; nothing more is shipped "
                "(run `opsdeck audit verify`)"
            )
        todo = records[through:]
        if not todo:
            return Shipped(config.bucket, (), 0, through)
        _check_bucket(deck)
        store = _cloud(deck).locked_store()
        until = (now if now is not None else time.time()) + config.retention_days * DAY
        keys = []
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            key = f"{key_prefix(deck)}{batch[0]['seq']:012d}-{batch[-1]['seq']:012d}.jsonl"
            body = _body(batch)
            if not store.put_locked(config.bucket, key, body, until) and store.read_first(config.bucket, key) != body:
                raise OpsdeckError(
                    f"s3://{config.bucket}/{key} already holds other records: does another clone use "
                    f"this clone's id ({clone_id(deck)})?"
                )
            _save_marker(deck, int(batch[-1]["seq"]), str(batch[-1]["hash"]))
            keys.append(key)
        return Shipped(config.bucket, tuple(keys), len(todo), int(todo[-1]["seq"]))


def ship_after(deck: Deck, rep: Reporter) -> None:
    """Ship after an operation (when the deck ships its log): a failure is a notice, never an error,
    and the records wait in the local log for the next operation or `opsdeck audit ship`."""
    if deck.config.audit is None:
        return
    try:
        ship(deck)
    except (OpsdeckError, OSError, ValueError) as exc:  # a damaged marker or log too: the change is made
        try:
            waiting = f"{len(pending(deck))} records"
        except (OpsdeckError, ValueError):
            waiting = "its records"
        rep.log(
            f"{NOT_SHIPPED}: {exc}; {waiting} wait in the local log for the next operation or `opsdeck audit ship`",
            "notice",
        )


def setup(deck: Deck) -> tuple[str, int]:
    """Create the bucket with Object Lock in compliance mode and the default retention (or set the
    retention on a bucket that has Object Lock); the (mode, days) it has after."""
    config = settings(deck)
    store = _cloud(deck).locked_store()
    store.create_locked_bucket(config.bucket, config.retention_days)
    rule = store.lock_retention(config.bucket)
    if rule is None:
        raise OpsdeckError(f"{config.bucket}: Object Lock did not take (no default retention after setup)")
    return rule


@dataclass(frozen=True)
class ShippedCheck:
    bucket: str
    verified_through: int
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "verified_through": self.verified_through}


def verify_shipped(deck: Deck, records: list[dict[str, Any]]) -> ShippedCheck | None:
    """Compare the local records with the shipped copy (each object's first version, as written once);
    name the first record that differs or is missing on either side. None when nothing is shipped."""
    if deck.config.audit is None:
        return None
    bucket, prefix = settings(deck).bucket, key_prefix(deck)
    cloud = _cloud(deck)
    store = cloud.locked_store()
    claimed = int(_marker(deck)["through"])
    if not cloud.bucket_exists(bucket):
        gone = f"the audit bucket {bucket} is not there, but this clone shipped through record {claimed}"
        return ShippedCheck(bucket, 0, gone if claimed else "")  # nothing shipped yet: nothing to compare
    local = {r.get("seq"): r for r in records}
    through = 0
    for key in cloud.list_keys(bucket, prefix):
        where = f"s3://{bucket}/{key}"
        for line in (store.read_first(bucket, key) or b"").decode().splitlines():
            shipped = json.loads(line)
            seq = shipped.get("seq")
            if seq != through + 1:
                return ShippedCheck(bucket, through, f"record {through + 1} is missing from the shipped copy")
            if seq not in local:
                return ShippedCheck(bucket, through, f"record {seq} is missing from the local log (shipped in {where})")
            if local[seq] != shipped:
                return ShippedCheck(bucket, through, f"record {seq} differs from the shipped copy in {where}")
            through = seq
    if claimed > through:
        return ShippedCheck(
            bucket, through, f"record {through + 1} is missing from the shipped copy (shipped through {claimed})"
        )
    return ShippedCheck(bucket, through)


def is_audit_bucket(deck: Deck, kind: str, ident: str) -> bool:
    """The shipped audit log's bucket (``kind`` as the inventory names types): a nuke never deletes it
    and orphan hunting never lists it, whatever it is tagged with."""
    return kind == "s3:bucket" and deck.config.audit is not None and ident == deck.config.audit.bucket
