"""The demo deck on the real stack: local cloud, Packer, Terraform, git, and the headless commands."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import live_pins, opsdeck

pytestmark = pytest.mark.integration


def _status(deck: Path) -> dict:
    result = opsdeck("status", "--json", deck=deck, check=True)
    return json.loads(result.stdout)


def _git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def test_cloud_status_json(demo_deck: Path) -> None:
    data = json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)
    assert data["running"] is True
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", data["endpoint"])


PIN = "images.auto.tfvars.json"
SERVICES = ["web", "api", "worker"]


def _pins(deck: Path, env: str) -> dict[str, str]:
    return live_pins(deck, env)


def test_demo_brings_up_the_estate_every_service_on_its_pinned_image(demo_deck: Path) -> None:
    status = _status(demo_deck)
    assert status["deck"] == "shop" and status["cloud"] == "reachable"
    envs = {e["name"]: e for e in status["environments"]}
    assert list(envs) == ["sandbox", "dev", "staging", "prod"]
    assert len({e["account"] for e in envs.values()}) >= 3 and len({e["region"] for e in envs.values()}) >= 2
    assert (envs["prod"]["account"], envs["prod"]["region"]) == ("333333333333", "us-west-2")
    for name, env in envs.items():
        pins = _pins(demo_deck, name)
        assert [s["name"] for s in env["services"]] == SERVICES
        total = {"desired": 0, "running": 0, "on_pinned_image": 0}
        for service in env["services"]:
            assert service["image"]["id"] == pins[service["name"]] and service["image"]["version"] == "1.0.0"
            counts = service["instances"]
            assert counts["desired"] > 0
            assert counts["running"] == counts["desired"] == counts["on_pinned_image"], (name, service)
            total = {k: total[k] + counts[k] for k in total}
        assert env["instances"] == total  # the environment's own figure is the sum over its services
        assert set(env["instance_images"].values()) == set(pins.values())
        assert env["drift"] in ("clean", "drifted", "unknown")
    assert envs["prod"]["instances"]["desired"] > envs["dev"]["instances"]["desired"]
    assert envs["sandbox"]["sandbox"] and envs["prod"]["protected"]
    # prod runs copies in its own region; the same originals as staging.
    assert set(_pins(demo_deck, "prod").values()).isdisjoint(_pins(demo_deck, "staging").values())
    # The deck is a git repository whose history says how it came to be.
    log = _git(demo_deck, "log", "--format=%s")
    assert "pin web 1.0.0, api 1.0.0, worker 1.0.0 in every environment" in log and "opsdeck demo deck" in log
    assert _git(demo_deck, "status", "--porcelain") == ""


def test_each_account_reads_only_its_own_resources(demo_deck: Path) -> None:
    from opsdeck.core.estate.deck import Deck

    deck = Deck.open(demo_deck)
    tag = deck.config.conventions.env_tag
    prod = deck.tools.env("prod").cloud
    assert prod.caller_identity()["account"] == "333333333333"
    assert len(prod.groups(tag, "prod")) == 3
    build = deck.tools.build("us-west-2")
    assert build.caller_identity()["account"] == "111111111111"
    assert build.groups(tag, "prod") == []  # the build account finds none of production's groups
    assert deck.tools.env("staging").cloud.groups(tag, "dev") == []


def test_a_role_asked_for_at_once_from_two_threads_is_assumed_once(demo_deck: Path) -> None:
    """A plan and the state bucket check beside it (sandbox and dev share one role) reach for the role's
    credentials together: one assumes it, the other waits and gets the same credentials and clients."""
    import threading

    from opsdeck.core.estate.deck import Deck

    deck = Deck.open(demo_deck)
    assert deck.env("sandbox").role == deck.env("dev").role
    start = threading.Barrier(2)
    got: dict[str, object] = {}

    def reach(env: str) -> None:
        start.wait(10)
        got[env] = deck.tools.env(env)

    threads = [threading.Thread(target=reach, args=(env,)) for env in ("sandbox", "dev")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    sandbox, dev = deck.tools.env("sandbox"), deck.tools.env("dev")
    assert got == {"sandbox": sandbox, "dev": dev}
    # moto hands out new keys for every AssumeRole: one set of keys means the role was assumed once
    assert sandbox.terraform.env["AWS_ACCESS_KEY_ID"] == dev.terraform.env["AWS_ACCESS_KEY_ID"]
    assert sandbox.cloud is dev.cloud
    assert dev.cloud.caller_identity()["account"] == "111111111111"


def test_the_local_cloud_answers_a_second_delete_of_a_launch_template_as_aws_does(demo_deck: Path) -> None:
    """AWS's code for a missing template ID is what the provider reads as "already deleted": a delete
    the SDK retries after its first attempt landed must not fail the apply."""
    from botocore.exceptions import ClientError

    from opsdeck.core.estate.deck import Deck

    ec2 = Deck.open(demo_deck).tools.env("sandbox").cloud.client("ec2")  # type: ignore[attr-defined]
    tid = ec2.create_launch_template(LaunchTemplateName="opsdeck-twice", LaunchTemplateData={})["LaunchTemplate"][
        "LaunchTemplateId"
    ]
    ec2.delete_launch_template(LaunchTemplateId=tid)
    with pytest.raises(ClientError) as again:
        ec2.delete_launch_template(LaunchTemplateId=tid)
    assert again.value.response["Error"]["Code"] == "InvalidLaunchTemplateId.NotFound"
    with pytest.raises(ClientError) as by_name:
        ec2.delete_launch_template(LaunchTemplateName="opsdeck-twice")
    assert by_name.value.response["Error"]["Code"] == "InvalidLaunchTemplateName.NotFoundException"


def test_the_local_cloud_answers_an_sdk_retry_of_a_create_it_already_made_with_the_same_answer(demo_deck: Path) -> None:
    """A retried create whose first answer was lost must not fail with "already exists" (seen in CI:
    the provider's CreateLaunchTemplate did). The first attempt is sent here by hand and its answer
    dropped; botocore then sends attempt 2 of the same invocation."""
    import urllib.request

    from opsdeck.core.estate.deck import Deck

    ec2 = Deck.open(demo_deck).tools.env("sandbox").cloud.client("ec2")  # type: ignore[attr-defined]
    first: list[bytes] = []

    def lose_the_first_answer(request: Any, **_: Any) -> None:
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        assert headers["amz-sdk-request"].startswith("attempt=1")
        body = request.body.encode() if isinstance(request.body, str) else request.body
        sent = urllib.request.Request(request.url, data=body, headers=headers, method=request.method)
        with urllib.request.urlopen(sent, timeout=30) as answer:
            first.append(answer.read())
        request.headers["amz-sdk-request"] = "attempt=2; max=8"

    ec2.meta.events.register("before-send.ec2.CreateLaunchTemplate", lose_the_first_answer)
    made = ec2.create_launch_template(LaunchTemplateName="opsdeck-retried", LaunchTemplateData={})["LaunchTemplate"]
    ec2.meta.events.unregister("before-send.ec2.CreateLaunchTemplate", lose_the_first_answer)
    assert first and made["LaunchTemplateId"].encode() in first[0]
    found = ec2.describe_launch_templates(LaunchTemplateNames=["opsdeck-retried"])["LaunchTemplates"]
    assert [t["LaunchTemplateId"] for t in found] == [made["LaunchTemplateId"]]
    ec2.delete_launch_template(LaunchTemplateId=made["LaunchTemplateId"])
    log = (Path(os.environ["OPSDECK_HOME"]) / "state" / "localcloud.log").read_text(encoding="utf-8")
    assert "attempt 2 of" in log and "answered again as before" in log


def test_plan_of_an_applied_environment_has_no_changes(demo_deck: Path) -> None:
    result = opsdeck("plan", "dev", "--json", deck=demo_deck)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data.pop("planned_at") > 0 and data.pop("cached") is False
    assert data == {"environment": "dev", "add": 0, "change": 0, "destroy": 0, "resources": []}


def test_changing_a_pin_by_hand_plans_a_new_template_and_group(demo_deck: Path) -> None:
    pin = demo_deck / "envs" / "sandbox" / PIN
    original = pin.read_text()
    images = json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)
    was = json.loads(original)["images"]["api"]
    other = next(i["id"] for i in images if i["service"] == "web")  # any other image will do for a plan
    pin.write_text(original.replace(was, other))
    try:
        result = opsdeck("plan", "sandbox", "--json", deck=demo_deck)
        assert result.returncode == 2, result.stderr
        data = json.loads(result.stdout)
        assert (data["add"], data["change"], data["destroy"]) == (2, 0, 2)
        by_address = {r["address"]: r for r in data["resources"]}
        lt = by_address["module.api.aws_launch_template.this"]
        asg = by_address["module.api.aws_autoscaling_group.this"]
        assert sorted(lt["actions"]) == ["create", "delete"] and "image_id" in lt["attributes"]
        assert sorted(asg["actions"]) == ["create", "delete"]
        assert {"launch_template", "name"} <= set(asg["attributes"])
        image_change = next(c for c in lt["changes"] if c["attribute"] == "image_id")
        assert (image_change["before"], image_change["after"]) == (was, other)
        text = opsdeck("plan", "sandbox", deck=demo_deck)
        assert text.returncode == 2 and "2 to add, 0 to change, 2 to destroy" in text.stdout
        assert f'image_id: "{was}" → "{other}"' in text.stdout
        assert f'tag[image_id].value: "{was}" → "{other}"' in text.stdout  # narrowed to the part that changed
    finally:
        pin.write_text(original)
    again = opsdeck("plan", "dev", "--json", deck=demo_deck)
    assert again.returncode == 0, again.stderr


def test_images_lists_each_services_images_where_they_may_run(demo_deck: Path) -> None:
    images = json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)
    head = _git(demo_deck, "rev-list", "--max-parents=0", "HEAD").strip()
    base = [i for i in images if i["layer"] == "base"]
    assert len(base) == 1 and base[0]["service"] is None
    for service in SERVICES:
        (first,) = [i for i in images if i["service"] == service and i["version"] == "1.0.0"]
        assert {"id", "name", "version", "git_sha", "created", "environments", "accounts", "regions"} <= set(first)
        assert first["git_sha"] == head[:12]
        assert first["environments"] == ["sandbox", "dev", "staging", "prod"]
        assert first["base"] == base[0]["id"] and first["base_outdated"] is False
        assert first["accounts"] == ["111111111111", "222222222222", "333333333333"]
        assert first["regions"] == ["us-east-1", "us-west-2"]
        assert first["copies"]["us-west-2"] == _pins(demo_deck, "prod")[service]


def test_demo_again_reuses_the_ready_deck(demo_deck: Path) -> None:
    before = _git(demo_deck, "rev-parse", "HEAD")
    result = opsdeck("demo", str(demo_deck), "--no-open", check=True, timeout=120)
    assert "ready; reusing it" in result.stderr
    assert _git(demo_deck, "rev-parse", "HEAD") == before


def test_text_status_is_a_table(demo_deck: Path) -> None:
    out = opsdeck("status", deck=demo_deck, check=True).stdout
    assert out.splitlines()[0].startswith("shop") and "read at" in out.splitlines()[0]
    assert re.search(r"^prod\s+333333333333 us-west-2\s+protected\s+web\s+1\.0\.0 ami-\w+\s+3/3/3", out, re.M), out


def test_a_deck_whose_local_cloud_is_gone_says_how_to_recreate_it(demo_deck: Path, tmp_path: Path) -> None:
    # Another home has no local cloud running: exactly the state after the cloud was stopped.
    deck = tmp_path / "deck"
    shutil.copytree(demo_deck, deck, ignore=shutil.ignore_patterns(".terraform"))
    env = {**os.environ, "OPSDECK_HOME": str(tmp_path / "home")}
    for args in (["plan", "dev"], ["images"]):
        result = opsdeck(*args, deck=deck, env=env)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            "opsdeck: the local cloud is not running, and everything it held is gone (it keeps state in memory); "
            "run `opsdeck demo --reset` to recreate the demo deck, or `opsdeck cloud start` for an empty cloud"
        ]
    status = opsdeck("status", "--json", deck=deck, env=env)
    assert status.returncode == 0
    data = json.loads(status.stdout)
    assert data["cloud"] == "unreachable"
    assert all("local cloud is not running" in e["error"] for e in data["environments"])


def test_cloud_start_stop_in_a_separate_home(tmp_path: Path) -> None:
    env = {**os.environ, "OPSDECK_HOME": str(tmp_path / "home")}
    started = json.loads(opsdeck("cloud", "start", "--json", env=env, check=True).stdout)
    try:
        assert started["running"] and started["endpoint"].startswith("http://127.0.0.1:")
        again = json.loads(opsdeck("cloud", "start", "--json", env=env, check=True).stdout)
        assert again["pid"] == started["pid"]  # idempotent
        status = json.loads(opsdeck("cloud", "status", "--json", env=env, check=True).stdout)
        assert status == {
            "running": True,
            "endpoint": started["endpoint"],
            "pid": started["pid"],
            "started_at": status["started_at"],
        }
    finally:
        stopped = json.loads(opsdeck("cloud", "stop", "--json", env=env, check=True).stdout)
    assert stopped == {"running": False, "stopped": True}
    assert json.loads(opsdeck("cloud", "status", "--json", env=env, check=True).stdout)["running"] is False
