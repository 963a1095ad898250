"""Drift alarms: targets parsed, messages only when something is wrong, retries, timeouts, SNS."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.hygiene.notify import Alarm, NotifyError, drift_alarm, parse_target, send
from opsdeck.errors import ConfigError
from tests.fakes import World
from tests.helpers import Hook
from tests.unit.estate import make_estate

DRIFTED = {
    "environments": [
        {"name": "sandbox", "status": "clean", "managed": [], "unmanaged": [], "image": []},
        {
            "name": "staging",
            "status": "drifted",
            "managed": [{"address": "module.api.aws_autoscaling_group.this", "attributes": ["desired_capacity"]}],
            "unmanaged": [{"type": "ec2:instance", "id": "i-1"}],
            "image": [],
        },
    ]
}


@pytest.fixture()
def hook() -> Iterator[Any]:
    made: list[Hook] = []

    def make(*statuses: int) -> Hook:
        made.append(Hook(list(statuses)))
        return made[-1]

    yield make
    for h in made:
        h.close()


def _alarm() -> Alarm:
    alarm = drift_alarm("shop", DRIFTED)
    assert alarm is not None
    return alarm


def _send(deck: Deck | None, targets: list[str], alarm: Alarm, **kw: Any) -> Any:
    kw.setdefault("backoff", 0.01)
    return asyncio.run(send(deck, [parse_target(t) for t in targets], alarm, Reporter("notify"), **kw))


def test_targets_are_webhooks_or_topic_arns() -> None:
    assert parse_target("https://hooks.example.com/x").kind == "webhook"
    topic = parse_target("arn:aws:sns:us-west-2:333333333333:drift-alarms")
    assert (topic.kind, topic.region, topic.account) == ("sns", "us-west-2", "333333333333")
    for bad, why in [
        ("ftp://example.com/x", "neither an http(s):// webhook URL nor an SNS topic ARN"),
        ("http://", "neither an http(s):// webhook URL nor an SNS topic ARN"),
        ("arn:aws:sns:us-east-1:12:x", "not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC)"),
        ("arn:aws:sns:moon-1:111111111111:x", "not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC)"),
        ("arn:aws:sns:mars-north-1:111111111111:x", "unknown region mars-north-1"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_target(bad)
        assert str(err.value) == f"--notify {bad}: {why}"


def test_only_drift_or_a_failed_check_makes_an_alarm() -> None:
    clean = {"environments": [{"name": "dev", "status": "clean", "managed": [], "unmanaged": [], "image": []}]}
    assert drift_alarm("shop", clean) is None
    alarm = _alarm()
    assert alarm.status == "drifted"
    assert alarm.text == "opsdeck drift shop: 1 of 2 environments drifted: staging (1 changed, 1 unmanaged)"
    assert alarm.body["report"] == DRIFTED and "\n" not in alarm.text
    failed = drift_alarm("shop", None, error="cannot reach http://127.0.0.1:1 (EndpointConnectionError)")
    assert failed is not None and failed.status == "failed"
    assert (
        failed.text == "opsdeck drift shop: the check failed: cannot reach http://127.0.0.1:1 (EndpointConnectionError)"
    )
    trail = {"environments": [{"name": "prod", "findings": [{"action": "ec2:RunInstances"}]}]}
    only_trail = drift_alarm("shop", clean, trail=trail)
    assert only_trail is not None and "prod: 1 change outside the pipeline" in only_trail.text


def test_a_webhook_gets_one_message_with_text_and_the_full_report(hook: Any) -> None:
    h = hook(200)
    [done] = _send(None, [h.url], _alarm())
    assert done.ok and done.attempts == 1 and done.detail == "HTTP 200"
    assert done.target == f"http://127.0.0.1:{h.server.server_address[1]}/…"  # the path is a chat hook's secret
    [body] = h.bodies
    assert body["text"].startswith("opsdeck drift shop: 1 of 2") and body["report"] == DRIFTED


def test_a_server_error_is_retried_and_then_is_an_error_of_its_own(hook: Any) -> None:
    flaky = hook(500, 200)
    [done] = _send(None, [flaky.url], _alarm())
    assert done.ok and done.attempts == 2 and len(flaky.bodies) == 2
    broken, good = hook(500), hook(200)
    with pytest.raises(NotifyError) as err:
        _send(None, [broken.url, good.url], _alarm())
    line = str(err.value)
    assert "\n" not in line and "HTTP 500" in line and "(3 attempts)" in line and "(1 other told)" in line
    assert "secret" not in line
    assert len(broken.bodies) == 3 and len(good.bodies) == 1


def test_a_client_error_is_not_retried(hook: Any) -> None:
    gone = hook(404)
    with pytest.raises(NotifyError, match=r"HTTP 404 Not Found \(1 attempt\)"):
        _send(None, [gone.url], _alarm())
    assert len(gone.bodies) == 1


def test_a_webhook_that_never_answers_times_out() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel accepts the connection; nobody ever answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        with pytest.raises(NotifyError, match=r"no answer within 0\.3s \(2 attempts\)"):
            _send(None, [url], _alarm(), timeout=0.3, attempts=2)
    finally:
        silent.close()


def test_a_refused_connection_names_the_target() -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with pytest.raises(NotifyError, match=rf"http://127\.0\.0\.1:{port}/…: .*refused"):
        _send(None, [f"http://127.0.0.1:{port}/hook"], _alarm(), attempts=2)


@pytest.fixture()
def estate(tmp_path: Path) -> tuple[Deck, World]:
    return make_estate(tmp_path / "shop")


def test_a_topic_is_published_as_the_account_the_deck_reaches(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    topic = "arn:aws:sns:us-west-2:333333333333:drift-alarms"
    world.topics.add(topic)
    [done] = _send(deck, [topic], _alarm())
    assert done.ok and done.detail.startswith("message msg-1")
    [(arn, subject, message)] = world.published
    assert arn == topic and subject == _alarm().text[:100]
    assert json.loads(message)["report"] == DRIFTED


def test_a_topic_the_deck_cannot_reach_or_that_is_missing_fails_at_once(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    with pytest.raises(NotifyError, match=r"no environment of this deck is in account 444444444444 \(1 attempt\)"):
        _send(deck, ["arn:aws:sns:us-east-1:444444444444:drift"], _alarm())
    with pytest.raises(NotifyError, match=r"NotFound: Topic does not exist \(1 attempt\)"):
        _send(deck, ["arn:aws:sns:us-east-1:222222222222:nothing-here"], _alarm())
    assert world.published == []


def test_a_target_can_be_kept_in_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSDECK_NOTIFY_1", "https://hooks.example.com/services/T/B/key")
    target = parse_target("env:OPSDECK_NOTIFY_1")
    assert target.kind == "webhook" and target.shown() == "https://hooks.example.com/…"
    for bad, why in [
        ("env:NOT_SET_HERE", "environment variable NOT_SET_HERE is not set"),
        ("env:1BAD", "expected env:NAME, NAME an environment variable"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_target(bad)
        assert str(err.value) == f"--notify {bad}: {why}"
    monkeypatch.setenv("OPSDECK_NOTIFY_2", "slack")
    with pytest.raises(ConfigError, match=r"^--notify env:OPSDECK_NOTIFY_2: OPSDECK_NOTIFY_2 holds no target: "):
        parse_target("env:OPSDECK_NOTIFY_2")


def test_a_port_that_is_no_number_is_refused_before_any_work() -> None:
    with pytest.raises(ConfigError, match=r"^--notify http://h:abc/…: the port is not a number from 0 to 65535$"):
        parse_target("http://h:abc/x")


def test_an_answer_http_cannot_take_fails_that_target_without_a_traceback() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]

    def garbage() -> None:
        conn, _ = silent.accept()
        conn.recv(65536)
        conn.sendall(b"\x00\x01 not http at all\r\n\r\n")
        conn.close()

    import threading

    threading.Thread(target=garbage, daemon=True).start()
    try:
        with pytest.raises(NotifyError, match=r"BadStatusLine.*\(1 attempt\)"):
            _send(None, [f"http://127.0.0.1:{port}/hook"], _alarm())
    finally:
        silent.close()


def test_an_sns_subject_is_printable_ascii_on_one_line() -> None:
    from opsdeck.core.hygiene.notify import sns_subject

    subject = sns_subject("opsdeck drift shop: web → 1.4.2\nfailed at https://hooks.example.com/… " + "x" * 200)
    assert len(subject) <= 100 and subject.isascii() and "\n" not in subject
    assert subject.startswith("opsdeck drift shop: web -> 1.4.2 failed at https://hooks.example.com/...")
