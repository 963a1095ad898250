"""Pins: which image each service runs in each environment, as the environment's Terraform reads it.

A pin is a value in a `*.auto.tfvars.json` file of the environment's root module: by default
``image.auto.tfvars.json`` holding ``{"image_id": "ami-..."}``. A deck can declare its own file and
variable, including a key of a map variable (``images.{service}`` reads ``{"images": {"web": ...}}``),
so several services can share one file. The git history of a pin is the service's release history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsdeck.errors import OpsdeckError

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


def with_pin(text: str | None, spec: PinSpec, image_id: str) -> str:
    """The pin file's text with ``spec`` set to ``image_id`` (everything else in it kept)."""
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
    written: list[str] = []
    for service, image_id in images.items():
        rel = pin_rel(deck, env, service)
        path = deck.root / rel
        text = path.read_text(encoding="utf-8") if path.is_file() else None
        path.write_text(with_pin(text, pin_spec(deck.config, service), image_id), encoding="utf-8")
        if rel not in written:
            written.append(rel)
    return written


def pin_files(deck: Deck, env: str, services: list[str] | None = None) -> list[str]:
    """The distinct pin files of ``env`` (deck-relative)."""
    return list(dict.fromkeys(pin_rel(deck, env, s) for s in (services or deck.config.service_names)))
