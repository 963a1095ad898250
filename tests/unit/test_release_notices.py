"""Release notices on the fake tools: what each target is told of a change, retries, a target never told
(an audit record and a line for the person), and sending that never holds up the change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin
from opsdeck.core.events import Reporter
from opsdeck.core.hygiene.notices import Notices
from opsdeck.core.release.bake import bake
from opsdeck.core.release.execute import execute
from opsdeck.core.release.promote import promote, rollback
from opsdeck.core.safety import audit
from opsdeck.core.safety.breakglass import open_break_glass
from opsdeck.core.safety.confirm import Preview
from opsdeck.core.sandbox.nuke import nuke_rebuild
from opsdeck.core.team import approvals
from opsdeck.core.types.cloud import Credentials
from opsdeck.core.types.tools import DeliveryError
from opsdeck.errors import ConfigError, OpsdeckError, RefusedError
from tests.fakes import FakeWebhook, World, fake_tools
from tests.helpers import wait_until
from tests.unit.estate import make_estate
from tests.unit.team import Team, file_request

HOOK = "https://chat.example.com/hooks/T1/B2/s3cret"
TOPIC = "arn:aws:sns:us-east-1:111111111111:releases"


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "shop")
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


def rep() -> Reporter:
    return Reporter("test")


def bake_one(deck: Deck, service: str) -> str:
    (result,) = asyncio.run(bake(deck, rep(), services=[service]))
    return result.id


def attach(deck: Deck, webhook: FakeWebhook, *targets: str) -> tuple[Notices, list[str]]:
    lines: list[str] = []
    notices = Notices(deck, targets=targets or (HOOK,), webhook=webhook, on_failure=lines.append, backoff=0.01)
    deck.announcer = notices
    return notices, lines


def settled(notices: Notices) -> None:
    assert notices.wait(10) == 0
    notices.close()


def records(deck: Deck, action: str) -> list[dict[str, Any]]:
    return [r for r in audit.read(deck) if r["action"] == action]


def test_a_promote_tells_each_target_what_moved_from_and_to_who_made_it_and_why(
    estate: tuple[Deck, World],
) -> None:
    deck, world = estate
    world.topics.add(TOPIC)
    new = bake_one(deck, "api")
    old = read_pin(deck, "dev", "api")
    webhook = FakeWebhook(200)
    notices, lines = attach(deck, webhook, HOOK, TOPIC)
    asyncio.run(promote(deck, new, "dev", rep(), services=["api"], reason="fix the login"))
    settled(notices)
    ((url, body),) = webhook.posts
    assert url == HOOK and lines == []
    assert body["action"] == "promote" and body["environment"] == "dev" and body["result"] == "ok"
    assert body["changes"] == [{"service": "api", "from": old, "to": new}]
    assert body["who"]["git"] == "Unit Tester <unit@example.com>" and body["reason"] == "fix the login"
    assert f"promote dev ok: api {old} -> {new}" in body["text"]
    assert body["text"].endswith("; by Unit Tester <unit@example.com>; reason: fix the login")
    closing = records(deck, "promote")[-1]
    assert body["audit"] == {"seq": closing["seq"], "hash": closing["hash"]} and body["commit"] == closing["commit"]
    ((topic, subject, message),) = world.published
    assert topic == TOPIC and subject.startswith(f"opsdeck {deck.name}: promote dev ok: api")
    assert json.loads(message)["changes"] == body["changes"]
    assert records(deck, "notify") == []


def test_a_failed_or_cancelled_change_says_so_with_its_reason(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    new = bake_one(deck, "web")
    webhook = FakeWebhook(200)
    notices, _ = attach(deck, webhook)

    async def no(_: Preview) -> bool:
        return False

    with pytest.raises(RefusedError):
        asyncio.run(promote(deck, new, "dev", rep(), services=["web"], confirm=no))
    world.fail_apply.add("dev")
    with pytest.raises(OpsdeckError):
        asyncio.run(promote(deck, new, "dev", rep(), services=["web"], reason="second try"))
    settled(notices)
    cancelled, failed = (body for _, body in webhook.posts)
    assert cancelled["result"] == "cancelled" and "promote dev cancelled: web" in cancelled["text"]
    assert failed["result"] == "failed" and failed["error"] and f"({failed['error']})" in failed["text"]
    assert failed["changes"][0]["to"] == new


def test_a_rollback_and_a_nuke_rebuild_are_told_too(estate: tuple[Deck, World]) -> None:
    deck, _world = estate
    new = bake_one(deck, "web")
    asyncio.run(promote(deck, new, "dev", rep(), services=["web"]))
    webhook = FakeWebhook(200)
    notices, _ = attach(deck, webhook)
    asyncio.run(rollback(deck, "dev", rep(), services=["web"], reason="bad release"))
    asyncio.run(nuke_rebuild(deck, "sandbox", rep()))
    settled(notices)
    back, nuked = (body for _, body in webhook.posts)
    assert back["action"] == "rollback" and back["changes"][0]["from"] == new and back["reason"] == "bad release"
    assert nuked["action"] == "nuke-rebuild" and nuked["result"] == "ok"
    assert "destroyed" in nuked["text"] and "created" in nuked["text"]


def test_opening_break_glass_is_told(estate: tuple[Deck, World]) -> None:
    deck, _world = estate
    deck.tools.secrets().store("prod", Credentials("ASIANOTICE", "s3cret-notice"))
    webhook = FakeWebhook(200)
    notices, _ = attach(deck, webhook)
    open_break_glass(deck, "prod", "incident 12")
    settled(notices)
    ((_, body),) = webhook.posts
    assert body["action"] == "break-glass" and body["result"] == "opened" and body["reason"] == "incident 12"
    assert body["text"].startswith(f"opsdeck {deck.name}: break-glass opened on prod until ")
    assert "s3cret-notice" not in json.dumps(body)


def test_an_executed_request_is_told_with_its_request_and_from_to(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    asyncio.run(approvals.approve(team.b, request.id, rep()))
    webhook = FakeWebhook(200)
    notices, _ = attach(team.a, webhook)
    result = asyncio.run(execute(team.a, request.id, rep()))
    settled(notices)
    ((_, body),) = webhook.posts
    moved = result.moved[0]
    assert body["action"] == "promote" and body["request"] == request.id and body["result"] == "ok"
    assert body["changes"] == [{"service": "web", "from": moved.from_image, "to": moved.to_image}]
    assert f"promote staging (request {request.id}) ok" in body["text"]
    assert body["approved_by"] == ["bob@shop.example"]


def test_a_target_is_retried_as_the_drift_alarm_is(estate: tuple[Deck, World]) -> None:
    deck, _world = estate
    new = bake_one(deck, "api")
    webhook = FakeWebhook(DeliveryError("HTTP 503 Service Unavailable"), DeliveryError("connection refused"), 204)
    notices, lines = attach(deck, webhook)
    asyncio.run(promote(deck, new, "dev", rep(), services=["api"]))
    settled(notices)
    assert len(webhook.posts) == 3 and lines == [] and records(deck, "notify") == []


def test_a_target_never_told_is_an_audit_record_and_a_line_for_the_person(estate: tuple[Deck, World]) -> None:
    deck, _world = estate
    new = bake_one(deck, "api")
    down = FakeWebhook(DeliveryError("HTTP 503 Service Unavailable"))
    notices, lines = attach(deck, down, HOOK, "env:OPSDECK_UNIT_NOTICE_UNSET")
    asyncio.run(promote(deck, new, "dev", rep(), services=["api"]))
    settled(notices)
    assert len(down.posts) == deck.config.notify.attempts == 3
    failed = {r["target"]: r for r in records(deck, "notify")}
    shown = "https://chat.example.com/…"
    assert failed[shown]["result"] == "failed" and failed[shown]["error"] == "HTTP 503 Service Unavailable"
    assert failed[shown]["about"] == "promote" and failed[shown]["about_seq"] == records(deck, "promote")[-1]["seq"]
    assert (
        "environment variable OPSDECK_UNIT_NOTICE_UNSET is not set" in failed["env:OPSDECK_UNIT_NOTICE_UNSET"]["error"]
    )
    assert sorted(lines) == sorted(
        [
            f"notify: {shown} was not told of promote dev: HTTP 503 Service Unavailable (3 attempts)",
            "notify: env:OPSDECK_UNIT_NOTICE_UNSET was not told of promote dev: "
            "environment variable OPSDECK_UNIT_NOTICE_UNSET is not set",
        ]
    )
    assert "s3cret" not in (deck.local_dir / "audit.jsonl").read_text()
    final = FakeWebhook(DeliveryError("HTTP 404 Not Found", retry=False))
    notices, lines = attach(deck, final)
    asyncio.run(rollback(deck, "dev", rep(), services=["api"]))
    settled(notices)
    assert len(final.posts) == 1 and lines == [
        f"notify: {shown} was not told of rollback dev: HTTP 404 Not Found (1 attempt)"
    ]


def test_a_hanging_target_does_not_hold_up_the_change_and_the_command_waits_only_so_long(
    estate: tuple[Deck, World],
) -> None:
    deck, world = estate
    new = bake_one(deck, "api")
    hanging = FakeWebhook(200)
    hanging.hold.clear()
    notices, lines = attach(deck, hanging)
    result = asyncio.run(promote(deck, new, "dev", rep(), services=["api"]))
    assert not isinstance(result, Exception) and read_pin(deck, "dev", "api") == new
    assert notices.pending == 1  # the change returned while its notice was still being sent
    assert notices.wait(0.05) == 1  # what a command does before it exits
    assert lines == [
        "notify: https://chat.example.com/… was not told of promote dev: still being sent after 0.05s, when opsdeck "
        "exited"
    ]
    assert records(deck, "notify")[-1]["error"] == "still being sent after 0.05s, when opsdeck exited"
    hanging.hold.set()
    settled(notices)
    assert len(hanging.posts) == 1
    # With a second target that answers, only the one still hanging is recorded as not told.
    told = len(records(deck, "notify"))
    hanging.hold.clear()
    deck.tools.secrets().store("prod", Credentials("ASIAHANG", "s3cret-hang"))
    world.topics.add(TOPIC)
    notices, lines = attach(deck, hanging, HOOK, TOPIC)
    open_break_glass(deck, "prod", "incident 13")
    wait_until(lambda: notices.unsent == [HOOK], "the topic to be told")
    assert len(world.published) == 1
    assert notices.wait(0.05) == 1 and len(lines) == 1 and lines[0].startswith("notify: https://chat.example.com/…")
    assert [r["target"] for r in records(deck, "notify")[told:]] == ["https://chat.example.com/…"]
    hanging.hold.set()
    settled(notices)


def test_notify_settings_are_checked_in_one_line(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    toml = deck.root / "opsdeck.toml"
    original = toml.read_text()
    good = f'\n[notify]\ntargets = ["{HOOK}", "{TOPIC}", "env:RELEASE_HOOK"]\nwait_seconds = 2\n'
    toml.write_text(original + good)
    reopened = Deck.open(deck.root, tools=fake_tools(world))
    assert reopened.config.notify.targets == (HOOK, TOPIC, "env:RELEASE_HOOK")
    assert reopened.config.notify.wait_seconds == 2 and reopened.config.notify.attempts == 3
    for table, message in [
        ('targets = ["ftp://files.example.com/x"]', "notify.targets: expected an http(s):// webhook URL, an SNS topic"),
        ('targets = ["env:1BAD"]', "notify.targets: expected an http(s):// webhook URL, an SNS topic ARN or env:NAME"),
        ("wait_seconds = -1", "notify.wait_seconds: expected 0 seconds or more, got -1"),
        ("attempts = 0", "notify.attempts: expected at least 1, got 0"),
    ]:
        toml.write_text(original + f"\n[notify]\n{table}\n")
        with pytest.raises(ConfigError) as err:
            Deck.open(deck.root, tools=fake_tools(world))
        assert str(err.value).startswith("opsdeck.toml: ") and message in str(err.value)
        assert "\n" not in str(err.value)
