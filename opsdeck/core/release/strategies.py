"""Rollout strategies: how a new image reaches a service's instances once its plan is applied.

One small interface (``Strategy``), one implementation per way a team's Terraform rolls instances:

- ``replace``: the plan replaces the service's group (red/black: a new template and group per image);
  the instances of the new group come up with the apply.
- ``instances``: plain ``aws_instance``s, which the plan replaces when their AMI changes.
- ``instance-refresh``: one group whose launch template is updated in place. The apply starts the
  group's instance refresh (Terraform does, for a group with an ``instance_refresh`` block and a
  numbered version), or opsdeck starts it (``start_refresh``); it is followed live, and stopped (rolled
  back or cancelled) on Ctrl-C or a failure. A group on ``$Latest``, or with no refresh block, rolls
  nothing: the confirmation says so before anything is applied, and the change ends at once.
- ``blue-green``: the whole environment's; its stage, gates and switch are core/release/bluegreen_rollout.py.

``auto`` chooses per service from the plan (core/release/facts.py), else from what runs. The release
transaction (core/release/transaction.py) asks the strategies before the apply, after it, and when it
stops; the verify phase then checks the instances of every service that rolled.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from opsdeck.core.estate.sections import EnvSettings
from opsdeck.core.events import Reporter
from opsdeck.core.ports.cloud import GroupsPort
from opsdeck.core.release import refresh
from opsdeck.core.release.facts import GroupFacts, PlanFacts, ServiceFacts
from opsdeck.core.release.fleet import Snapshot, rollout_state, service_groups


@dataclass(frozen=True)
class Where:
    """What a strategy works with: the environment's settings, its cloud, and the operation's reporter."""

    env: str
    settings: EnvSettings
    cloud: GroupsPort  # its groups, plain instances and refreshes: all a strategy touches
    rep: Reporter


class Strategy(Protocol):
    """How one service's new image reaches its instances after the apply."""

    name: ClassVar[str]
    service: str

    def note(self) -> str:
        """What the confirmation says about it before anything is applied ("" when nothing is worth saying)."""
        ...

    async def before_apply(self) -> None:
        """Remember what the apply will change (a refresh already running, say)."""
        ...

    async def after_apply(self) -> bool:
        """Follow what the apply set going; True when the service's instances should now run its pin (the
        verify phase checks them), False when nothing replaces them."""
        ...

    async def stop(self) -> str:
        """Stop what ``after_apply`` follows (Ctrl-C, a failure); what happened, "" for nothing."""
        ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass
class Replace:
    """Red/black: the apply brings up the new group; the verify phase waits for its instances."""

    name: ClassVar[str] = "replace"
    service: str

    def note(self) -> str:
        return ""

    async def before_apply(self) -> None:
        return None

    async def after_apply(self) -> bool:
        return True

    async def stop(self) -> str:
        return ""

    def to_json(self) -> dict[str, Any]:
        return {"rollout": self.name}


@dataclass
class Plain(Replace):
    """Plain instances: Terraform replaces them when their AMI changes, within the apply."""

    name: ClassVar[str] = "instances"


