"""The cloud in core's words: credentials, images, groups and instances, load balancing, refreshes, resources."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # epoch seconds; None: does not expire

    def secrets(self) -> tuple[str, ...]:
        """What must never be printed."""
        return tuple(s for s in (self.secret_key, self.session_token) if s)


@dataclass(frozen=True)
class Image:
    """An AMI and its tags; which tags name its service and its version is the deck's (its
    ``[conventions]``: the image catalog sets them on every image it reads)."""

    id: str
    name: str
    created: str
    tags: dict[str, str] = field(default_factory=dict)
    state: str = ""  # pending | available | failed ...
    service_tag: str = field(default="app", repr=False, compare=False)
    version_tag: str = field(default="version", repr=False, compare=False)

    @property
    def service(self) -> str:
        return self.tags.get(self.service_tag, "")

    @property
    def versioned(self) -> bool:
        """Whether it carries a version tag (a pipeline may bake without one)."""
        return bool(self.tags.get(self.version_tag))

    @property
    def version(self) -> str:
        """Its version tag; an image without one is named by its creation time to the minute
        (2026-12-04T10:31Z), so it is shown, promoted and recorded like any other."""
        return self.tags.get(self.version_tag) or created_label(self.created)


def created_label(created: str) -> str:
    """An AMI's CreationDate (2026-12-04T10:31:22.000Z) to the minute: 2026-12-04T10:31Z."""
    return f"{created[:16]}Z" if re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d", created) else ""


@dataclass(frozen=True)
class Instance:
    id: str
    image_id: str
    state: str  # pending | running | stopping | stopped | shutting-down | terminated
    group: str | None = None
    lifecycle: str | None = None  # the group's view: InService, Pending, Terminating...
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    """An auto scaling group and its instances."""

    name: str
    desired: int
    min_size: int
    max_size: int
    launch_template_id: str | None
    tags: dict[str, str]
    instances: tuple[Instance, ...]


@dataclass(frozen=True)
class TargetGroup:
    """A load balancer target group and the health of each target in it (instance id -> state:
    healthy, initial, unhealthy, unused, draining ...)."""

    arn: str
    name: str
    tags: dict[str, str]
    targets: dict[str, str]

    @property
    def healthy(self) -> list[str]:
        return sorted(i for i, state in self.targets.items() if state == "healthy")


@dataclass(frozen=True)
class Rule:
    """A listener rule: its host names, the target group it forwards to, and its tags."""

    arn: str
    hosts: tuple[str, ...]
    target_group: str | None
    tags: dict[str, str]
    dns_name: str = ""  # of the load balancer the rule is on


ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")


@dataclass(frozen=True)
class InstanceRefresh:
    """One instance refresh of a group, as DescribeInstanceRefreshes reports it."""

    id: str
    group: str
    status: str  # Pending | InProgress | Successful | Failed | Cancelling | Cancelled | Rollback* | Baking
    percentage: int = 0
    to_update: int | None = None  # instances still to replace
    reason: str = ""
    started: float | None = None
    ended: float | None = None
    desired: dict[str, Any] = field(default_factory=dict)  # DesiredConfiguration ({} when none was given)
    preferences: dict[str, Any] = field(default_factory=dict)
    rollback_percentage: int | None = None
    rollback_to_update: int | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def rolling_back(self) -> bool:
        return self.status.startswith("Rollback")

    def describe(self) -> str:
        if self.rolling_back:
            left = f", {self.rollback_to_update} to go" if self.rollback_to_update is not None else ""
            return f"{self.status} {self.rollback_percentage or 0}%{left}"
        left = f", {self.to_update} to go" if self.to_update is not None else ""
        return f"{self.status} {self.percentage}%{left}" + (f": {self.reason}" if self.reason else "")


# Deletion order: what holds others goes first.
DELETE_ORDER = (
    "autoscaling:group",
    "ec2:instance",
    "ec2:launch-template",
    "ec2:volume",
    "ec2:security-group",
    "ec2:subnet",
    "ec2:vpc",
    "s3:bucket",
)


@dataclass(frozen=True)
class CloudResource:
    """One resource: its type (service:kind), id, VPC and tags."""

    type: str
    id: str
    vpc_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    image_id: str | None = None  # instances
    group: str | None = None  # instances launched by an auto scaling group
    state: str | None = None
    arn: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id}
