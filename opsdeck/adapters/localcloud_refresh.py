"""The local cloud's Auto Scaling instance refresh engine: a group's instances replaced batch by batch.

moto 5.2 does not implement instance refresh; `localcloud_refresh_api` adds the four API actions and
this module does the work, in one background thread per refresh that takes the local cloud's request
lock for each step (never a sleep inside a request), so progress is real and a cancel or a rollback
can land between batches.

A batch is ``max(1, desired - ceil(desired * MinHealthyPercentage / 100))`` instances: they are
terminated, as many are launched from the configuration the refresh targets, and the batch settles
once the new ones are healthy. Settable in the server process's environment, read when a refresh
starts:

- ``OPSDECK_LOCALCLOUD_REFRESH_SECONDS`` (default 3): a batch's warm-up, and a checkpoint's pause.
  ``InstanceWarmup`` and ``CheckpointDelay`` shorten it, never lengthen it.
- ``OPSDECK_LOCALCLOUD_REFRESH_HEALTH_SECONDS`` (default 15): how long a batch may stay unhealthy
  before the refresh fails (and, with ``AutoRollback``, rolls back).
- A group tagged ``opsdeck:localcloud:refresh-seconds`` takes that batch warm-up instead (a test that
  lands a Ctrl-C mid-way gives one group a slow refresh without slowing every other).

Fault for tests: an instance launched from an image tagged ``opsdeck:localcloud:unhealthy`` (any
value; the tag is read in the instance's own account) never becomes healthy. Tag an image with
boto3's ``create_tags`` and a refresh to it fails; untag it and the next health check passes.

Not modelled: warm pools (never refreshed), launch-before-terminate (``MaxHealthyPercentage`` is
echoed only), alarms, bake time, and the instance types of a mixed instances policy.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import traceback
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
UNHEALTHY_TAG = "opsdeck:localcloud:unhealthy"
BATCH_SECONDS = "OPSDECK_LOCALCLOUD_REFRESH_SECONDS"
HEALTH_SECONDS = "OPSDECK_LOCALCLOUD_REFRESH_HEALTH_SECONDS"
SECONDS_TAG = "opsdeck:localcloud:refresh-seconds"


def _seconds(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


@dataclass(frozen=True)
class Origin:
    """What an instance was launched from: a launch template version (by number) or a launch configuration."""

    template_id: str | None = None
    template_name: str | None = None
    number: int | None = None
    launch_configuration: str | None = None

    def same(self, other: Origin | None) -> bool:
        return other is not None and (self.template_id, self.number, self.launch_configuration) == (
            other.template_id,
            other.number,
            other.launch_configuration,
        )


# The origin of every instance an auto scaling group launched (moto keeps only the group's current one).
ORIGINS: weakref.WeakKeyDictionary[Any, Origin] = weakref.WeakKeyDictionary()


def group_origin(group: Any) -> Origin:
    """What the group launches from now (its template version resolved to a number)."""
    template = group.ec2_launch_template
    if template is None:
        return Origin(launch_configuration=getattr(group, "launch_configuration_name", None))
    number = template.get_version(group.launch_template_version).number
    return Origin(template.id, template.name, number)


@dataclass
class Batch:
    old: list[str]
    new: list[str]
    ready_at: float  # monotonic: when its warm-up ends


@dataclass
class Rollback:
    reason: str
    started: datetime
    pending: list[str]
    total: int
    done: int = 0


@dataclass
class Refresh:
    """One instance refresh of one group; every field is read and written under the request lock."""

    group: Any  # moto's FakeAutoScalingGroup
    strategy: str
    preferences: dict[str, Any]
    desired: dict[str, Any] | None
    target: Origin
    previous: Origin  # the group's own configuration when the refresh started
    previous_spec: dict[str, Any]  # that configuration as the group held it, to put back on rollback
    pending: list[str]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "Pending"
    reason: str | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended: datetime | None = None
    total: int = 0
    done: int = 0
    launched: list[str] = field(default_factory=list)
    batch: Batch | None = None
    rollback: Rollback | None = None
    pause_until: float | None = None
    checkpoints: list[int] = field(default_factory=list)
    warmup: float = 3.0
    health_wait: float = 15.0
    poke: threading.Event = field(default_factory=threading.Event)

    @property
    def percentage(self) -> int:
        return 100 if self.total == 0 else self.done * 100 // self.total

    def end(self, status: str, reason: str | None = None) -> None:
        self.status, self.reason, self.ended = status, reason, datetime.now(UTC)
        self.batch = None
        self.poke.set()


_lock: threading.Lock | None = None


def set_lock(lock: threading.Lock) -> None:
    global _lock
    _lock = lock


def refreshes(group: Any) -> list[Refresh]:
    """The group's refreshes, oldest first; kept on the group, so a deleted group's go with it."""
    found: list[Refresh] = getattr(group, "_opsdeck_refreshes", [])
    return found


def active(group: Any) -> Refresh | None:
    return next((r for r in refreshes(group) if r.status in ACTIVE), None)


def _group_seconds(group: Any) -> float | None:
    """A group's own batch warm-up (its SECONDS_TAG), for a test that needs time to land a Ctrl-C mid-way."""
    for tag in getattr(group, "tags", None) or []:
        if isinstance(tag, dict) and tag.get("Key", tag.get("key")) == SECONDS_TAG:
            try:
                return max(0.0, float(str(tag.get("Value", tag.get("value")))))
            except ValueError:
                return None
    return None


