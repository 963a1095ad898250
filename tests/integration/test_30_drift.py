"""Drift on the demo deck after real out-of-band changes (boto3), reconcile, and sandbox nuke-and-rebuild.

Runs after test_20_lifecycle. It makes strays and look-alikes, and cleans up what it made in dev.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import NO_PROD_APPROVALS, Hook, edited, opsdeck

pytestmark = pytest.mark.integration


def _deck(demo_deck: Path) -> Any:
    from opsdeck.core.estate.deck import Deck

    return Deck.open(demo_deck)


def _aws(deck: Any, env: str) -> Any:
    """boto3 in ``env``'s own account and region (its role assumed), as opsdeck reaches it."""
    return deck.tools.env(env).cloud


def _group(deck: Any, env: str, service: str) -> Any:
    from opsdeck.core.release.fleet import env_groups, service_groups

    return service_groups(deck, env_groups(deck, env), service)[0]


def _pin(deck: Any, env: str, service: str) -> str:
    from opsdeck.core.estate.pins import read_pin

    return read_pin(deck, env, service)


def _subnet(ec2: Any, env: str) -> dict[str, Any]:
    return ec2.describe_subnets(Filters=[{"Name": "tag:env", "Values": [env]}])["Subnets"][0]


def _tags(kind: str, **tags: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def _run(ec2: Any, image: str, subnet: str | None = None, **tags: str) -> str:
    extra = {"SubnetId": subnet} if subnet else {}
    raw = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=_tags("instance", **tags),
        **extra,
    )
    return raw["Instances"][0]["InstanceId"]


def _alive(ec2: Any, instance: str) -> bool:
    state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]
    return state in ("pending", "running")


