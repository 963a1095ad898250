"""The local cloud's instance refresh, driven through boto3 against its own server (serve() in this
process): batches, progress, cancel, rollback, the unhealthy-image fault, SkipMatching, the calls
Terraform's provider makes, the error codes, and the user-data fix for launch template versions.

Batches warm up for 0.3 s and an unhealthy batch fails after 1.5 s (tests/conftest.py); every wait
polls for its condition against a deadline.
"""

from __future__ import annotations

import base64
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
import pytest
from botocore.exceptions import ClientError

from opsdeck.adapters.localcloud_refresh import UNHEALTHY_TAG, batch_size
from opsdeck.adapters.localcloud_server import apply_fidelity_fixes, serve

T = TypeVar("T")
USER_DATA = base64.b64encode(b"#!/bin/sh\necho web\n").decode()


@dataclass(frozen=True)
class Cloud:
    ec2: Any
    asg: Any
    images: tuple[str, str]  # two healthy images


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    apply_fidelity_fixes()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = serve(port)
    kw = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "region_name": "us-east-1",
        "aws_access_key_id": "refresh-test",
        "aws_secret_access_key": "refresh-test",
    }
    ec2, asg = boto3.client("ec2", **kw), boto3.client("autoscaling", **kw)
    first = ec2.describe_images()["Images"][0]["ImageId"]
    images = tuple(
        ec2.copy_image(SourceImageId=first, SourceRegion="us-east-1", Name=f"web-{n}-{uuid.uuid4().hex[:8]}")["ImageId"]
        for n in range(2)
    )
    yield Cloud(ec2, asg, (images[0], images[1]))
    ec2.close()
    asg.close()
    server.shutdown()


def _wait(what: str, check: Callable[[], T | None], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def _template(cloud: Cloud, *images: str) -> str:
    """A launch template with one version per image (version n runs images[n-1]), user data on each."""
    data = {"ImageId": images[0], "InstanceType": "t3.micro", "UserData": USER_DATA}
    name = f"web-{uuid.uuid4().hex[:8]}"
    tid = str(
        cloud.ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)["LaunchTemplate"][
            "LaunchTemplateId"
        ]
    )
    for image in images[1:]:
        cloud.ec2.create_launch_template_version(LaunchTemplateId=tid, LaunchTemplateData={**data, "ImageId": image})
    return tid


def _group(cloud: Cloud, template: str, size: int, version: str = "1") -> str:
    name = f"web-{uuid.uuid4().hex[:8]}"
    cloud.asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=size + 2,
        DesiredCapacity=size,
        AvailabilityZones=["us-east-1a"],
        LaunchTemplate={"LaunchTemplateId": template, "Version": version},
    )
    return name


def _instances(cloud: Cloud, group: str) -> list[dict[str, Any]]:
    (found,) = cloud.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return list(found["Instances"])


def _versions(cloud: Cloud, group: str) -> list[str]:
    return [i["LaunchTemplate"]["Version"] for i in _instances(cloud, group)]


def _images(cloud: Cloud, group: str) -> set[str]:
    ids = [i["InstanceId"] for i in _instances(cloud, group)]
    reservations = cloud.ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return {i["ImageId"] for r in reservations for i in r["Instances"]}


def _refresh(cloud: Cloud, group: str, rid: str) -> dict[str, Any]:
    (found,) = cloud.asg.describe_instance_refreshes(AutoScalingGroupName=group, InstanceRefreshIds=[rid])[
        "InstanceRefreshes"
    ]
    return dict(found)


