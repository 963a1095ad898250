"""The fake cloud's S3 Object Lock: buckets with a default retention, objects written once and kept with
every later version above the first (as S3 keeps them), and nothing locked ever deleted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsdeck.errors import ToolError

if TYPE_CHECKING:
    from tests.fakes import World


class FakeLockedStore:
    """The LockedStorePort of the fake world (buckets and objects are the world's, as FakeCloud's)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def create_locked_bucket(self, bucket: str, retention_days: int) -> None:
        self.world.check()
        self.world.calls.append(f"create locked bucket {bucket}")
        if bucket in self.world.buckets and bucket not in self.world.object_lock:
            raise ToolError(f"aws s3 put-object-lock-configuration {bucket}", "InvalidBucketState: versioning is off")
        self.world.buckets.add(bucket)
        self.world.object_lock[bucket] = ("COMPLIANCE", retention_days)

    def lock_retention(self, bucket: str) -> tuple[str, int] | None:
        self.world.check()
        if bucket not in self.world.buckets:
            raise ToolError(f"aws s3 get-object-lock-configuration {bucket}", "NoSuchBucket: no such bucket")
        return self.world.object_lock.get(bucket)

    def put_locked(self, bucket: str, key: str, body: bytes, retain_until: float) -> bool:
        self.world.check()
        if bucket not in self.world.object_lock:
            raise ToolError(f"aws s3 put-object s3://{bucket}/{key}", "InvalidRequest: Object Lock is off")
        with self.world.lock:
            if (bucket, key) in self.world.versions:
                return False
            self.world.versions[(bucket, key)] = [(body, retain_until)]
            self.world.objects[(bucket, key)] = body
        self.world.calls.append(f"put locked {key}")
        return True

    def read_first(self, bucket: str, key: str) -> bytes | None:
        self.world.check()
        versions = self.world.versions.get((bucket, key))
        return versions[0][0] if versions else None

    def overwrite(self, bucket: str, key: str, body: bytes) -> None:
        """What a plain PUT over a locked key does: a new version above the first (tests forge with it)."""
        self.world.versions.setdefault((bucket, key), []).append((body, 0.0))
        self.world.objects[(bucket, key)] = body
