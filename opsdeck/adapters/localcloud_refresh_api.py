"""The Auto Scaling instance refresh API on the local cloud: StartInstanceRefresh,
DescribeInstanceRefreshes, CancelInstanceRefresh and RollbackInstanceRefresh added to moto's
Auto Scaling responses, answering in AWS's shapes and error codes; `localcloud_refresh` does the work.

moto serialises each answer from the botocore model of the operation, so the XML is AWS's
(``<StartInstanceRefreshResult><InstanceRefreshId>``, ``<InstanceRefreshes><member>`` …), and an
error whose code is in the model (``InstanceRefreshInProgress``, ``ActiveInstanceRefreshNotFound``,
``IrreversibleInstanceRefresh``) gets its HTTP status (400) from there.
"""

from __future__ import annotations

import threading
from typing import Any

from opsdeck.adapters import localcloud_refresh as engine

PREFERENCE_DEFAULTS: dict[str, Any] = {
    "MinHealthyPercentage": 90,
    "MaxHealthyPercentage": 100,
    "SkipMatching": False,
    "AutoRollback": False,
    "ScaleInProtectedInstances": "Ignore",
    "StandbyInstances": "Ignore",
}


def install(lock: threading.Lock) -> None:
    """Add the four actions to moto's Auto Scaling responses; the worker steps take ``lock``."""
    from moto.autoscaling.responses import AutoScalingResponse

    engine.set_lock(lock)
    _record_origins()
    if getattr(AutoScalingResponse, "_opsdeck_refresh", False):
        return
    for name, action in (
        ("start_instance_refresh", _start),
        ("describe_instance_refreshes", _describe),
        ("cancel_instance_refresh", _cancel),
        ("rollback_instance_refresh", _rollback),
    ):
        setattr(AutoScalingResponse, name, action)
    AutoScalingResponse._opsdeck_refresh = True  # type: ignore[attr-defined]


def _fault(code: str, message: str) -> Exception:
    """An Auto Scaling error with AWS's code (moto takes its HTTP status from the API model)."""
    from moto.autoscaling.exceptions import AutoscalingClientError

    return AutoscalingClientError(code, message)


def _group(response: Any) -> Any:
    name = response._get_param("AutoScalingGroupName")
    group = response.autoscaling_backend.autoscaling_groups.get(name)
    if group is None:
        raise _fault("ValidationError", f"AutoScalingGroup name not found - {name}")
    return group


def _start(self: Any) -> Any:
    from moto.core.responses import ActionResult

    group = _group(self)
    if engine.active(group) is not None:
        raise _fault(
            "InstanceRefreshInProgress",
            f"An instance refresh is already in progress for {group.name}; only one can run at a time.",
        )
    strategy = self._get_param("Strategy") or "Rolling"
    if strategy != "Rolling":
        raise _fault("ValidationError", f"Strategy {strategy} is not implemented by the local cloud (only Rolling).")
    desired = self._get_param("DesiredConfiguration") or None
    prefs = {**PREFERENCE_DEFAULTS, **(self._get_param("Preferences") or {})}
    _check_preferences(prefs, desired)
    previous = engine.group_origin(group)
    target = _desired_origin(group, desired) if desired else previous
    skip = bool(prefs["SkipMatching"])
    pending = [
        s.instance.id
        for s in group.instance_states
        if _eligible(s, prefs) and not (skip and target.same(engine.ORIGINS.get(s.instance)))
    ]
    refresh = engine.Refresh(
        group=group,
        strategy=strategy,
        preferences=prefs,
        desired=desired,
        target=target,
        previous=previous,
        previous_spec=_group_spec(group),
        pending=pending,
    )
    engine.begin(refresh)
    return ActionResult({"InstanceRefreshId": refresh.id})


