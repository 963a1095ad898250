"""What exists in the cloud for an environment, found by tag and by VPC, and how to delete it.

The Resource Groups Tagging API finds tagged resources of any type, but not auto scaling groups or
launch templates, and it still lists terminated instances; so each type opsdeck knows is read with
its own describe call (in parallel) and the tagging API only adds the other types it reports.
Calls retry on throttling (botocore's adaptive mode, plus a backoff here for the tagging API).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from opsdeck.adapters.aws import Aws
from opsdeck.core.types.cloud import DELETE_ORDER, CloudResource

T = TypeVar("T")

LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]
THROTTLING = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}


def with_retries(call: Callable[[], T], attempts: int = 6, base: float = 0.2) -> T:
    """Retry a call that AWS throttles, with exponential backoff."""
    from botocore.exceptions import ClientError

    for attempt in range(attempts):
        try:
            return call()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in THROTTLING or attempt == attempts - 1:
                raise
            time.sleep(base * 2**attempt)
    raise AssertionError("unreachable")


def _tags(raw: Iterable[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in raw or []}


class Inventory:
    """Describe and delete calls for one account and region."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    # -- finding ------------------------------------------------------------------------------

    def find(self, env: str, vpc_ids: Iterable[str], tag_key: str = "env") -> list[CloudResource]:
        """Everything tagged ``tag_key = env`` or inside one of ``vpc_ids``, found in parallel."""
        vpcs = sorted(set(vpc_ids))
        by_tag = [{"Name": f"tag:{tag_key}", "Values": [env]}]
        jobs: list[Callable[[], list[CloudResource]]] = [
            lambda: self._instances(by_tag),
            lambda: self._volumes(by_tag),
            lambda: self._security_groups(by_tag),
            lambda: self._subnets(by_tag),
            lambda: self._vpcs(by_tag),
            lambda: self._launch_templates(by_tag),
            lambda: self._groups(by_tag),
            lambda: self._tagged_other(tag_key, env),
        ]
        if vpcs:
            jobs += [
                lambda: self._instances([{"Name": "vpc-id", "Values": vpcs}]),
                lambda: self._security_groups([{"Name": "vpc-id", "Values": vpcs}]),
                lambda: self._subnets([{"Name": "vpc-id", "Values": vpcs}]),
                lambda: self._vpcs([{"Name": "vpc-id", "Values": vpcs}]),
            ]
        with self.aws.errors(f"inventory of {env}"), ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda job: job(), jobs))
        found: dict[tuple[str, str], CloudResource] = {}
        for batch in results:
            for res in batch:
                found.setdefault((res.type, res.id), res)
        return sorted(
            found.values(), key=lambda r: (DELETE_ORDER.index(r.type) if r.type in DELETE_ORDER else 99, r.id)
        )

    def _paginate(self, service: str, op: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        client = self.aws.client(service)
        pages = client.get_paginator(op).paginate(**kwargs)
        return [item for page in with_retries(lambda: list(pages)) for item in _items(page, key)]

    def _instances(self, filters: list[dict[str, Any]]) -> list[CloudResource]:
        filters = [*filters, {"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}]
        out = []
        for reservation in self._paginate("ec2", "describe_instances", "Reservations", Filters=filters):
            for raw in reservation["Instances"]:
                tags = _tags(raw.get("Tags"))
                out.append(
                    CloudResource(
                        "ec2:instance",
                        raw["InstanceId"],
                        raw.get("VpcId"),
                        tags,
                        image_id=raw.get("ImageId"),
                        group=tags.get("aws:autoscaling:groupName"),
                        state=(raw.get("State") or {}).get("Name"),
                    )
                )
        return out

    def _volumes(self, filters: list[dict[str, Any]]) -> list[CloudResource]:
        return [
            CloudResource("ec2:volume", v["VolumeId"], None, _tags(v.get("Tags")), state=v.get("State"))
            for v in self._paginate("ec2", "describe_volumes", "Volumes", Filters=filters)
        ]

    def _security_groups(self, filters: list[dict[str, Any]]) -> list[CloudResource]:
        out = []
        for sg in self._paginate("ec2", "describe_security_groups", "SecurityGroups", Filters=filters):
            tags = _tags(sg.get("Tags"))
            if sg.get("GroupName") == "default":
                tags = {**tags, "opsdeck:default": "true"}  # created with its VPC, goes with it
            out.append(CloudResource("ec2:security-group", sg["GroupId"], sg.get("VpcId"), tags))
        return out

    def _subnets(self, filters: list[dict[str, Any]]) -> list[CloudResource]:
        return [
            CloudResource("ec2:subnet", s["SubnetId"], s.get("VpcId"), _tags(s.get("Tags")))
            for s in self._paginate("ec2", "describe_subnets", "Subnets", Filters=filters)
        ]

    def _vpcs(self, filters: list[dict[str, Any]]) -> list[CloudResource]:
        return [
            CloudResource("ec2:vpc", v["VpcId"], v["VpcId"], _tags(v.get("Tags")))
            for v in self._paginate("ec2", "describe_vpcs", "Vpcs", Filters=filters)
        ]

    def _launch_templates(self, filters: list[dict[str, Any]]) -> list[CloudResource]:
        raw = self._paginate("ec2", "describe_launch_templates", "LaunchTemplates", Filters=filters)
        return [CloudResource("ec2:launch-template", t["LaunchTemplateId"], None, _tags(t.get("Tags"))) for t in raw]

    def _groups(self, filters: list[dict[str, Any]]) -> list[CloudResource]:
        raw = self._paginate(
            "autoscaling",
            "describe_auto_scaling_groups",
            "AutoScalingGroups",
            Filters=filters,
        )
        return [
            CloudResource(
                "autoscaling:group",
                g["AutoScalingGroupName"],
                None,
                _tags(g.get("Tags")),
                arn=g.get("AutoScalingGroupARN"),
            )
            for g in raw
        ]

    def _tagged_other(self, tag_key: str, env: str) -> list[CloudResource]:
        """Tagged resources of types without their own describe here (S3 buckets, load balancers...)."""
        raw = self._paginate(
            "resourcegroupstaggingapi",
            "get_resources",
            "ResourceTagMappingList",
            TagFilters=[{"Key": tag_key, "Values": [env]}],
        )
        out = []
        for item in raw:
            kind, ident = arn_type(item["ResourceARN"])
            if kind in ("ec2:instance", "ec2:volume", "ec2:security-group", "ec2:subnet", "ec2:vpc", "ec2:image"):
                continue  # described above with their state, or deck-wide (images)
            out.append(CloudResource(kind, ident, None, _tags(item.get("Tags")), arn=item["ResourceARN"]))
        return out

    # -- deleting -----------------------------------------------------------------------------

    def delete(self, res: CloudResource) -> None:
        """Delete one resource (waiting where later deletions depend on it); one-line errors."""
        with self.aws.errors(f"delete {res.type} {res.id}"):
            self._delete(res)

    def _delete(self, res: CloudResource) -> None:
        ec2 = self.aws.client("ec2")
        kind = res.type
        if kind == "autoscaling:group":
            asg = self.aws.client("autoscaling")
            with_retries(lambda: asg.delete_auto_scaling_group(AutoScalingGroupName=res.id, ForceDelete=True))
        elif kind == "ec2:instance":
            with_retries(lambda: ec2.terminate_instances(InstanceIds=[res.id]))
            ec2.get_waiter("instance_terminated").wait(
                InstanceIds=[res.id], WaiterConfig={"Delay": 1, "MaxAttempts": 300}
            )
        elif kind == "ec2:launch-template":
            with_retries(lambda: ec2.delete_launch_template(LaunchTemplateId=res.id))
        elif kind == "ec2:volume":
            with_retries(lambda: ec2.delete_volume(VolumeId=res.id))
        elif kind == "ec2:security-group":
            with_retries(lambda: ec2.delete_security_group(GroupId=res.id))
        elif kind == "ec2:subnet":
            with_retries(lambda: ec2.delete_subnet(SubnetId=res.id))
        elif kind == "ec2:vpc":
            with_retries(lambda: ec2.delete_vpc(VpcId=res.id))
        elif kind == "s3:bucket":
            self._empty_and_delete_bucket(res.id)
        else:
            raise NotImplementedError(f"opsdeck cannot delete {kind} resources ({res.id}); delete it by hand")

    def _empty_and_delete_bucket(self, bucket: str) -> None:
        s3 = self.aws.client("s3")
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
        for page in pages:
            keys = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        with_retries(lambda: s3.delete_bucket(Bucket=bucket))


def _items(page: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = page.get(key, [])
    return value if isinstance(value, list) else []


def arn_type(arn: str) -> tuple[str, str]:
    """("service:kind", id) from an ARN: arn:aws:ec2:region:acct:instance/i-1 -> ("ec2:instance", "i-1")."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return "unknown", arn
    service, resource = parts[2], parts[5]
    if service == "s3":
        return "s3:bucket", resource.split("/")[0]
    for sep in ("/", ":"):
        if sep in resource:
            kind, ident = resource.split(sep, 1)
            return f"{service}:{kind}", ident
    return f"{service}:{resource}", resource