def begin(refresh: Refresh) -> None:
    """Record the refresh on its group and start its worker (the caller holds the request lock)."""
    refresh.total = len(refresh.pending)
    prefs = refresh.preferences
    refresh.warmup = _group_seconds(refresh.group) or _seconds(BATCH_SECONDS, 3.0)
    if prefs.get("InstanceWarmup") is not None:
        refresh.warmup = min(refresh.warmup, float(prefs["InstanceWarmup"]))
    refresh.health_wait = _seconds(HEALTH_SECONDS, 15.0)
    refresh.checkpoints = sorted(int(p) for p in prefs.get("CheckpointPercentages") or [])
    refresh.group._opsdeck_refreshes = [*refreshes(refresh.group), refresh]
    threading.Thread(target=_work, args=(refresh,), name=f"refresh-{refresh.id[:8]}", daemon=True).start()


def _work(refresh: Refresh) -> None:
    assert _lock is not None, "localcloud_refresh.set_lock was not called"
    wait: float | None = 0.0
    while wait is not None:
        if wait > 0:
            refresh.poke.wait(wait)
        refresh.poke.clear()  # a poke meanwhile changed the state this step reads under the lock
        with _lock:
            try:
                wait = step(refresh, time.monotonic())
            except Exception:  # a bug here must not leave the refresh InProgress for ever
                print(f"localcloud: instance refresh {refresh.id} failed:", file=sys.stderr, flush=True)
                traceback.print_exc(file=sys.stderr)
                refresh.end("Failed", "The local cloud failed while refreshing; see its log.")
                wait = None


def step(r: Refresh, now: float) -> float | None:
    """Advance the refresh by one step; the seconds until the next one, or None when it is over."""
    group = r.group
    if group.autoscaling_backend.autoscaling_groups.get(group.name) is not group:
        return None  # the group was deleted, and its refreshes with it
    if r.status == "Pending":
        r.status = "InProgress"
    if r.batch is not None:
        wait = _settle(r, now)
        if wait is not None:
            return wait
    if r.status == "Cancelling":
        r.end("Cancelled")
    if r.status not in ("InProgress", "RollbackInProgress"):
        return None
    if r.rollback is None and r.pause_until is not None:
        if now < r.pause_until:
            return r.pause_until - now
        r.pause_until, r.reason = None, None
    return _launch_batch(r, now)


def _settle(r: Refresh, now: float) -> float | None:
    """Wait for the batch in flight to warm up and become healthy; None once it has (or has failed)."""
    batch = r.batch
    assert batch is not None
    if now < batch.ready_at:
        return batch.ready_at - now  # also while Cancelling: it waits for the instances in transition
    states = {s.instance.id: s for s in r.group.instance_states}
    sick = [i for i in batch.new if i in states and image_unhealthy(states[i].instance)]
    for instance_id in batch.new:
        if instance_id in states:
            states[instance_id].health_status = "Unhealthy" if instance_id in sick else "Healthy"
    if sick:
        waited = now - batch.ready_at
        if r.status == "Cancelling":
            r.batch = None  # a cancel waits for the warm-up, not for health that may never come
            return None
        if waited < r.health_wait:
            r.reason = f"Waiting for {sick[0]} to pass its health checks (instance launched from an unhealthy image)."
            return max(0.05, min(r.warmup or 0.5, r.health_wait - waited))
        r.batch = None
        _fail(r, f"{sick[0]} did not become healthy within {r.health_wait:g} seconds of warming up.")
        return None
    r.batch = None
    if r.rollback is not None:
        r.rollback.done += len(batch.old)
    else:
        r.done += len(batch.old)
        _checkpoint(r, now)
    return None


def _checkpoint(r: Refresh, now: float) -> None:
    while r.checkpoints and r.percentage >= r.checkpoints[0]:
        reached = r.checkpoints.pop(0)
        if r.pending:
            delay = r.preferences.get("CheckpointDelay", 3600)
            r.pause_until = now + min(r.warmup, float(delay))
            r.reason = f"Waiting at checkpoint: {reached}% of the instances are replaced."


def _fail(r: Refresh, why: str) -> None:
    if r.rollback is not None:
        r.end("RollbackFailed", f"The rollback failed: {why}")
        return
    if r.preferences.get("AutoRollback"):
        blocked = irreversible(r)
        if blocked:
            r.end("Failed", f"The instance refresh failed: {why} It cannot roll back: {blocked}")
            return
        start_rollback(r, f"The instance refresh failed and is rolled back automatically: {why}")
        return
    r.end("Failed", f"The instance refresh failed: {why}")


