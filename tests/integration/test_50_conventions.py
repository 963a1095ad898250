"""A deck with its team's own names (tests/decks/conventions), driven through the real command line.

Its Terraform tags the environment as `Environment` and the service as `Service`, pins the image as
`ami_id` in release.auto.tfvars.json, uses resource addresses of its own, and its images carry the
team's `Service` and `Release` tags (an image its pipeline baked may carry no more than `Service`);
its opsdeck.toml says so in `[conventions]`, in the single-image format (`[image]`) of earlier decks. Two environments,
qa (a sandbox) and live (promotes from qa), in the local cloud's default account: nothing here
leans on the sample deck's names, tags or addresses.

Runs on the session's local cloud (the `demo_deck` fixture starts it); the demo deck itself is not
touched, and this deck's resources live in another account than the demo's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.helpers import ROOT, opsdeck

pytestmark = pytest.mark.integration

SOURCE = ROOT / "tests" / "decks" / "conventions"
ENVS = ("qa", "live")
PIN = "release.auto.tfvars.json"
REGION = "us-east-1"
STATE_BUCKET = "opsdeck-conventions-tfstate"
DUMMY = {"aws_access_key_id": "conventions-test", "aws_secret_access_key": "conventions-test"}
SLOW = 300  # seconds: the most one command (an apply, a promote) may take here


@dataclass(frozen=True)
class Conventions:
    """The applied deck: where it is, the local cloud's endpoint, and the image both environments run."""

    deck: Path
    endpoint: str
    first: str  # the first billing image, pinned in qa and live by the set-up
    first_version: str


def _git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def _json(*args: str, deck: Path, timeout: float = SLOW) -> Any:
    return json.loads(opsdeck(*args, "--json", deck=deck, check=True, timeout=timeout).stdout)


def _pin(deck: Path, env: str) -> str:
    data = json.loads((deck / "envs" / env / PIN).read_text(encoding="utf-8"))
    assert set(data) == {"ami_id"}, f"{env}'s pin file holds more than ami_id: {data}"
    return str(data["ami_id"])


def _status(deck: Path) -> dict[str, dict[str, Any]]:
    data = _json("status", deck=deck)
    assert data["cloud"] == "reachable", data
    return {e["name"]: e for e in data["environments"]}


def _on_image(deck: Path, env: str, image: str) -> None:
    """Status says ``env`` pins ``image`` and runs it on every desired instance."""
    status = _status(deck)[env]
    assert "error" not in status, f"{env}: {status.get('error')}"
    (service,) = status["services"]
    assert service["name"] == "billing", status["services"]
    assert service["image"]["id"] == image, f"{env} pins {service['image']['id']}, expected {image}"
    counts = service["instances"]
    assert counts["desired"] == counts["running"] == counts["on_pinned_image"] > 0, f"{env}: {counts}"
    assert set(status["instance_images"].values()) == {image}, f"{env} runs {status['instance_images']}"


@pytest.fixture(scope="module")
def conventions(demo_deck: Path, tmp_path_factory: pytest.TempPathFactory) -> Conventions:
    """The conventions deck as a git repository, baked and applied in both environments."""
    deck = tmp_path_factory.mktemp("conventions") / "deck"
    shutil.copytree(
        SOURCE, deck, ignore=shutil.ignore_patterns(".terraform", ".opsdeck", "*.tfplan", ".terraform.lock.hcl")
    )
    _git(deck, "init", "-q", "-b", "main")
    _git(deck, "config", "user.name", "Billing Team")
    _git(deck, "config", "user.email", "billing@example.com")
    _git(deck, "add", "-A")
    # The pins are placeholders: the first commit of a pin file is the first real release.
    _git(deck, "reset", "-q", "--", f"envs/*/{PIN}")
    _git(deck, "commit", "-q", "-m", "billing deck")

    endpoint = json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["endpoint"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **DUMMY)
    try:
        s3.create_bucket(Bucket=STATE_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    finally:
        s3.close()

    (base,) = _json("bake", "--base", deck=deck)
    assert base["layer"] == "base" and base["service"] is None, base
    (image,) = _json("bake", deck=deck)
    assert image["service"] == "billing" and image["base_id"] == base["id"], image

    for env in ENVS:
        (deck / "envs" / env / PIN).write_text(json.dumps({"ami_id": image["id"]}, indent=2) + "\n", encoding="utf-8")
        _git(deck, "add", f"envs/{env}/{PIN}")
        _git(deck, "commit", "-q", "-m", f"pin billing {image['version']} in {env}")

    # Two environments, two states: applied side by side.
    with ThreadPoolExecutor(max_workers=len(ENVS)) as pool:
        results = list(pool.map(lambda env: opsdeck("apply", env, "--yes", deck=deck, timeout=SLOW, check=True), ENVS))
    for env, result in zip(ENVS, results, strict=True):
        assert f"applied {env}: +6 ~0 -0" in result.stdout, (env, result.stdout, result.stderr)
    return Conventions(deck, endpoint, image["id"], image["version"])


@pytest.fixture(scope="module")
def ec2(conventions: Conventions) -> Iterator[Any]:
    """boto3 in the local cloud's default account (the deck's account)."""
    client = boto3.client("ec2", endpoint_url=conventions.endpoint, region_name=REGION, **DUMMY)
    yield client
    client.close()


def _qa_subnet(ec2: Any) -> str:
    subnets = ec2.describe_subnets(Filters=[{"Name": "tag:Environment", "Values": ["qa"]}])["Subnets"]
    assert len(subnets) == 1, f"expected qa's one subnet, found {[s['SubnetId'] for s in subnets]}"
    return str(subnets[0]["SubnetId"])


def _launch(ec2: Any, image: str, subnet: str | None, **tags: str) -> str:
    raw = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        **({"SubnetId": subnet} if subnet else {}),
    )
    return str(raw["Instances"][0]["InstanceId"])


