"""A promote and a refresh while the local cloud throttles a fifth of all AWS calls: both succeed through
the SDKs' and Terraform's own retries, and nothing is made twice (launch templates, groups and live
instances counted in every account before and after). Last of the integration tests: it leaves
sandbox's web on a new image, as any promote does."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.faults import faults, throttled
from tests.helpers import live_pins, opsdeck

pytestmark = pytest.mark.integration

SEED = 2026


def _endpoint() -> str:
    return str(json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["endpoint"])


def _made(deck: Path, endpoint: str) -> dict[str, dict[str, int]]:
    """Launch templates, auto scaling groups and live instances in each account and region of the deck."""
    from opsdeck.core.estate.deck import Deck

    opened = Deck.open(deck)
    found: dict[str, dict[str, int]] = {}
    for name in opened.config.env_names:
        env = opened.env(name)
        region = env.region or opened.config.aws.region
        where = f"{env.account}/{region}"
        if where in found:
            continue
        kw: dict[str, Any] = {"endpoint_url": endpoint, "region_name": region}
        sts = boto3.client("sts", aws_access_key_id="count", aws_secret_access_key="count", **kw)
        creds = sts.assume_role(RoleArn=env.role, RoleSessionName="count")["Credentials"]
        kw |= {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
        ec2, asg = boto3.client("ec2", **kw), boto3.client("autoscaling", **kw)
        live = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        found[where] = {
            "launch templates": len(ec2.describe_launch_templates()["LaunchTemplates"]),
            "groups": len(asg.describe_auto_scaling_groups()["AutoScalingGroups"]),
            "instances": sum(len(r["Instances"]) for r in ec2.describe_instances(Filters=live)["Reservations"]),
        }
    return found


def test_a_promote_and_a_refresh_succeed_under_throttling_with_nothing_made_twice(demo_deck: Path) -> None:
    endpoint = _endpoint()
    image = json.loads(opsdeck("bake", "--service", "web", "--json", deck=demo_deck, check=True).stdout)[0]["id"]
    before = _made(demo_deck, endpoint)
    assert before and all(counts["groups"] > 0 for counts in before.values())

    with throttled(endpoint, throttle=0.2, seed=SEED):
        started = time.monotonic()
        promoted = opsdeck("promote", image, "sandbox", "--service", "web", "--yes", "--json", deck=demo_deck)
        promote_seconds = time.monotonic() - started
        after_promote = faults(endpoint)
        started = time.monotonic()
        refreshed = opsdeck("refresh", "sandbox", "--json", deck=demo_deck)
        refresh_seconds = time.monotonic() - started
        state = faults(endpoint)

    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["services"][0]["to_image"] == image
    assert refreshed.returncode == 0, refreshed.stderr
    assert json.loads(refreshed.stdout)["errors"] == {}
    assert "Traceback" not in promoted.stderr + refreshed.stderr
    print(
        f"\nthrottled {after_promote['faulted']} of {after_promote['calls']} calls in the promote "
        f"({promote_seconds:.1f}s), {state['faulted']} of {state['calls']} with the refresh "
        f"({refresh_seconds:.1f}s): {state['by_code']}"
    )
    # Both Terraform (EC2, the S3 state) and boto3 (STS, autoscaling) went through throttled calls.
    assert after_promote["faulted"] > 0 and state["faulted"] > after_promote["faulted"]
    assert {"RequestLimitExceeded", "Throttling"} <= set(state["by_code"])
    assert 0.1 < state["faulted"] / state["calls"] < 0.3

    assert _made(demo_deck, endpoint) == before  # a new template and group for web, the old ones gone
    assert live_pins(demo_deck, "sandbox")["web"] == image
    status = json.loads(opsdeck("status", "--json", deck=demo_deck, check=True).stdout)
    row = next(e for e in status["environments"] if e["name"] == "sandbox")
    web = next(s for s in row["services"] if s["name"] == "web")
    assert web["image"]["id"] == image
    assert web["instances"]["running"] == web["instances"]["desired"] == web["instances"]["on_pinned_image"] > 0