@dataclass
class Refresh:
    """One group rolled in place by its instance refresh (see the module's docstring)."""

    name: ClassVar[str] = "instance-refresh"
    service: str
    where: Where
    group: GroupFacts
    known: frozenset[str] = frozenset()
    outcome: str = ""  # what the refresh did, for the result

    @property
    def starts_itself(self) -> bool:
        return self.group.starts_refresh

    @property
    def opsdeck_starts(self) -> bool:
        return not self.starts_itself and self.where.settings.start_refresh and not self.group.created

    def still(self) -> str:
        """Why nothing replaces the instances, or "" when something does."""
        if self.starts_itself or self.opsdeck_starts or self.group.created or self.group.replaced:
            return ""
        if self.group.floating:
            return f"{self.group.name} launches {self.group.version_after or self.group.version_before}"
        if self.group.refresh is None:
            return f"{self.group.name} has no instance_refresh block"
        return f"the plan does not move {self.group.name}'s launch template version"

    def note(self) -> str:
        still = self.still()
        if still:
            return f"{self.service}: instances keep the old image ({still}; start_refresh = true makes opsdeck roll it)"
        prefs = self.where.settings.refresh if self.opsdeck_starts else None
        healthy = prefs.min_healthy_percentage if prefs else _healthy(self.group.refresh)
        who = "opsdeck starts" if self.opsdeck_starts else "the apply starts"
        at = f", {healthy}% kept in service" if healthy is not None else ""
        return f"{self.service}: {who} an instance refresh of {self.group.name}{at}"

    async def before_apply(self) -> None:
        if self.group.name and not self.group.created:
            self.known = await asyncio.to_thread(refresh.known_ids, self.where.cloud.fleet(), self.group.name)

    async def after_apply(self) -> bool:
        if self.group.created or self.group.replaced:
            return True  # a new group launches on its template: nothing to refresh
        fleet = self.where.cloud.fleet()
        if self.opsdeck_starts:
            await asyncio.to_thread(fleet.start_refresh, self.group.name, *self._request(fleet))
        elif not self.starts_itself:
            return False
        found = await refresh.started_since(fleet, self.group.name, self.known)
        if found is None:
            self.outcome = f"no instance refresh of {self.group.name} started"
            return False
        done = await refresh.follow(
            fleet, found, self.service, self.where.rep, timeout=self.where.settings.refresh_timeout
        )
        self.outcome = f"{self.service}: instance refresh of {self.group.name} {done.status}"
        return True

    def _request(self, fleet: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        prefs = self.where.settings.refresh
        preferences: dict[str, Any] = {
            "MinHealthyPercentage": prefs.min_healthy_percentage,
            "SkipMatching": prefs.skip_matching,
            "AutoRollback": prefs.auto_rollback,
        }
        if prefs.instance_warmup is not None:
            preferences["InstanceWarmup"] = prefs.instance_warmup
        if prefs.checkpoint_percentages:
            preferences["CheckpointPercentages"] = list(prefs.checkpoint_percentages)
        if prefs.checkpoint_delay is not None:
            preferences["CheckpointDelay"] = prefs.checkpoint_delay
        template = fleet.launch_template(self.group.name)
        desired = None
        if prefs.auto_rollback and template is not None:  # AWS rolls back only to a named configuration
            desired = {"LaunchTemplate": {"LaunchTemplateId": template[0], "Version": "$Latest"}}
        return preferences, desired

    async def stop(self) -> str:
        if not self.group.name or self.group.created:
            return ""
        what = await refresh.stop(self.where.cloud.fleet(), self.group.name, self.service, self.where.rep)
        self.outcome = what or self.outcome
        return what

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rollout": self.name, "group": self.group.name}
        still = self.still()
        if still:
            data["rolls_nothing"] = still
        if self.outcome:
            data["outcome"] = self.outcome
        return data


def _healthy(block: dict[str, Any] | None) -> int | None:
    prefs = (block or {}).get("preferences") or []
    first = prefs[0] if isinstance(prefs, list) and prefs else {}
    value = first.get("min_healthy_percentage") if isinstance(first, dict) else None
    return int(value) if isinstance(value, int | float) else None


def choose(where: Where, service: str, facts: ServiceFacts, snap: Snapshot | None = None) -> Strategy:
    """The strategy of ``service`` for this plan: the environment's (or the service's) rollout, and for
    ``auto`` what the plan does to it (else what runs)."""
    wanted: str = where.settings.rollout_of(service)
    if wanted == "auto":
        wanted = auto(facts, snap, service)
    group = next((g for g in facts.groups if not g.replaced and g.actions != ("delete",)), None)
    if wanted == "instance-refresh" and group is not None:
        return Refresh(service, where, group)
    if wanted == "instances":
        return Plain(service)
    return Replace(service)


def auto(facts: ServiceFacts, snap: Snapshot | None, service: str) -> str:
    """``auto``: plain instances when the service has no group; red/black when the plan replaces its
    group; an instance refresh when it keeps one group and changes it in place (or its template)."""
    if facts.instances and not facts.groups:
        return "instances"
    if any(g.replaced for g in facts.groups):
        return "replace"
    if facts.groups and (facts.templates_changed or any(g.actions == ("update",) for g in facts.groups)):
        return "instance-refresh"
    if not facts.groups and snap is not None and snap.plain and not snap.groups:
        return "instances"
    return "replace"


def still_counts(snap: Snapshot, deck: Any, service: str, image: str) -> tuple[int, int]:
    """(instances still on another image, instances) of a service whose rollout replaces nothing."""
    state = rollout_state(service_groups(deck, snap.groups, service), image)
    return state.running - state.on_image, state.running


def for_plan(where: Where, services: list[str], facts: PlanFacts, snap: Snapshot | None = None) -> dict[str, Strategy]:
    return {s: choose(where, s, facts.of(s), snap) for s in services}
