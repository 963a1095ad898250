"""The audit log's hash chain: each kind of tampering is found and named; the log holds no secret."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.safety import audit


@pytest.fixture()
def deck(sample_copy: Path) -> Deck:
    subprocess.run(["git", "init", "-q", "-b", "main", str(sample_copy)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(sample_copy),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@x",
            "commit",
            "-qm",
            "deck",
            "--allow-empty",
        ],
        check=True,
    )
    d = Deck.open(sample_copy)
    for n in range(6):
        audit.append(d, action="promote", environment="dev", result="ok", reason=f"release {n}", who={"user": "t"})
    return d


def _lines(d: Deck) -> list[str]:
    return audit.audit_path(d).read_text().splitlines()


def _write(d: Deck, lines: list[str]) -> None:
    audit.audit_path(d).write_text("\n".join(lines) + "\n")


def test_intact_log_verifies(deck: Deck) -> None:
    result = audit.verify(deck)
    assert result.ok and result.records == 6 and result.problem == ""
    records = audit.read(deck)
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0]["prev"] == audit.GENESIS and records[3]["prev"] == records[2]["hash"]


def test_edited_record_is_named(deck: Deck) -> None:
    lines = _lines(deck)
    record = json.loads(lines[2])
    record["reason"] = "nothing to see"
    lines[2] = json.dumps(record, sort_keys=True)
    _write(deck, lines)
    result = audit.verify(deck)
    assert not result.ok
    assert result.problem == "record 3 (line 3) was edited: its hash does not match"


def test_removed_record_is_named(deck: Deck) -> None:
    lines = _lines(deck)
    del lines[2]
    _write(deck, lines)
    assert audit.verify(deck).problem == "record 3 (before line 3) were removed"
    del lines[2]
    _write(deck, lines)
    assert audit.verify(deck).problem == "records 3 to 4 (before line 3) were removed"


def test_reordered_records_are_named(deck: Deck) -> None:
    lines = _lines(deck)
    lines[1], lines[3] = lines[3], lines[1]
    _write(deck, lines)
    assert audit.verify(deck).problem == "record 4 (line 2) is out of order: record 2 should come here"


def _commit(deck: Deck, message: str) -> None:
    subprocess.run(
        [
            "git",
            "-C",
            str(deck.root),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@x",
            "commit",
            "-qm",
            message,
            "--allow-empty",
        ],
        check=True,
    )


def test_records_cut_off_the_end_are_caught_by_git_anchors(deck: Deck) -> None:
    last = audit.read(deck)[-1]
    _commit(deck, f"promote web 1.0.1 to dev\n\n{audit.TRAILER}: {last['hash']}")
    assert audit.verify(deck).ok
    _write(deck, _lines(deck)[:-1])
    result = audit.verify(deck)
    assert not result.ok
    assert result.problem.startswith("git commit ") and result.problem.endswith(
        f"names audit record {last['hash'][:12]}, which is gone"
    )


def test_a_teammates_or_a_workers_anchor_is_their_logs_not_this_ones(deck: Deck) -> None:
    """Commits made in another clone (a teammate's, an engine worker's) name records of that clone's log:
    this clone's verify leaves them to it; its own anchors are still checked."""
    last = audit.read(deck)[-1]
    _commit(deck, f"rollback dev: worker\n\n{audit.TRAILER}: {'f' * 64} vm-0123456789ab")
    assert audit.verify(deck).ok, audit.verify(deck).problem
    _commit(deck, f"promote web 1.0.1 to dev\n\n{audit.anchor(deck, last['hash'])}")
    assert audit.anchor(deck, last["hash"]).endswith(" " + audit.clone_id(deck))
    assert audit.verify(deck).ok
    _write(deck, _lines(deck)[:-1])
    result = audit.verify(deck)
    assert not result.ok and result.problem.endswith(f"names audit record {last['hash'][:12]}, which is gone")


def test_garbage_line_is_reported_not_skipped(deck: Deck) -> None:
    _write(deck, [*_lines(deck), "not json"])
    result = audit.verify(deck)
    assert not result.ok and "line 7 is not a JSON record" in result.problem


def test_held_secrets_are_redacted_in_records(deck: Deck) -> None:
    from opsdeck.core.types.cloud import Credentials
    from tests.fakes import World, fake_tools

    deck = Deck.open(deck.root, tools=fake_tools(World()))
    deck.tools.env("prod", Credentials("AKIAPLANTED", "planted-secret-value-42"))  # break-glass, handed out
    audit.append(
        deck,
        action="promote",
        environment="prod",
        result="failed",
        error="tool said: AWS_SECRET_ACCESS_KEY=planted-secret-value-42",
        who={"user": "t"},
    )
    text = audit.audit_path(deck).read_text()
    assert "planted-secret-value-42" not in text
    assert audit.verify(deck).ok


def test_every_operation_classifies_an_error_the_same_way() -> None:
    import asyncio

    from opsdeck.errors import OpsdeckError, RefusedError

    assert audit.outcome(RefusedError("no")) == "refused"
    assert audit.outcome(OpsdeckError("broke")) == "failed"
    assert audit.outcome(TypeError("bug")) == "failed"  # a bug is a failure, not an interruption
    assert audit.outcome(asyncio.CancelledError()) == "interrupted"
    assert audit.outcome(KeyboardInterrupt()) == "interrupted"
