"""Reading `terraform show -json`: counts, resources, changed attributes, masking of sensitive values."""

from __future__ import annotations

import json
from pathlib import Path

from opsdeck.core.plans.shown import parse_drift, parse_plan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_pin_change_plan_names_template_group_and_their_attributes() -> None:
    # Recorded from the demo deck: dev's pin changed by hand, `terraform show -json` of the saved plan.
    plan = json.loads((FIXTURES / "plan_pin_change.json").read_text())
    result = parse_plan("dev", plan)
    assert (result.summary.add, result.summary.change, result.summary.destroy) == (2, 1, 2)
    by_address = {r.address: r for r in result.resources}
    lt = by_address["module.web.aws_launch_template.web"]
    asg = by_address["module.web.aws_autoscaling_group.web"]
    assert lt.action == "replace" and asg.action == "replace"
    assert "image_id" in lt.attributes
    assert {"launch_template", "name", "tag"} <= set(asg.attributes)
    # Optional attributes that only fall back to null in the replacement are not "changes".
    assert "capacity_rebalance" not in asg.attributes and "kernel_id" not in lt.attributes
    image = next(c for c in lt.changes if c.name == "image_id")
    assert image.before != image.after and image.after.startswith("ami-")
    name = next(c for c in asg.changes if c.name == "name")
    assert name.after_unknown
    assert by_address["module.web.terraform_data.rollout"].attributes == ("input",)


def _change(actions, before, after, unknown=None, **extra):
    return {
        "address": "aws_instance.x",
        "mode": "managed",
        "type": "aws_instance",
        "name": "x",
        "change": {"actions": actions, "before": before, "after": after, "after_unknown": unknown or {}, **extra},
    }


def test_update_lists_every_known_difference_and_masks_secrets() -> None:
    plan = {
        "resource_changes": [
            _change(
                ["update"],
                {"instance_type": "t3.small", "password": "old-secret", "tags": {"a": "1"}},
                {"instance_type": "t3.large", "password": "new-secret", "tags": {"a": "1"}},
                before_sensitive={"password": True},
                after_sensitive={"password": True},
            )
        ]
    }
    result = parse_plan("dev", plan)
    rc = result.resources[0]
    assert rc.attributes == ("instance_type", "password")
    secret = next(c for c in rc.changes if c.name == "password")
    assert secret.before == "(sensitive value)" and secret.after == "(sensitive value)"
    assert "secret" not in json.dumps(result.to_json())
    assert (result.summary.add, result.summary.change, result.summary.destroy) == (0, 1, 0)


def test_create_delete_and_noop_are_counted_like_terraform() -> None:
    plan = {
        "resource_changes": [
            _change(["create"], None, {"ami": "ami-1", "arn": None}, {"arn": True}),
            _change(["delete"], {"ami": "ami-0"}, None),
            _change(["no-op"], {"ami": "ami-0"}, {"ami": "ami-0"}),
            _change(["read"], None, {}),
        ]
    }
    result = parse_plan("dev", plan)
    assert (result.summary.add, result.summary.change, result.summary.destroy) == (1, 0, 1)
    assert [r.action for r in result.resources] == ["create", "delete"]
    assert result.resources[1].attributes == ()


def test_refresh_only_drift_lists_attributes_changed_outside_terraform() -> None:
    plan = {
        "resource_drift": [
            {
                "address": "module.web.aws_autoscaling_group.web",
                "type": "aws_autoscaling_group",
                "change": {
                    "actions": ["update"],
                    "before": {"desired_capacity": 2, "max_size": 3},
                    "after": {"desired_capacity": 3, "max_size": 3},
                },
            },
            {
                "address": "module.web.aws_security_group.web",
                "type": "aws_security_group",
                "change": {"actions": ["delete"], "before": {"name": "x"}, "after": None},
            },
        ]
    }
    drift = parse_drift(plan)
    assert drift[0].attributes == ("desired_capacity",)
    assert drift[1].action == "delete" and drift[1].reason == "deleted outside terraform"


def test_a_change_reads_before_to_after_with_long_values_cut_in_the_middle() -> None:
    from opsdeck.core.model import AttributeChange
    from opsdeck.core.plans.shown import SENSITIVE, change_line, elide

    assert change_line(AttributeChange("image_id", "ami-0aaa", "ami-0bbb"), "replace") == (
        'image_id: "ami-0aaa" → "ami-0bbb"'
    )
    assert change_line(AttributeChange("desired_capacity", 3, 2), "update") == "desired_capacity: 3 → 2"
    assert change_line(AttributeChange("name", "a", None, after_unknown=True, forces_replacement=True), "replace") == (
        'name: "a" → (known after apply)  (forces replacement)'
    )
    assert change_line(AttributeChange("password", SENSITIVE, SENSITIVE), "update") == (
        "password: (sensitive value) → (sensitive value)"
    )
    assert change_line(AttributeChange("tags", None, {"env": "dev"}), "create") == 'tags: {"env":"dev"}'
    arn = "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:0f3c9a:autoScalingGroupName/web-dev-lt-0a1b2c3d"
    short = elide(arn, 40)
    assert len(short) == 40 and short.startswith("arn:aws:autoscaling") and short.endswith("web-dev-lt-0a1b2c3d")
    assert "…" in short and elide("short", 40) == "short"


def test_plan_json_lists_each_change_before_and_after() -> None:
    plan = json.loads((FIXTURES / "plan_pin_change.json").read_text())
    data = parse_plan("dev", plan).to_json(detail=False)
    lt = next(r for r in data["resources"] if r["address"] == "module.web.aws_launch_template.web")
    assert "image_id" in lt["attributes"]
    image = next(c for c in lt["changes"] if c["attribute"] == "image_id")
    assert set(image) == {"attribute", "before", "after", "after_unknown", "forces_replacement"}
    assert (
        image["before"].startswith("ami-") and image["after"].startswith("ami-") and image["before"] != image["after"]
    )
