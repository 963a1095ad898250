"""Terraform's own instance refresh path on the local cloud, on the adopt estate (tests/decks/adopt).

The estate is written the way the community module writes an auto scaling group: one group whose
launch template gets a new version in place and whose ``instance_refresh`` block rolls it. Raw
``terraform`` applies envs/qa, then applies it again with a new web image: the AWS provider updates
the template and the group and calls StartInstanceRefresh (moto alone answered HTTP 500 and the
provider retried for minutes). The apply returns promptly, the group keeps its name, and the refresh
the local cloud runs replaces every web instance with one on the new image.

Runs on the session's local cloud (the `demo_deck` fixture starts it), in an account of its own
(777777777777, reached with AssumeRole as the demo reaches its accounts) and a state bucket of its
own, so nothing here meets the demo's or another test's resources, tags or state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest

from opsdeck.adapters.terraform import write_cli_config
from tests.helpers import ROOT, opsdeck

pytestmark = pytest.mark.integration

T = TypeVar("T")
SOURCE = ROOT / "tests" / "decks" / "adopt"
REGION = "us-east-1"
ACCOUNT = "777777777777"
STATE_BUCKET = "opsdeck-adopt-refresh-test-tfstate"  # not the estate's own name, which a deck test may use
DUMMY = {"aws_access_key_id": "adopt-test", "aws_secret_access_key": "adopt-test"}
PROMPT = 120.0  # seconds: without instance refresh the provider retried StartInstanceRefresh far longer


def _wait(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def _terraform(workdir: Path, env: dict[str, str], *args: str) -> tuple[str, float]:
    """Run terraform in ``workdir``; its output and how long it took (fails the test on an error)."""
    started = time.monotonic()
    done = subprocess.run(
        ["terraform", *args, "-input=false", "-no-color"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    took = time.monotonic() - started
    assert done.returncode == 0, f"terraform {' '.join(args)} failed after {took:.1f}s:\n{done.stdout}\n{done.stderr}"
    return done.stdout, took


def _pin(env_dir: Path, web: str, batch: str) -> None:
    text = json.dumps({"web_ami": web, "batch_ami": batch}, indent=2) + "\n"
    (env_dir / "amis.auto.tfvars.json").write_text(text, encoding="utf-8")


def _web(asg: Any, ec2: Any) -> dict[str, str]:
    """The web group's instances and the image each one runs."""
    (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web-qa"])["AutoScalingGroups"]
    ids = [i["InstanceId"] for i in group["Instances"]]
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []
    return {i["InstanceId"]: i["ImageId"] for r in reservations for i in r["Instances"]}


def test_a_new_image_rolls_the_group_in_place_through_terraform(demo_deck: Path, tmp_path: Path) -> None:
    endpoint = json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["endpoint"]
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=REGION, **DUMMY)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/adopt", RoleSessionName="adopt-test")["Credentials"]
    sts.close()
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )
    ec2, asg, s3 = (session.client(name, endpoint_url=endpoint) for name in ("ec2", "autoscaling", "s3"))
    try:
        s3.create_bucket(Bucket=STATE_BUCKET)
        public = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        web_first, web_next, batch = (
            ec2.copy_image(SourceImageId=public, SourceRegion=REGION, Name=f"adopt-{name}-{tmp_path.name}")["ImageId"]
            for name in ("web-1", "web-2", "batch-1")
        )

        deck = tmp_path / "adopt"
        shutil.copytree(SOURCE, deck, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfplan"))
        qa = deck / "envs" / "qa"
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
            "AWS_REGION": REGION,
            "TF_IN_AUTOMATION": "1",
        }
        mirror = os.environ.get("OPSDECK_TF_PLUGIN_MIRROR")
        if mirror:
            env["TF_CLI_CONFIG_FILE"] = str(write_cli_config(Path(mirror), tmp_path / "tf"))
        backend = [
            f"-backend-config={key}={value}"
            for key, value in {
                "bucket": STATE_BUCKET,
                "use_path_style": "true",
                "skip_credentials_validation": "true",
                "skip_requesting_account_id": "true",
                "skip_s3_checksum": "true",
            }.items()
        ]

        _pin(qa, web_first, batch)
        _, init_took = _terraform(qa, env, "init", *backend)
        _, first_took = _terraform(qa, env, "apply", "-auto-approve")
        before = _web(asg, ec2)
        assert len(before) == 2 and set(before.values()) == {web_first}, before
        assert asg.describe_instance_refreshes(AutoScalingGroupName="web-qa")["InstanceRefreshes"] == []

        _pin(qa, web_next, batch)
        out, second_took = _terraform(qa, env, "apply", "-auto-approve")
        assert "Resources: 0 added, 2 changed, 0 destroyed." in out, out  # template and group, in place
        assert second_took < PROMPT, f"the second apply took {second_took:.0f}s"
        started = time.monotonic()

        groups = asg.describe_auto_scaling_groups(Filters=[{"Name": "tag:Service", "Values": ["web"]}])
        assert [g["AutoScalingGroupName"] for g in groups["AutoScalingGroups"]] == ["web-qa"]

        def finished() -> dict[str, Any] | None:
            found = asg.describe_instance_refreshes(AutoScalingGroupName="web-qa")["InstanceRefreshes"]
            assert len(found) == 1, found  # one apply, one refresh
            return found[0] if found[0]["Status"] not in ("Pending", "InProgress") else None

        refresh = _wait("web-qa's instance refresh to finish", finished)
        refresh_took = time.monotonic() - started
        assert refresh["Status"] == "Successful", refresh
        assert refresh["Preferences"]["MinHealthyPercentage"] == 50
        after = _web(asg, ec2)
        assert len(after) == 2 and set(after.values()) == {web_next}, after
        assert not set(after) & set(before), "an instance on the old image was kept"
        print(
            f"adopt qa on the local cloud: init {init_took:.1f}s, first apply {first_took:.1f}s, "
            f"apply of the new web image {second_took:.1f}s, refresh to Successful {refresh_took:.1f}s after it"
        )
    finally:
        for client in (ec2, asg, s3):
            client.close()
