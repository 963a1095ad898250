"""What orphan hunting reads in one account and region: tagged resources with their cost facts, stored
objects, image snapshots, and the order removal follows."""

from __future__ import annotations

from dataclasses import dataclass, field

# What holds others goes first (an instance before its volume, a load balancer before its target group).
REMOVE_ORDER = (
    "autoscaling:group",
    "ec2:instance",
    "elasticloadbalancing:loadbalancer",
    "elasticloadbalancing:targetgroup",
    "ec2:natgateway",
    "ec2:elastic-ip",
    "ec2:launch-template",
    "ec2:volume",
    "ec2:security-group",
    "ec2:subnet",
    "ec2:vpc",
)


@dataclass(frozen=True)
class Tagged:
    """A resource carrying the tag key, with the facts its hourly cost depends on."""

    type: str  # service:kind, as the inventory names it (ec2:instance, ec2:volume, ...)
    id: str
    tags: dict[str, str] = field(default_factory=dict)
    created: float | None = None  # epoch seconds; None when the API does not say (addresses, groups)
    size: str | None = None  # what it is billed by: instance type, volume type, load balancer type
    gigabytes: float | None = None  # volumes
    vpc_id: str | None = None
    arn: str | None = None
    state: str | None = None


@dataclass(frozen=True)
class StoredObject:
    """One object of a bucket."""

    key: str
    size: int
    modified: float  # epoch seconds


@dataclass(frozen=True)
class Snapshot:
    id: str
    gigabytes: float
