"""S3 Object Lock through boto3: a bucket created with Object Lock on and a default retention in
compliance mode, objects written once (a conditional write) and locked until a date, and an object's
first version read back whatever was written over it later.

In compliance mode no one, the account's root user included, can delete a locked version or shorten its
retention until it ends; a PUT to the same key only adds a version above it, and a DELETE without a
version id only adds a delete marker. So the first version of a key is what was shipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsdeck.adapters.aws import Aws

MODE = "COMPLIANCE"


class LockedStore:
    """Object Lock calls in one account and region."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws

    def create_locked_bucket(self, bucket: str, retention_days: int) -> None:
        s3 = self.aws.client("s3")
        if not self.aws.bucket_exists(bucket):
            with self.aws.errors(f"aws s3 create-bucket {bucket} --object-lock-enabled-for-bucket"):
                where = {} if self.aws.region == "us-east-1" else {"LocationConstraint": self.aws.region}
                extra = {"CreateBucketConfiguration": where} if where else {}
                s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True, **extra)
        with self.aws.errors(f"aws s3 put-object-lock-configuration {bucket}"):
            s3.put_object_lock_configuration(
                Bucket=bucket,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": MODE, "Days": retention_days}},
                },
            )

    def lock_retention(self, bucket: str) -> tuple[str, int] | None:
        from botocore.exceptions import ClientError

        with self.aws.errors(f"aws s3 get-object-lock-configuration {bucket}"):
            try:
                raw = self.aws.client("s3").get_object_lock_configuration(Bucket=bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ObjectLockConfigurationNotFoundError":
                    return None
                raise
        config = raw.get("ObjectLockConfiguration") or {}
        retention = (config.get("Rule") or {}).get("DefaultRetention") or {}
        if config.get("ObjectLockEnabled") != "Enabled" or not retention:
            return None
        days = int(retention.get("Days") or 0) or int(retention.get("Years") or 0) * 365
        return str(retention.get("Mode", "")), days

    def put_locked(self, bucket: str, key: str, body: bytes, retain_until: float) -> bool:
        from botocore.exceptions import ClientError

        until = datetime.fromtimestamp(retain_until, UTC)
        with self.aws.errors(f"aws s3 put-object s3://{bucket}/{key} (object lock)"):
            try:
                self.aws.client("s3").put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=body,
                    ServerSideEncryption="AES256",
                    ObjectLockMode=MODE,
                    ObjectLockRetainUntilDate=until,
                    IfNoneMatch="*",
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code", "") in ("PreconditionFailed", "412"):
                    return False
                raise
        return True

    def read_first(self, bucket: str, key: str) -> bytes | None:
        s3 = self.aws.client("s3")
        versions: list[dict[str, Any]] = []
        with self.aws.errors(f"aws s3 list-object-versions s3://{bucket}/{key}"):
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
                versions += [v for v in page.get("Versions", []) if v.get("Key") == key]
        if not versions:
            return None
        # S3 lists a key's versions newest first; LastModified has one-second resolution, so versions
        # written within one second keep their listed order (reversed: oldest first) by a stable sort.
        first = sorted(reversed(versions), key=lambda v: v["LastModified"])[0]
        with self.aws.errors(f"aws s3 get-object s3://{bucket}/{key}"):
            return bytes(s3.get_object(Bucket=bucket, Key=key, VersionId=first["VersionId"])["Body"].read())
