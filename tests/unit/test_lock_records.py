"""Lock records opsdeck cannot read refuse, they are never "no lock": on this machine and beside the state,
an unreadable record is an interrupted operation that `opsdeck unlock ENV` clears (with its confirmation),
and a newer opsdeck's record is read with the fields this one knows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.release import recovery
from opsdeck.core.release.promote import rollback
from opsdeck.core.safety import audit, locks
from opsdeck.errors import LockedError
from tests.fakes import World
from tests.unit.estate import make_estate

GARBAGE = {
    "truncated": '{"id": "lock-1", "env": "dev", "oper',
    "a list": '["lock-1"]',
    "binary": "\udcff\udcfe",  # what a write of something else's bytes leaves
    "no pid": json.dumps({"id": "lock-1", "env": "dev", "operation": "promote", "host": "h", "user": "u", "since": 1}),
    "pid as text": json.dumps(
        {"id": "lock-1", "env": "dev", "operation": "promote", "pid": "12", "host": "h", "user": "u", "since": 1.0}
    ),
}
NEWER = {
    "id": "lock-7",
    "env": "dev",
    "operation": "promote",
    "pid": 999999,
    "host": "gone",
    "user": "ghost",
    "since": 1.0,
    "detail": {"services": "web", "to": "ami-0new", "batches": [1, 2]},  # a newer field inside, not text
    "heartbeat": "later",  # a known field a newer opsdeck would write otherwise: left aside
    "lease": {"renew_every": 15},  # and fields this opsdeck does not know
    "schema": 3,
}


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "shop")
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


def rep() -> Reporter:
    return Reporter("test")


def _local(deck: Deck, env: str) -> Path:
    path = deck.local_dir / "locks" / f"{env}.lock"
    path.parent.mkdir(exist_ok=True)
    return path


def _team(deck: Deck, env: str) -> tuple[str, str]:
    backend = deck.backend(env)
    assert backend is not None
    return backend.bucket, backend.key + locks.LOCK_SUFFIX


def _refused_as_interrupted(deck: Deck, env: str, source: str) -> str:
    with pytest.raises(LockedError) as caught, locks.env_lock(deck, env, "promote"):
        pass
    line = str(caught.value)
    assert line.startswith(f"{env} has an interrupted operation: its lock record {source} cannot be read ("), line
    assert line.endswith(f"; check the environment, then release it with `opsdeck unlock {env}`"), line
    return line


@pytest.mark.parametrize("text", GARBAGE.values(), ids=GARBAGE.keys())
def test_a_local_record_that_does_not_parse_refuses_every_operation_naming_the_file(
    estate: tuple[Deck, World], text: str
) -> None:
    deck, _ = estate
    path = _local(deck, "dev")
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    line = _refused_as_interrupted(deck, "dev", str(path))
    assert "\n" not in line

    record, alive = locks.holder(deck, "dev")
    assert record is not None and not alive and record.where == "local" and record.unreadable
    shown = locks.status(deck, "dev")
    assert shown is not None and shown["state"] == "interrupted" and shown["problem"] == record.describe()
    with pytest.raises(
        LockedError, match=r"^dev has an interrupted operation: its lock record .* `opsdeck unlock dev`$"
    ):
        asyncio.run(rollback(deck, "dev", rep()))
    assert path.read_bytes() == text.encode("utf-8", errors="surrogateescape")  # nothing overwritten it


def test_an_empty_local_file_is_a_released_lock(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    _local(deck, "dev").write_text("  \n")  # what a holder leaves when it lets go
    assert locks.holder(deck, "dev") == (None, False)
    with locks.env_lock(deck, "dev", "promote") as record:
        assert locks.holder(deck, "dev") == (record, True)


def test_a_team_record_that_does_not_parse_refuses_from_every_clone(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    bucket, key = _team(deck, "dev")
    world.objects[(bucket, key)] = b'{"id": "lock-1", "env": "d'
    _refused_as_interrupted(deck, "dev", f"s3://{bucket}/{key}")
    record, alive = locks.holder(deck, "dev")
    assert record is not None and not alive and record.where == "team"
    assert world.objects[(bucket, key)] == b'{"id": "lock-1", "env": "d'  # still there: nobody took it
    # An empty object beside the state is not a released lock (a released one is deleted): it refuses too.
    world.objects[(bucket, key)] = b""
    _refused_as_interrupted(deck, "dev", f"s3://{bucket}/{key}")


@pytest.mark.parametrize("where", ["local", "team"])
def test_a_newer_opsdecks_record_is_read_with_the_fields_it_knows(estate: tuple[Deck, World], where: str) -> None:
    deck, world = estate
    if where == "local":
        _local(deck, "dev").write_text(json.dumps(NEWER))
    else:
        world.objects[_team(deck, "dev")] = json.dumps(NEWER).encode()
    record, alive = locks.holder(deck, "dev")
    assert record is not None and not alive and not record.unreadable and record.where == where
    assert (record.id, record.operation, record.user, record.host, record.pid) == (
        "lock-7",
        "promote",
        "ghost",
        "gone",
        999999,
    )
    assert record.detail == {"services": "web", "to": "ami-0new"} and record.heartbeat == 0.0
    interrupted = r"^dev has an interrupted operation: promote by ghost@gone \(pid 999999\)"
    with pytest.raises(LockedError, match=interrupted), locks.env_lock(deck, "dev", "rollback"):
        pass


def test_unlock_clears_an_unreadable_record_here_and_beside_the_state(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    audit.append(deck, action="promote", environment="dev", result="started", who={"user": "ghost"})
    _local(deck, "dev").write_text("{not json")
    world.objects[_team(deck, "dev")] = b"\x00\x01 not a record"
    found = recovery.inspect(deck, "dev")
    assert found is not None and found.record.where == "team" and found.record.unreadable
    asyncio.run(recovery.unlock(deck, "dev", rep()))
    assert locks.holder(deck, "dev") == (None, False) and _team(deck, "dev") not in world.objects
    assert audit.read(deck)[-2]["result"] == "interrupted"  # the operation it stood for, closed
    assert audit.read(deck)[-1]["lock_id"] == found.record.id and audit.verify(deck).ok
    with locks.env_lock(deck, "dev", "promote"):
        pass


class _Terminal:
    def isatty(self) -> bool:
        return True


def test_opsdeck_unlock_asks_before_it_clears_an_unreadable_record(
    estate: tuple[Deck, World], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from opsdeck.cli import main
    from opsdeck.commands import admin

    deck, _ = estate
    path = _local(deck, "dev")
    path.write_text("{not json")
    monkeypatch.setattr(admin, "open_deck", lambda args: deck)
    assert main(["unlock", "dev"]) == 1  # no terminal, no --yes: nothing released
    err = capfd.readouterr().err
    assert f"dev: its lock record {path} cannot be read (not JSON: a write cut short?)" in err
    assert err.strip().splitlines()[-1] == "opsdeck: unlock needs confirmation: re-run with --yes"
    assert path.read_text() == "{not json"

    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: "dev")
    assert main(["unlock", "dev"]) == 0
    out = capfd.readouterr().out
    assert out.startswith("released dev's lock (unreadable lock record, lock id unreadable-"), out
    assert locks.holder(deck, "dev") == (None, False)


def test_the_fields_a_record_is_read_by_are_the_records_own() -> None:
    from dataclasses import fields

    known = {f.name for f in fields(locks.LockRecord)} - {"where", "unreadable"}
    assert set(locks._REQUIRED) | set(locks._OPTIONAL) == known