def _check_preferences(prefs: dict[str, Any], desired: dict[str, Any] | None) -> None:
    low, high = int(prefs["MinHealthyPercentage"]), int(prefs["MaxHealthyPercentage"])
    if not 0 <= low <= 100:
        raise _fault("ValidationError", f"MinHealthyPercentage must be between 0 and 100, not {low}.")
    if not 100 <= high <= 200 or high - low > 100:
        raise _fault(
            "ValidationError",
            f"MaxHealthyPercentage must be between 100 and 200 and at most 100 above MinHealthyPercentage, not {high}.",
        )
    points = [int(p) for p in prefs.get("CheckpointPercentages") or []]
    if points != sorted(set(points)) or any(not 1 <= p <= 100 for p in points):
        raise _fault("ValidationError", "CheckpointPercentages must rise strictly, each between 1 and 100.")
    if points:
        prefs.setdefault("CheckpointDelay", 3600)
    if prefs["AutoRollback"] and not desired:
        raise _fault(
            "ValidationError",
            "AutoRollback cannot be true when DesiredConfiguration is empty: "
            "set AutoRollback to false or give a desired configuration.",
        )


def _eligible(state: Any, prefs: dict[str, Any]) -> bool:
    if state.protected_from_scale_in and prefs["ScaleInProtectedInstances"] != "Refresh":
        return False
    if state.lifecycle_state == "Standby":
        return bool(prefs["StandbyInstances"] == "Terminate")
    return bool(state.lifecycle_state == "InService")


def _desired_origin(group: Any, desired: dict[str, Any]) -> engine.Origin:
    spec = desired.get("LaunchTemplate") or (
        (desired.get("MixedInstancesPolicy") or {}).get("LaunchTemplate", {}).get("LaunchTemplateSpecification")
    )
    if not spec:
        raise _fault("ValidationError", "DesiredConfiguration needs a launch template (LaunchTemplate).")
    tid, name, version = spec.get("LaunchTemplateId"), spec.get("LaunchTemplateName"), spec.get("Version")
    if bool(tid) == bool(name):
        raise _fault("ValidationError", "Valid requests must contain either LaunchTemplateId or LaunchTemplateName.")
    try:
        template = (
            group.ec2_backend.get_launch_template(tid) if tid else group.ec2_backend.get_launch_template_by_name(name)
        )
        number = template.get_version(version or "$Default").number
    except Exception as exc:  # moto's EC2 errors do not serialise as Auto Scaling's
        raise _fault(
            "ValidationError",
            f"You must use a valid launch template ({tid or name}, version {version or '$Default'}): {exc}",
        ) from None
    return engine.Origin(template.id, template.name, number)


def _group_spec(group: Any) -> dict[str, Any]:
    if group.ec2_launch_template is None:
        return {"LaunchConfigurationName": getattr(group, "launch_configuration_name", None)}
    spec = {"LaunchTemplateId": group.ec2_launch_template.id}
    version = getattr(group, "provided_launch_template_version", None) or getattr(group, "launch_template_version", "")
    if version:
        spec["Version"] = version
    return spec


def _describe(self: Any) -> Any:
    from moto.core.responses import ActionResult

    name = self._get_param("AutoScalingGroupName")
    group = self.autoscaling_backend.autoscaling_groups.get(name)
    refreshes = list(reversed(engine.refreshes(group))) if group is not None else []
    wanted = self._get_param("InstanceRefreshIds") or []
    if wanted:
        refreshes = [r for r in refreshes if r.id in wanted]
    size = int(self._get_param("MaxRecords") or 50)
    if not 1 <= size <= 100:
        raise _fault("ValidationError", f"MaxRecords must be between 1 and 100, not {size}.")
    token = self._get_param("NextToken")
    ids = [r.id for r in refreshes]
    if token and token not in ids:
        raise _fault("InvalidNextToken", "The NextToken value is not valid.")
    first = ids.index(token) + 1 if token else 0
    page = refreshes[first : first + size]
    result: dict[str, Any] = {"InstanceRefreshes": [describe(r) for r in page]}
    if first + size < len(refreshes):
        result["NextToken"] = page[-1].id
    return ActionResult(result)


