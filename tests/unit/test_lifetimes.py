"""Sandbox lifetimes on the fake tools with real git: the build recorded in the ledger by the first apply
and each nuke-and-rebuild (shared by every clone), `sandbox expire` destroying without rebuilding (a dry
run first; protected accounts and freezes refused), `sandbox extend`, the config checks and the schedule."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdeck.cli import build_parser
from opsdeck.core.estate import lifetimes
from opsdeck.core.estate.config import load_config
from opsdeck.core.estate.deck import Deck
from opsdeck.core.ledger.remote import latest
from opsdeck.core.observe.status import deck_status
from opsdeck.core.release.promote import deploy_newest
from opsdeck.core.safety import audit
from opsdeck.core.sandbox.expire import expire, extend
from opsdeck.core.sandbox.nuke import nuke_rebuild
from opsdeck.core.team.freezing import freeze
from opsdeck.errors import ConfigError, RefusedError
from tests.fakes import World, fake_tools
from tests.helpers import opsdeck
from tests.unit.estate import git, make_estate
from tests.unit.team import Team, bake_one, rep

HOUR = 3600.0
BUILD_DEV = "111111111111"


def _with_ttl(root: Path, hours: float = 8.0, protected: str = "333333333333") -> None:
    toml = root / "opsdeck.toml"
    text = toml.read_text().replace("sandbox = true\n", f"sandbox = true\nttl_hours = {hours}\n", 1)
    toml.write_text(text.replace('protected_accounts = ["333333333333"]', f'protected_accounts = ["{protected}"]'))
    git(root, "commit", "-qm", "sandbox lifetime", "--", "opsdeck.toml")


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    made, world = make_estate(tmp_path / "shop")
    made.tools.git.close()  # type: ignore[attr-defined]
    _with_ttl(made.root)
    deck = Deck.open(made.root, tools=fake_tools(world))
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


def _record(deck: Deck, **fields: object) -> None:
    """The sandbox's lifetime record as if written earlier (its build hours ago)."""
    rel = lifetimes.lifetime_path("sandbox")
    path = deck.root / rel
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"environment": "sandbox", "build": "apply", **fields}))
    git(deck.root, "add", rel)
    git(deck.root, "commit", "-qm", "an older lifetime")


def _row(deck: Deck) -> dict[str, object] | None:
    return asyncio.run(deck_status(deck, rep())).env("sandbox").lifetime


def test_the_first_apply_starts_the_lifetime_and_a_later_release_does_not_restart_it(
    estate: tuple[Deck, World],
) -> None:
    deck, _ = estate
    assert _row(deck) == {"ttl_hours": 8.0, "expires_at": None, "built_at": None, "build": None}  # none recorded
    bake_one(deck, "web")
    started = time.time()
    asyncio.run(deploy_newest(deck, "sandbox", rep(), services=["web"]))
    record = lifetimes.read_lifetime(deck, "sandbox")
    assert record is not None and record.build == "apply" and started <= record.built_at <= time.time()
    assert "sandbox sandbox: built (apply); its lifetime of 8h ends at" in git(deck.root, "log", "--format=%s")
    assert not git(deck.root, "status", "--porcelain", "lifetimes")  # committed
    row = _row(deck)
    assert row is not None and row["expires_at"] == pytest.approx(record.built_at + 8 * HOUR)
    bake_one(deck, "web")
    asyncio.run(deploy_newest(deck, "sandbox", rep(), services=["web"]))
    assert lifetimes.read_lifetime(deck, "sandbox") == record  # a release is not a build
    assert lifetimes.status_of(deck, "dev") is None  # only sandboxes with ttl_hours have one


