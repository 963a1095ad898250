"""One account and region of the cloud, split by what callers need: who we are there, the object store,
images, groups and their instances (with plain instances and instance refreshes), traffic, the inventory,
notifications, and orphan hunting. ``CloudPort`` is all of them: what the factory hands out.

Blocking calls (boto3 underneath): core runs them in threads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, BinaryIO, Protocol

from opsdeck.core.types.cloud import CloudResource, Group, Image, Instance, InstanceRefresh, Rule, TargetGroup
from opsdeck.core.types.hygiene import Snapshot, StoredObject, Tagged


class IdentityPort(Protocol):
    """Where these credentials land: the region, and the account and caller STS names."""

    @property
    def region(self) -> str: ...

    def caller_identity(self) -> dict[str, str]: ...


class ObjectStorePort(Protocol):
    """S3: state buckets, saved plans, lock records, trail log files."""

    def bucket_exists(self, bucket: str) -> bool: ...

    def ensure_bucket(self, bucket: str) -> None: ...

    def object_etag(self, bucket: str, key: str) -> str | None: ...

    def read_object(self, bucket: str, key: str) -> bytes | None: ...

    def put_object(self, bucket: str, key: str, body: bytes, *, if_absent: bool = False) -> bool:
        """Write (encrypted at rest); with ``if_absent`` a conditional write: False when the key exists."""
        ...

    def delete_object(self, bucket: str, key: str) -> None: ...

    def list_keys(self, bucket: str, prefix: str, start_after: str = "") -> list[str]:
        """Every key under ``prefix``, in key order (after ``start_after`` when given)."""
        ...

    def open_object(self, bucket: str, key: str) -> BinaryIO | None:
        """An object's body as a stream, None when it does not exist."""
        ...


class ImagesPort(Protocol):
    """Machine images: found by tag, tagged, shared with an account, copied into a region."""

    def images(self, **tags: str) -> list[Image]: ...

    def image(self, image_id: str) -> Image | None: ...

    def tag_image(self, image_id: str, tags: dict[str, str]) -> None: ...

    def launch_permissions(self, image_id: str) -> list[str]: ...

    def share_image(self, image_id: str, account: str) -> None: ...

    def copy_image(self, image_id: str, source_region: str, name: str, description: str = "") -> str: ...


class FleetPort(Protocol):
    """Plain instances and auto scaling instance refreshes in one account and region (blocking calls)."""

    def standalone(self, tag_key: str, value: str) -> list[Instance]:
        """Instances tagged ``tag_key = value`` that no auto scaling group runs, not yet terminated."""
        ...

    def refreshes(self, group: str) -> list[InstanceRefresh]:
        """The group's instance refreshes, newest first."""
        ...

    def start_refresh(self, group: str, preferences: dict[str, Any], desired: dict[str, Any] | None = None) -> str: ...

    def cancel_refresh(self, group: str) -> str | None:
        """Cancel the group's active refresh; None when none was active."""
        ...

    def rollback_refresh(self, group: str) -> str: ...

    def launch_template(self, group: str) -> tuple[str, str] | None:
        """(launch template id, the version the group names) of the group."""
        ...


class GroupsPort(Protocol):
    """What runs: auto scaling groups with the image each instance runs, and (``fleet``) plain instances
    and instance refreshes."""

    def groups(self, tag_key: str, value: str) -> list[Group]: ...

    def fleet(self) -> FleetPort:
        """Plain instances and instance refreshes here (core/release/strategies)."""
        ...


class TrafficPort(Protocol):
    """Load balancing: target groups with their targets' health, and listener rules."""

    def target_groups(self, tag_key: str, value: str) -> list[TargetGroup]:
        """Load balancer target groups tagged ``tag_key = value``, with their targets' health."""
        ...

    def listener_rules(self, tag_key: str, value: str) -> list[Rule]:
        """The listener rules of the load balancers tagged ``tag_key = value``."""
        ...

    def target_health(self, target_group: str) -> dict[str, str]:
        """Each registered target of the group and its state (healthy, initial, unhealthy ...)."""
        ...

    def forward(self, rule: str, target_group: str) -> None:
        """Point the listener rule at ``target_group`` with the load balancer's API; its conditions stay."""
        ...

    def rule_targets(self, rules: list[str]) -> dict[str, str | None]:
        """Where each rule forwards now."""
        ...


class InventoryPort(Protocol):
    """Everything an environment holds, found by tag and VPC, and deleted one by one (nuke)."""

    def find(self, env: str, vpc_ids: Iterable[str], tag_key: str) -> list[CloudResource]:
        """Everything tagged ``tag_key = env`` or inside one of ``vpc_ids`` (the inventory)."""
        ...

    def delete(self, resource: CloudResource) -> None: ...


class NotificationsPort(Protocol):
    """SNS topics of this account."""

    def publish(self, topic_arn: str, subject: str, message: str) -> str:
        """Publish to an SNS topic of this account; the message id."""
        ...


class HygienePort(Protocol):
    """Orphan hunting in one account and region (core/hygiene): find, price, remove."""

    def tagged(self, tag_key: str) -> list[Tagged]:
        """Every resource carrying ``tag_key`` (any value), with its creation time and priced facts."""
        ...

    def running_images(self) -> set[str]: ...

    def objects(self, bucket: str) -> list[StoredObject]: ...

    def versioning(self, bucket: str) -> str:
        """The bucket's versioning status: "Enabled", "Suspended", or "" when never enabled."""
        ...

    def image_snapshots(self, image_ids: list[str]) -> dict[str, list[Snapshot]]: ...

    def remove(self, item: Tagged) -> None: ...

    def deregister(self, image_id: str) -> None: ...

    def delete_snapshot(self, snapshot_id: str) -> None: ...

    def price_products(self, service_code: str, filters: dict[str, str]) -> list[dict[str, Any]]:
        """The AWS Price List API's product documents (a real account: the local cloud has none)."""
        ...


class CloudPort(
    IdentityPort,
    ObjectStorePort,
    ImagesPort,
    GroupsPort,
    TrafficPort,
    InventoryPort,
    NotificationsPort,
    Protocol,
):
    """One account and region, reached with one set of credentials: every port above."""

    def hygiene(self) -> HygienePort:
        """Orphan scanning and removal here (core/hygiene/orphans.py)."""
        ...
