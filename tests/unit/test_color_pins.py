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
