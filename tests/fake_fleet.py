"""The fake cloud's plain instances and instance refreshes, and how the fake root modules roll a service.

A service rolls one of these ways in the fake world (``World.kinds["env/service"]``):

- ``replace`` (the default): red/black, a new group per image (the sample modules' way);
- ``refresh``: one group updated in place whose ``instance_refresh`` block makes the apply start a
  refresh (the community module's way);
- ``refresh-none``: the same group with no refresh block; ``refresh-latest``: on ``$Latest``;
- ``instances``: plain instances, replaced when their AMI changes.

A refresh moves one batch each time it is read (half the group, as MinHealthyPercentage 50 allows), at
most every STEP seconds, so a test steps it by polling it; ``World.refresh_fail`` names groups whose next
refresh fails half way.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from opsdeck.core.types.cloud import Instance, InstanceRefresh

if TYPE_CHECKING:
    from tests.fakes import FakeCloud, FakeGroup, FakeTerraform

_ids = itertools.count(1)
STEP = 0.2  # seconds: below opsdeck's poll interval, above the time between two reads of one check


@dataclass
class Refreshing:
    """A refresh in the fake world: the group it replaces, toward which image, and how far it is."""

    refresh: InstanceRefresh
    image: str
    back_to: str  # the image a rollback returns to
    stepped: float = 0.0  # when it last moved (it moves at most every STEP seconds, however often read)


class FakeFleet:
    """The FleetPort of one account and region."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud

    @property
    def world(self) -> Any:
        return self.cloud.world

    def standalone(self, tag_key: str, value: str) -> list[Instance]:
        self.world.check()
        return [i for i in self.cloud.here.plain if i.tags.get(tag_key) == value and i.state != "terminated"]

    def refreshes(self, group: str) -> list[InstanceRefresh]:
        self.world.check()
        found = self.cloud.here.refreshes.get(group, [])
        for item in found:
            if item.refresh.active and time.monotonic() - item.stepped >= STEP:
                item.stepped = time.monotonic()
                _step(self.cloud, group, item)
        return [r.refresh for r in sorted(found, key=lambda r: r.refresh.started or 0.0, reverse=True)]

    def start_refresh(self, group: str, preferences: dict[str, Any], desired: dict[str, Any] | None = None) -> str:
        self.world.calls.append(f"start-refresh {group}")
        fake = self.cloud.here.groups[group]
        return start(self.cloud, fake, fake.image, desired=desired or {}, preferences=preferences)

    def cancel_refresh(self, group: str) -> str | None:
        self.world.calls.append(f"cancel-refresh {group}")
        for item in self.cloud.here.refreshes.get(group, []):
            if item.refresh.active:
                item.refresh = replace(item.refresh, status="Cancelled", ended=time.time())
                return item.refresh.id
        return None

    def rollback_refresh(self, group: str) -> str:
        self.world.calls.append(f"rollback-refresh {group}")
        for item in self.cloud.here.refreshes.get(group, []):
            if item.refresh.active and item.refresh.desired:
                item.refresh = replace(item.refresh, status="RollbackInProgress")
                item.image = item.back_to
                return item.refresh.id
        from opsdeck.errors import ToolError

        raise ToolError("aws autoscaling rollback-instance-refresh", "IrreversibleInstanceRefresh")

    def launch_template(self, group: str) -> tuple[str, str] | None:
        fake = self.cloud.here.groups.get(group)
        return (f"lt-{group}", fake.version) if fake is not None else None


def start(
    cloud: FakeCloud, group: FakeGroup, image: str, *, desired: dict[str, Any], preferences: dict[str, Any]
) -> str:
    """A refresh of ``group`` toward ``image`` (what its template now launches)."""
    back = next((i.image_id for i in group.instances), image)
    refresh = InstanceRefresh(
        id=f"refresh-{next(_ids)}",
        group=group.name,
        status="InProgress",
        percentage=0,
        to_update=len(group.instances),
        started=time.time() + next(_ids) * 1e-6,
        desired=desired,
        preferences=preferences,
    )
    cloud.here.refreshes.setdefault(group.name, []).append(Refreshing(refresh, image, back))
    return refresh.id


