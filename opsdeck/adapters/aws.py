"""AWS through boto3: images by tag, auto scaling groups and the image each running instance has.

Blocking calls: core runs them in threads. Clients are made from an explicit session and endpoint,
never from whatever the process environment says, so a deck on the local cloud cannot reach AWS.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from opsdeck.adapters import elb
from opsdeck.core.types.cloud import Credentials, Group, Image, Instance, Rule, TargetGroup
from opsdeck.errors import CloudUnavailableError, ToolError

if TYPE_CHECKING:
    from opsdeck.adapters.fleet import Fleet
    from opsdeck.adapters.hygiene import Hygiene
    from opsdeck.adapters.objectlock import LockedStore
    from opsdeck.core.types.cloud import CloudResource


@contextlib.contextmanager
def aws_errors(step: str, endpoint: str | None) -> Iterator[None]:
    """Turn botocore failures into one-line opsdeck errors."""
    from botocore import exceptions as bx

    try:
        yield
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
        where = endpoint or "AWS"
        raise CloudUnavailableError(f"{step}: cannot reach {where} ({type(exc).__name__})") from None
    except bx.NoCredentialsError:
        raise ToolError(step, "no AWS credentials (set a profile in opsdeck.toml or AWS_PROFILE)") from None
    except bx.ClientError as exc:
        err = exc.response.get("Error", {})
        raise ToolError(step, f"{err.get('Code', 'error')}: {err.get('Message', str(exc))}") from None
    except bx.BotoCoreError as exc:
        raise ToolError(step, str(exc)) from None


_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def _shared_loader(session: Any) -> Any:
    """One botocore data loader for the process, the first session's: each service model and the endpoint
    data are parsed once (the EC2 model alone is 4 MB of JSON) instead of once per session, and are kept
    once in memory. (Taken from a session a client is made with, not from one made for it: a botocore
    session registers some 250 event handlers as it is made, ~8 ms before the first client.)"""
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = session.get_component("data_loader")
        return _LOADER


class Aws:
    """One AWS account and region, through an explicit boto3 session."""

    def __init__(
        self,
        region: str,
        *,
        endpoint: str | None = None,
        profile: str | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self.region = region
        self.endpoint = endpoint
        self.profile = profile
        self.credentials = credentials
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                import boto3
                import botocore.session
                from botocore.config import Config

                creds = self.credentials
                core = botocore.session.get_session()  # a new session, sharing the parsed models
                core.register_component("data_loader", _shared_loader(core))
                session = boto3.session.Session(
                    botocore_session=core,
                    region_name=self.region,
                    profile_name=None if creds else self.profile,
                    aws_access_key_id=creds.access_key if creds else None,
                    aws_secret_access_key=creds.secret_key if creds else None,
                    aws_session_token=creds.session_token if creds else None,
                )
                config = Config(
                    retries={"mode": "adaptive", "max_attempts": 8},
                    connect_timeout=3,
                    read_timeout=30,
                    max_pool_connections=20,
                )
                self._clients[service] = session.client(service, endpoint_url=self.endpoint, config=config)
            return self._clients[service]

    def errors(self, step: str) -> contextlib.AbstractContextManager[None]:
        return aws_errors(step, self.endpoint)

    # -- identity and state bucket ------------------------------------------------------------

    def caller_identity(self) -> dict[str, str]:
        with self.errors("aws sts get-caller-identity"):
            raw = self.client("sts").get_caller_identity()
        return {"account": raw.get("Account", ""), "arn": raw.get("Arn", "")}

    def assume_role(self, role_arn: str, session_name: str, seconds: int = 3600) -> Credentials:
        """Temporary credentials for ``role_arn`` (the session name says who opsdeck acts for)."""
        with self.errors(f"aws sts assume-role {role_arn}"):
            raw = self.client("sts").assume_role(
                RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=seconds
            )["Credentials"]
        expiry = raw.get("Expiration")
        return Credentials(
            raw["AccessKeyId"],
            raw["SecretAccessKey"],
            raw.get("SessionToken"),
            expires_at=expiry.timestamp() if hasattr(expiry, "timestamp") else None,
        )

    def read_object(self, bucket: str, key: str) -> bytes | None:
        """An S3 object's body (a Terraform state), None when it does not exist."""
        from botocore.exceptions import ClientError

        with self.errors(f"aws s3 get-object s3://{bucket}/{key}"):
            try:
                return bytes(self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
                    return None
                raise

    def bucket_exists(self, bucket: str) -> bool:
        from botocore.exceptions import ClientError

        with self.errors(f"aws s3 head-bucket {bucket}"):
            try:
                self.client("s3").head_bucket(Bucket=bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                    return False
                raise
        return True

    def ensure_bucket(self, bucket: str) -> None:
        """Create the state bucket (versioned, as Terraform state buckets should be) if it is missing."""
        if self.bucket_exists(bucket):
            return
        s3 = self.client("s3")
        with self.errors(f"aws s3 create-bucket {bucket}"):
            if self.region == "us-east-1":
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def object_etag(self, bucket: str, key: str) -> str | None:
        """The ETag of an S3 object (a Terraform state), None when it does not exist."""
        from botocore.exceptions import ClientError

        with self.errors(f"aws s3 head-object s3://{bucket}/{key}"):
            try:
                return str(self.client("s3").head_object(Bucket=bucket, Key=key).get("ETag", ""))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise

    def put_object(self, bucket: str, key: str, body: bytes, *, if_absent: bool = False) -> bool:
        """Write an S3 object, encrypted at rest; with ``if_absent`` only when no object has that key
        (a conditional write, as Terraform's lock file is made): False when one already has it."""
        from botocore.exceptions import ClientError

        extra = {"IfNoneMatch": "*"} if if_absent else {}
        with self.errors(f"aws s3 put-object s3://{bucket}/{key}"):
            try:
                self.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256", **extra)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if if_absent and code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                    return False
                raise
        return True

    def delete_object(self, bucket: str, key: str) -> None:
        with self.errors(f"aws s3 delete-object s3://{bucket}/{key}"):
            self.client("s3").delete_object(Bucket=bucket, Key=key)

    def list_keys(self, bucket: str, prefix: str, start_after: str = "") -> list[str]:
        """Every key under ``prefix`` (all pages), in key order, after ``start_after`` when given."""
        extra = {"StartAfter": start_after} if start_after else {}
        keys: list[str] = []
        with self.errors(f"aws s3 list-objects-v2 s3://{bucket}/{prefix}"):
            pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **extra)
            for page in pages:
                keys += [str(item["Key"]) for item in page.get("Contents", [])]
        return keys

    def open_object(self, bucket: str, key: str) -> BinaryIO | None:
        """An S3 object's body as a stream (read it in pieces), None when it does not exist."""
        from botocore.exceptions import ClientError

        with self.errors(f"aws s3 get-object s3://{bucket}/{key}"):
            try:
                return cast(BinaryIO, self.client("s3").get_object(Bucket=bucket, Key=key)["Body"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise

    def publish(self, topic_arn: str, subject: str, message: str) -> str:
        """Publish to an SNS topic; the message id."""
        with self.errors(f"aws sns publish {topic_arn}"):
            return str(self.client("sns").publish(TopicArn=topic_arn, Subject=subject, Message=message)["MessageId"])

    # -- images -------------------------------------------------------------------------------

    def images(self, **tags: str) -> list[Image]:
        """This account's images carrying all the given tags, oldest first."""
        filters = [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags.items()]
        with self.errors("aws ec2 describe-images"):
            raw = self.client("ec2").describe_images(Owners=["self"], Filters=filters)["Images"]
        images = [_image(item) for item in raw]
        return sorted(images, key=lambda i: (i.created, i.id))

    def image(self, image_id: str) -> Image | None:
        from botocore.exceptions import ClientError

        with self.errors(f"aws ec2 describe-images {image_id}"):
            try:
                raw = self.client("ec2").describe_images(ImageIds=[image_id])["Images"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code", "").startswith("InvalidAMIID"):
                    return None
                raise
        return _image(raw[0]) if raw else None

    def tag_image(self, image_id: str, tags: dict[str, str]) -> None:
        with self.errors(f"aws ec2 create-tags {image_id}"):
            self.client("ec2").create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def launch_permissions(self, image_id: str) -> list[str]:
        """The accounts (besides its owner) allowed to launch the image."""
        with self.errors(f"aws ec2 describe-image-attribute {image_id}"):
            raw = self.client("ec2").describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
        return sorted(p["UserId"] for p in raw.get("LaunchPermissions", []) if p.get("UserId"))

    def share_image(self, image_id: str, account: str) -> None:
        """Let ``account`` launch the image (launch permission)."""
        with self.errors(f"aws ec2 modify-image-attribute {image_id} (launch permission for {account})"):
            self.client("ec2").modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": account}]})

    def copy_image(self, image_id: str, source_region: str, name: str, description: str = "") -> str:
        """Copy an image from ``source_region`` into this client's region; the new image's id."""
        with self.errors(f"aws ec2 copy-image {image_id} from {source_region} to {self.region}"):
            raw = self.client("ec2").copy_image(
                SourceImageId=image_id, SourceRegion=source_region, Name=name, Description=description
            )
        return str(raw["ImageId"])

    # -- groups and instances -----------------------------------------------------------------

    def groups(self, tag_key: str, value: str) -> list[Group]:
        """Auto scaling groups tagged ``tag_key = value``, with the image each of their instances runs."""
        asg = self.client("autoscaling")
        with self.errors("aws autoscaling describe-auto-scaling-groups"):
            pages = asg.get_paginator("describe_auto_scaling_groups").paginate(
                Filters=[{"Name": f"tag:{tag_key}", "Values": [value]}]
            )
            raw_groups = [g for page in pages for g in page["AutoScalingGroups"]]
        ids = [i["InstanceId"] for g in raw_groups for i in g.get("Instances", [])]
        details = self.instances(ids)
        groups = []
        for g in raw_groups:
            members = []
            for member in g.get("Instances", []):
                detail = details.get(member["InstanceId"])
                members.append(
                    Instance(
                        id=member["InstanceId"],
                        image_id=detail.image_id if detail else "",
                        state=detail.state if detail else "unknown",
                        group=g["AutoScalingGroupName"],
                        lifecycle=member.get("LifecycleState"),
                        tags=detail.tags if detail else {},
                    )
                )
            lt = g.get("LaunchTemplate") or {}
            groups.append(
                Group(
                    name=g["AutoScalingGroupName"],
                    desired=int(g.get("DesiredCapacity", 0)),
                    min_size=int(g.get("MinSize", 0)),
                    max_size=int(g.get("MaxSize", 0)),
                    launch_template_id=lt.get("LaunchTemplateId"),
                    tags={t["Key"]: t["Value"] for t in g.get("Tags", [])},
                    instances=tuple(members),
                )
            )
        return groups

    # -- load balancing (adapters/elb.py) ----------------------------------------------------------

    def target_groups(self, tag_key: str, value: str) -> list[TargetGroup]:
        """Target groups tagged ``tag_key = value``, with each target's health."""
        return elb.target_groups(self, tag_key, value)

    def listener_rules(self, tag_key: str, value: str) -> list[Rule]:
        """The rules on the listeners of load balancers tagged ``tag_key = value`` (default rules left out)."""
        return elb.listener_rules(self, tag_key, value)

    def target_health(self, target_group: str) -> dict[str, str]:
        return elb.target_health(self, target_group)

    def forward(self, rule: str, target_group: str) -> None:
        elb.forward(self, rule, target_group)

    def rule_targets(self, rules: list[str]) -> dict[str, str | None]:
        return elb.rule_targets(self, rules)

    # -- inventory ----------------------------------------------------------------------------

    def find(self, env: str, vpc_ids: Iterable[str], tag_key: str) -> list[CloudResource]:
        """Everything tagged ``tag_key = env`` or inside one of ``vpc_ids``."""
        from opsdeck.adapters.inventory import Inventory

        return Inventory(self).find(env, vpc_ids, tag_key)

    def delete(self, resource: CloudResource) -> None:
        from opsdeck.adapters.inventory import Inventory

        Inventory(self).delete(resource)

    def hygiene(self) -> Hygiene:
        from opsdeck.adapters.hygiene import Hygiene

        return Hygiene(self)

    def fleet(self) -> Fleet:
        from opsdeck.adapters.fleet import Fleet

        return Fleet(self)

    def locked_store(self) -> LockedStore:
        from opsdeck.adapters.objectlock import LockedStore

        return LockedStore(self)

    def instances(self, ids: list[str]) -> dict[str, Instance]:
        if not ids:
            return {}
        ec2 = self.client("ec2")
        found: dict[str, Instance] = {}
        with self.errors("aws ec2 describe-instances"):
            for start in range(0, len(ids), 200):
                pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=ids[start : start + 200])
                for page in pages:
                    for reservation in page["Reservations"]:
                        for raw in reservation["Instances"]:
                            found[raw["InstanceId"]] = _instance(raw)
        return found


def _image(raw: dict[str, Any]) -> Image:
    return Image(
        id=raw["ImageId"],
        name=raw.get("Name", ""),
        created=raw.get("CreationDate", ""),
        tags={t["Key"]: t["Value"] for t in raw.get("Tags", [])},
        state=raw.get("State", ""),
    )


def _instance(raw: dict[str, Any]) -> Instance:
    tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
    return Instance(
        id=raw["InstanceId"],
        image_id=raw.get("ImageId", ""),
        state=(raw.get("State") or {}).get("Name", "unknown"),
        group=tags.get("aws:autoscaling:groupName"),
        tags=tags,
    )


def known_regions(service: str = "ec2") -> list[str]:
    """The AWS regions botocore's endpoint data knows for ``service`` (no network call)."""
    import boto3

    return sorted(boto3.session.Session().get_available_regions(service))
