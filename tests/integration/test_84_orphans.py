"""`opsdeck orphans` on the demo deck: a hand-launched instance tagged for an environment the deck does
not have, a leftover state file, an old unpinned image (and its snapshot), and an address in the
protected production account, each found with its age and a labelled cost estimate; then removed
(dry run, --yes, protected account refused). Everything planted here is gone at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import opsdeck

pytestmark = pytest.mark.integration

BUCKET = "opsdeck-demo-tfstate-111111111111"
STATE_KEY = "shop/qa/terraform.tfstate"
# an environment the deck does not have, on resources its modules made (the deck's ownership marker)
OURS_QA = [{"Key": "env", "Value": "qa"}, {"Key": "managed_by", "Value": "terraform"}]


def _deck(demo_deck: Path) -> Any:
    from opsdeck.core.estate.deck import Deck

    return Deck.open(demo_deck)


@pytest.fixture(scope="module")
def planted(demo_deck: Path) -> Iterator[dict[str, str]]:
    """What a careless hand leaves behind, made with boto3 in the demo's accounts; removed afterwards."""
    from opsdeck.core.estate.pins import read_pin

    deck = _deck(demo_deck)
    dev = deck.tools.env("dev").cloud
    ec2 = dev.client("ec2")
    raw = ec2.run_instances(
        ImageId=read_pin(deck, "dev", "web"),
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": OURS_QA}],
    )
    instance = raw["Instances"][0]["InstanceId"]
    dev.put_object(BUCKET, STATE_KEY, json.dumps({"version": 4, "serial": 1, "resources": []}).encode())
    build = deck.tools.build().client("ec2")
    image = build.create_image(InstanceId=instance, Name="web-0.0.1-left-behind")["ImageId"]
    build.create_tags(
        Resources=[image],
        Tags=[{"Key": "app", "Value": "web"}, {"Key": "role", "Value": "app"}, {"Key": "version", "Value": "0.0.1"}],
    )
    mappings = build.describe_images(ImageIds=[image])["Images"][0].get("BlockDeviceMappings", [])
    snapshot = next(m["Ebs"]["SnapshotId"] for m in mappings if (m.get("Ebs") or {}).get("SnapshotId"))
    prod = deck.tools.env("prod").cloud.client("ec2")
    address = prod.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": OURS_QA}])[
        "AllocationId"
    ]
    made = {"instance": instance, "image": image, "snapshot": snapshot, "address": address}
    yield made
    _clean(deck, made)


def _clean(deck: Any, made: dict[str, str]) -> None:
    from botocore.exceptions import ClientError

    ec2 = deck.tools.env("dev").cloud.client("ec2")
    build = deck.tools.build().client("ec2")
    prod = deck.tools.env("prod").cloud.client("ec2")
    for call in (
        lambda: ec2.terminate_instances(InstanceIds=[made["instance"]]),
        lambda: build.deregister_image(ImageId=made["image"]),
        lambda: build.delete_snapshot(SnapshotId=made["snapshot"]),
        lambda: deck.tools.env("dev").cloud.delete_object(BUCKET, STATE_KEY),
        lambda: prod.release_address(AllocationId=made["address"]),
    ):
        with contextlib.suppress(ClientError):  # already gone: the test removed it
            call()