def _until(cloud: Cloud, group: str, rid: str, *statuses: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = _refresh(cloud, group, rid)
        return found if found["Status"] in statuses else None

    return _wait(f"refresh {rid} of {group} to reach {'/'.join(statuses)}", check)


def _to(template: str, version: str) -> dict[str, Any]:
    return {"LaunchTemplate": {"LaunchTemplateId": template, "Version": version}}


def _code(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_batch_is_what_min_healthy_percentage_leaves_out_of_service() -> None:
    assert [batch_size(4, p) for p in (90, 75, 50, 0)] == [1, 1, 2, 4]
    assert batch_size(2, 50) == 1 and batch_size(3, 100) == 1 and batch_size(10, 90) == 1


def test_batches_follow_min_healthy_percentage_and_progress_moves(cloud: Cloud) -> None:
    old, new = cloud.images
    template = _template(cloud, old, new)
    group = _group(cloud, template, size=4)
    rid = cloud.asg.start_instance_refresh(
        AutoScalingGroupName=group, DesiredConfiguration=_to(template, "2"), Preferences={"MinHealthyPercentage": 50}
    )["InstanceRefreshId"]
    with pytest.raises(ClientError) as second:
        cloud.asg.start_instance_refresh(AutoScalingGroupName=group)
    assert _code(second) == ("InstanceRefreshInProgress", 400)

    replaced: set[int] = set()
    percentages: set[int] = set()

    def check() -> dict[str, Any] | None:
        versions = _versions(cloud, group)
        assert len(versions) == 4, versions  # a batch's old instances are replaced, never just removed
        replaced.add(versions.count("2"))
        found = _refresh(cloud, group, rid)
        percentages.add(found["PercentageComplete"])
        return found if found["Status"] == "Successful" else None

    done = _wait("the refresh to succeed", check)
    assert replaced <= {0, 2, 4} and 2 in replaced, replaced  # two at a time: 50% of 4 stay in service
    assert percentages <= {0, 50, 100} and 50 in percentages, percentages
    assert (done["PercentageComplete"], done["InstancesToUpdate"]) == (100, 0)
    assert done["ProgressDetails"]["LivePoolProgress"] == {"PercentageComplete": 100, "InstancesToUpdate": 0}
    assert done["EndTime"] >= done["StartTime"] and done["Strategy"] == "Rolling"
    assert done["Preferences"]["MinHealthyPercentage"] == 50 and done["Preferences"]["SkipMatching"] is False
    assert done["DesiredConfiguration"] == _to(template, "2")
    assert _images(cloud, group) == {new}
    (found,) = cloud.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    assert found["LaunchTemplate"]["Version"] == "2"  # the desired configuration is the group's once it succeeded


def test_a_checkpoint_caps_the_batch_and_pauses_the_refresh_there(cloud: Cloud) -> None:
    old, new = cloud.images
    template = _template(cloud, old, new)
    group = _group(cloud, template, size=4)
    rid = cloud.asg.start_instance_refresh(
        AutoScalingGroupName=group,
        DesiredConfiguration=_to(template, "2"),
        Preferences={"MinHealthyPercentage": 0, "CheckpointPercentages": [50], "CheckpointDelay": 60},
    )["InstanceRefreshId"]

    def at_checkpoint() -> dict[str, Any] | None:
        found = _refresh(cloud, group, rid)
        return found if found.get("StatusReason", "").startswith("Waiting at checkpoint") else None

    paused = _wait("the refresh to pause at its checkpoint", at_checkpoint)
    assert paused["Status"] == "InProgress" and paused["PercentageComplete"] == 50, paused
    assert _versions(cloud, group).count("2") == 2  # MinHealthyPercentage 0 allows all four; 50% stops it at two
    assert paused["Preferences"]["CheckpointDelay"] == 60
    _until(cloud, group, rid, "Successful")
    assert _versions(cloud, group) == ["2"] * 4


def test_a_cancel_mid_way_stops_between_batches_and_keeps_what_was_replaced(cloud: Cloud) -> None:
    old, new = cloud.images
    template = _template(cloud, old, new)
    group = _group(cloud, template, size=4)
    rid = cloud.asg.start_instance_refresh(
        AutoScalingGroupName=group, DesiredConfiguration=_to(template, "2"), Preferences={"MinHealthyPercentage": 75}
    )["InstanceRefreshId"]
    _wait("one instance replaced", lambda: _refresh(cloud, group, rid)["PercentageComplete"] >= 25)
    assert cloud.asg.cancel_instance_refresh(AutoScalingGroupName=group)["InstanceRefreshId"] == rid
    cancelled = _until(cloud, group, rid, "Cancelled")
    versions = _versions(cloud, group)
    assert len(versions) == 4 and 1 <= versions.count("2") < 4, versions
    assert cancelled["PercentageComplete"] < 100 and "EndTime" in cancelled
    (found,) = cloud.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    assert found["LaunchTemplate"]["Version"] == "1"  # a cancelled refresh does not change the group
    with pytest.raises(ClientError) as again:
        cloud.asg.cancel_instance_refresh(AutoScalingGroupName=group)
    assert _code(again) == ("ActiveInstanceRefreshNotFound", 400)


def test_a_rollback_puts_every_instance_back_on_the_previous_template(cloud: Cloud) -> None:
    old, new = cloud.images
    template = _template(cloud, old, new)
    group = _group(cloud, template, size=4)
    rid = cloud.asg.start_instance_refresh(
        AutoScalingGroupName=group, DesiredConfiguration=_to(template, "2"), Preferences={"MinHealthyPercentage": 75}
    )["InstanceRefreshId"]
    _wait("one instance replaced", lambda: _refresh(cloud, group, rid)["PercentageComplete"] >= 25)
    assert cloud.asg.rollback_instance_refresh(AutoScalingGroupName=group)["InstanceRefreshId"] == rid
    assert _refresh(cloud, group, rid)["Status"] in ("RollbackInProgress", "RollbackSuccessful")
    with pytest.raises(ClientError) as twice:
        cloud.asg.rollback_instance_refresh(AutoScalingGroupName=group)
    assert _code(twice) == ("ActiveInstanceRefreshNotFound", 400)
    back = _until(cloud, group, rid, "RollbackSuccessful", "RollbackFailed", "Failed")
    assert back["Status"] == "RollbackSuccessful", back
    details = back["RollbackDetails"]
    assert (details["PercentageCompleteOnRollback"], details["InstancesToUpdateOnRollback"]) == (100, 0)
    assert details["RollbackStartTime"] >= back["StartTime"] and "caller" in details["RollbackReason"]
    assert back["PercentageComplete"] < 100 and back["InstancesToUpdate"] > 0  # what the refresh had left
    assert _versions(cloud, group) == ["1"] * 4 and _images(cloud, group) == {old}


def test_an_unhealthy_image_fails_the_refresh_and_auto_rollback_undoes_it(cloud: Cloud) -> None:
    old, good = cloud.images
    bad = cloud.ec2.copy_image(SourceImageId=good, SourceRegion="us-east-1", Name=f"bad-{uuid.uuid4().hex[:8]}")
    cloud.ec2.create_tags(Resources=[bad["ImageId"]], Tags=[{"Key": UNHEALTHY_TAG, "Value": "true"}])
    template = _template(cloud, old, bad["ImageId"])

    group = _group(cloud, template, size=2)
    rid = cloud.asg.start_instance_refresh(
        AutoScalingGroupName=group, DesiredConfiguration=_to(template, "2"), Preferences={"MinHealthyPercentage": 50}
    )["InstanceRefreshId"]
    failed = _until(cloud, group, rid, "Failed", "Successful")
    assert failed["Status"] == "Failed" and "healthy" in failed["StatusReason"], failed
    instances = _instances(cloud, group)
    sick = [i for i in instances if i["LaunchTemplate"]["Version"] == "2"]
    assert len(sick) == 1 and sick[0]["HealthStatus"] == "Unhealthy", instances  # it stopped after one batch
    assert "RollbackDetails" not in failed

    group = _group(cloud, template, size=2)
    rid = cloud.asg.start_instance_refresh(
        AutoScalingGroupName=group,
        DesiredConfiguration=_to(template, "2"),
        Preferences={"MinHealthyPercentage": 50, "AutoRollback": True},
    )["InstanceRefreshId"]
    back = _until(cloud, group, rid, "RollbackSuccessful", "RollbackFailed", "Failed", "Successful")
    assert back["Status"] == "RollbackSuccessful", back
    assert "failed" in back["RollbackDetails"]["RollbackReason"]
    assert _versions(cloud, group) == ["1", "1"] and _images(cloud, group) == {old}
    assert {i["HealthStatus"] for i in _instances(cloud, group)} == {"Healthy"}


def test_skip_matching_leaves_instances_already_on_the_target(cloud: Cloud) -> None:
    old, new = cloud.images
    template = _template(cloud, old, new)
    group = _group(cloud, template, size=2)
    cloud.asg.update_auto_scaling_group(
        AutoScalingGroupName=group, LaunchTemplate={"LaunchTemplateId": template, "Version": "2"}, DesiredCapacity=4
    )
    kept = {i["InstanceId"] for i in _instances(cloud, group) if i["LaunchTemplate"]["Version"] == "2"}
    assert len(kept) == 2
    rid = cloud.asg.start_instance_refresh(
        AutoScalingGroupName=group, Preferences={"SkipMatching": True, "MinHealthyPercentage": 50}
    )["InstanceRefreshId"]
    assert _refresh(cloud, group, rid)["InstancesToUpdate"] == 2
    _until(cloud, group, rid, "Successful")
    assert kept <= {i["InstanceId"] for i in _instances(cloud, group)}
    assert _versions(cloud, group) == ["2"] * 4

    rid = cloud.asg.start_instance_refresh(AutoScalingGroupName=group, Preferences={"SkipMatching": True})[
        "InstanceRefreshId"
    ]
    nothing = _until(cloud, group, rid, "Successful")
    assert (nothing["PercentageComplete"], nothing["InstancesToUpdate"]) == (100, 0)

    rid = cloud.asg.start_instance_refresh(AutoScalingGroupName=group)["InstanceRefreshId"]
    assert _refresh(cloud, group, rid)["InstancesToUpdate"] == 4  # without SkipMatching every one is replaced
    cloud.asg.cancel_instance_refresh(AutoScalingGroupName=group, WaitForTransitioningInstances=False)
    assert _refresh(cloud, group, rid)["Status"] == "Cancelled"


def test_terraforms_calls_cancel_first_then_start_and_read_by_id(cloud: Cloud) -> None:
    """The AWS provider's path: UpdateAutoScalingGroup to the new version, StartInstanceRefresh with its
    default preferences; on InstanceRefreshInProgress, CancelInstanceRefresh, DescribeInstanceRefreshes
    by id until Cancelled, then StartInstanceRefresh again."""
    old, new = cloud.images
    template = _template(cloud, old, new, old)
    group = _group(cloud, template, size=3)
    provider = {
        "MinHealthyPercentage": 90,
        "MaxHealthyPercentage": 100,
        "ScaleInProtectedInstances": "Ignore",
        "SkipMatching": False,
        "StandbyInstances": "Ignore",
    }
    cloud.asg.update_auto_scaling_group(
        AutoScalingGroupName=group, LaunchTemplate={"LaunchTemplateId": template, "Version": "2"}
    )
    first = cloud.asg.start_instance_refresh(AutoScalingGroupName=group, Strategy="Rolling", Preferences=provider)
    cloud.asg.update_auto_scaling_group(
        AutoScalingGroupName=group, LaunchTemplate={"LaunchTemplateId": template, "Version": "3"}
    )
    with pytest.raises(ClientError) as busy:
        cloud.asg.start_instance_refresh(AutoScalingGroupName=group, Strategy="Rolling", Preferences=provider)
    assert _code(busy) == ("InstanceRefreshInProgress", 400)
    assert (
        cloud.asg.cancel_instance_refresh(AutoScalingGroupName=group)["InstanceRefreshId"] == first["InstanceRefreshId"]
    )
    _until(cloud, group, first["InstanceRefreshId"], "Cancelled")
    second = cloud.asg.start_instance_refresh(AutoScalingGroupName=group, Strategy="Rolling", Preferences=provider)
    done = _until(cloud, group, second["InstanceRefreshId"], "Successful")
    assert "DesiredConfiguration" not in done and done["Preferences"]["MinHealthyPercentage"] == 90
    assert _versions(cloud, group) == ["3"] * 3 and _images(cloud, group) == {old}

    newest = cloud.asg.describe_instance_refreshes(AutoScalingGroupName=group, MaxRecords=1)
    assert [r["InstanceRefreshId"] for r in newest["InstanceRefreshes"]] == [second["InstanceRefreshId"]]
    older = cloud.asg.describe_instance_refreshes(AutoScalingGroupName=group, NextToken=newest["NextToken"])
    assert [r["InstanceRefreshId"] for r in older["InstanceRefreshes"]] == [first["InstanceRefreshId"]]
    assert "NextToken" not in older


def test_refusals_carry_aws_error_codes(cloud: Cloud) -> None:
    old, new = cloud.images
    template = _template(cloud, old, new)
    group = _group(cloud, template, size=1)
    refusals = [
        (lambda: cloud.asg.start_instance_refresh(AutoScalingGroupName="no-such-group"), "ValidationError"),
        (lambda: cloud.asg.cancel_instance_refresh(AutoScalingGroupName=group), "ActiveInstanceRefreshNotFound"),
        (lambda: cloud.asg.rollback_instance_refresh(AutoScalingGroupName=group), "ActiveInstanceRefreshNotFound"),
        (
            lambda: cloud.asg.start_instance_refresh(AutoScalingGroupName=group, Preferences={"AutoRollback": True}),
            "ValidationError",
        ),
        (
            lambda: cloud.asg.start_instance_refresh(AutoScalingGroupName=group, DesiredConfiguration=_to("lt-0", "1")),
            "ValidationError",
        ),
        (
            lambda: cloud.asg.start_instance_refresh(AutoScalingGroupName=group, Strategy="ReplaceRootVolume"),
            "ValidationError",
        ),
    ]
    for call, code in refusals:
        with pytest.raises(ClientError) as err:
            call()
        assert _code(err) == (code, 400), err.value

    cloud.asg.start_instance_refresh(AutoScalingGroupName=group)  # no desired configuration: no way back
    with pytest.raises(ClientError) as err:
        cloud.asg.rollback_instance_refresh(AutoScalingGroupName=group)
    assert _code(err) == ("IrreversibleInstanceRefresh", 400)
    assert "desired configuration" in err.value.response["Error"]["Message"]
    cloud.asg.cancel_instance_refresh(AutoScalingGroupName=group, WaitForTransitioningInstances=False)

    latest = _group(cloud, template, size=1, version="$Latest")  # AWS rolls back to numbered versions only
    cloud.asg.start_instance_refresh(AutoScalingGroupName=latest, DesiredConfiguration=_to(template, "1"))
    with pytest.raises(ClientError) as err:
        cloud.asg.rollback_instance_refresh(AutoScalingGroupName=latest)
    assert _code(err) == ("IrreversibleInstanceRefresh", 400) and "$Latest" in err.value.response["Error"]["Message"]

    cloud.asg.delete_auto_scaling_group(AutoScalingGroupName=latest, ForceDelete=True)
    assert cloud.asg.describe_instance_refreshes(AutoScalingGroupName=latest)["InstanceRefreshes"] == []


def test_a_template_version_with_user_data_launches(cloud: Cloud) -> None:
    """moto kept a new version's user data undecoded and failed (HTTP 500) launching from it."""
    old, new = cloud.images
    template = _template(cloud, old, new)
    group = _group(cloud, template, size=1, version="2")
    (instance,) = _instances(cloud, group)
    attribute = cloud.ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    assert base64.b64decode(attribute["UserData"]["Value"]) == base64.b64decode(USER_DATA)
    versions = cloud.ec2.describe_launch_template_versions(LaunchTemplateId=template)["LaunchTemplateVersions"]
    assert {v["LaunchTemplateData"]["UserData"] for v in versions} == {USER_DATA}
    with pytest.raises(ClientError) as err:
        cloud.ec2.create_launch_template_version(
            LaunchTemplateId=template, LaunchTemplateData={"UserData": "not base64!"}
        )
    assert err.value.response["Error"]["Code"] == "InvalidUserData.Malformed"
