"""`opsdeck trail` on the demo deck: CloudTrail log files, written in CloudTrail's delivery format into each
account's real trail bucket on the local cloud (moto records no events and does not implement
LookupEvents), read back through S3 by the real command. Every file a test writes is deleted after it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cloudtrail import DEV, Delivery, run_instances
from tests.helpers import edited, opsdeck

pytestmark = pytest.mark.integration

STAGING = "222222222222"
OUTSIDER = f"arn:aws:iam::{DEV}:user/mallory"


def _deck(demo_deck: Path) -> Any:
    from opsdeck.core.estate.deck import Deck

    return Deck.open(demo_deck)


@pytest.fixture()
def dev_trail(demo_deck: Path) -> Iterator[Delivery]:
    delivery = Delivery(_deck(demo_deck), "dev")
    yield delivery
    delivery.clean()


def test_the_demo_gives_each_account_a_trail_and_its_bucket(demo_deck: Path) -> None:
    deck = _deck(demo_deck)
    for env in ("dev", "staging", "prod"):
        cloud = deck.tools.env(env).cloud
        (trail,) = cloud.client("cloudtrail").describe_trails()["trailList"]
        assert f"s3://{trail['S3BucketName']}/{trail['S3KeyPrefix']}" == deck.env(env).trail
        assert trail["IsMultiRegionTrail"] and cloud.bucket_exists(trail["S3BucketName"])
    result = opsdeck("trail", "--json", deck=demo_deck)
    assert result.returncode == 0, result.stderr
    reports = json.loads(result.stdout)["environments"]
    assert [r["name"] for r in reports] == ["sandbox", "dev", "staging", "prod"]
    assert all(r["status"] == "clean" and r["findings"] == [] for r in reports)


def test_a_run_instances_outside_the_deploy_role_shows_and_the_deploy_roles_does_not(
    demo_deck: Path, dev_trail: Delivery
) -> None:
    now = datetime.now(UTC)
    when = now - timedelta(minutes=10)
    outside = run_instances(OUTSIDER, when, "11111111-aaaa-4000-8000-000000000001", "dev")
    deploy = f"arn:aws:sts::{DEV}:assumed-role/opsdeck-deploy/opsdeck-alice"
    pipeline = run_instances(deploy, when, "11111111-aaaa-4000-8000-000000000002", "dev")
    dev_trail.put(gzip.compress(json.dumps({"Records": [outside, pipeline]}).encode()), now, "GoodFile01")
    truncated = dev_trail.put(gzip.compress(json.dumps({"Records": [outside]}).encode())[:-10], now, "CutShort01")

    result = opsdeck("trail", "--json", deck=demo_deck)
    assert result.returncode == 2, result.stderr
    reports = {r["name"]: r for r in json.loads(result.stdout)["environments"]}
    dev = reports["dev"]
    assert [f["event_id"] for f in dev["findings"]] == [outside["eventID"]]
    finding = dev["findings"][0]
    assert finding["who"] == OUTSIDER and finding["action"] == "ec2:RunInstances"
    assert finding["principal_type"] == "IAMUser" and finding["source_ip"] == "198.51.100.23"
    assert finding["resources"] == [f"i-{outside['eventID'][-12:]}"]
    assert dev["files_read"] == 1
    assert dev["files_skipped"] == [{"key": truncated, "reason": "truncated gzip (the file ends early)"}]
    assert reports["sandbox"]["findings"] == []  # tagged env = dev
    assert reports["staging"]["files_read"] == 0 and reports["staging"]["findings"] == []

    text = opsdeck("trail", "dev", "--since", "1h", deck=demo_deck)
    assert text.returncode == 2
    assert (
        text.stderr.strip()
        == f"warning: 1 trail file(s) of account {DEV} skipped, e.g. {truncated}: truncated gzip (the file ends early)"
    )
    assert OUTSIDER in text.stdout and "ec2:RunInstances" in text.stdout and deploy not in text.stdout
    assert f"skipped {truncated}: truncated gzip" in text.stdout

    # the same event by the deploy role alone: nothing outside the pipeline
    dev_trail.clean()
    dev_trail.put(gzip.compress(json.dumps({"Records": [pipeline]}).encode()), now, "OnlyDeploy")
    clean = opsdeck("trail", "dev", "--json", deck=demo_deck)
    assert clean.returncode == 0, clean.stderr
    (only,) = json.loads(clean.stdout)["environments"]
    assert only["findings"] == [] and only["files_read"] == 1


def test_bad_input_is_one_line(demo_deck: Path) -> None:
    for args, says in (
        (("trail", "nowhere"), "unknown environment 'nowhere'"),
        (("trail", "--since", "0h"), "--since: expected a duration above zero"),
        (("trail", "--since", "500d"), "at most 366 days"),
    ):
        result = opsdeck(*args, deck=demo_deck)
        assert result.returncode == 1 and result.stdout == "", args
        assert says in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_a_trail_bucket_that_does_not_exist_fails_that_environment_in_one_line(demo_deck: Path) -> None:
    toml = demo_deck / "opsdeck.toml"
    with edited(toml, "s3://opsdeck-demo-trail-222222222222/cloudtrail", "s3://no-such-trail-bucket/cloudtrail"):
        result = opsdeck("trail", "--json", deck=demo_deck)
    assert result.returncode == 1
    reports = {r["name"]: r for r in json.loads(result.stdout)["environments"]}
    assert reports["staging"]["status"] == "error" and "no-such-trail-bucket" in reports["staging"]["error"]
    assert reports["dev"]["status"] == reports["prod"]["status"] == "clean"
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("opsdeck: trail of staging not read: ") and "NoSuchBucket" in lines[-1], lines


def test_a_thousand_files_of_a_busy_day_are_read_in_a_pool(demo_deck: Path) -> None:
    """The measurement behind WORKERS: 1,000 files of 20 records each in staging's account."""
    from opsdeck.core.events import Reporter
    from opsdeck.core.hygiene.trail import WORKERS, read_trail

    deck = _deck(demo_deck)
    delivery = Delivery(deck, "staging")
    now = datetime.now(UTC)
    outsider = f"arn:aws:iam::{STAGING}:user/eve"
    deploy = f"arn:aws:sts::{STAGING}:assumed-role/opsdeck-deploy/opsdeck-alice"
    bodies = []
    for n in range(1000):
        records = [
            run_instances(outsider if (n, i) == (500, 7) else deploy, now - timedelta(minutes=30), f"e-{n}-{i}", "x")
            for i in range(20)
        ]
        bodies.append((gzip.compress(json.dumps({"Records": records}).encode()), f"Busy{n:04d}"))
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda b: delivery.put(b[0], now - timedelta(minutes=20), b[1]), bodies))
        timings = {}
        for workers in (1, WORKERS):
            t0 = time.monotonic()
            (report,) = asyncio.run(
                read_trail(deck, ["staging"], timedelta(hours=2), Reporter("trail"), workers=workers)
            )
            timings[workers] = time.monotonic() - t0
            assert report.files_read == 1000 and [f.event_id for f in report.findings] == ["e-500-7"]
        print(f"1000 trail files: {timings[1]:.1f}s with 1 worker, {timings[WORKERS]:.1f}s with {WORKERS}")
    finally:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: delivery.cloud.delete_object(delivery.bucket, k), delivery.keys))
