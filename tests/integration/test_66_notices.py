"""Release notices on the demo estate: a promote from the command line tells a real webhook (a local HTTP
server, named by env:NAME) and an SNS topic on the local cloud (read back through an SQS subscription) what
moved from -> to; a webhook that answers 500 is retried, then a line on stderr and an audit record."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Hook, edited, opsdeck

pytestmark = pytest.mark.integration


def _cloud(demo_deck: Path, env: str) -> Any:
    from opsdeck.core.estate.deck import Deck

    return Deck.open(demo_deck).tools.env(env).cloud


def test_a_promote_tells_a_webhook_and_a_topic_and_a_dead_target_is_a_line_and_a_record(demo_deck: Path) -> None:
    dev = _cloud(demo_deck, "dev")
    sns, sqs = dev.client("sns"), dev.client("sqs")
    topic = sns.create_topic(Name="releases")["TopicArn"]
    queue = sqs.create_queue(QueueName="releases")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    hook, broken = Hook([200]), Hook([500])
    env = {**os.environ, "RELEASE_HOOK": hook.url}
    notify = f'[notify]\ntargets = ["env:RELEASE_HOOK", "{topic}"]\n\n[environments.sandbox]\n'
    try:
        (api,) = json.loads(opsdeck("bake", "--service", "api", "--json", deck=demo_deck, check=True).stdout)
        with edited(demo_deck / "opsdeck.toml", "[environments.sandbox]\n", notify):
            out = opsdeck(
                "promote", api["id"], "dev", "--service", "api", "--yes", "--reason", "notice check", "--json",
                deck=demo_deck, env=env, check=True,
            )  # fmt: skip
        (moved,) = json.loads(out.stdout)["services"]
        [body] = hook.bodies  # told before the command exited
        assert body["action"] == "promote" and body["environment"] == "dev" and body["result"] == "ok"
        assert body["changes"] == [{"service": "api", "from": moved["from_image"], "to": api["id"]}]
        assert f"promote dev ok: api {moved['from_image']} -> {api['id']}" in body["text"]
        assert body["reason"] == "notice check" and body["who"]["git"]
        [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"]
        assert json.loads(message["Body"])["changes"] == body["changes"]

        dead = f'[notify]\ntargets = ["{broken.url}"]\nwait_seconds = 10\n\n[environments.sandbox]\n'
        with edited(demo_deck / "opsdeck.toml", "[environments.sandbox]\n", dead):
            back = opsdeck("rollback", "dev", "--service", "api", "--yes", deck=demo_deck, check=True)
        port = broken.server.server_address[1]
        line = (
            f"opsdeck: notify: http://127.0.0.1:{port}/… was not told of rollback dev: HTTP 500 Internal Server Error"
        )
        assert f"{line} (3 attempts)" in back.stderr.splitlines()
        assert len(broken.bodies) == 3 and broken.bodies[0]["action"] == "rollback"
        records = [json.loads(r) for r in (demo_deck / ".opsdeck" / "audit.jsonl").read_text().splitlines()]
        failed = [r for r in records if r["action"] == "notify"][-1]
        assert failed["about"] == "rollback" and failed["error"] == "HTTP 500 Internal Server Error"
        assert [r for r in records if r["action"] == "rollback"][-1]["result"] == "ok"  # the change itself stood
    finally:
        hook.close()
        broken.close()
        sns.delete_topic(TopicArn=topic)
        sqs.delete_queue(QueueUrl=queue)
