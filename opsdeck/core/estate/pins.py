"""Pins: which image each service runs in each environment, as the environment's Terraform reads it.

A pin is a value in a `*.auto.tfvars.json` file of the environment's root module: by default
``image.auto.tfvars.json`` holding ``{"image_id": "ami-..."}``. A deck can declare its own file and
variable, including a key of a map variable (``images.{service}`` reads ``{"images": {"web": ...}}``),
so several services can share one file. The git history of a pin is the service's release history.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from opsdeck.errors import OpsdeckError
from opsdeck.files import write_atomic

if TYPE_CHECKING:
    from opsdeck.core.estate.config import DeckConfig
    from opsdeck.core.estate.deck import Deck


@dataclass(frozen=True)
class PinSpec:
    """Where a service's pin lives in an environment's root module."""

    file: str  # relative to the environment's root module
    variable: tuple[str, ...]  # the variable, then keys into it

    @property
    def label(self) -> str:
        return ".".join(self.variable)


Color = Literal["blue", "green"]
COLORS: tuple[Color, Color] = ("blue", "green")


@dataclass(frozen=True)
class ColorPin:
    """A service's pin in a blue/green environment: which color is live, the image each color runs,
    and whether the idle color is a warm standby (in service, out of traffic) until ``warm_until``
    (epoch seconds). Its live image is what the service runs, so the pin file's history stays the
    release history."""

    live: Color
    blue: str | None
    green: str | None
    standby: Literal["warm", "cold"] = "cold"
    warm_until: float | None = None

    @property
    def idle(self) -> Color:
        return "green" if self.live == "blue" else "blue"

    def image(self, color: Color) -> str | None:
        return self.blue if color == "blue" else self.green

    @property
    def live_image(self) -> str:
        image = self.image(self.live)
        assert image is not None  # from_json refuses a pin whose live color runs nothing
        return image

    @property
    def idle_image(self) -> str | None:
        return self.image(self.idle)

    def warm(self, now: float | None = None) -> bool:
        """The idle color is in service and may take traffic back at once."""
        now = time.time() if now is None else now
        return (
            self.standby == "warm"
            and self.idle_image is not None
            and (self.warm_until is None or self.warm_until > now)
        )

    def staged(self, image: str) -> ColorPin:
        """``image`` on the idle color, brought to full size (warm), traffic unchanged."""
        pin = replace(self, standby="warm", warm_until=None)
        return replace(pin, blue=image) if self.idle == "blue" else replace(pin, green=image)

    def switched(self, standby_minutes: float, now: float | None = None) -> ColorPin:
        """Traffic to the idle color; the color that was live stays warm for ``standby_minutes``. A switch
        only moves traffic: with no window (0) the old color's window ends at once and the standby
        expiry scales it to zero as its own step."""
        now = time.time() if now is None else now
        return replace(self, live=self.idle, standby="warm", warm_until=now + max(0.0, standby_minutes) * 60)

    def cooled(self) -> ColorPin:
        """The standby scaled to zero (its image kept: a rollback can bring it back, slower)."""
        return replace(self, standby="cold", warm_until=None)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"live": self.live, "blue": self.blue, "green": self.green, "standby": self.standby}
        if self.warm_until is not None:
            data["warm_until"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.warm_until))
        return data

    @classmethod
    def from_json(cls, value: Any, where: str) -> ColorPin:
        if not isinstance(value, dict):
            raise OpsdeckError(f"{where}: expected a blue/green pin object, got {type(value).__name__}")
        live = value.get("live")
        if live not in COLORS:
            raise OpsdeckError(f'{where}: live must be "blue" or "green", got {live!r}')
        images = {c: value.get(c) for c in COLORS}
        for color, image in images.items():
            if image is not None and (not isinstance(image, str) or not image.startswith("ami-")):
                raise OpsdeckError(f"{where}: {color} must be an image id such as ami-0123456789abcdef0 or null")
        if images[live] is None:
            raise OpsdeckError(f"{where}: the live color ({live}) runs no image")
        standby = value.get("standby", "cold")
        if standby not in ("warm", "cold"):
            raise OpsdeckError(f'{where}: standby must be "warm" or "cold", got {standby!r}')
        until = value.get("warm_until")
        warm_until = None
        if until is not None:
            import calendar  # only for a warm standby's window

            try:
                warm_until = float(calendar.timegm(time.strptime(until, "%Y-%m-%dT%H:%M:%SZ")))
            except (TypeError, ValueError):
                raise OpsdeckError(f"{where}: warm_until must be a UTC time such as 2026-11-25T13:00:00Z") from None
        return cls(live, images["blue"], images["green"], standby, warm_until)


def pin_spec(config: DeckConfig, service: str) -> PinSpec:
    settings = config.service(service)
    conventions = config.conventions
    file = settings.pin_file or conventions.pin_file
    variable = (settings.pin_variable or conventions.pin_variable).replace("{service}", service)
    return PinSpec(file, tuple(variable.split(".")))


def value_in(data: Any, spec: PinSpec) -> Any:
    for key in spec.variable:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def pin_from_text(text: str, spec: PinSpec, where: str) -> str:
    """The image id a pin file's text holds for ``spec``; a clear error naming the file otherwise."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise OpsdeckError(f"{where}: invalid JSON ({exc})") from None
    image = value_in(data, spec)
    if isinstance(image, dict):  # a blue/green environment: the live color's image
        return ColorPin.from_json(image, where or spec.file).live_image
    if not isinstance(image, str) or not image:
        raise OpsdeckError(f"{where}: expected {spec.label} to hold an image id such as ami-0123456789abcdef0")
    return image