def _step(cloud: FakeCloud, group_name: str, item: Refreshing) -> None:
    """One batch: half the group (at least one instance) replaced by one on the refresh's image."""
    group = cloud.here.groups[group_name]
    wrong = [i for i in group.instances if i.image_id != item.image]
    total = max(1, len(group.instances))
    rolling_back = item.refresh.status == "RollbackInProgress"
    if not rolling_back and group_name in cloud.world.refresh_fail and len(wrong) <= total // 2:
        cloud.world.refresh_fail.discard(group_name)  # once: the refresh back then succeeds
        item.refresh = replace(
            item.refresh, status="Failed", reason="instances failed health checks", ended=time.time()
        )
        return
    for old in wrong[: max(1, total // 2)]:
        group.instances.remove(old)
        group.instances.append(replace(old, id=f"i-{next(_ids):017x}", image_id=item.image))
    left = sum(1 for i in group.instances if i.image_id != item.image)
    done = int(100 * (total - left) / total)
    if left == 0:
        status = "RollbackSuccessful" if rolling_back else "Successful"
        item.refresh = replace(item.refresh, status=status, percentage=100, to_update=0, ended=time.time())
    elif rolling_back:
        item.refresh = replace(item.refresh, rollback_percentage=done, rollback_to_update=left)
    else:
        item.refresh = replace(item.refresh, percentage=done, to_update=left)


def apply_service(tf: FakeTerraform, service: str, image: str, kind: str) -> None:
    """What the apply does to ``service``'s instances when its pin moves to ``image``."""
    here = tf.cloud.here
    if kind == "instances":
        for instance in [i for i in here.plain if _mine(tf, i.tags, service)]:
            here.plain.remove(instance)
        count = tf.world.sizes.get(f"{tf.name}/{service}", 2)
        tags = {tf._env_tag: tf.name, tf._service_tag: service, "managed_by": "terraform"}
        here.plain += [Instance(f"i-{next(_ids):017x}", image, "running", None, None, dict(tags)) for _ in range(count)]
        return
    group = next((g for g in here.groups.values() if _mine(tf, g.tags, service)), None)
    if group is None:
        tf._launch(service, image)
        return
    group.image = image
    group.version = str(int(group.version) + 1) if kind != "refresh-latest" else "$Latest"
    if kind == "refresh":
        start(tf.cloud, group, image, desired={}, preferences={"MinHealthyPercentage": 50})


def _mine(tf: FakeTerraform, tags: dict[str, str], service: str) -> bool:
    return tags.get(tf._env_tag) == tf.name and tags.get(tf._service_tag) == service


def shown_changes(tf: FakeTerraform, service: str, before: str | None, after: str, kind: str) -> list[dict[str, Any]]:
    """The plan's resource changes for ``service``'s pin moving from ``before`` to ``after``."""
    tags = {tf._env_tag: tf.name, tf._service_tag: service}
    if kind == "instances":
        count = tf.world.sizes.get(f"{tf.name}/{service}", 2)
        return [
            _change(
                f"module.{service}.aws_instance.this[{n}]",
                "aws_instance",
                ["delete", "create"] if before else ["create"],
                {"ami": before, "tags": tags} if before else None,
                {"ami": after, "tags": tags},
            )
            for n in range(count)
        ]
    template = _change(
        f"module.{service}.aws_launch_template.this",
        "aws_launch_template",
        ["update"] if before else ["create"],
        {"image_id": before, "tags": tags} if before else None,
        {"image_id": after, "tags": tags},
    )
    version = "$Latest" if kind == "refresh-latest" else "1"
    tag_blocks = [{"key": k, "value": v, "propagate_at_launch": True} for k, v in tags.items()]
    existing = next((g.name for g in tf.cloud.here.groups.values() if _mine(tf, g.tags, service)), None)
    refresh = [{"strategy": "Rolling", "preferences": [{"min_healthy_percentage": 50}]}] if kind == "refresh" else []
    values = {
        "name": existing or f"{tf.name}-{service}",
        "tag": tag_blocks,
        "instance_refresh": refresh,
        "launch_template": [{"id": "lt-x", "version": version}],
    }
    moves = before is not None and kind != "refresh-latest"
    group = _change(
        f"module.{service}.aws_autoscaling_group.this",
        "aws_autoscaling_group",
        ["update"] if moves else (["no-op"] if before else ["create"]),
        values if before else None,
        {**values, "launch_template": [{"id": "lt-x"}]} if moves else values,
        unknown={"launch_template": [{"version": True}]} if moves else {},
    )
    return [template, group]


def _change(
    address: str, kind: str, actions: list[str], before: Any, after: Any, unknown: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "address": address,
        "module_address": address.split(".aws_")[0],
        "mode": "managed",
        "type": kind,
        "name": "this",
        "change": {"actions": actions, "before": before, "after": after, "after_unknown": unknown or {}},
    }