def _drift(deck: Path, *envs: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = opsdeck("drift", *envs, "--json", deck=deck)
    assert result.returncode in (0, 2), result.stderr
    return result.returncode, {e["name"]: e for e in json.loads(result.stdout)["environments"]}


def test_plan_sees_a_change_made_outside_terraform(demo_deck: Path) -> None:
    """`plan` is a real plan by default: a saved plan cannot see a change made in the cloud, and only
    --cached answers from one, saying how old it is."""
    assert opsdeck("plan", "sandbox", deck=demo_deck).returncode == 0
    deck = _deck(demo_deck)
    group = _group(deck, "sandbox", "web")
    asg = _aws(deck, "sandbox").client("autoscaling")
    asg.set_desired_capacity(AutoScalingGroupName=group.name, DesiredCapacity=group.desired + 1)
    try:
        cached = opsdeck("plan", "sandbox", "--cached", deck=demo_deck)
        assert cached.returncode == 0 and "saved plan from" in cached.stdout and "ago" in cached.stdout
        result = opsdeck("plan", "sandbox", "--json", deck=demo_deck)
        assert result.returncode == 2, result.stderr
        data = json.loads(result.stdout)
        assert data["cached"] is False and data["change"] == 1
        changed = {r["address"]: r for r in data["resources"]}["module.web.aws_autoscaling_group.this"]
        assert "desired_capacity" in changed["attributes"]
        assert {
            "attribute": "desired_capacity",
            "before": group.desired + 1,
            "after": group.desired,
            "after_unknown": False,
            "forces_replacement": False,
        } in changed["changes"]
        text = opsdeck("plan", "sandbox", deck=demo_deck)
        assert text.returncode == 2 and f"desired_capacity: {group.desired + 1} → {group.desired}" in text.stdout
    finally:
        asg.set_desired_capacity(AutoScalingGroupName=group.name, DesiredCapacity=group.desired)
    assert opsdeck("plan", "sandbox", deck=demo_deck).returncode == 0


@pytest.fixture(scope="module")
def out_of_band(demo_deck: Path) -> Iterator[dict[str, str]]:
    """The done-when changes, each in its environment's own account: staging's api group resized, a tagged
    stray in dev, prod (us-west-2) running an AMI that is no pin of it."""
    deck = _deck(demo_deck)
    group = _group(deck, "staging", "api")
    _aws(deck, "staging").client("autoscaling").set_desired_capacity(
        AutoScalingGroupName=group.name, DesiredCapacity=group.desired + 1
    )
    dev_ec2, prod_ec2 = _aws(deck, "dev").client("ec2"), _aws(deck, "prod").client("ec2")
    dev_stray = _run(dev_ec2, _pin(deck, "dev", "web"), Name="redis-debug", env="dev")
    other_ami = prod_ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    prod_odd = _run(prod_ec2, other_ami, _subnet(prod_ec2, "prod")["SubnetId"], Name="miner", env="prod")
    made = {"group": group.name, "dev_stray": dev_stray, "prod_odd": prod_odd, "other_ami": other_ami}
    yield made
    dev_ec2.terminate_instances(InstanceIds=[dev_stray])
    prod_ec2.terminate_instances(InstanceIds=[prod_odd])


def test_drift_reports_each_change_in_its_environment(demo_deck: Path, out_of_band: dict[str, str]) -> None:
    code, envs = _drift(demo_deck)
    assert code == 2
    assert envs["sandbox"]["status"] == "clean"
    assert envs["sandbox"]["managed"] == envs["sandbox"]["unmanaged"] == envs["sandbox"]["image"] == []
    staging = envs["staging"]
    assert staging["status"] == "drifted" and staging["unmanaged"] == [] and staging["image"] == []
    assert staging["managed"] == [
        {"address": "module.api.aws_autoscaling_group.this", "attributes": ["desired_capacity"]}
    ]
    dev = envs["dev"]
    assert dev["status"] == "drifted" and dev["managed"] == []
    assert {"type": "ec2:instance", "id": out_of_band["dev_stray"]} in dev["unmanaged"]
    assert not [u for u in dev["unmanaged"] if u["type"].startswith("elasticloadbalancing:")]  # by its ARN
    assert dev["image"] == []  # a warm standby's instances run the standby's image: no drift
    prod = envs["prod"]
    assert {"instance": out_of_band["prod_odd"], "image_id": out_of_band["other_ami"], "service": ""} in prod["image"]
    assert {"type": "ec2:instance", "id": out_of_band["prod_odd"]} in prod["unmanaged"]
    # The local cloud's known false drift is in sample_envs/.driftignore, not in code (dev's blue/green
    # groups read back clean once a release has refreshed its state).
    assert all(e["ignored"] > 0 for name, e in envs.items() if name != "dev")
    # status shows the stored result with its age.
    status = json.loads(opsdeck("status", "--json", deck=demo_deck, check=True).stdout)
    by_name = {e["name"]: e for e in status["environments"]}
    assert by_name["dev"]["drift"] == "drifted" and by_name["sandbox"]["drift"] == "clean"
    assert by_name["dev"]["drift_at"] is not None


def test_drift_alarms_reach_a_webhook_and_a_topic_only_when_something_drifted(
    demo_deck: Path, out_of_band: dict[str, str]
) -> None:
    deck = _deck(demo_deck)
    staging = _aws(deck, "staging")
    sns, sqs = staging.client("sns"), staging.client("sqs")
    topic = sns.create_topic(Name="drift-alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="drift-alarms")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    hook, broken = Hook([200]), Hook([500])
    try:
        result = opsdeck("drift", "staging", "--json", "--notify", hook.url, "--notify", topic, deck=demo_deck)
        assert result.returncode == 2, result.stderr
        out = json.loads(result.stdout)
        assert [d["delivered"] for d in out["notified"]] == [True, True]
        [body] = hook.bodies  # one message, with the summary line and the full report
        assert body["text"] == "opsdeck drift shop: 1 of 1 environments drifted: staging (1 changed)"
        assert body["report"]["environments"][0]["managed"][0]["attributes"] == ["desired_capacity"]
        [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
        assert json.loads(message["Body"])["text"] == body["text"]

        clean = opsdeck("drift", "sandbox", "--notify", hook.url, "--notify", topic, deck=demo_deck)
        assert clean.returncode == 0 and "notified" not in clean.stdout
        assert len(hook.bodies) == 1 and "Messages" not in sqs.receive_message(QueueUrl=queue)

        failed = opsdeck("drift", "staging", "--notify", broken.url, "--notify-timeout", "5", deck=demo_deck)
        assert failed.returncode == 1
        assert "staging  drifted" in failed.stdout  # the report is printed before the error
        [line] = failed.stderr.strip().splitlines()
        port = broken.server.server_address[1]
        assert line == (
            f"opsdeck: drift alarm not delivered to http://127.0.0.1:{port}/…: HTTP 500 Internal Server Error "
            "(3 attempts)"
        )
        assert len(broken.bodies) == 3

        unreachable = "arn:aws:sns:us-east-1:444444444444:drift-alarms"
        other = opsdeck("drift", "staging", "--notify", unreachable, deck=demo_deck)
        assert other.returncode == 1
        assert other.stderr.strip() == (
            f"opsdeck: drift alarm not delivered to {unreachable}: no environment of this deck is in account "
            "444444444444 (it reaches 111111111111, 222222222222, 333333333333) (1 attempt)"
        )
    finally:
        hook.close()
        broken.close()
        sns.delete_topic(TopicArn=topic)
        sqs.delete_queue(QueueUrl=queue)


def test_driftignore_baselines_accepted_drift(demo_deck: Path, out_of_band: dict[str, str]) -> None:
    ignore = demo_deck / ".driftignore"
    original = ignore.read_text()
    try:
        ignore.write_text(original + f"id:{out_of_band['dev_stray']}   # the team's debug box\n")
        _, envs = _drift(demo_deck, "dev")
        assert all(u["id"] != out_of_band["dev_stray"] for u in envs["dev"]["unmanaged"])
        assert envs["dev"]["status"] == "clean"
        ignore.write_text(original + "bogus line\n")
        bad = opsdeck("drift", "dev", deck=demo_deck)
        assert bad.returncode == 1
        assert bad.stderr.strip().splitlines() == [
            f"opsdeck: .driftignore: line {len(original.splitlines()) + 1}: expected <kind>:<value>, got 'bogus line'"
        ]
    finally:
        ignore.write_text(original)


def test_apply_puts_code_back_over_managed_drift(demo_deck: Path, out_of_band: dict[str, str]) -> None:
    plan = opsdeck("plan", "staging", "--json", deck=demo_deck)
    assert plan.returncode == 2
    assert json.loads(plan.stdout)["change"] == 1
    main_tf = demo_deck / "envs" / "staging" / "main.tf"
    original = main_tf.read_text()
    main_tf.write_text(original + "\n# a comment: the saved plan is now stale\n")
    try:
        # staging's approval would make this a request (test_60 runs those); here, the plan that goes stale
        with edited(demo_deck / "opsdeck.toml", "approvals = 1\n", ""):
            result = opsdeck("apply", "staging", "--yes", "--json", deck=demo_deck)
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["applied"] and data["replanned"] and data["change"] == 1
        assert "stale" in result.stderr
    finally:
        main_tf.write_text(original)
    code, envs = _drift(demo_deck, "staging")
    assert code == 0 and envs["staging"]["status"] == "clean"
    status = {
        e["name"]: e for e in json.loads(opsdeck("status", "--json", deck=demo_deck, check=True).stdout)["environments"]
    }
    api = next(s for s in status["staging"]["services"] if s["name"] == "api")["instances"]
    assert api["desired"] == api["running"] == api["on_pinned_image"] == 2


def test_apply_on_protected_needs_break_glass(demo_deck: Path) -> None:
    with edited(demo_deck / "opsdeck.toml", *NO_PROD_APPROVALS):  # approvals would make it a request
        result = opsdeck("apply", "prod", "--yes", deck=demo_deck)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "prod is protected: apply needs break-glass (--break-glass --reason TEXT, or ! in the deck)"
    )


@pytest.fixture()
def strays(demo_deck: Path) -> dict[str, Any]:
    """Strays in the sandbox, and look-alikes that belong to dev."""
    deck = _deck(demo_deck)
    aws = _aws(deck, "sandbox")  # dev shares the sandbox's account: its look-alikes are the danger
    ec2, s3 = aws.client("ec2"), aws.client("s3")
    image = _pin(deck, "sandbox", "web")
    sandbox, dev = _subnet(ec2, "sandbox"), _subnet(ec2, "dev")
    made: dict[str, Any] = {
        "sandbox_instance": _run(ec2, image, sandbox["SubnetId"], Name="crypto-miner", env="sandbox"),
        "sandbox_untagged": _run(ec2, image, sandbox["SubnetId"], Name="forgot-tags"),
        "sandbox_sg": ec2.create_security_group(GroupName="stray", Description="stray", VpcId=sandbox["VpcId"])[
            "GroupId"
        ],
        "sandbox_volume": ec2.create_volume(
            Size=8, AvailabilityZone="us-east-1a", TagSpecifications=_tags("volume", env="sandbox")
        )["VolumeId"],
        "sandbox_bucket": "sandbox-scratch-data",
        # look-alikes: dev's, whatever their tags or names say
        "lookalike_tag_in_dev_vpc": _run(ec2, image, dev["SubnetId"], Name="web-sandbox", env="sandbox"),
        "lookalike_name": _run(ec2, image, None, Name="web-sandbox-1", env="dev"),
        "lookalike_sg": ec2.create_security_group(
            GroupName="web-sandbox-web", Description="sandbox", VpcId=dev["VpcId"]
        )["GroupId"],
    }
    s3.create_bucket(Bucket=made["sandbox_bucket"])
    s3.put_bucket_tagging(Bucket=made["sandbox_bucket"], Tagging={"TagSet": [{"Key": "env", "Value": "sandbox"}]})
    s3.put_object(Bucket=made["sandbox_bucket"], Key="dump.sql", Body=b"data")
    made["dev_vpc"] = dev["VpcId"]
    return made


def test_nuke_rebuild_leaves_no_stray_and_spares_other_environments(demo_deck: Path, strays: dict[str, Any]) -> None:
    deck = _deck(demo_deck)
    ec2 = _aws(deck, "sandbox").client("ec2")
    dry = opsdeck("nuke-rebuild", "sandbox", "--json", deck=demo_deck)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] is True
    listed = {u["id"] for u in plan["unmanaged"]}
    for key in ("sandbox_instance", "sandbox_untagged", "sandbox_sg", "sandbox_volume", "sandbox_bucket"):
        assert strays[key] in listed, key
    for key in ("lookalike_tag_in_dev_vpc", "lookalike_name", "lookalike_sg"):
        assert strays[key] not in listed, key
    assert "module.network.aws_vpc.this" in plan["managed"]
    assert plan["account"] == "111111111111" and plan["region"] == "us-east-1"
    assert _alive(ec2, strays["sandbox_instance"])  # a dry run deletes nothing

    result = opsdeck("nuke-rebuild", "sandbox", "--yes", "--json", deck=demo_deck, timeout=900)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["environment"] == "sandbox" and data["unmanaged_deleted"] == 5
    assert data["destroyed"] >= 6 and data["created"] >= 6
    assert [p["name"] for p in data["phases"]] == [
        "sync",  # level with the team's remote first
        "inventory",
        "delete unmanaged",
        "terraform destroy",
        "verify empty",
        "terraform apply",
        "verify instances",
    ]
    assert data["seconds"] >= sum(p["seconds"] for p in data["phases"]) * 0.9

    assert not _alive(ec2, strays["sandbox_instance"]) and not _alive(ec2, strays["sandbox_untagged"])
    buckets = {b["Name"] for b in _aws(deck, "sandbox").client("s3").list_buckets()["Buckets"]}
    assert strays["sandbox_bucket"] not in buckets and deck.backend("sandbox").bucket in buckets
    code, envs = _drift(demo_deck, "sandbox")
    assert code == 0 and envs["sandbox"]["status"] == "clean"
    status = {
        e["name"]: e for e in json.loads(opsdeck("status", "--json", deck=demo_deck, check=True).stdout)["environments"]
    }
    sandbox = status["sandbox"]
    assert (
        sandbox["instances"]["running"]
        == sandbox["instances"]["desired"]
        == sandbox["instances"]["on_pinned_image"]
        > 0
    )

    # Everything of dev survived, look-alikes included.
    assert _alive(ec2, strays["lookalike_tag_in_dev_vpc"]) and _alive(ec2, strays["lookalike_name"])
    assert ec2.describe_security_groups(GroupIds=[strays["lookalike_sg"]])["SecurityGroups"]
    assert status["dev"]["instances"]["running"] == status["dev"]["instances"]["desired"]
    code, envs = _drift(demo_deck, "dev")
    found = {u["id"] for u in envs["dev"]["unmanaged"]}
    assert {strays["lookalike_tag_in_dev_vpc"], strays["lookalike_name"], strays["lookalike_sg"]} <= found

    records = json.loads(opsdeck("audit", "--json", deck=demo_deck, check=True).stdout)
    last = [r for r in records if r["action"] == "nuke-rebuild"][-1]
    assert last["result"] == "ok" and last["unmanaged_deleted"] == 5
    ec2.terminate_instances(InstanceIds=[strays["lookalike_tag_in_dev_vpc"], strays["lookalike_name"]])
    ec2.delete_security_group(GroupId=strays["lookalike_sg"])


def test_nuke_refused_outside_sandboxes(demo_deck: Path) -> None:
    before = subprocess.run(["git", "-C", str(demo_deck), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    for env in ("dev", "prod"):
        result = opsdeck("nuke-rebuild", env, "--yes", deck=demo_deck)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            "opsdeck: nuke-and-rebuild is only for sandbox environments; "
            f"{env} is not one (sandbox = true in opsdeck.toml)"
        )
    after = subprocess.run(["git", "-C", str(demo_deck), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert before == after


def test_nuke_refused_in_a_protected_account(demo_deck: Path) -> None:
    config = demo_deck / "opsdeck.toml"
    original = config.read_text()
    config.write_text(
        original.replace(
            'protected_accounts = ["333333333333"]', 'protected_accounts = ["333333333333", "111111111111"]'
        )
    )
    try:
        for extra in ([], ["--yes"]):
            result = opsdeck("nuke-rebuild", "sandbox", *extra, deck=demo_deck)
            assert result.returncode == 1
            assert result.stderr.strip() == (
                "opsdeck: account 111111111111 is listed in aws.protected_accounts: nuke-and-rebuild is refused there"
            )
    finally:
        config.write_text(original)
