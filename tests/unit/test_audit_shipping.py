"""The audit log shipped to an Object Lock bucket, on the fake cloud: shipping after an operation, a
failure to ship as a notice with the records kept and shipped later, the shipped-through marker, each
clone under its own prefix, verify naming the first record that differs or is missing, and the bucket
left alone by nuke and orphan hunting."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsdeck.commands.admin import _audit_verify
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Event, LogLine, Reporter
from opsdeck.core.hygiene.orphans import find_orphans
from opsdeck.core.release.bake import bake
from opsdeck.core.release.promote import promote
from opsdeck.core.safety import audit, audit_shipping
from opsdeck.core.sandbox.nuke import inventory, nuke_rebuild
from opsdeck.core.types.cloud import CloudResource
from opsdeck.core.types.hygiene import Tagged
from opsdeck.errors import OpsdeckError
from tests.fake_locked import FakeLockedStore
from tests.fakes import World, fake_tools
from tests.unit.estate import git, make_estate

BUCKET = "opsdeck-audit-unit"
BUILD = ("111111111111", "us-east-1")


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "shop")
    toml = deck.root / "opsdeck.toml"
    toml.write_text(toml.read_text() + f'\n[audit]\nbucket = "{BUCKET}"\nretention_days = 7\n')
    git(deck.root, "commit", "-qam", "ship the audit log")
    deck.tools.git.close()  # type: ignore[attr-defined]
    shipping = Deck.open(deck.root, tools=fake_tools(world))
    yield shipping, world
    shipping.tools.git.close()  # type: ignore[attr-defined]


def notices(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, LogLine) and e.level == "notice"]


def promote_api(deck: Deck, sink: list[Event]) -> None:
    (image,) = asyncio.run(bake(deck, Reporter("bake"), services=["api"]))
    asyncio.run(promote(deck, image.id, "dev", Reporter("promote", "dev", sink.append), services=["api"]))


def shipped_lines(deck: Deck, world: World) -> list[str]:
    prefix = audit_shipping.key_prefix(deck)
    keys = sorted(k for b, k in world.versions if b == BUCKET and k.startswith(prefix))
    return [line for k in keys for line in world.versions[(BUCKET, k)][0][0].decode().splitlines()]


def forge(deck: Deck, seq: int, **changes: Any) -> None:
    """Rewrite the local log from record ``seq`` on as someone who can recompute the chain would."""
    records = audit.read(deck)
    prev = records[seq - 2]["hash"] if seq > 1 else audit.GENESIS
    for record in records[seq - 1 :]:
        if record["seq"] == seq:
            record.update(changes)
        record["prev"] = prev
        record["hash"] = audit._digest(record)
        prev = record["hash"]
    audit.audit_path(deck).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def test_setup_locks_the_bucket_and_a_promote_ships_its_records_locked(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    assert audit_shipping.setup(deck) == ("COMPLIANCE", 7)
    assert world.object_lock[BUCKET] == ("COMPLIANCE", 7)
    events: list[Event] = []
    before = time.time()
    promote_api(deck, events)
    assert notices(events) == []
    assert audit_shipping.pending(deck) == []
    local = audit.audit_path(deck).read_text().splitlines()
    assert shipped_lines(deck, world) == local and json.loads(local[-1])["action"] == "promote"
    (key, versions), *_ = [(k, v) for (b, k), v in world.versions.items() if b == BUCKET]
    assert key.startswith(f"audit/{audit_shipping.clone_id(deck)}/000000000001-")
    assert versions[0][1] == pytest.approx(before + 7 * 86400, abs=60)  # locked for the retention
    check = audit_shipping.verify_shipped(deck, audit.read(deck))
    assert check is not None and check.problem == ""
    assert check.verified_through == len(local)


def test_a_failure_to_ship_is_a_notice_and_the_records_wait_for_the_next_operation(
    estate: tuple[Deck, World],
) -> None:
    deck, world = estate
    events: list[Event] = []
    promote_api(deck, events)  # the bucket does not exist yet: the change is made all the same
    unshipped = audit_shipping.verify_shipped(deck, audit.read(deck))  # no bucket yet, nothing shipped: no problem
    assert unshipped is not None and (unshipped.verified_through, unshipped.problem) == (0, "")
    (notice,) = notices(events)
    assert f"audit log not shipped: cannot read the audit bucket {BUCKET}" in notice
    assert "wait in the local log for the next operation or `opsdeck audit ship`" in notice
    records = audit.read(deck)
    assert records[-1]["action"] == "promote" and records[-1]["result"] == "ok"
    assert len(audit_shipping.pending(deck)) == len(records)
    audit_shipping.setup(deck)
    again: list[Event] = []
    promote_api(deck, again)  # the next operation ships what waited, and its own records
    assert notices(again) == []
    assert audit_shipping.pending(deck) == []
    assert shipped_lines(deck, world) == audit.audit_path(deck).read_text().splitlines()


def test_a_batch_written_before_the_marker_moved_is_found_equal_and_the_marker_catches_up(
    estate: tuple[Deck, World],
) -> None:
    deck, world = estate
    audit_shipping.setup(deck)
    marker = deck.local_dir / audit_shipping.MARKER_FILE
    first = audit_shipping.ship(deck)  # what setting up the estate recorded
    assert first.records == first.through == len(audit.read(deck)) and marker.is_file()
    audit.append(deck, action="test", environment=None, result="ok")
    saved = marker.read_text()
    audit_shipping.ship(deck)
    marker.write_text(saved)  # killed after the put, before the marker moved
    assert [r["seq"] for r in audit_shipping.pending(deck)] == [first.through + 1]
    retried = audit_shipping.ship(deck)
    assert retried.through == first.through + 1 and audit_shipping.pending(deck) == []
    assert len([k for b, k in world.versions if b == BUCKET]) == 2  # written once each


def test_each_clone_ships_its_own_chain_under_its_own_prefix(estate: tuple[Deck, World], tmp_path: Path) -> None:
    deck, world = estate
    audit_shipping.setup(deck)
    other_root = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(deck.root), str(other_root)], check=True)
    other = Deck.open(other_root, tools=fake_tools(world))
    try:
        audit.append(deck, action="test", environment=None, result="ok", reason="here")
        audit.append(other, action="test", environment=None, result="ok", reason="there")
        audit_shipping.ship(deck)
        audit_shipping.ship(other)
        mine, theirs = audit_shipping.key_prefix(deck), audit_shipping.key_prefix(other)
        assert mine != theirs and mine.split("/")[1].split("-")[0] == theirs.split("/")[1].split("-")[0]  # one host
        assert audit_shipping.clone_id(deck) == (deck.local_dir / "clone-id").read_text().strip()  # kept
        assert json.loads(shipped_lines(other, world)[-1])["reason"] == "there"
        for each in (deck, other):
            check = audit_shipping.verify_shipped(each, audit.read(each))
            assert check is not None and check.problem == ""
    finally:
        other.tools.git.close()  # type: ignore[attr-defined]


@pytest.fixture()
def shipped(estate: tuple[Deck, World]) -> tuple[Deck, World]:
    deck, world = estate
    audit.audit_path(deck).unlink()  # a log of six records below, in two batches: 1-3 and 4-6
    audit_shipping.setup(deck)
    for n in range(3):
        audit.append(deck, action="test", environment=None, result="ok", reason=f"first {n}")
    audit_shipping.ship(deck)
    for n in range(3):
        audit.append(deck, action="test", environment=None, result="ok", reason=f"second {n}")
    audit_shipping.ship(deck)
    return deck, world


def test_a_rewritten_chain_passes_locally_and_verify_names_the_record_that_differs(
    shipped: tuple[Deck, World], capsys: pytest.CaptureFixture[str]
) -> None:
    deck, _ = shipped
    forge(deck, 4, reason="nothing to see")
    assert audit.verify(deck).ok  # the hash chain alone cannot tell
    check = audit_shipping.verify_shipped(deck, audit.read(deck))
    assert check is not None and check.verified_through == 3
    assert check.problem.startswith(f"record 4 differs from the shipped copy in s3://{BUCKET}/audit/")
    assert _audit_verify(deck, argparse.Namespace(json=True)) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["shipped"] == {"bucket": BUCKET, "verified_through": 3}
    assert "record 4 differs" in out["problem"]
    with pytest.raises(OpsdeckError, match="changed after record 6 was shipped"):
        audit_shipping.ship(deck)  # a rewritten chain is not shipped over the true one


def test_verify_names_a_record_missing_locally_or_from_the_shipped_copy(shipped: tuple[Deck, World]) -> None:
    deck, world = shipped
    path = audit.audit_path(deck)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:5]) + "\n")  # the last record cut off the end
    check = audit_shipping.verify_shipped(deck, audit.read(deck))
    assert check is not None and check.problem.startswith("record 6 is missing from the local log (shipped in s3://")
    path.write_text("\n".join(lines) + "\n")
    (first_key,) = [k for b, k in world.versions if b == BUCKET and k.endswith("000000000003.jsonl")]
    del world.versions[(BUCKET, first_key)], world.objects[(BUCKET, first_key)]  # as if never written
    check = audit_shipping.verify_shipped(deck, audit.read(deck))
    assert check is not None and check.problem == "record 1 is missing from the shipped copy"


def test_a_version_written_over_a_shipped_object_does_not_fool_verify(
    shipped: tuple[Deck, World], capsys: pytest.CaptureFixture[str]
) -> None:
    deck, world = shipped
    forge(deck, 2, reason="rewritten")
    (key,) = [k for b, k in world.versions if b == BUCKET and k.endswith("000000000003.jsonl")]
    forged = "".join(json.dumps(r, sort_keys=True) + "\n" for r in audit.read(deck)[:3]).encode()
    FakeLockedStore(world).overwrite(BUCKET, key, forged)  # a new version above the locked one
    check = audit_shipping.verify_shipped(deck, audit.read(deck))
    assert check is not None and check.problem.startswith("record 2 differs from the shipped copy")
    assert _audit_verify(deck, argparse.Namespace(json=False)) == 2
    assert "audit log TAMPERED: record 2 differs" in capsys.readouterr().err


def test_nuke_and_orphan_hunting_leave_the_audit_bucket_alone(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    audit_shipping.setup(deck)
    place = world.place(*BUILD)
    for bucket in (BUCKET, "sandbox-scratch"):  # both tagged as the sandbox's
        place.strays.append(CloudResource("s3:bucket", bucket, None, {"env": "sandbox"}))
    plan = asyncio.run(inventory(deck, "sandbox"))
    assert [r.id for r in plan.unmanaged] == ["sandbox-scratch"]
    asyncio.run(nuke_rebuild(deck, "sandbox", Reporter("nuke-rebuild", "sandbox")))
    assert "delete s3:bucket sandbox-scratch" in world.calls
    assert not [c for c in world.calls if c.startswith("delete") and BUCKET in c]
    for bucket in (BUCKET, "left-behind"):
        place.tagged.append(Tagged("s3:bucket", bucket, {"env": "qa"}))
    report = asyncio.run(find_orphans(deck, Reporter("orphans")))
    assert [o.id for o in report.orphans if o.type == "s3:bucket"] == ["left-behind"]


def test_a_nuke_keeps_and_names_any_object_lock_bucket_of_the_sandbox(estate: tuple[Deck, World]) -> None:
    """A locked bucket this deck does not ship to (a teammate's audit log, a deck whose [audit] was
    removed) is kept and said, not retried until the nuke fails: no one can delete it anyway."""
    deck, world = estate
    place = world.place(*BUILD)
    world.buckets.update({"someone-elses-log", "sandbox-scratch"})
    world.object_lock["someone-elses-log"] = ("COMPLIANCE", 30)
    for bucket in ("someone-elses-log", "sandbox-scratch"):
        place.strays.append(CloudResource("s3:bucket", bucket, None, {"env": "sandbox"}))
    plan = asyncio.run(inventory(deck, "sandbox"))
    assert [r.id for r in plan.unmanaged] == ["sandbox-scratch"]
    assert plan.kept == (
        "s3:bucket someone-elses-log: Object Lock, compliance mode, 30 days' retention: opsdeck never deletes it",
    )
    assert "(keep 1: Object Lock)" in plan.summary()
    assert type(plan).from_json(plan.to_json()).kept == plan.kept  # as a worker asks this deck to confirm
    asyncio.run(nuke_rebuild(deck, "sandbox", Reporter("nuke-rebuild", "sandbox")))
    assert not [c for c in world.calls if c.startswith("delete") and "someone-elses-log" in c]
