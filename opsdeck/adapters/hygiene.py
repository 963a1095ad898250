"""Orphan hunting in one account and region: every resource carrying a tag key (whatever its value),
with what its cost depends on and when it was made; state bucket objects; image snapshots; removal;
and the AWS Price List API (a real account only: the local cloud does not implement it).

Blocking boto3 calls, made through the account's ``Aws`` (its explicit session and endpoint).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from opsdeck.adapters.inventory import LIVE_INSTANCE_STATES, Inventory, arn_type, with_retries
from opsdeck.core.types.cloud import CloudResource
from opsdeck.core.types.hygiene import Snapshot, StoredObject, Tagged

if TYPE_CHECKING:
    from opsdeck.adapters.aws import Aws

_OWN_DESCRIBE = {
    "ec2:instance",
    "ec2:volume",
    "ec2:natgateway",
    "ec2:elastic-ip",
    "ec2:security-group",
    "ec2:launch-template",
    "ec2:subnet",
    "ec2:vpc",
    "elasticloadbalancing:loadbalancer",
    "elasticloadbalancing:targetgroup",
    "autoscaling:autoScalingGroup",
    "ec2:image",
    "ec2:snapshot",  # images and their snapshots are judged by the image catalog, not by tags
}


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _tags(raw: Any) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in raw or []}


class Hygiene:
    """Orphan scanning and removal calls for one account and region."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    # -- finding ------------------------------------------------------------------------------

    def tagged(self, tag_key: str) -> list[Tagged]:
        """Every resource carrying ``tag_key`` (any value), read in parallel."""
        by_key = [{"Name": "tag-key", "Values": [tag_key]}]
        jobs: list[Callable[[], list[Tagged]]] = [
            lambda: self._instances(by_key),
            lambda: self._volumes(by_key),
            lambda: self._nat_gateways(by_key),
            lambda: self._addresses(by_key),
            lambda: self._plain("describe_security_groups", "SecurityGroups", "GroupId", "ec2:security-group", by_key),
            lambda: self._plain("describe_subnets", "Subnets", "SubnetId", "ec2:subnet", by_key),
            lambda: self._plain("describe_vpcs", "Vpcs", "VpcId", "ec2:vpc", by_key),
            lambda: self._launch_templates(by_key),
            lambda: self._groups(tag_key),
            lambda: self._load_balancing(tag_key),
            lambda: self._tagged_other(tag_key),
        ]
        with self.aws.errors("orphan scan"), ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda job: job(), jobs))
        found: dict[tuple[str, str], Tagged] = {}
        for batch in results:
            for item in batch:
                found.setdefault((item.type, item.id), item)
        return sorted(found.values(), key=lambda t: (t.type, t.id))

    def _pages(self, service: str, op: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        pages = self.aws.client(service).get_paginator(op).paginate(**kwargs)
        return [item for page in with_retries(lambda: list(pages)) for item in page.get(key, []) or []]

    def _instances(self, filters: list[dict[str, Any]]) -> list[Tagged]:
        live = [*filters, {"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}]
        return [
            Tagged(
                "ec2:instance",
                raw["InstanceId"],
                _tags(raw.get("Tags")),
                _epoch(raw.get("LaunchTime")),
                size=raw.get("InstanceType"),
                vpc_id=raw.get("VpcId"),
                state=(raw.get("State") or {}).get("Name"),
            )
            for reservation in self._pages("ec2", "describe_instances", "Reservations", Filters=live)
            for raw in reservation.get("Instances", [])
        ]

    def _volumes(self, filters: list[dict[str, Any]]) -> list[Tagged]:
        return [
            Tagged(
                "ec2:volume",
                v["VolumeId"],
                _tags(v.get("Tags")),
                _epoch(v.get("CreateTime")),
                size=v.get("VolumeType"),
                gigabytes=float(v.get("Size", 0)),
                state=v.get("State"),
            )
            for v in self._pages("ec2", "describe_volumes", "Volumes", Filters=filters)
        ]

    def _nat_gateways(self, filters: list[dict[str, Any]]) -> list[Tagged]:
        return [
            Tagged(
                "ec2:natgateway",
                n["NatGatewayId"],
                _tags(n.get("Tags")),
                _epoch(n.get("CreateTime")),
                vpc_id=n.get("VpcId"),
                state=n.get("State"),
            )
            for n in self._pages("ec2", "describe_nat_gateways", "NatGateways", Filter=filters)
            if n.get("State") not in ("deleted", "deleting", "failed")
        ]

    def _addresses(self, filters: list[dict[str, Any]]) -> list[Tagged]:
        raw = with_retries(lambda: self.aws.client("ec2").describe_addresses(Filters=filters))
        return [
            Tagged(
                "ec2:elastic-ip",
                a.get("AllocationId") or a.get("PublicIp", ""),
                _tags(a.get("Tags")),
                size="attached" if a.get("AssociationId") else "idle",
            )
            for a in raw.get("Addresses", [])
        ]

    def _plain(self, op: str, key: str, ident: str, kind: str, filters: list[dict[str, Any]]) -> list[Tagged]:
        return [
            Tagged(kind, item[ident], _tags(item.get("Tags")), vpc_id=item.get("VpcId"))
            for item in self._pages("ec2", op, key, Filters=filters)
        ]

    def _launch_templates(self, filters: list[dict[str, Any]]) -> list[Tagged]:
        return [
            Tagged("ec2:launch-template", t["LaunchTemplateId"], _tags(t.get("Tags")), _epoch(t.get("CreateTime")))
            for t in self._pages("ec2", "describe_launch_templates", "LaunchTemplates", Filters=filters)
        ]

    def _groups(self, tag_key: str) -> list[Tagged]:
        raw = self._pages(
            "autoscaling",
            "describe_auto_scaling_groups",
            "AutoScalingGroups",
            Filters=[{"Name": "tag-key", "Values": [tag_key]}],
        )
        return [
            Tagged(
                "autoscaling:group",
                g["AutoScalingGroupName"],
                _tags(g.get("Tags")),
                _epoch(g.get("CreatedTime")),
                arn=g.get("AutoScalingGroupARN"),
            )
            for g in raw
            if tag_key in _tags(g.get("Tags"))
        ]

    def _load_balancing(self, tag_key: str) -> list[Tagged]:
        elb = self.aws.client("elbv2")
        lbs = self._pages("elbv2", "describe_load_balancers", "LoadBalancers")
        groups = self._pages("elbv2", "describe_target_groups", "TargetGroups")
        arns = [b["LoadBalancerArn"] for b in lbs] + [g["TargetGroupArn"] for g in groups]
        tags: dict[str, dict[str, str]] = {}
        for start in range(0, len(arns), 20):
            raw = with_retries(partial(elb.describe_tags, ResourceArns=arns[start : start + 20]))
            for item in raw.get("TagDescriptions", []):
                tags[item["ResourceArn"]] = _tags(item.get("Tags"))
        out = []
        for lb in lbs:
            mine = tags.get(lb["LoadBalancerArn"], {})
            if tag_key in mine:
                out.append(
                    Tagged(
                        "elasticloadbalancing:loadbalancer",
                        arn_type(lb["LoadBalancerArn"])[1],
                        mine,
                        _epoch(lb.get("CreatedTime")),
                        size=lb.get("Type", "application"),
                        vpc_id=lb.get("VpcId"),
                        arn=lb["LoadBalancerArn"],
                    )
                )
        for group in groups:
            mine = tags.get(group["TargetGroupArn"], {})
            if tag_key in mine:
                out.append(
                    Tagged(
                        "elasticloadbalancing:targetgroup",
                        arn_type(group["TargetGroupArn"])[1],
                        mine,
                        vpc_id=group.get("VpcId"),
                        arn=group["TargetGroupArn"],
                    )
                )
        return out

    def _tagged_other(self, tag_key: str) -> list[Tagged]:
        """Types without a describe call here (S3 buckets ...), from the Resource Groups Tagging API."""
        raw = self._pages(
            "resourcegroupstaggingapi", "get_resources", "ResourceTagMappingList", TagFilters=[{"Key": tag_key}]
        )
        out = []
        for item in raw:
            kind, ident = arn_type(item["ResourceARN"])
            if kind in _OWN_DESCRIBE:
                continue
            out.append(Tagged(kind, ident, _tags(item.get("Tags")), arn=item["ResourceARN"]))
        return out

    def running_images(self) -> set[str]:
        """The images every live instance of this account and region was launched from."""
        live = [{"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}]
        with self.aws.errors("aws ec2 describe-instances"):
            reservations = self._pages("ec2", "describe_instances", "Reservations", Filters=live)
        return {str(i["ImageId"]) for r in reservations for i in r.get("Instances", []) if i.get("ImageId")}

    def objects(self, bucket: str) -> list[StoredObject]:
        """The current objects of ``bucket`` (a state bucket), with size and last change."""
        with self.aws.errors(f"aws s3 list-objects-v2 s3://{bucket}"):
            raw = self._pages("s3", "list_objects_v2", "Contents", Bucket=bucket)
        return [StoredObject(str(o["Key"]), int(o.get("Size", 0)), _epoch(o.get("LastModified")) or 0.0) for o in raw]

    def versioning(self, bucket: str) -> str:
        """The bucket's versioning status: "Enabled", "Suspended", or "" when never enabled."""
        with self.aws.errors(f"aws s3api get-bucket-versioning --bucket {bucket}"):
            raw = with_retries(lambda: self.aws.client("s3").get_bucket_versioning(Bucket=bucket))
        return str(raw.get("Status") or "")

    def image_snapshots(self, image_ids: list[str]) -> dict[str, list[Snapshot]]:
        """Each image's EBS snapshots (from its block device mappings), with their volume sizes."""
        if not image_ids:
            return {}
        with self.aws.errors("aws ec2 describe-images"):
            raw = self.aws.client("ec2").describe_images(ImageIds=image_ids)["Images"]
        found: dict[str, list[Snapshot]] = {i: [] for i in image_ids}
        for image in raw:
            for mapping in image.get("BlockDeviceMappings", []):
                ebs = mapping.get("Ebs") or {}
                if ebs.get("SnapshotId"):
                    found[image["ImageId"]].append(Snapshot(ebs["SnapshotId"], float(ebs.get("VolumeSize", 0))))
        return found

    # -- removing -----------------------------------------------------------------------------

    def remove(self, item: Tagged) -> None:
        """Delete one tagged resource (waiting where a later deletion depends on it)."""
        with self.aws.errors(f"delete {item.type} {item.id}"):
            self._remove(item)

    def _remove(self, item: Tagged) -> None:
        ec2 = self.aws.client("ec2")
        if item.type in ("elasticloadbalancing:loadbalancer", "elasticloadbalancing:targetgroup"):
            elb = self.aws.client("elbv2")
            if item.type == "elasticloadbalancing:loadbalancer":
                with_retries(lambda: elb.delete_load_balancer(LoadBalancerArn=item.arn))
            else:
                with_retries(lambda: elb.delete_target_group(TargetGroupArn=item.arn))
        elif item.type == "ec2:natgateway":
            with_retries(lambda: ec2.delete_nat_gateway(NatGatewayId=item.id))
        elif item.type == "ec2:elastic-ip":
            if item.size == "attached":
                raw = ec2.describe_addresses(AllocationIds=[item.id])["Addresses"]
                for address in raw:
                    if address.get("AssociationId"):
                        with_retries(partial(ec2.disassociate_address, AssociationId=address["AssociationId"]))
            with_retries(lambda: ec2.release_address(AllocationId=item.id))
        else:  # the kinds nuke-and-rebuild deletes too (instances wait until terminated)
            Inventory(self.aws).delete(CloudResource(item.type, item.id, item.vpc_id, dict(item.tags), arn=item.arn))

    def deregister(self, image_id: str) -> None:
        with self.aws.errors(f"aws ec2 deregister-image {image_id}"):
            with_retries(lambda: self.aws.client("ec2").deregister_image(ImageId=image_id))

    def delete_snapshot(self, snapshot_id: str) -> None:
        with self.aws.errors(f"aws ec2 delete-snapshot {snapshot_id}"):
            with_retries(lambda: self.aws.client("ec2").delete_snapshot(SnapshotId=snapshot_id))

    # -- prices -------------------------------------------------------------------------------

    def price_products(self, service_code: str, filters: dict[str, str]) -> list[dict[str, Any]]:
        """The Price List API's product documents matching ``filters`` (TERM_MATCH on each field)."""
        terms = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()]
        pricing = self.aws.client("pricing")
        with self.aws.errors(f"aws pricing get-products {service_code}"):
            pages = pricing.get_paginator("get_products").paginate(ServiceCode=service_code, Filters=terms)
            raw: list[Any] = [doc for page in with_retries(lambda: list(pages)) for doc in page.get("PriceList", [])]
        return [json.loads(doc) if isinstance(doc, str) else doc for doc in raw]