def pin_or_none(text: str | None, spec: PinSpec) -> str | None:
    """Like ``pin_from_text``, but None for a missing or broken file (old commits of the history)."""
    if text is None:
        return None
    try:
        return pin_from_text(text, spec, "")
    except OpsdeckError:
        return None


def with_pin(text: str | None, spec: PinSpec, image_id: str | dict[str, Any]) -> str:
    """The pin file's text with ``spec`` set to ``image_id`` (or a blue/green pin object), everything
    else in it kept."""
    data: Any = json.loads(text) if text else {}
    if not isinstance(data, dict):
        raise OpsdeckError(f"{spec.file}: expected a JSON object")
    node = data
    for key in spec.variable[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[spec.variable[-1]] = image_id
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def pin_rel(deck: Deck, env: str, service: str) -> str:
    """The pin file of ``service`` in ``env``, relative to the deck (a git path)."""
    return f"{deck.config.env(env).path}/{pin_spec(deck.config, service).file}"


def read_pin(deck: Deck, env: str, service: str) -> str:
    """The image ``service`` pins in ``env`` (the working tree)."""
    rel = pin_rel(deck, env, service)
    try:
        text = (deck.root / rel).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OpsdeckError(f"{rel}: the pin file is missing") from None
    return pin_from_text(text, pin_spec(deck.config, service), rel)


def read_pins(deck: Deck, env: str, services: list[str] | None = None) -> dict[str, str]:
    """Every service's pin in ``env`` (or those named)."""
    return {s: read_pin(deck, env, s) for s in (services or deck.config.service_names)}


def write_pins(deck: Deck, env: str, images: dict[str, str]) -> list[str]:
    """Pin each service to its image in ``env``; returns the pin files written (deck-relative)."""
    return _write(deck, {(pin_rel(deck, env, s), s): image for s, image in images.items()})


def pin_files(deck: Deck, env: str, services: list[str] | None = None) -> list[str]:
    """The distinct pin files of ``env`` (deck-relative)."""
    return list(dict.fromkeys(pin_rel(deck, env, s) for s in (services or deck.config.service_names)))


def color_pin_from_text(text: str | None, spec: PinSpec, where: str) -> ColorPin | None:
    """The blue/green pin a pin file's text holds for ``spec``; None when it is a plain image id. A
    missing file or broken JSON is the same one-line error ``read_pin`` gives."""
    if text is None:
        raise OpsdeckError(f"{where}: the pin file is missing")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise OpsdeckError(f"{where}: invalid JSON ({exc})") from None
    value = value_in(data, spec)
    return ColorPin.from_json(value, where) if isinstance(value, dict) else None


def read_color_pin(deck: Deck, env: str, service: str) -> ColorPin | None:
    """``service``'s blue/green pin in ``env``; None when its pin is a plain image id."""
    rel = pin_rel(deck, env, service)
    path = deck.root / rel
    text = path.read_text(encoding="utf-8") if path.is_file() else None
    return color_pin_from_text(text, pin_spec(deck.config, service), rel)


def write_color_pins(deck: Deck, env: str, pins: dict[str, ColorPin]) -> list[str]:
    """Write each service's blue/green pin in ``env``; returns the pin files written."""
    return _write(deck, {(pin_rel(deck, env, s), s): pin.to_json() for s, pin in pins.items()})


def _write(deck: Deck, values: dict[tuple[str, str], Any]) -> list[str]:
    """Write each (pin file, service)'s value; returns the files written. Each file is written once and
    atomically, with all its services' pins: opsdeck killed while it writes them leaves the file as it was
    or with every pin moved, never half a file (which Terraform cannot read) or half the services."""
    texts: dict[str, str | None] = {}
    for (rel, service), value in values.items():
        if rel not in texts:
            path = deck.root / rel
            texts[rel] = path.read_text(encoding="utf-8") if path.is_file() else None
        texts[rel] = with_pin(texts[rel], pin_spec(deck.config, service), value)
    for rel, text in texts.items():
        write_atomic(deck.root / rel, text or "")
    return list(texts)
