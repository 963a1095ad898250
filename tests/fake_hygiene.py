"""The fake cloud's orphan-hunting calls (HygienePort), over what a tests.fakes.World holds.

Tagged resources made by hand live in a place's ``tagged`` list (with their creation time and cost
facts); the estate's own groups and instances are reported from its auto scaling groups; an image's
snapshots are in the place's ``snapshots``. Like AWS, a snapshot an image still uses cannot be deleted.
The fake has no Price List API, as the local cloud has none.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opsdeck.core.types.hygiene import Snapshot, StoredObject, Tagged
from opsdeck.errors import ToolError

if TYPE_CHECKING:
    from tests.fakes import FakeCloud, World

_MODIFIED: dict[int, dict[tuple[str, str], float]] = {}
_VERSIONING: dict[int, dict[str, str]] = {}


def set_modified(world: World, bucket: str, key: str, when: float) -> None:
    """When an object of the fake S3 was last written (default: now)."""
    _MODIFIED.setdefault(id(world), {})[(bucket, key)] = when


def set_versioning(world: World, bucket: str, status: str) -> None:
    """A bucket's versioning status in the fake S3 (default: "Enabled", as opsdeck makes state buckets)."""
    _VERSIONING.setdefault(id(world), {})[bucket] = status


class FakeHygiene:
    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self.world = cloud.world
        self.here = cloud.here

    def tagged(self, tag_key: str) -> list[Tagged]:
        self.world.check()
        found = [t for t in self.here.tagged if tag_key in t.tags]
        for group in self.here.groups.values():
            if tag_key not in group.tags:
                continue
            found.append(Tagged("autoscaling:group", group.name, dict(group.tags)))
            for i in group.instances:
                found.append(Tagged("ec2:instance", i.id, dict(i.tags), None, "t3.micro", state=i.state))
        for stray in self.here.strays:
            if tag_key in stray.tags:
                found.append(Tagged(stray.type, stray.id, dict(stray.tags), vpc_id=stray.vpc_id, state=stray.state))
        return found

    def running_images(self) -> set[str]:
        self.world.check()
        return {i.image_id for g in self.here.groups.values() for i in g.instances if i.state == "running"}

    def objects(self, bucket: str) -> list[StoredObject]:
        self.world.check()
        times = _MODIFIED.get(id(self.world), {})
        return [
            StoredObject(key, len(body), times.get((b, key), time.time()))
            for (b, key), body in sorted(self.world.objects.items())
            if b == bucket
        ]

    def versioning(self, bucket: str) -> str:
        self.world.check()
        return _VERSIONING.get(id(self.world), {}).get(bucket, "Enabled")

    def image_snapshots(self, image_ids: list[str]) -> dict[str, list[Snapshot]]:
        return {i: list(self.here.snapshots.get(i, [])) for i in image_ids}

    def remove(self, item: Tagged) -> None:
        self.world.check()
        self.world.calls.append(f"remove {item.type} {item.id}")
        before = len(self.here.tagged)
        self.here.tagged = [t for t in self.here.tagged if t.id != item.id]
        if len(self.here.tagged) == before:
            raise ToolError(f"delete {item.type} {item.id}", "NotFound: no such resource")

    def deregister(self, image_id: str) -> None:
        self.world.check()
        if self.here.images.pop(image_id, None) is None:
            raise ToolError(f"aws ec2 deregister-image {image_id}", "InvalidAMIID.NotFound")
        self.world.calls.append(f"deregister {image_id}")

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.world.check()
        for image, snaps in self.here.snapshots.items():
            if any(s.id == snapshot_id for s in snaps):
                if image in self.here.images:
                    raise ToolError(
                        f"aws ec2 delete-snapshot {snapshot_id}", f"InvalidSnapshot.InUse: in use by {image}"
                    )
                self.here.snapshots[image] = [s for s in snaps if s.id != snapshot_id]
                self.world.calls.append(f"delete-snapshot {snapshot_id}")
                return
        raise ToolError(f"aws ec2 delete-snapshot {snapshot_id}", "InvalidSnapshot.NotFound")

    def price_products(self, service_code: str, filters: dict[str, str]) -> list[dict[str, Any]]:
        raise ToolError(f"aws pricing get-products {service_code}", "the fake cloud has no Price List API")
