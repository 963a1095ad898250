"""Execute's check that a request's record says what its saved plan does, before anything is applied.

Signatures prove the record is the one filed and approved; they cannot prove the record tells the
truth about the plan (a requester could file pins the plan does not apply). So the pins execute will
commit are compared with the variables the saved plan was made with (`terraform show -json`), the
services with the pins, and the summary and diff approvers read with the plan's own changes. The
first mismatch is refused, naming the field.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

from opsdeck.core.estate.pins import ColorPin, pin_rel, pin_spec, value_in
from opsdeck.core.plans.shown import parse_plan, plan_lines, show_value
from opsdeck.errors import OpsdeckError, RefusedError

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.team.requests import Request


def check(deck: Deck, request: Request, shown: dict[str, Any]) -> None:
    """RefusedError naming the first field of ``request`` that does not match its saved plan ``shown``."""
    env = request.environment
    files = {pin_rel(deck, env, s): s for s in deck.config.service_names}
    for rel in request.pins:
        if rel not in files:
            _refuse(request, "pins", f"it writes {rel}, which is not a pin file of {env}")
    after = _texts(request, {**request.base, **request.pins})
    before = _texts(request, request.base)
    variables = {name: (v or {}).get("value") for name, v in (shown.get("variables") or {}).items()}
    for service in deck.config.service_names:
        rel, spec = pin_rel(deck, env, service), pin_spec(deck.config, service)
        if rel in after:
            want, got = value_in(after[rel], spec), value_in(variables, spec)
            if _plain(want) != _plain(got):
                _refuse(
                    request,
                    "pins",
                    f"{rel} sets {spec.label} = {show_value(want)}, but the approved plan applies {show_value(got)}",
                )
    _check_services(deck, request, before, after)
    result = parse_plan(env, shown)
    summary = {"add": result.summary.add, "change": result.summary.change, "destroy": result.summary.destroy}
    if request.summary != summary:
        _refuse(request, "summary", f"it says {request.summary}, but the approved plan makes {summary}")
    lines = plan_lines(result)
    if request.diff != lines:
        at = next((i for i, (a, b) in enumerate(zip(request.diff, lines, strict=False)) if a != b), None)
        if at is None:
            what = f"it has {len(request.diff)} lines, the approved plan's has {len(lines)}"
        else:
            what = f"line {at + 1} reads {request.diff[at]!r}, the approved plan's {lines[at]!r}"
        _refuse(request, "diff", what)


def _check_services(deck: Deck, request: Request, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Every service the request lists moves as it says, and every service whose pin it moves is listed."""
    env = request.environment
    listed = {str(s.get("name")): s for s in request.services}
    for name in listed:
        if name not in deck.config.service_names:
            _refuse(request, "services", f"{name} is not a service of this deck")
    for service in deck.config.service_names:
        rel, spec = pin_rel(deck, env, service), pin_spec(deck.config, service)
        old = value_in(before.get(rel), spec)
        new = value_in(after.get(rel), spec)
        entry = listed.get(service)
        if entry is None:
            if _plain(old) != _plain(new) and rel in request.pins:
                _refuse(request, "services", f"it leaves out {service}, whose pin it changes")
            continue
        if entry.get("to_image") not in _images(new):
            _refuse(request, "services", f"{service} goes to {entry.get('to_image')}, but its pin says {_label(new)}")
        if rel in before and entry.get("from_image") != _live(old):
            _refuse(request, "services", f"{service} comes from {entry.get('from_image')}, but it ran {_label(old)}")


def _texts(request: Request, texts: dict[str, str]) -> dict[str, Any]:
    parsed = {}
    for rel, text in texts.items():
        try:
            parsed[rel] = json.loads(text)
        except (TypeError, ValueError):
            _refuse(request, "pins", f"{rel} is not JSON")
    return parsed


def _plain(value: Any) -> Any:
    """A variable's value with null object attributes dropped (Terraform fills optional ones with null)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _images(pin: Any) -> set[str]:
    if isinstance(pin, dict):
        return {str(pin[c]) for c in ("blue", "green") if isinstance(pin.get(c), str)}
    return {pin} if isinstance(pin, str) else set()


def _live(pin: Any) -> str | None:
    if isinstance(pin, dict):
        try:
            return ColorPin.from_json(pin, "pin").live_image
        except OpsdeckError:  # a broken pin matches nothing
            return None
    return pin if isinstance(pin, str) else None


def _label(pin: Any) -> str:
    return show_value(pin) if pin is not None else "nothing"


def _refuse(request: Request, field: str, what: str) -> NoReturn:
    raise RefusedError(
        f"request {request.id} does not match its approved plan ({field}: {what}): nothing applied; "
        "plan and request it again"
    )
