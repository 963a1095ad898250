"""Where a service's instances run besides red/black groups: plain instances found by their tags, and an
auto scaling group's instance refreshes (Start/Describe/Cancel/RollbackInstanceRefresh).

A refresh replaces a group's instances batch by batch as its MinHealthyPercentage allows; Terraform's
AWS provider starts one when a group with an ``instance_refresh`` block gets a new launch template
version, and does not wait for it. What a refresh reports is read here as ``InstanceRefresh``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from opsdeck.core.types.cloud import InstanceRefresh

if TYPE_CHECKING:
    from opsdeck.adapters.aws import Aws
    from opsdeck.core.types.cloud import Instance


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def refresh_from_api(raw: dict[str, Any]) -> InstanceRefresh:
    rollback = raw.get("RollbackDetails") or {}
    return InstanceRefresh(
        id=raw["InstanceRefreshId"],
        group=raw.get("AutoScalingGroupName", ""),
        status=raw.get("Status", "Pending"),
        percentage=int(raw.get("PercentageComplete") or 0),
        to_update=raw.get("InstancesToUpdate"),
        reason=raw.get("StatusReason") or "",
        started=_epoch(raw.get("StartTime")),
        ended=_epoch(raw.get("EndTime")),
        desired=raw.get("DesiredConfiguration") or {},
        preferences=raw.get("Preferences") or {},
        rollback_percentage=rollback.get("PercentageCompleteOnRollback"),
        rollback_to_update=rollback.get("InstancesToUpdateOnRollback"),
    )


class Fleet:
    """Plain instances and instance refreshes, in one account and region (blocking calls)."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    def standalone(self, tag_key: str, value: str) -> list[Instance]:
        """Instances tagged ``tag_key = value`` that no auto scaling group runs, not yet terminated."""
        from opsdeck.adapters.aws import _instance

        ec2 = self.aws.client("ec2")
        filters = [
            {"Name": f"tag:{tag_key}", "Values": [value]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
        found = []
        with self.aws.errors("aws ec2 describe-instances"):
            for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
                for reservation in page["Reservations"]:
                    found += [_instance(raw) for raw in reservation["Instances"]]
        return sorted((i for i in found if i.group is None), key=lambda i: i.id)

    def refreshes(self, group: str) -> list[InstanceRefresh]:
        """The group's instance refreshes, newest first."""
        asg = self.aws.client("autoscaling")
        found: list[InstanceRefresh] = []
        with self.aws.errors(f"aws autoscaling describe-instance-refreshes {group}"):
            token: str | None = None
            while True:
                kw: dict[str, Any] = {"AutoScalingGroupName": group}
                if token:
                    kw["NextToken"] = token
                page = asg.describe_instance_refreshes(**kw)
                found += [refresh_from_api(r) for r in page.get("InstanceRefreshes", [])]
                token = page.get("NextToken")
                if not token:
                    break
        return sorted(found, key=lambda r: r.started or 0.0, reverse=True)

    def start_refresh(self, group: str, preferences: dict[str, Any], desired: dict[str, Any] | None = None) -> str:
        """Start a rolling refresh of ``group``; its id. ``desired``: a DesiredConfiguration (the launch
        template the group moves to, and goes back from on a rollback)."""
        kw: dict[str, Any] = {"AutoScalingGroupName": group, "Strategy": "Rolling", "Preferences": preferences}
        if desired:
            kw["DesiredConfiguration"] = desired
        with self.aws.errors(f"aws autoscaling start-instance-refresh {group}"):
            return str(self.aws.client("autoscaling").start_instance_refresh(**kw)["InstanceRefreshId"])

    def cancel_refresh(self, group: str) -> str | None:
        """Cancel the group's active refresh; its id, or None when none was active."""
        from botocore.exceptions import ClientError

        with self.aws.errors(f"aws autoscaling cancel-instance-refresh {group}"):
            try:
                return str(
                    self.aws.client("autoscaling").cancel_instance_refresh(AutoScalingGroupName=group)[
                        "InstanceRefreshId"
                    ]
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ActiveInstanceRefreshNotFound":
                    return None
                raise

    def rollback_refresh(self, group: str) -> str:
        """Roll the group's active refresh back to the configuration it started from; its id."""
        with self.aws.errors(f"aws autoscaling rollback-instance-refresh {group}"):
            return str(
                self.aws.client("autoscaling").rollback_instance_refresh(AutoScalingGroupName=group)[
                    "InstanceRefreshId"
                ]
            )

    def launch_template(self, group: str) -> tuple[str, str] | None:
        """The launch template the group launches from: (its id, the version it names)."""
        with self.aws.errors(f"aws autoscaling describe-auto-scaling-groups {group}"):
            raw = self.aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        for g in raw.get("AutoScalingGroups", []):
            lt = g.get("LaunchTemplate") or {}
            if lt.get("LaunchTemplateId"):
                return str(lt["LaunchTemplateId"]), str(lt.get("Version") or "$Default")
        return None