def irreversible(r: Refresh) -> str | None:
    """Why the refresh cannot be rolled back (AWS's rules), or None when it can."""
    if not r.desired:
        return "it was started without a desired configuration."
    version = str(r.previous_spec.get("Version", "$Default"))
    if r.previous.template_id is None:
        return "the group used a launch configuration, not a launch template."
    if version.startswith("$"):
        return f"the group's previous launch template version is {version}, not a numbered version."
    return None


def start_rollback(r: Refresh, reason: str) -> None:
    """Put back the group's previous configuration and replace what this refresh launched."""
    live = {s.instance.id for s in r.group.instance_states}
    pending = [i for i in r.launched if i in live]
    r.rollback = Rollback(reason, datetime.now(UTC), pending, len(pending))
    r.batch, r.pause_until = None, None
    r.status, r.reason = "RollbackInProgress", reason
    _put_spec(r.group, r.previous_spec)
    r.poke.set()


def _put_spec(group: Any, spec: dict[str, Any]) -> None:
    """Give the group a launch template spec (``LaunchTemplateId`` and ``Version``) or a launch configuration."""
    if spec.get("LaunchConfigurationName"):
        group._set_launch_configuration(spec["LaunchConfigurationName"], {}, None)
    else:
        group._set_launch_configuration("", dict(spec), None)


def _launch_batch(r: Refresh, now: float) -> float | None:
    group = r.group
    live = {s.instance.id for s in group.instance_states}
    rollback = r.rollback
    pending = rollback.pending if rollback is not None else r.pending
    left = [i for i in pending if i in live]  # one that left the group meanwhile needs no replacement
    gone = len(pending) - len(left)
    pending[:] = left
    if rollback is not None:
        rollback.done += gone
    else:
        r.done += gone
    if not pending:
        _finish(r)
        return None
    desired = group.desired_capacity if group.desired_capacity is not None else len(live)
    size = batch_size(desired, int(r.preferences.get("MinHealthyPercentage", 90)))
    if rollback is None and r.checkpoints:
        goal = math.ceil(r.total * r.checkpoints[0] / 100)
        size = min(size, max(1, goal - r.done))
    old = pending[:size]
    del pending[:size]
    _terminate(group, old)
    new = launch(group, r.previous if rollback is not None else r.target, len(old))
    if rollback is None:
        r.launched.extend(new)
    r.batch = Batch(old, new, now + r.warmup)
    r.reason = f"Waiting for {len(new)} new instance(s) to warm up before continuing, for example {new[0]}."
    return r.warmup


def batch_size(desired: int, min_healthy: int) -> int:
    """How many instances one batch replaces: as many as may be out of service, at least one."""
    return max(1, desired - math.ceil(desired * min_healthy / 100))


def _finish(r: Refresh) -> None:
    if r.rollback is not None:
        r.end("RollbackSuccessful", r.rollback.reason)
        return
    r.done = r.total
    if r.desired is not None:  # AWS gives the group its desired configuration once the refresh succeeds
        _put_spec(r.group, _template_spec(r.target))
    r.end("Successful")


def _template_spec(origin: Origin) -> dict[str, Any]:
    if origin.template_id is None:
        return {"LaunchConfigurationName": origin.launch_configuration}
    return {"LaunchTemplateId": origin.template_id, "Version": str(origin.number)}


def _terminate(group: Any, instance_ids: list[str]) -> None:
    from moto.elbv2.models import elbv2_backends

    group.instance_states = [s for s in group.instance_states if s.instance.id not in instance_ids]
    group.ec2_backend.terminate_instances(instance_ids)
    elbv2_backends[group.account_id][group.region].notify_terminate_instances(instance_ids)


def launch(group: Any, origin: Origin, count: int) -> list[str]:
    """Launch ``count`` instances into the group from ``origin``, the way the group launches its own."""
    saved = (group.ec2_launch_template, group.launch_template_version, group.launch_config)
    before = len(group.instance_states)
    try:
        if origin.template_id is not None:
            group.ec2_launch_template = group.ec2_backend.get_launch_template(origin.template_id)
            group.launch_template_version = str(origin.number)
            group.launch_config = None
        group.replace_autoscaling_group_instances(count, group.get_propagated_tags())
    finally:
        group.ec2_launch_template, group.launch_template_version, group.launch_config = saved
    new = [s.instance.id for s in group.instance_states[before:]]
    group.autoscaling_backend.update_attached_elbs(group.name)
    group.autoscaling_backend.update_attached_target_groups(group.name)
    return new


def image_unhealthy(instance: Any) -> bool:
    """Whether the instance's image carries the fault tag, in the instance's own account."""
    tags = instance.ec2_backend.describe_tags(filters={"resource-id": [instance.image_id], "key": [UNHEALTHY_TAG]})
    return bool(tags)
