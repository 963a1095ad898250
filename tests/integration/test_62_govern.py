"""Change freezes and sandbox lifetimes through the real CLI on the demo deck: a signed freeze refuses a
change in one line, break-glass passes it (audited as the bypass), unfreeze lets changes run again; a
sandbox whose lifetime ended is listed by `sandbox expire` (a dry run: the shared sandbox is left
standing) and `sandbox extend` gives it more time. Runs after test_60_team (the demo's remote and keys).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import edited, opsdeck

pytestmark = pytest.mark.integration


def _git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def _status(deck: Path) -> dict[str, Any]:
    data = json.loads(opsdeck("status", "--json", deck=deck, check=True).stdout)
    return {e["name"]: e for e in data["environments"]}


def _audit(deck: Path) -> list[dict[str, Any]]:
    return list(json.loads(opsdeck("audit", "--json", deck=deck, check=True).stdout))


@pytest.fixture()
def thawed(demo_deck: Path) -> Iterator[Path]:
    """The demo deck, its sandbox unfrozen again whatever the test did."""
    yield demo_deck
    opsdeck("unfreeze", "sandbox", deck=demo_deck, check=True)


def test_a_freeze_refuses_in_one_line_break_glass_passes_and_unfreeze_lifts_it(thawed: Path) -> None:
    deck = thawed
    froze = opsdeck("freeze", "sandbox", "--until", "2h", "--reason", "quarter close", deck=deck, check=True)
    assert froze.stdout.startswith("froze sandbox until ") and "as alice@" in froze.stdout
    assert "freeze sandbox until " in _git(deck, "log", "-1", "--format=%s", "origin/main")  # pushed
    freeze = _status(deck)["sandbox"]["freeze"]
    assert freeze["reason"] == "quarter close" and freeze["by"].startswith("alice@")
    assert time.time() + 3600 < freeze["until"] <= time.time() + 7200
    for args in (("deploy", "sandbox", "--yes"), ("apply", "sandbox", "--yes"), ("nuke-rebuild", "sandbox", "--yes")):
        refused = opsdeck(*args, deck=deck)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 1 and len(lines) == 1, refused.stderr
        assert "frozen" in lines[0] and "sandbox is frozen by alice@" in lines[0] and "quarter close" in lines[0]
        assert _audit(deck)[-1]["result"] == "refused"
    passed = opsdeck("apply", "sandbox", "--yes", "--break-glass", "--reason", "hotfix during close", deck=deck)
    assert passed.returncode == 0, passed.stderr
    applied = [r for r in _audit(deck) if r.get("action") == "apply"][-1]
    assert applied["result"] == "ok" and applied["break_glass"] is True
    assert applied["freeze_bypassed"]["reason"] == "quarter close"
    lifted = opsdeck("unfreeze", "sandbox", deck=deck, check=True)
    assert lifted.stdout.startswith("unfroze sandbox as alice@")
    assert _status(deck)["sandbox"]["freeze"] is None
    again = opsdeck("apply", "sandbox", "--yes", deck=deck)
    assert again.returncode == 0, again.stderr


def test_sandbox_expire_lists_an_ended_lifetime_and_extend_gives_it_more_time(demo_deck: Path) -> None:
    deck = demo_deck
    record = {"environment": "sandbox", "build": "apply", "built_at": time.time() - 2 * 3600, "built_by": "test"}
    (deck / "lifetimes").mkdir(exist_ok=True)
    (deck / "lifetimes" / "sandbox.json").write_text(json.dumps(record))
    _git(deck, "add", "lifetimes/sandbox.json")
    _git(deck, "commit", "-qm", "sandbox: built two hours ago (test)", "--", "lifetimes/sandbox.json")
    try:
        with edited(deck / "opsdeck.toml", "sandbox = true\n", "sandbox = true\nttl_hours = 1\n"):
            assert _status(deck)["sandbox"]["expires_at"] == pytest.approx(record["built_at"] + 3600)
            dry = json.loads(opsdeck("sandbox", "expire", "--json", deck=deck, check=True).stdout)
            assert dry["dry_run"] and [s["environment"] for s in dry["sandboxes"]] == ["sandbox"]
            listed = dry["sandboxes"][0]
            assert listed["result"] == "would destroy" and listed["plan"]["managed"], listed
            assert _status(deck)["sandbox"]["services"][0]["instances"]["running"] > 0  # nothing destroyed
            opsdeck("sandbox", "extend", "sandbox", "--hours", "3", "--reason", "demo", deck=deck, check=True)
            assert _status(deck)["sandbox"]["expires_at"] == pytest.approx(time.time() + 3 * 3600, abs=120)
            assert (
                opsdeck("sandbox", "expire", deck=deck, check=True).stdout.strip() == "no sandbox's lifetime has ended"
            )
            assert _audit(deck)[-1]["action"] == "sandbox-extend"
    finally:
        _git(deck, "rm", "-q", "lifetimes/sandbox.json")
        _git(deck, "commit", "-qm", "the test's sandbox lifetime, gone", "--", "lifetimes/sandbox.json")
        _git(deck, "push", "-q")