def test_a_nuke_and_rebuild_starts_a_new_lifetime(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    _record(deck, built_at=time.time() - 9 * HOUR)
    assert [env for env, _ in lifetimes.ended(deck)] == ["sandbox"]
    asyncio.run(nuke_rebuild(deck, "sandbox", rep()))
    record = lifetimes.read_lifetime(deck, "sandbox")
    assert record is not None and record.build == "nuke-rebuild" and time.time() - record.built_at < 60
    assert lifetimes.ended(deck) == []


def test_expire_lists_first_then_destroys_without_rebuilding_and_the_next_apply_builds_anew(
    estate: tuple[Deck, World],
) -> None:
    deck, world = estate
    _record(deck, built_at=time.time() - 9 * HOUR)
    dry = asyncio.run(expire(deck, rep()))
    assert [(e.environment, e.result) for e in dry] == [("sandbox", "would destroy")]
    assert dry[0].plan is not None and any("aws_autoscaling_group" in a for a in dry[0].plan.managed)
    assert "destroy sandbox" not in world.calls  # a dry run
    done = asyncio.run(expire(deck, rep(), yes=True))
    assert [(e.environment, e.result) for e in done] == [("sandbox", "destroyed")]
    assert "destroy sandbox" in world.calls
    assert len([c for c in world.calls if c.startswith("apply sandbox")]) == 1  # the setup's: nothing rebuilt
    place = world.place(BUILD_DEV, "us-east-1")
    assert not [g for g in place.groups.values() if g.tags["env"] == "sandbox"]
    assert [g for g in place.groups.values() if g.tags["env"] == "dev"]  # dev shares the account, untouched
    closing = audit.read(deck)[-1]
    assert (closing["action"], closing["environment"], closing["result"]) == ("sandbox-expire", "sandbox", "ok")
    row = _row(deck)
    assert row is not None and row["expires_at"] is None and row["destroyed_at"]
    assert asyncio.run(expire(deck, rep(), yes=True)) == []  # destroyed: not listed again
    bake_one(deck, "web")
    asyncio.run(deploy_newest(deck, "sandbox", rep(), services=["web"]))  # builds it again
    record = lifetimes.read_lifetime(deck, "sandbox")
    assert record is not None and record.running and time.time() - record.built_at < 60


def test_expire_refuses_a_protected_account_and_a_frozen_sandbox(team: Team) -> None:
    _with_ttl(team.a.root, protected=BUILD_DEV)  # the sandbox's account is a protected one
    _record(team.a, built_at=time.time() - 9 * HOUR)
    git(team.a.root, "push", "-q")
    alice = Deck.open(team.a.root, tools=fake_tools(team.world))
    dry = asyncio.run(expire(alice, rep()))
    assert [(e.result, "aws.protected_accounts" in e.detail) for e in dry] == [("refused", True)]
    done = asyncio.run(expire(alice, rep(), yes=True))
    assert done[0].result == "refused" and "destroy sandbox" not in team.world.calls
    assert audit.read(alice)[-1]["result"] == "refused"
    alice.tools.git.close()  # type: ignore[attr-defined]
    latest(team.b)
    toml = team.b.root / "opsdeck.toml"
    toml.write_text(toml.read_text().replace(f'protected_accounts = ["{BUILD_DEV}"]', "protected_accounts = []"))
    git(team.b.root, "commit", "-qam", "unprotect it again")
    bob = Deck.open(team.b.root, tools=fake_tools(team.world))
    asyncio.run(freeze(bob, ["sandbox"], time.time() + HOUR, "demo at 3pm", rep()))
    dry = asyncio.run(expire(bob, rep()))
    assert dry[0].result == "refused" and "sandbox is frozen by bob@shop.example" in dry[0].detail
    done = asyncio.run(expire(bob, rep(), yes=True))
    assert done[0].result == "refused" and "frozen" in done[0].detail and "destroy sandbox" not in team.world.calls
    bob.tools.git.close()  # type: ignore[attr-defined]


def test_extend_adds_hours_from_the_end_or_from_now_once_ended(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    built = time.time() - 7 * HOUR  # one hour left of eight
    _record(deck, built_at=built)
    record = asyncio.run(extend(deck, "sandbox", 3, rep(), reason="demo tomorrow"))
    assert record.expires_at(8) == pytest.approx(built + 11 * HOUR)
    extended = audit.read(deck)[-1]
    assert (extended["action"], extended["result"], extended["hours"]) == ("sandbox-extend", "ok", 3)
    _record(deck, built_at=time.time() - 20 * HOUR)  # ended twelve hours ago
    record = asyncio.run(extend(deck, "sandbox", 2, rep()))
    assert record.expires_at(8) == pytest.approx(time.time() + 2 * HOUR, abs=60)
    with pytest.raises(RefusedError, match="dev has no lifetime to extend"):
        asyncio.run(extend(deck, "dev", 2, rep()))
    assert audit.read(deck)[-1]["result"] == "refused"
    with pytest.raises(ConfigError, match=r"^--hours 0: expected a number of hours above 0$"):
        asyncio.run(extend(deck, "sandbox", 0, rep()))
    _record(deck, built_at=built, destroyed_at=time.time())
    with pytest.raises(RefusedError, match="no build recorded since it was destroyed"):
        asyncio.run(extend(deck, "sandbox", 2, rep()))


def test_a_lifetime_recorded_in_one_clone_is_the_one_every_clone_counts(team: Team) -> None:
    _with_ttl(team.a.root, hours=4)
    git(team.a.root, "push", "-q")
    alice = Deck.open(team.a.root, tools=fake_tools(team.world))
    bake_one(alice, "web")
    asyncio.run(deploy_newest(alice, "sandbox", rep(), services=["web"]))  # pushed with the release
    latest(team.b)
    bob = Deck.open(team.b.root, tools=fake_tools(team.world))
    ours, theirs = lifetimes.expires_at(alice, "sandbox"), lifetimes.expires_at(bob, "sandbox")
    assert ours is not None and ours == theirs
    for deck in (alice, bob):
        deck.tools.git.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("new", "pattern"),
    [
        ("sandbox = true\nttl_hours = 0", r"environments\.sandbox\.ttl_hours: expected a number of hours above 0"),
        ("sandbox = true\nttl_hours = -2", r"environments\.sandbox\.ttl_hours: expected a number of hours above 0"),
        ('sandbox = true\nttl_hours = "8h"', r"environments\.sandbox\.ttl_hours: expected a number"),
    ],
)
def test_ttl_hours_mistakes(sample_copy: Path, new: str, pattern: str) -> None:
    toml = sample_copy / "opsdeck.toml"
    toml.write_text(toml.read_text().replace("sandbox = true", new, 1))
    with pytest.raises(ConfigError, match=pattern) as caught:
        load_config(sample_copy)
    assert "\n" not in str(caught.value)


def test_ttl_hours_is_for_sandboxes_only(sample_copy: Path) -> None:
    toml = sample_copy / "opsdeck.toml"
    toml.write_text(toml.read_text().replace('approval = "confirm"\n', 'approval = "confirm"\nttl_hours = 8\n', 1))
    with pytest.raises(ConfigError, match=r"environments\.dev\.ttl_hours: a lifetime is for sandbox environments only"):
        load_config(sample_copy)


def test_schedule_prints_an_hourly_expiry_that_opsdeck_accepts(sample_copy: Path) -> None:
    result = opsdeck("schedule", "sandbox-expire", deck=sample_copy)
    assert result.returncode == 0, result.stderr
    cron = next(line for line in result.stdout.splitlines() if line and not line.startswith("#"))
    assert cron.startswith("23 * * * * ")
    argv = shlex.split(cron.split(" && ", 1)[1].rsplit(" >>", 1)[0])
    parsed = build_parser().parse_args(argv[argv.index("--deck") :])
    assert (parsed.command, parsed.sandbox_command, parsed.yes) == ("sandbox", "expire", True)
    assert "OnCalendar=*-*-* *:23:00" in result.stdout and "opsdeck-sandbox-expire.timer" in result.stdout
    every = opsdeck("schedule", "sandbox-expire", "--every", "15m", "--only", "cron", deck=sample_copy)
    assert re.search(r"^\*/15 \* \* \* \* ", every.stdout, flags=re.M), every.stdout
    bad = opsdeck("schedule", "sandbox-expire", "--every", "7m", deck=sample_copy)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0
    assert "--every 7m: expected minutes dividing an hour" in bad.stderr
