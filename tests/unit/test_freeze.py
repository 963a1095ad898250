"""Change freezes on the fake tools with real git and real SSH keys: a freeze signed in one clone refuses
every change in the other (one line, audited), break-glass passes it (audited as a bypass), it lifts
itself when its time has passed, and no unsigned, forged, deleted or replayed record changes it."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest

from opsdeck.adapters import sshsig
from opsdeck.adapters.aws import Credentials
from opsdeck.core.drift.reconcile import apply_env
from opsdeck.core.estate.deck import Deck
from opsdeck.core.ledger.remote import latest
from opsdeck.core.observe.status import deck_status
from opsdeck.core.release.execute import execute
from opsdeck.core.release.promote import ReleaseResult, deploy_newest, promote, rollback
from opsdeck.core.safety import audit
from opsdeck.core.safety.breakglass import BreakGlass, open_break_glass
from opsdeck.core.safety.freeze import parse_until, read_freeze, signed_payload
from opsdeck.core.sandbox.nuke import nuke_rebuild
from opsdeck.core.team import approvals
from opsdeck.core.team.covers import NAMESPACE
from opsdeck.core.team.freezing import freeze, unfreeze
from opsdeck.errors import ConfigError, RefusedError
from tests.unit.estate import git
from tests.unit.team import Team, bake_one, file_request, rep

HOUR = 3600.0


def _freeze(deck: Deck, *envs: str, hours: float = 2.0, reason: str = "black friday", key: str | None = None) -> None:
    asyncio.run(freeze(deck, list(envs), time.time() + hours * HOUR, reason, rep(), key=key))


def _refused_as_frozen(deck: Deck, action: str, env: str, call: object) -> str:
    with pytest.raises(RefusedError) as caught:
        asyncio.run(call)  # type: ignore[arg-type]
    line = str(caught.value)
    assert "frozen" in line and "\n" not in line, line
    record = audit.read(deck)[-1]
    assert (record["action"], record["environment"], record["result"]) == (action, env, "refused")
    assert "frozen" in record["error"]
    return line


def _commit_by_hand(deck: Deck, rel: str, text: str | None, message: str) -> None:
    """A plain commit to the ledger, as anyone with push access could make one (no signature)."""
    path = deck.root / rel
    if text is None:
        git(deck.root, "rm", "-q", rel)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        git(deck.root, "add", rel)
    git(deck.root, "commit", "-qm", message)
    git(deck.root, "push", "-q")


def test_a_freeze_in_one_clone_refuses_every_change_in_the_other_naming_who_why_and_until(team: Team) -> None:
    web = bake_one(team.a, "web")
    _freeze(team.a, "dev", reason="black friday")
    line = _refused_as_frozen(team.b, "promote", "dev", promote(team.b, web, "dev", rep(), services=["web"]))
    assert "dev is frozen by alice@shop.example until " in line and ": black friday" in line
    _refused_as_frozen(team.b, "deploy", "dev", deploy_newest(team.b, "dev", rep(), services=["web"]))
    _refused_as_frozen(team.b, "rollback", "dev", rollback(team.b, "dev", rep(), services=["web"]))
    _refused_as_frozen(team.b, "apply", "dev", apply_env(team.b, "dev", rep()))
    state = asyncio.run(deck_status(team.b, rep()))
    frozen = state.env("dev").freeze
    assert frozen is not None and frozen["by"] == "alice@shop.example" and frozen["reason"] == "black friday"
    assert time.time() + HOUR < frozen["until"] < time.time() + 2 * HOUR
    assert state.env("sandbox").freeze is None  # only dev was frozen
    assert asyncio.run(deploy_newest(team.b, "sandbox", rep(), services=["web"]))  # the rest goes on


def test_nuke_and_an_approved_request_are_refused_too(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)  # alice's promote to staging, waiting for approval
    asyncio.run(approvals.approve(team.b, request.id, rep()))
    _freeze(team.b, "staging", "sandbox", reason="audit week")  # bob freezes; anyone in allowed_signers may
    _refused_as_frozen(team.a, "promote", "staging", execute(team.a, request.id, rep()))
    _refused_as_frozen(team.a, "nuke-rebuild", "sandbox", nuke_rebuild(team.a, "sandbox", rep()))
    asyncio.run(unfreeze(team.a, ["staging"], rep()))  # alice lifts bob's freeze of staging
    assert isinstance(asyncio.run(execute(team.a, request.id, rep())), ReleaseResult)


def test_break_glass_passes_a_freeze_and_is_audited_as_its_bypass(team: Team) -> None:
    _freeze(team.a, "dev", "prod", reason="incident 41")
    web = bake_one(team.b, "web")
    with pytest.raises(RefusedError, match="sandbox is not protected; break-glass is only for protected"):
        open_break_glass(team.b, "sandbox", "why not")  # nothing to break into: not protected, not frozen
    glass = open_break_glass(team.b, "dev", "the fix for incident 41")  # frozen, not protected: passes the freeze
    assert glass.credentials is None and "passes its freeze only" in glass.source
    opened = audit.read(team.b)[-1]
    assert opened["action"] == "break-glass" and opened["freeze"]["by"] == "alice@shop.example"
    result = asyncio.run(promote(team.b, web, "dev", rep(), services=["web"], reason="fix 41", glass=glass))
    assert isinstance(result, ReleaseResult)
    closing = audit.read(team.b)[-1]
    assert (closing["action"], closing["result"], closing["break_glass"]) == ("promote", "ok", True)
    assert closing["freeze_bypassed"]["by"] == "alice@shop.example"
    assert closing["freeze_bypassed"]["reason"] == "incident 41"
    expired = BreakGlass("dev", "old", 0.0, 1.0, source="test")  # an ended break-glass passes nothing
    _refused_as_frozen(team.b, "rollback", "dev", rollback(team.b, "dev", rep(), services=["web"], glass=expired))
    _refused_as_frozen(team.b, "apply", "prod", apply_env(team.b, "prod", rep()))
    creds = Credentials("ASIAFAKEPRODFREEZE", "secret", "token")  # protected and frozen: one break-glass passes both
    team.world.keys[creds.access_key] = "333333333333"
    prod = BreakGlass("prod", "incident 41", 0.0, 1e12, credentials=creds, source="test")
    result = asyncio.run(apply_env(team.b, "prod", rep(), glass=prod))
    assert not isinstance(result, ReleaseResult) and audit.read(team.b)[-1]["result"] == "ok"
    assert audit.read(team.b)[-1]["freeze_bypassed"]["reason"] == "incident 41"


def test_a_freeze_lifts_itself_when_its_time_has_passed(team: Team) -> None:
    _freeze(team.a, "sandbox", hours=1.0)
    latest(team.b)
    state = read_freeze(team.b, "sandbox")
    assert state.freeze is not None
    assert read_freeze(team.b, "sandbox", now=state.freeze.until - 1).freeze is not None
    assert read_freeze(team.b, "sandbox", now=state.freeze.until + 1).freeze is None  # no commit needed
    path = team.a.root / "freezes" / "sandbox.json"
    record = json.loads(path.read_text())
    record["until"] = "2000-01-01T00:00:00Z"  # as if it had ended: only a signed record may say so
    _commit_by_hand(team.a, "freezes/sandbox.json", json.dumps(record), "shorten the freeze")
    latest(team.b)
    after = read_freeze(team.b, "sandbox")
    assert after.freeze is not None and "signature does not verify" in after.problem


def test_unfreeze_by_anyone_in_allowed_signers_lifts_it_and_changes_run_again(team: Team) -> None:
    bake_one(team.a, "web")
    _freeze(team.a, "sandbox")
    done = asyncio.run(unfreeze(team.b, ["sandbox"], rep()))
    assert [(d.environment, d.decision, d.by) for d in done] == [("sandbox", "unfreeze", "bob@shop.example")]
    assert done[0].replaced is not None and done[0].replaced.by == "alice@shop.example"
    latest(team.a)
    assert read_freeze(team.a, "sandbox").freeze is None  # after alice's next sync, as every clone sees it
    assert asyncio.run(deploy_newest(team.a, "sandbox", rep(), services=["web"]))
    again = asyncio.run(unfreeze(team.a, ["sandbox"], rep()))
    assert [d.decision for d in again] == ["none"]  # nothing left to lift, nothing committed
    records = [r for r in audit.read(team.b) if r["action"] == "unfreeze"]
    assert records[-1]["result"] == "ok" and records[-1]["lifted"]["by"] == "alice@shop.example"


def test_freeze_all_is_one_commit_and_unfreeze_all_lifts_them(team: Team) -> None:
    before = git(team.a.root, "rev-list", "--count", "HEAD")
    _freeze(team.a, *team.a.config.env_names, reason="holiday")
    assert int(git(team.a.root, "rev-list", "--count", "HEAD")) == int(before) + 1
    state = asyncio.run(deck_status(team.b, rep()))
    assert all(e.freeze is not None for e in state.environments)
    asyncio.run(unfreeze(team.b, team.b.config.env_names, rep()))
    state = asyncio.run(deck_status(team.a, rep()))
    assert all(e.freeze is None and not e.freeze_problem for e in state.environments)


def test_an_unsigned_or_forged_freeze_blocks_nobody_and_status_says_so(team: Team) -> None:
    bake_one(team.a, "web")
    until = "2099-01-01T00:00:00Z"
    unsigned = {"format": 1, "decision": "freeze", "environment": "sandbox", "by": "alice@shop.example"}
    unsigned |= {"reason": "forever", "until": until, "made_at": "2026-01-01T00:00:00Z"}
    _commit_by_hand(team.a, "freezes/sandbox.json", json.dumps(unsigned), "freeze sandbox (unsigned)")
    assert asyncio.run(deploy_newest(team.b, "sandbox", rep(), services=["web"]))  # not refused
    row = asyncio.run(deck_status(team.b, rep())).env("sandbox")
    assert row.freeze is None and "does not count (it is not signed): it is ignored" in row.freeze_problem
    _freeze(team.a, "dev", key=str(team.keys["carol"]))  # carol may freeze: she is in allowed_signers
    edited = json.loads((team.a.root / "freezes" / "dev.json").read_text())
    edited["by"] = "bob@shop.example"  # the signature covers who
    _commit_by_hand(team.a, "freezes/dev.json", json.dumps(edited), "edit the freeze")
    latest(team.b)
    state = read_freeze(team.b, "dev")
    assert "its signature does not verify" in state.problem
    assert state.freeze is not None and state.freeze.by == "carol@shop.example"  # carol's signed one holds
    forged = {**edited, "made_at": "2098-01-01T00:00:00Z", "reason": "in bob's name"}
    forged["signature"] = sshsig.sign(str(team.keys["carol"]), NAMESPACE, signed_payload(forged))
    _commit_by_hand(team.a, "freezes/dev.json", json.dumps(forged), "freeze dev in bob's name")
    latest(team.b)
    state = read_freeze(team.b, "dev")
    assert "names bob@shop.example but is signed by carol@shop.example" in state.problem
    assert state.freeze is not None and state.freeze.reason == "black friday"
    head = git(team.a.root, "rev-parse", "HEAD")
    with pytest.raises(RefusedError, match="is not in allowed_signers"):
        _freeze(team.a, "sandbox", key=str(team.keys["mallory"]))
    assert git(team.a.root, "rev-parse", "HEAD") == head and not git(team.a.root, "status", "--porcelain")
    refused = audit.read(team.a)[-1]
    assert (refused["action"], refused["result"]) == ("freeze", "refused")
    tidy = asyncio.run(unfreeze(team.b, ["sandbox"], rep()))  # a signed record replaces the one that did not count
    assert [d.decision for d in tidy] == ["tidy"] and not read_freeze(team.b, "sandbox").problem


def test_an_unsigned_unfreeze_or_a_deleted_file_lifts_nothing_and_a_replay_brings_nothing_back(team: Team) -> None:
    _freeze(team.a, "dev", reason="incident 7")
    lift = {"format": 1, "decision": "unfreeze", "environment": "dev", "by": "alice@shop.example"}
    lift |= {"made_at": "2099-01-01T00:00:00Z", "lifts": read_freeze(team.a, "dev").freeze.id}  # type: ignore[union-attr]
    _commit_by_hand(team.a, "freezes/dev.json", json.dumps(lift), "unfreeze dev (unsigned)")
    latest(team.b)
    state = read_freeze(team.b, "dev")
    assert state.freeze is not None and "the signed freeze by alice@shop.example holds" in state.problem
    _commit_by_hand(team.a, "freezes/dev.json", None, "delete the freeze")
    latest(team.b)
    state = read_freeze(team.b, "dev")
    assert state.freeze is not None and "deleted" in state.problem and "without a signed unfreeze" in state.problem
    _refused_as_frozen(team.b, "deploy", "dev", deploy_newest(team.b, "dev", rep(), services=["web"]))
    old = git(team.a.root, "show", "HEAD~2:freezes/dev.json")  # alice's signed freeze, as first committed
    asyncio.run(unfreeze(team.b, ["dev"], rep()))
    git(team.a.root, "pull", "-q")
    _commit_by_hand(team.a, "freezes/dev.json", old, "freeze dev again (a replay)")
    latest(team.b)
    assert git(team.b.root, "show", "HEAD:freezes/dev.json") == old
    assert read_freeze(team.b, "dev").freeze is None  # its signed unfreeze still names it


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("tomorrow", "expected a duration (90m, 2h, 3d) or an ISO 8601 time"),
        ("0m", "expected a duration above 0"),
        ("2001-01-01T00:00:00Z", "that time has passed"),
        ("-2h", "expected a duration (90m, 2h, 3d) or an ISO 8601 time"),
    ],
)
def test_until_takes_a_duration_or_an_iso_time_and_bad_input_is_one_line(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)")) as caught:
        parse_until(text, now=1_800_000_000.0)
    assert str(caught.value).startswith(f"--until {text}: ")


def test_until_durations_and_times() -> None:
    now = 1_800_000_000.0
    assert parse_until("90m", now) == now + 5400
    assert parse_until("2h", now) == now + 7200
    assert parse_until("3d", now) == now + 3 * 86400
    assert parse_until("2027-02-01T00:00:00Z", now) == datetime(2027, 2, 1, tzinfo=UTC).timestamp()
    assert parse_until("2027-03-01T08:00:00+00:00", now) == parse_until("2027-03-01T09:00:00+01:00", now)