def _terminate(ec2: Any, instances: list[str]) -> None:
    if instances:
        ec2.terminate_instances(InstanceIds=instances)
        ec2.get_waiter("instance_terminated").wait(InstanceIds=instances, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


# -- the tests, in order: each leaves the deck as the next expects it -----------------------------


def test_status_reads_each_environment_by_the_decks_own_tags_and_pins(conventions: Conventions) -> None:
    deck = conventions.deck
    data = _json("status", deck=deck)
    assert data["deck"] == "billing" and data["cloud"] == "reachable", data
    status = {e["name"]: e for e in data["environments"]}
    assert list(status) == list(ENVS)
    for env, row in status.items():
        assert "error" not in row, f"{env}: {row.get('error')}"
        assert _pin(deck, env) == conventions.first
        (service,) = row["services"]
        assert service["name"] == "billing", row["services"]
        assert service["image"]["id"] == conventions.first, service
        assert service["image"]["version"] == conventions.first_version, service
        counts = service["instances"]
        assert counts["desired"] == counts["running"] == counts["on_pinned_image"] > 0, f"{env}: {counts}"
        assert row["instances"] == counts, row
        assert row["image"]["id"] == conventions.first, row["image"]
        assert set(row["instance_images"].values()) == {conventions.first}, row["instance_images"]
        for key in ("plan", "drift", "drift_at"):
            assert key in row, f"{env}: no {key!r} in {sorted(row)}"
    assert status["qa"]["instances"]["desired"] == 1 and status["live"]["instances"]["desired"] == 2
    assert status["qa"]["sandbox"] is True and status["live"]["protected"] is False
    assert status["live"]["promote_from"] == "qa" and status["live"]["lag"]["in_sync"] is True, status["live"]
    assert not (deck / "envs" / "qa" / "image.auto.tfvars.json").exists()  # no pin file of the default name

    plan = opsdeck("plan", "qa", deck=deck, timeout=SLOW)
    assert plan.returncode == 0, f"plan of qa after apply: exit {plan.returncode}\n{plan.stdout}\n{plan.stderr}"
    assert "qa: no changes" in plan.stdout, plan.stdout


def test_drift_of_the_applied_deck_is_clean(conventions: Conventions) -> None:
    result = opsdeck("drift", "--json", deck=conventions.deck, timeout=SLOW)
    assert result.returncode == 0, f"drift exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    reports = {e["name"]: e for e in json.loads(result.stdout)["environments"]}
    assert list(reports) == list(ENVS)
    for env, report in reports.items():
        assert report["status"] == "clean", (env, report)
        assert report["managed"] == [], (env, report["managed"])
        assert report["unmanaged"] == [], (env, report["unmanaged"])
        assert report["image"] == [], (env, report["image"])
    status = _status(conventions.deck)
    assert {env: status[env]["drift"] for env in ENVS} == {"qa": "clean", "live": "clean"}


def test_promote_through_the_chain_then_roll_back(conventions: Conventions) -> None:
    deck, first = conventions.deck, conventions.first
    (baked,) = _json("bake", deck=deck)
    new = baked["id"]
    assert baked["service"] == "billing" and new != first, baked

    out = _json("promote", new, "qa", "--yes", deck=deck)
    assert (out["environment"], out["from_image"], out["to_image"]) == ("qa", first, new), out
    assert out["commit"] == _git(deck, "rev-parse", "HEAD").strip()
    stat = _git(deck, "show", "--stat", "--format=", "HEAD")
    assert "1 file changed" in stat and f"envs/qa/{PIN}" in stat, stat
    assert _git(deck, "show", "--name-only", "--format=", "HEAD").split() == [f"envs/qa/{PIN}"]
    assert _pin(deck, "qa") == new and _pin(deck, "live") == first
    assert _git(deck, "status", "--porcelain", "--", f"envs/*/{PIN}") == ""
    _on_image(deck, "qa", new)

    out = _json("promote", "qa", "live", "--yes", deck=deck)
    assert (out["environment"], out["from_image"], out["to_image"]) == ("live", first, new), out
    assert _git(deck, "show", "--name-only", "--format=", "HEAD").split() == [f"envs/live/{PIN}"]
    _on_image(deck, "live", new)

    out = _json("rollback", "live", "--yes", deck=deck)
    assert (out["environment"], out["from_image"], out["to_image"]) == ("live", new, first), out
    assert _pin(deck, "live") == first and _pin(deck, "qa") == new
    _on_image(deck, "live", first)
    _on_image(deck, "qa", new)

    history = _json("history", "live", deck=deck)
    images = [[s["image_id"] for s in release["services"]] for release in history]
    assert images == [[first], [new], [first]], history
    assert [r["commit"] for r in history] == _git(deck, "log", "--format=%H", "--", f"envs/live/{PIN}").split()
    assert history[0]["message"].startswith("rollback live: billing"), history[0]
    assert history[1]["message"].startswith(f"promote billing {baked['version']} to live"), history[1]
    assert [r["when"] for r in history] == sorted((r["when"] for r in history), reverse=True)


def test_an_image_the_teams_pipeline_baked_is_listed_and_promoted_by_id(conventions: Conventions, ec2: Any) -> None:
    """The team's pipeline bakes as CI would: an image of an instance, tagged with the team's Service tag
    and a marker of the run, and nothing of opsdeck's (no version, base, git sha). opsdeck lists it by
    its creation time, counts it in lag and promotes it by id: into qa, then from qa into live."""
    deck, first = conventions.deck, conventions.first
    builder = _launch(ec2, _pin(deck, "qa"), None, Name="billing-pipeline-builder")
    try:
        made = ec2.create_image(
            InstanceId=builder,
            Name=f"billing-pipeline-{builder}",
            TagSpecifications=[
                {
                    "ResourceType": "image",
                    "Tags": [{"Key": "Service", "Value": "billing"}, {"Key": "ci", "Value": "pipeline run 7"}],
                }
            ],
        )
    finally:
        _terminate(ec2, [builder])
    ci = str(made["ImageId"])
    created = str(ec2.describe_images(ImageIds=[ci])["Images"][0]["CreationDate"])
    label = f"{created[:16]}Z"  # 2026-12-04T10:31Z

    rows = _json("images", deck=deck)
    billing = [r for r in rows if r["service"] == "billing"]
    assert billing[-1]["id"] == ci, [(r["id"], r["version"]) for r in billing]  # the newest
    row = billing[-1]
    assert (row["version"], row["versioned"], row["built_by"]) == (label, False, "pipeline run 7"), row
    assert row["environments"] == [] and row["base"] is None and row["git_sha"] == ""
    # opsdeck's own bakes carry the deck's Release tag, the base's too (its recipe names no version tag).
    assert all(r["versioned"] for r in rows if r["id"] != ci), [(r["id"], r["version"]) for r in rows]
    assert [r["version"] for r in rows if r["layer"] == "base"] == ["1.0.0"], rows

    out = _json("promote", ci, "qa", "--yes", deck=deck)
    assert (out["environment"], out["to_image"]) == ("qa", ci) and out["services"][0]["version"] == label, out
    _on_image(deck, "qa", ci)
    live = _status(deck)["live"]
    assert live["lag"]["in_sync"] is False and live["lag"]["source_image"] == ci, live["lag"]
    assert live["lag"]["behind"] == 2, live["lag"]  # live runs the first image: the second and the pipeline's

    out = _json("promote", "qa", "live", "--yes", deck=deck)
    assert (out["environment"], out["from_image"], out["to_image"]) == ("live", first, ci), out
    _on_image(deck, "live", ci)
    assert _status(deck)["live"]["lag"]["in_sync"] is True
    (latest, *_) = _json("history", "live", deck=deck)
    assert latest["message"].startswith(f"promote billing {label} to live"), latest
    assert [(s["image_id"], s["version"]) for s in latest["services"]] == [(ci, label)], latest


def test_unmanaged_instances_are_found_by_the_environment_tag(conventions: Conventions, ec2: Any) -> None:
    deck = conventions.deck
    image = _pin(deck, "qa")
    # One inside qa's subnet, one outside any of the deck's VPCs that only the Environment tag ties
    # to qa, and a look-alike tagged with opsdeck's default key (env), which this deck does not use.
    inside = _launch(ec2, image, _qa_subnet(ec2), Environment="qa", Name="hand-made")
    tagged = _launch(ec2, image, None, Environment="qa", Name="hand-made-elsewhere")
    other_key = _launch(ec2, image, None, env="qa", Name="not-this-decks-tag")
    try:
        result = opsdeck("drift", "qa", "--json", deck=deck, timeout=SLOW)
        assert result.returncode == 2, f"drift exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        reports = {e["name"]: e for e in json.loads(result.stdout)["environments"]}
        assert list(reports) == ["qa"]
        report = reports["qa"]
        assert report["status"] == "drifted" and report["managed"] == [], report
        unmanaged = {(u["type"], u["id"]) for u in report["unmanaged"]}
        assert ("ec2:instance", inside) in unmanaged, report["unmanaged"]
        assert ("ec2:instance", tagged) in unmanaged, report["unmanaged"]
        assert ("ec2:instance", other_key) not in unmanaged, report["unmanaged"]
    finally:
        _terminate(ec2, [inside, tagged, other_key])


def test_a_services_groups_are_those_its_service_tag_names(conventions: Conventions, ec2: Any) -> None:
    """Another service's group in qa (tagged Environment = qa, Service = reports) is not billing's."""
    deck = conventions.deck
    image = _pin(deck, "qa")
    autoscaling = boto3.client("autoscaling", endpoint_url=conventions.endpoint, region_name=REGION, **DUMMY)
    template = ec2.create_launch_template(
        LaunchTemplateName="reports-qa-by-hand",
        LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    group = "reports-qa-by-hand"
    tags = {"Environment": "qa", "Service": "reports", "managed_by": "terraform"}
    try:
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=group,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
            MinSize=1,
            MaxSize=1,
            DesiredCapacity=1,
            VPCZoneIdentifier=_qa_subnet(ec2),
            Tags=[
                {
                    "Key": k,
                    "Value": v,
                    "PropagateAtLaunch": True,
                    "ResourceId": group,
                    "ResourceType": "auto-scaling-group",
                }
                for k, v in tags.items()
            ],
        )
        status = _status(deck)["qa"]
        assert len(status["instance_images"]) == 2, status["instance_images"]  # found by the Environment tag
        (service,) = status["services"]
        assert service["name"] == "billing", status["services"]
        assert service["instances"] == {"desired": 1, "running": 1, "on_pinned_image": 1}, service
    finally:
        autoscaling.delete_auto_scaling_group(AutoScalingGroupName=group, ForceDelete=True)
        ec2.delete_launch_template(LaunchTemplateId=template)
        autoscaling.close()
    left = ec2.describe_instances(
        Filters=[
            {"Name": "tag:aws:autoscaling:groupName", "Values": [group]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
    )["Reservations"]
    _terminate(ec2, [i["InstanceId"] for r in left for i in r["Instances"]])


def test_nuke_rebuild_dry_run_lists_this_decks_own_addresses(conventions: Conventions) -> None:
    deck = conventions.deck
    result = opsdeck("nuke-rebuild", "qa", "--json", deck=deck, timeout=SLOW)
    assert result.returncode == 0, f"dry run exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["environment"] == "qa", plan
    assert plan["account"] == "123456789012" and plan["region"] == REGION, plan
    for address in ("aws_autoscaling_group.fleet", "aws_launch_template.app", "aws_vpc.main", "aws_subnet.app"):
        assert any(a.endswith(address) for a in plan["managed"]), f"{address} not in {plan['managed']}"
    assert all(a.startswith("module.billing.") for a in plan["managed"]), plan["managed"]
    assert plan["unmanaged"] == [], plan["unmanaged"]  # what the tests above made is gone
    assert plan["pins"] == {"billing": _pin(deck, "qa")}, plan["pins"]
    _on_image(deck, "qa", _pin(deck, "qa"))  # a dry run changes nothing

    refused = opsdeck("nuke-rebuild", "live", "--json", deck=deck, timeout=SLOW)
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert "only for sandbox environments" in refused.stderr, refused.stderr
