"""How a plan will move each service's instances, read from `terraform show -json` of the saved plan.

Every resource is in a plan's ``resource_changes`` (unchanged ones as "no-op"), so for each service,
found by the deck's service tag, the plan says whether its auto scaling groups are replaced (a new
group per image: red/black) or updated in place, whether an in-place group names a numbered launch
template version that this plan moves (Terraform's provider then starts the group's instance
refresh, when the group has an ``instance_refresh`` block) or ``$Latest`` (nothing rolls), and
whether plain ``aws_instance``s are replaced. ``auto`` rollouts are chosen from these facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GROUP = "aws_autoscaling_group"
INSTANCE = "aws_instance"
FLOATING = ("$Latest", "$Default")


@dataclass(frozen=True)
class GroupFacts:
    """One auto scaling group in the plan."""

    name: str
    actions: tuple[str, ...]
    version_before: str | None  # the launch template version the group names now
    version_after: str | None  # what it will name; None when the apply decides (latest_version)
    refresh: dict[str, Any] | None  # the group's instance_refresh block (None: it has none)

    @property
    def replaced(self) -> bool:
        return "create" in self.actions and "delete" in self.actions

    @property
    def created(self) -> bool:
        return self.actions == ("create",)

    @property
    def floating(self) -> bool:
        """The group launches $Latest (or $Default): a new template version moves nothing by itself."""
        return (self.version_after or self.version_before or "") in FLOATING

    @property
    def version_moves(self) -> bool:
        return self.actions == ("update",) and not self.floating and self.version_after != self.version_before

    @property
    def starts_refresh(self) -> bool:
        """The apply starts the group's instance refresh (Terraform's provider does, for this change)."""
        return self.refresh is not None and self.version_moves


@dataclass(frozen=True)
class ServiceFacts:
    """What the plan does to one service's groups and plain instances."""

    groups: tuple[GroupFacts, ...] = ()
    instances: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (address, actions) of its aws_instances
    templates_changed: bool = False  # a launch template of the service is updated in place

    @property
    def instances_replaced(self) -> bool:
        return any("create" in a and "delete" in a for _, a in self.instances)

    @property
    def plain_count(self) -> int:
        """How many plain instances the service has once the plan is applied."""
        return sum(1 for _, a in self.instances if a != ("delete",))


@dataclass(frozen=True)
class PlanFacts:
    services: dict[str, ServiceFacts] = field(default_factory=dict)

    def of(self, service: str) -> ServiceFacts:
        return self.services.get(service, ServiceFacts())


def _values(change: dict[str, Any]) -> dict[str, Any]:
    return change.get("after") or change.get("before") or {}


def _tag_of(values: dict[str, Any], key: str) -> str | None:
    for tag in values.get("tag") or []:  # an auto scaling group's tag blocks
        if isinstance(tag, dict) and tag.get("key") == key:
            return str(tag.get("value"))
    tags = values.get("tags") or values.get("tags_all") or {}
    value = tags.get(key) if isinstance(tags, dict) else None
    return str(value) if value is not None else None


def _first(value: Any) -> dict[str, Any]:
    return value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}


def _group(change: dict[str, Any]) -> GroupFacts:
    before, after = change.get("before") or {}, change.get("after") or {}
    unknown = _first((change.get("after_unknown") or {}).get("launch_template"))
    version_after = None if unknown.get("version") is True else _first(after.get("launch_template")).get("version")
    refresh = _first(_values(change).get("instance_refresh")) or None
    name = str(after.get("name") or before.get("name") or "")
    return GroupFacts(
        name=name,
        actions=tuple(change.get("actions") or ()),
        version_before=_first(before.get("launch_template")).get("version"),
        version_after=str(version_after) if version_after is not None else None,
        refresh=refresh,
    )


def read_facts(shown: dict[str, Any], service_tag: str, services: list[str]) -> PlanFacts:
    """Each service's facts from a shown plan. In a deck of one service, untagged resources are its."""
    groups: dict[str, list[GroupFacts]] = {}
    instances: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    templates: set[str] = set()
    only = services[0] if len(services) == 1 else None
    for rc in shown.get("resource_changes") or []:
        if rc.get("mode", "managed") != "managed":
            continue
        change = rc.get("change") or {}
        service = _tag_of(_values(change), service_tag) or only
        if service is None:
            continue
        actions = tuple(change.get("actions") or ())
        if rc.get("type") == GROUP:
            groups.setdefault(service, []).append(_group(change))
        elif rc.get("type") == INSTANCE:
            instances.setdefault(service, []).append((str(rc.get("address")), actions))
        elif rc.get("type") == "aws_launch_template" and actions == ("update",):
            templates.add(service)
    found = {
        s: ServiceFacts(tuple(groups.get(s, ())), tuple(instances.get(s, ())), s in templates)
        for s in set(groups) | set(instances) | templates
    }
    return PlanFacts(found)