def describe(r: engine.Refresh) -> dict[str, Any]:
    """One refresh in the shape of AWS's InstanceRefresh."""
    out: dict[str, Any] = {
        "InstanceRefreshId": r.id,
        "AutoScalingGroupName": r.group.name,
        "Status": r.status,
        "StartTime": r.started,
        "PercentageComplete": r.percentage,
        "InstancesToUpdate": r.total - r.done,
        "ProgressDetails": _progress(r.percentage, r.total - r.done, r.group),
        "Preferences": r.preferences,
        "Strategy": r.strategy,
    }
    if r.reason:
        out["StatusReason"] = r.reason
    if r.ended is not None:
        out["EndTime"] = r.ended
    if r.desired:
        out["DesiredConfiguration"] = r.desired
    if r.rollback is not None:
        back = r.rollback
        percentage = 100 if back.total == 0 else back.done * 100 // back.total
        out["RollbackDetails"] = {
            "RollbackReason": back.reason,
            "RollbackStartTime": back.started,
            "PercentageCompleteOnRollback": percentage,
            "InstancesToUpdateOnRollback": back.total - back.done,
            "ProgressDetailsOnRollback": _progress(percentage, back.total - back.done, r.group),
        }
    return out


def _progress(percentage: int, left: int, group: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"LivePoolProgress": {"PercentageComplete": percentage, "InstancesToUpdate": left}}
    if getattr(group, "warm_pool", None) is not None:  # warm pool instances are not refreshed here
        details["WarmPoolProgress"] = {"PercentageComplete": 100, "InstancesToUpdate": 0}
    return details


def _cancel(self: Any) -> Any:
    from moto.core.responses import ActionResult

    group = _group(self)
    refresh = engine.active(group)
    if refresh is None:
        raise _fault(
            "ActiveInstanceRefreshNotFound",
            f"No in progress or pending instance refresh found for Auto Scaling group {group.name}",
        )
    wait = self._get_param("WaitForTransitioningInstances")
    if refresh.status != "Cancelling":
        if refresh.batch is None or wait is False:
            refresh.end("Cancelled")
        else:
            refresh.status = "Cancelling"
            refresh.poke.set()
    return ActionResult({"InstanceRefreshId": refresh.id})


def _rollback(self: Any) -> Any:
    from moto.core.responses import ActionResult

    group = _group(self)
    refresh = engine.active(group)
    if refresh is None or refresh.status not in ("Pending", "InProgress", "Baking"):
        raise _fault(
            "ActiveInstanceRefreshNotFound",
            f"No in progress or pending instance refresh to roll back for Auto Scaling group {group.name}",
        )
    blocked = engine.irreversible(refresh)
    if blocked:
        raise _fault("IrreversibleInstanceRefresh", f"The instance refresh cannot be rolled back: {blocked}")
    engine.start_rollback(refresh, "Rollback started by the caller (RollbackInstanceRefresh).")
    return ActionResult({"InstanceRefreshId": refresh.id})


def _record_origins() -> None:
    """Remember what each group instance is launched from, and report it as AWS does.

    moto reports every instance of a group on the group's current default template version; AWS
    reports the version each one was launched from, which is what SkipMatching and a rollback
    compare.
    """
    from moto.autoscaling import models

    original = models.FakeAutoScalingGroup.replace_autoscaling_group_instances
    if getattr(original, "_opsdeck_fixed", False):
        return

    def replace(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
        before = len(self.instance_states)
        origin = engine.group_origin(self)
        original(self, count_needed, propagated_tags)
        for state in self.instance_states[before:]:
            engine.ORIGINS[state.instance] = origin

    def launch_template(self: Any) -> dict[str, Any] | None:
        origin = engine.ORIGINS.get(self.instance)
        if origin is None or origin.template_id is None:
            return shown.fget(self)  # type: ignore[no-any-return]
        return {
            "LaunchTemplateId": origin.template_id,
            "LaunchTemplateName": origin.template_name,
            "Version": str(origin.number),
        }

    shown: Any = models.InstanceState.__dict__["launch_template"]
    replace._opsdeck_fixed = True  # type: ignore[attr-defined]
    setattr(models.FakeAutoScalingGroup, "replace_autoscaling_group_instances", replace)  # noqa: B010
    setattr(models.InstanceState, "launch_template", property(launch_template))  # noqa: B010
