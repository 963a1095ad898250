"""What the deck shows of how services roll and how the last change went: each service's rollout (its
environment's setting, or for ``auto`` what runs), its group's newest instance refresh, and per
environment the last change this clone's audit log closed (a rollout stopped and refreshed back says so)."""

from __future__ import annotations

from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.release.fleet import Snapshot, service_groups, service_plain
from opsdeck.core.safety import audit
from opsdeck.errors import OpsdeckError

CHANGES = ("promote", "deploy", "rollback", "apply", "nuke-rebuild", "recover", "standby-expire")
KEPT = ("stopped", "refreshed_back", "note", "request")


def rollout_of(deck: Deck, env: str, snap: Snapshot, service: str) -> tuple[str, dict[str, Any] | None]:
    """(how ``service`` rolls in ``env``, its group's newest instance refresh or None). For ``auto``: plain
    instances when it runs no group, an instance refresh when its one group has refreshed, else replace."""
    settings = deck.env(env)
    wanted = settings.rollout_of(service)
    groups = service_groups(deck, snap.groups, service)
    if wanted == "blue-green" or (wanted == "auto" and not groups and service_plain(deck, snap.plain, service)):
        return ("blue-green" if wanted == "blue-green" else "instances"), None
    if wanted not in ("auto", "instance-refresh") or len(groups) != 1:
        return ("replace" if wanted == "auto" else wanted), None
    try:
        newest = next(iter(deck.tools.env(env).cloud.fleet().refreshes(groups[0].name)), None)
    except OpsdeckError:
        newest = None
    if newest is None:
        return ("replace" if wanted == "auto" else wanted), None
    refresh = {"id": newest.id, "group": newest.group, "status": newest.status, "percentage": newest.percentage}
    if newest.to_update is not None:
        refresh["to_update"] = newest.to_update
    if newest.reason:
        refresh["reason"] = newest.reason
    return "instance-refresh", refresh


def last_changes(deck: Deck) -> dict[str, dict[str, Any]]:
    """Per environment, the newest change this clone's audit log closed: {action, result, at, error, ...}."""
    try:
        records = audit.read(deck)
    except OpsdeckError:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        env, result = record.get("environment"), record.get("result")
        if not env or record.get("action") not in CHANGES or result in (None, "started", "refused"):
            continue
        last = {"action": record["action"], "result": result, "at": record.get("at") or record.get("time")}
        if record.get("error"):
            last["error"] = record["error"]
        last.update({k: record[k] for k in KEPT if record.get(k)})
        found[str(env)] = last
    return found
