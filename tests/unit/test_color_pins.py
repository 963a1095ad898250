"""Blue/green pins: the live color's image is the service's pin; staging, switching and cooling."""

from __future__ import annotations

import json
import re

import pytest

from opsdeck.core.estate.pins import ColorPin, PinSpec, pin_from_text, with_pin
from opsdeck.errors import OpsdeckError

SPEC = PinSpec("images.auto.tfvars.json", ("images", "web"))
OLD, NEW = "ami-0000000000000000a", "ami-0000000000000000b"


def test_the_live_colors_image_is_the_pin() -> None:
    text = with_pin(None, SPEC, ColorPin("green", OLD, NEW).to_json())
    assert pin_from_text(text, SPEC, "envs/prod/images.auto.tfvars.json") == NEW
    assert json.loads(text)["images"]["web"] == {"live": "green", "blue": OLD, "green": NEW, "standby": "cold"}


def test_a_release_stages_on_idle_then_switches_and_keeps_the_old_color_warm() -> None:
    pin = ColorPin("blue", OLD, None)
    staged = pin.staged(NEW)
    assert (staged.live, staged.green, staged.standby) == ("blue", NEW, "warm")
    assert staged.live_image == OLD  # no traffic moved yet
    switched = staged.switched(standby_minutes=15, now=1000.0)
    assert (switched.live, switched.live_image, switched.idle_image) == ("green", NEW, OLD)
    assert switched.warm(now=1000.0 + 14 * 60) and not switched.warm(now=1000.0 + 16 * 60)
    back = switched.switched(standby_minutes=15, now=2000.0)  # the instant rollback
    assert back.live_image == OLD and back.idle_image == NEW
    assert not switched.cooled().warm(now=1000.0)


def test_warm_until_survives_the_file() -> None:
    pin = ColorPin("blue", OLD, NEW).switched(standby_minutes=30, now=1_795_000_000.0)
    again = ColorPin.from_json(pin.to_json(), "x")
    assert again == pin


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"live": "red", "blue": OLD}, 'live must be "blue" or "green"'),
        ({"live": "blue", "blue": None, "green": NEW}, "the live color (blue) runs no image"),
        ({"live": "blue", "blue": "not-an-image"}, "blue must be an image id"),
        ({"live": "blue", "blue": OLD, "standby": "tepid"}, 'standby must be "warm" or "cold"'),
        ({"live": "blue", "blue": OLD, "warm_until": "tomorrow"}, "warm_until must be a UTC time"),
    ],
)
def test_a_broken_pin_object_is_one_line_naming_the_file(value: dict[str, object], message: str) -> None:
    text = json.dumps({"images": {"web": value}})
    with pytest.raises(OpsdeckError, match="^" + re.escape(f"envs/prod/images.auto.tfvars.json: {message}")):
        pin_from_text(text, SPEC, "envs/prod/images.auto.tfvars.json")


# -- what the release code decides from plans, pins and groups -------------------------------------


def _change(address: str, type_: str, actions: tuple[str, ...], **attrs: tuple[object, object]) -> object:
    from opsdeck.core.model import AttributeChange, ResourceChange

    changes = tuple(AttributeChange(name, before, after) for name, (before, after) in attrs.items())
    return ResourceChange(address, type_, actions, tuple(attrs), changes)


def _plan(*changes: object) -> object:
    from opsdeck.core.model import PlanResult
    from opsdeck.core.plans.shown import summarize

    return PlanResult("dev", summarize(changes), tuple(changes))  # type: ignore[arg-type]


def test_a_switch_plan_may_move_listener_rules_and_nothing_else() -> None:
    from opsdeck.core.release.bluegreen import check_switch_plan
    from opsdeck.errors import RefusedError

    rule = _change(
        'module.service["web"].aws_lb_listener_rule.live', "aws_lb_listener_rule", ("update",), action=(1, 2)
    )
    check_switch_plan(_plan(rule))  # type: ignore[arg-type]
    group = _change('module.service["web"].aws_autoscaling_group.color["blue"]', "aws_autoscaling_group", ("delete",))
    with pytest.raises(RefusedError, match=r"would delete module.service\[\"web\"\].aws_autoscaling_group"):
        check_switch_plan(_plan(rule, group))  # type: ignore[arg-type]
    replaced = _change("x.aws_lb_listener_rule.live", "aws_lb_listener_rule", ("delete", "create"))
    with pytest.raises(RefusedError, match="not only move listener rules"):
        check_switch_plan(_plan(replaced))  # type: ignore[arg-type]


def test_cooling_a_standby_may_only_shrink_groups() -> None:
    from opsdeck.core.release.standby import check_cooling_plan
    from opsdeck.errors import RefusedError

    address = 'module.service["web"].aws_autoscaling_group.color["green"]'
    shrink = _change(
        address,
        "aws_autoscaling_group",
        ("update",),
        min_size=(2, 0),
        desired_capacity=(2, 0),
        capacity_reservation_specification=([], [{}]),  # read back differently: no change
    )
    check_cooling_plan(_plan(shrink))  # type: ignore[arg-type]
    retemplate = _change(address, "aws_autoscaling_group", ("update",), min_size=(2, 0), launch_template=("a", "b"))
    with pytest.raises(RefusedError, match=r"\(launch_template, min_size\), not only shrink groups"):
        check_cooling_plan(_plan(retemplate))  # type: ignore[arg-type]


def test_a_standby_expires_at_the_end_of_its_window_and_status_says_so() -> None:
    from opsdeck.core.release.bluegreen import expired, traffic_json

    warm = ColorPin("blue", OLD, NEW, "warm", warm_until=1000.0)
    cold = ColorPin("blue", OLD, NEW)
    assert expired({"web": warm, "api": cold}, now=999.0) == {}
    assert expired({"web": warm, "api": cold}, now=1000.0) == {"web": warm}
    assert traffic_json(warm, now=999.0) == {
        "live": "blue",
        "standby": {"color": "green", "image": NEW, "until": "1970-01-01T00:16:40Z", "warm": True},
    }
    assert traffic_json(cold) == {"live": "blue", "standby": None}


def test_each_color_is_its_own_rollout_and_a_cold_one_must_be_empty() -> None:
    from opsdeck.core.release.fleet import color_state
    from opsdeck.core.types.cloud import Group, Instance

    def group(color: str, image: str, n: int) -> Group:
        members = tuple(Instance(f"i-{color}{k}", image, "running", lifecycle="InService") for k in range(n))
        return Group(f"web-{color}", n, n, 4, None, {"color": color, "managed_by": "terraform"}, members)

    warm = ColorPin("green", OLD, NEW, "warm")
    state = color_state([group("blue", OLD, 2), group("green", NEW, 2)], warm)
    assert state.complete and state.counts.on_pinned_image == 2  # the live color's counts
    assert not color_state([group("blue", OLD, 0), group("green", NEW, 2)], warm).complete  # standby not up
    cold = ColorPin("green", OLD, NEW)
    assert not color_state([group("blue", OLD, 2), group("green", NEW, 2)], cold).complete  # not scaled down
    assert color_state([group("blue", OLD, 0), group("green", NEW, 2)], cold).complete
