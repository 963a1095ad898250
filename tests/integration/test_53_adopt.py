"""An estate opsdeck did not write, adopted as a team would, on the real stack (tests/decks/adopt).

Its Terraform is the community module's shape: web on one auto scaling group whose launch template is
updated in place and rolled by the group's instance refresh, batch on plain instances, the team's own
tag names (`Environment`, `Service`) and pins (`web_ami`, `batch_ami` in amis.auto.tfvars.json), its
images tagged `Service` and `Release`. `opsdeck init` drafts the deck, a review makes it real (the local
cloud, the account, the image tags), and then: deploy, promote and rollback by instance refresh in the
same group, every instance replaced; Ctrl-C mid-refresh; a refresh that fails (an image whose instances
never become healthy, a fault of the local cloud); an image baked by CI promoted; drift.

Runs on the session's local cloud (the `demo_deck` fixture starts it), in an account of its own
(444444444444, reached by assuming a role as the demo reaches its accounts).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests import adopt_estate
from tests.helpers import finish, opsdeck, spawn

pytestmark = pytest.mark.integration

SLOW = 300
REGION, PIN = adopt_estate.REGION, adopt_estate.PIN
Adopted = adopt_estate.Estate


def _git(deck: Path, *args: str) -> str:
    return adopt_estate.git(deck, *args)


def _json(deck: Path, *args: str, timeout: float = SLOW) -> Any:
    return json.loads(opsdeck(*args, "--json", deck=deck, check=True, timeout=timeout).stdout)


@pytest.fixture(scope="module")
def adopted(demo_deck: Path, tmp_path_factory: pytest.TempPathFactory) -> Adopted:
    endpoint = json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["endpoint"]
    return adopt_estate.adopt(tmp_path_factory.mktemp("adopt") / "estate", endpoint)


def _client(adopted: Adopted, name: str) -> Any:
    return adopted.client(name)


def _group(adopted: Adopted, env: str) -> tuple[str, dict[str, str]]:
    """web's group in ``env``: its name, and each instance's image."""
    asg, ec2 = _client(adopted, "autoscaling"), _client(adopted, "ec2")
    (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"web-{env}"])["AutoScalingGroups"]
    ids = [i["InstanceId"] for i in group["Instances"]]
    found = ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []
    return group["AutoScalingGroupName"], {i["InstanceId"]: i["ImageId"] for r in found for i in r["Instances"]}


def _batch(adopted: Adopted, env: str) -> dict[str, str]:
    ec2 = _client(adopted, "ec2")
    filters = [
        {"Name": "tag:Environment", "Values": [env]},
        {"Name": "tag:Service", "Values": ["batch"]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
    ]
    found = ec2.describe_instances(Filters=filters)["Reservations"]
    return {i["InstanceId"]: i["ImageId"] for r in found for i in r["Instances"]}


def _pins(adopted: Adopted, env: str) -> dict[str, str]:
    return dict(json.loads((adopted.deck / "envs" / env / PIN).read_text()))


def _bake_web(adopted: Adopted) -> str:
    (image,) = _json(adopted.deck, "bake", "--service", "web")
    return str(image["id"])


def _service(adopted: Adopted, env: str, name: str) -> dict[str, Any]:
    rows = {e["name"]: e for e in _json(adopted.deck, "status")["environments"]}
    return next(s for s in rows[env]["services"] if s["name"] == name) | {"_env": rows[env]}


def test_init_drafts_the_estate_as_it_is(adopted: Adopted) -> None:
    draft = adopted.draft
    assert 'env_tag = "Environment"' in draft and 'service_tag = "Service"' in draft
    assert f'pin_file = "{PIN}"' in draft and 'pin_variable = "{service}_ami"' in draft
    assert "web: instance-refresh: module.web.aws_autoscaling_group.this" in draft
    assert "batch: instances: module.batch.aws_instance.this" in draft
    assert draft.count('rollout = "auto"') == 2 and 'promote_from = "qa"' in draft
    web = _service(adopted, "qa", "web")
    assert web["rollout"] == "replace" or web["rollout"] == "instance-refresh"  # no refresh has run yet
    assert _service(adopted, "qa", "batch")["rollout"] == "instances"


def test_deploy_rolls_the_group_in_place_by_its_instance_refresh(adopted: Adopted) -> None:
    name, before = _group(adopted, "qa")
    image = _bake_web(adopted)
    result = opsdeck("deploy", "qa", "--service", "web", "--yes", "--json", deck=adopted.deck, timeout=SLOW)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["rollouts"]["web"]["rollout"] == "instance-refresh" and data["rollouts"]["web"]["group"] == name
    assert "web: instance refresh of web-qa InProgress" in result.stderr  # live, in the CLI
    assert "web: instance refresh of web-qa Successful 100%" in result.stderr
    after_name, after = _group(adopted, "qa")
    assert after_name == name and not set(after) & set(before)  # the same group, every instance replaced
    assert set(after.values()) == {image} and len(after) == len(before)
    web = _service(adopted, "qa", "web")
    assert web["rollout"] == "instance-refresh" and web["refresh"]["status"] == "Successful"
    assert web["instances"]["on_pinned_image"] == web["instances"]["desired"] == 2


def test_plain_instances_are_replaced_and_a_release_train_moves_each_service_its_own_way(adopted: Adopted) -> None:
    (baked,) = _json(adopted.deck, "bake", "--service", "batch")
    qa_before = _batch(adopted, "qa")
    deployed = _json(adopted.deck, "deploy", "qa", "--service", "batch", "--yes")
    assert deployed["rollouts"]["batch"] == {"rollout": "instances"}
    qa_after = _batch(adopted, "qa")
    assert not set(qa_after) & set(qa_before) and set(qa_after.values()) == {baked["id"]} and len(qa_after) == 1
    batch = _service(adopted, "qa", "batch")
    assert batch["rollout"] == "instances"
    assert batch["instances"]["on_pinned_image"] == batch["instances"]["desired"] == 1
    # qa -> live: web by its refresh, batch's plain instances replaced, in one plan, one apply, one commit.
    name, before = _group(adopted, "live")
    batch_before = _batch(adopted, "live")
    data = _json(adopted.deck, "promote", "qa", "live", "--yes")
    moved = {s["name"]: s["to_image"] for s in data["services"]}
    assert set(moved) == {"web", "batch"}
    rollouts = {s: r["rollout"] for s, r in data["rollouts"].items()}
    assert rollouts == {"web": "instance-refresh", "batch": "instances"}
    after_name, after = _group(adopted, "live")
    assert after_name == name and not set(after) & set(before) and set(after.values()) == {moved["web"]}
    batch_after = _batch(adopted, "live")
    assert not set(batch_after) & set(batch_before) and set(batch_after.values()) == {moved["batch"]}


def test_rollback_is_a_refresh_back_in_the_same_group(adopted: Adopted) -> None:
    name, before = _group(adopted, "live")
    data = _json(adopted.deck, "rollback", "live", "--service", "web", "--yes")
    (web,) = data["services"]
    assert data["rollouts"]["web"]["rollout"] == "instance-refresh"
    after_name, after = _group(adopted, "live")
    assert after_name == name and not set(after) & set(before) and set(after.values()) == {web["to_image"]}


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 240) -> str:
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"never saw {needle!r} in:\n{seen}")


def test_ctrl_c_mid_refresh_cancels_it_and_refreshes_back(adopted: Adopted) -> None:
    asg = _client(adopted, "autoscaling")
    slow = {"ResourceId": "web-qa", "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False}
    asg.create_or_update_tags(Tags=[{**slow, "Key": "opsdeck:localcloud:refresh-seconds", "Value": "3"}])
    try:
        was = _pins(adopted, "qa")["web_ami"]
        name, _ = _group(adopted, "qa")
        _bake_web(adopted)
        proc = spawn(adopted.deck, "deploy", "qa", "--service", "web", "--yes", "-v")
        try:
            _read_until(proc, "web: instance refresh of web-qa InProgress")
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = finish(proc)
    finally:
        asg.delete_tags(Tags=[{**slow, "Key": "opsdeck:localcloud:refresh-seconds"}])
    assert proc.returncode == 130, err
    assert "the instance refresh of web-qa was cancelled at" in err and "refreshed back to the previous pins" in err
    assert _pins(adopted, "qa")["web_ami"] == was and _git(adopted.deck, "status", "--porcelain").strip() == ""
    after_name, after = _group(adopted, "qa")
    assert after_name == name and set(after.values()) == {was}
    web = _service(adopted, "qa", "web")
    last = web["_env"]["last"]
    assert last["action"] == "deploy" and last["result"] == "interrupted" and last["refreshed_back"] is True
    assert "was cancelled at" in last["stopped"]
    text = opsdeck("status", deck=adopted.deck, check=True).stdout
    assert "qa: last deploy interrupted" in text and "refreshed back to the previous pins" in text


def test_a_refresh_that_fails_is_stopped_and_refreshed_back(adopted: Adopted) -> None:
    ec2 = _client(adopted, "ec2")
    was = _pins(adopted, "qa")["web_ami"]
    sick = _bake_web(adopted)
    ec2.create_tags(Resources=[sick], Tags=[{"Key": "opsdeck:localcloud:unhealthy", "Value": "test"}])
    try:
        result = opsdeck("deploy", "qa", "--service", "web", "--yes", deck=adopted.deck, timeout=SLOW)
    finally:
        ec2.delete_tags(Resources=[sick], Tags=[{"Key": "opsdeck:localcloud:unhealthy"}])
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("opsdeck: deploy of qa failed at rollout (refreshed back to the previous pins): ")
    assert "the instance refresh of web-qa ended Failed" in line
    assert _pins(adopted, "qa")["web_ami"] == was
    assert set(_group(adopted, "qa")[1].values()) == {was}


def test_an_image_baked_by_ci_is_promoted(adopted: Adopted) -> None:
    ec2 = _client(adopted, "ec2")
    source = _pins(adopted, "qa")["web_ami"]
    ci = ec2.copy_image(SourceImageId=source, SourceRegion=REGION, Name=f"web-ci-{time.time_ns()}")["ImageId"]
    ec2.create_tags(Resources=[ci], Tags=[{"Key": "Service", "Value": "web"}, {"Key": "ci", "Value": "pipeline 88"}])
    listed = {i["id"]: i for i in _json(adopted.deck, "images")}
    assert ci in listed and not listed[ci]["versioned"]
    data = _json(adopted.deck, "promote", ci, "qa", "--service", "web", "--yes")
    assert data["to_image"] == ci and data["rollouts"]["web"]["rollout"] == "instance-refresh"
    assert set(_group(adopted, "qa")[1].values()) == {ci}


def test_drift_on_an_adopted_estate(adopted: Adopted) -> None:
    asg, ec2 = _client(adopted, "autoscaling"), _client(adopted, "ec2")
    asg.update_auto_scaling_group(AutoScalingGroupName="web-qa", MaxSize=7)  # out of band
    image = _pins(adopted, "qa")["batch_ami"]
    (stray,) = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Environment", "Value": "qa"}]}],
    )["Instances"]
    try:
        result = opsdeck("drift", "qa", "--json", deck=adopted.deck, timeout=SLOW)
        assert result.returncode == 2, result.stderr
        (report,) = json.loads(result.stdout)["environments"]
        managed = {m["address"]: m["attributes"] for m in report["managed"]}
        assert "max_size" in managed["module.web.aws_autoscaling_group.this"]
        assert stray["InstanceId"] in {u["id"] for u in report["unmanaged"]}
    finally:
        ec2.terminate_instances(InstanceIds=[stray["InstanceId"]])
        asg.update_auto_scaling_group(AutoScalingGroupName="web-qa", MaxSize=3)


async def test_the_deck_shows_the_refresh_as_it_runs(adopted: Adopted) -> None:
    """u on qa in the deck: the confirmation says how web's instances take the image, and the operations
    pane shows the refresh's status and percentage while it runs."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.tui.app import OpsDeckApp
    from opsdeck.tui.widgets.ops import OpRow
    from tests.tui.pilot import confirm_dialog, done, select, until

    name, before = _group(adopted, "qa")
    image = _bake_web(adopted)
    app = OpsDeckApp(Deck.open(adopted.deck), theme="opsdeck-dark", live=False)
    seen: set[str] = set()
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.deck_screen.state is not None, what="the deck's state")
        await select(pilot, app, "qa")
        await pilot.press("s")  # web only (batch's newest is already in qa)
        await pilot.press("u")
        screen = await confirm_dialog(pilot, app)
        assert screen.title_text == "deploy qa"

        def watched() -> bool:
            seen.update(row.status_text for row in app.query(OpRow))
            ops = app.deck_screen.operations
            return ops.last is not None and ops.last.key.endswith("#1") and not ops.running

        await until(pilot, watched, what="the deploy to end")
        result = await done(pilot, app, 1)
        assert result.ok, result.summary
    assert any(t.startswith(f"web: instance refresh of {name} InProgress") for t in seen), seen
    after_name, after = _group(adopted, "qa")
    assert after_name == name and not set(after) & set(before) and set(after.values()) == {image}