def _orphans(demo_deck: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return opsdeck("orphans", "--keep-images", "1", *args, deck=demo_deck, stdin=subprocess.DEVNULL, timeout=300)


def _by_id(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in json.loads(result.stdout)["orphans"]}


def test_each_planted_orphan_shows_with_age_and_a_labelled_estimate(demo_deck: Path, planted: dict[str, str]) -> None:
    result = _orphans(demo_deck, "--json")
    assert result.returncode == 2, result.stderr
    found = _by_id(result)
    instance = found[planted["instance"]]
    assert (instance["kind"], instance["account"], instance["region"]) == ("unknown-env", "111111111111", "us-east-1")
    assert instance["type"] == "ec2:instance" and "'qa', which this deck does not have" in instance["detail"]
    assert isinstance(instance["age_hours"], float) and 0 <= instance["age_hours"] < 1
    assert instance["cost"] == {
        "usd_per_hour": 0.0104,
        "estimate": True,
        "price_table": "2026-11-01",
        "basis": "t3.micro on-demand in us-east-1",
    }
    state = found[STATE_KEY]
    assert (state["kind"], state["bucket"], state["account"]) == ("state-file", BUCKET, "111111111111")
    assert isinstance(state["age_hours"], float) and state["cost"]["estimate"] is True
    assert state["cost"]["usd_per_hour"] > 0 and state["cost"]["price_table"] == "2026-11-01"
    image = found[planted["image"]]
    assert image["kind"] == "image" and image["detail"].startswith("web 0.0.1 (web-0.0.1-left-behind)")
    assert isinstance(image["age_hours"], float) and image["cost"]["price_table"] == "2026-11-01"
    snapshot = found[planted["snapshot"]]
    assert snapshot["kind"] == "snapshot" and snapshot["image"] == planted["image"]
    assert snapshot["cost"]["usd_per_hour"] > 0 and "snapshot storage" in snapshot["cost"]["basis"]
    address = found[planted["address"]]
    assert (address["account"], address["region"], address["age_hours"]) == ("333333333333", "us-west-2", None)
    assert address["cost"]["usd_per_hour"] == 0.005
    saved = json.loads((demo_deck / ".opsdeck" / "hygiene" / "orphans.json").read_text())
    assert planted["instance"] in {o["id"] for o in saved["report"]["orphans"]}  # what the deck shows
    total = json.loads(result.stdout)["total"]
    assert total["estimate"] is True and total["price_table"] == "2026-11-01"
    assert total["usd_per_hour"] >= 0.0104 + 0.005


def test_the_table_says_what_the_figures_are(demo_deck: Path, planted: dict[str, str]) -> None:
    result = _orphans(demo_deck)
    assert result.returncode == 2, result.stderr
    assert planted["instance"] in result.stdout and "~$0.0104/h" in result.stdout
    assert "estimates from the shipped on-demand price table of 2026-11-01" in result.stdout


def test_a_price_table_without_the_type_shows_unknown_not_zero(demo_deck: Path, planted: dict[str, str]) -> None:
    table = Path(os.environ["OPSDECK_HOME"]) / "data" / "prices.json"
    table.parent.mkdir(parents=True, exist_ok=True)
    prices = {"date": "2099-01-01", "regions": {"us-east-1": {"instance": {"t3.large": 0.0832}}}}
    table.write_text(json.dumps(prices))
    try:
        result = _orphans(demo_deck, "--json")
    finally:
        table.unlink()
    assert result.returncode == 2, result.stderr
    cost = _by_id(result)[planted["instance"]]["cost"]
    assert cost["usd_per_hour"] is None and cost["unknown"] is True and cost["price_table"] == "2099-01-01"
    assert cost["basis"] == "no price for instance type t3.micro in us-east-1"
    data = json.loads(result.stdout)
    assert data["price_table"] == {"date": "2099-01-01", "source": "refreshed"}
    assert data["total"]["unknown"] >= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--keep-images", "0"), "--keep-images: expected 1 or more images to keep, got 0"),
        (("--only", "i-1"), "--only, --yes and --dry-run go with --delete"),
        (("--delete", "--yes", "--only", "i-nothere"), "no orphan with id i-nothere"),
        (("--refresh-prices",), "the local cloud has no AWS Price List API"),
    ],
)
def test_bad_input_is_one_line(demo_deck: Path, args: tuple[str, ...], message: str) -> None:
    result = opsdeck("orphans", *args, deck=demo_deck, stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_removal_dry_run_then_yes_and_protected_refused(demo_deck: Path, planted: dict[str, str]) -> None:
    deck = _deck(demo_deck)
    ec2 = deck.tools.env("dev").cloud.client("ec2")
    build = deck.tools.build().client("ec2")
    mine = ["--only", planted["instance"], "--only", STATE_KEY, "--only", planted["image"]]
    dry = _orphans(demo_deck, "--delete", *mine)  # no terminal, no --yes: a dry run
    assert dry.returncode == 2, dry.stderr
    assert "would delete 4 orphans" in dry.stdout and planted["snapshot"] in dry.stdout  # the image takes it along
    state = ec2.describe_instances(InstanceIds=[planted["instance"]])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "running"

    done = _orphans(demo_deck, "--delete", "--yes", "--json", *mine)
    assert done.returncode == 0, done.stderr
    deleted = {o["id"] for o in json.loads(done.stdout)["deleted"]}
    assert deleted == {planted["instance"], STATE_KEY, planted["image"], planted["snapshot"]}
    state = ec2.describe_instances(InstanceIds=[planted["instance"]])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "terminated"
    assert build.describe_images(Owners=["self"], ImageIds=[planted["image"]])["Images"] == []
    assert planted["snapshot"] not in {
        s["SnapshotId"] for s in build.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    }
    s3 = deck.tools.env("dev").cloud
    assert s3.read_object(BUCKET, STATE_KEY) is None
    versions = s3.client("s3").list_object_versions(Bucket=BUCKET, Prefix=STATE_KEY).get("Versions", [])
    assert versions, "the state bucket is versioned: the deleted state can still be restored"
    records = [r for r in json.loads(opsdeck("audit", "list", "--json", deck=demo_deck, check=True).stdout)]
    closing = [r for r in records if r.get("action") == "orphans-delete"][-1]
    assert closing["result"] == "ok" and {d["id"] for d in closing["deleted"]} == deleted

    refused = _orphans(demo_deck, "--delete", "--yes", "--only", planted["address"])
    assert refused.returncode == 1
    assert "account 333333333333 is listed in aws.protected_accounts" in refused.stderr
    prod = deck.tools.env("prod").cloud.client("ec2")
    assert prod.describe_addresses(AllocationIds=[planted["address"]])["Addresses"]

    after = _by_id(_orphans(demo_deck, "--json"))
    assert not {planted["instance"], STATE_KEY, planted["image"], planted["snapshot"]} & set(after)
    assert planted["address"] in after


def test_what_may_be_someone_elses_or_a_copy_is_never_removable(demo_deck: Path) -> None:
    """Another team's environment in a shared account, a copy's state with no ledger record, another
    stack's state: listed as not removable, or not considered at all."""
    deck = _deck(demo_deck)
    dev = deck.tools.env("dev").cloud
    ec2 = dev.client("ec2")
    theirs = ec2.create_vpc(
        CidrBlock="10.99.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "env", "Value": "payments"}]}],
    )["Vpc"]["VpcId"]
    keys = ["shop/dev/recover-us-west-2/terraform.tfstate", "billing/terraform.tfstate"]
    for key in keys:
        dev.put_object(BUCKET, key, b"{}")
    try:
        result = _orphans(demo_deck, "--json")
        found = _by_id(result)
        vpc = found[theirs]
        assert vpc["removable"] is False and "check who owns it" in vpc["how"]
        copy_state = found[keys[0]]  # an unrecorded copy's state: listed, never removed here
        assert copy_state["removable"] is False and copy_state["how"].endswith("--region us-west-2 --destroy")
        assert keys[1] not in found
        notes = json.loads(result.stdout)["notes"]
        assert any("outside this deck's key prefixes (shop/)" in n for n in notes)
        kept = _orphans(demo_deck, "--delete", "--yes", "--json", "--only", theirs)
        assert kept.returncode == 0, kept.stderr
        assert [o["id"] for o in json.loads(kept.stdout)["skipped"]] == [theirs]
        assert ec2.describe_vpcs(VpcIds=[theirs])["Vpcs"]
    finally:
        ec2.delete_vpc(VpcId=theirs)
        for key in keys:
            dev.delete_object(BUCKET, key)
