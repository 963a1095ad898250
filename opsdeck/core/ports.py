"""The tools core works with, as small typed interfaces: Terraform, the cloud, Packer and git.

Core operations never build a tool themselves: they ask the deck's ``Tools`` (one factory) for the
tools of one environment's target (its account, region and credentials) or of the build account.
The real factory (core/estate/tools.py) hands out the adapters; unit tests hand out in-memory fakes
(tests/fakes.py) of the same shape, so every operation runs headless and fast without a cloud.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from opsdeck.adapters.aws import Credentials, Group, Image, Instance, Rule, TargetGroup
from opsdeck.adapters.checkov import Report
from opsdeck.adapters.fleet import InstanceRefresh
from opsdeck.adapters.git import FileVersion
from opsdeck.adapters.hygiene import Snapshot, StoredObject, Tagged
from opsdeck.adapters.inventory import CloudResource
from opsdeck.adapters.packer import BuildResult, PackerLine

JsonSink = Callable[[dict[str, Any]], None]


class TerraformPort(Protocol):
    """Terraform in one environment's root module, with that environment's credentials."""

    @property
    def workdir(self) -> Path: ...

    @property
    def env(self) -> dict[str, str]: ...

    async def init(self, backend_config: Mapping[str, str], *, reconfigure: bool = False) -> None: ...

    async def plan(
        self,
        out: Path,
        *,
        refresh_only: bool = False,
        destroy: bool = False,
        lock: bool = False,
        on_event: JsonSink | None = None,
        var_files: tuple[Path, ...] = (),
    ) -> None:
        """A saved plan into ``out``; ``var_files`` override the root module's own variable files (a plan of
        other pins without touching the working tree)."""
        ...

    async def show_json(self, planfile: Path) -> dict[str, Any]: ...

    async def apply(self, planfile: Path, *, on_event: JsonSink | None = None) -> None: ...

    async def destroy(self, *, on_event: JsonSink | None = None) -> None: ...

    async def force_unlock(self, lock_id: str) -> None: ...


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


class TrafficPort(Protocol):
    """A load balancer's rules and targets, moved and read with its own API (blocking calls)."""

    def target_health(self, target_group: str) -> dict[str, str]:
        """Each registered target of the group and its state (healthy, initial, unhealthy ...)."""
        ...

    def forward(self, rule: str, target_group: str) -> None:
        """Point the listener rule at ``target_group``; its conditions stay."""
        ...

    def rule_targets(self, rules: list[str]) -> dict[str, str | None]:
        """Where each rule forwards now."""
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


class CloudPort(Protocol):
    """One account and region, reached with one set of credentials (blocking calls: run in threads)."""

    @property
    def region(self) -> str: ...

    def caller_identity(self) -> dict[str, str]: ...

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

    def images(self, **tags: str) -> list[Image]: ...

    def image(self, image_id: str) -> Image | None: ...

    def tag_image(self, image_id: str, tags: dict[str, str]) -> None: ...

    def launch_permissions(self, image_id: str) -> list[str]: ...

    def share_image(self, image_id: str, account: str) -> None: ...

    def copy_image(self, image_id: str, source_region: str, name: str, description: str = "") -> str: ...

    def groups(self, tag_key: str, value: str) -> list[Group]: ...

    def target_groups(self, tag_key: str, value: str) -> list[TargetGroup]:
        """Load balancer target groups tagged ``tag_key = value``, with their targets' health."""
        ...

    def listener_rules(self, tag_key: str, value: str) -> list[Rule]:
        """The listener rules of the load balancers tagged ``tag_key = value``."""
        ...

    def find(self, env: str, vpc_ids: Iterable[str], tag_key: str) -> list[CloudResource]:
        """Everything tagged ``tag_key = env`` or inside one of ``vpc_ids`` (the inventory)."""
        ...

    def delete(self, resource: CloudResource) -> None: ...

    def hygiene(self) -> HygienePort:
        """Orphan scanning and removal here (core/hygiene/orphans.py)."""
        ...

    def fleet(self) -> FleetPort:
        """Plain instances and instance refreshes here (core/release/strategies)."""
        ...

    def traffic(self) -> TrafficPort:
        """Listener rules and target health, by the load balancer's own API (core/release/traffic.py)."""
        ...

    def publish(self, topic_arn: str, subject: str, message: str) -> str:
        """Publish to an SNS topic of this account; the message id."""
        ...


class PackerPort(Protocol):
    """Packer, with the build account's credentials."""

    async def build(
        self, template: Path, variables: Mapping[str, str], on_line: Callable[[PackerLine], None] | None = None
    ) -> BuildResult: ...


class PolicyPort(Protocol):
    """The policy engine (Checkov) that checks a plan before it is applied."""

    async def scan(self, plan_json: Path, *, checks_dir: Path | None = None, skip: tuple[str, ...] = ()) -> Report: ...


class GitPort(Protocol):
    """The deck's repository: the ledger of pins."""

    @property
    def root(self) -> Path: ...

    def head(self) -> str: ...

    def is_detached(self) -> bool: ...

    def identity(self) -> str: ...

    def is_dirty(self, rel: str) -> bool: ...

    def history(self, rel: str, limit: int = 200) -> list[FileVersion]:
        """Commits that changed ``rel``, newest first, with its text in each."""
        ...

    def commits(self, paths: list[str], limit: int = 400) -> list[str]:
        """Commits that changed any of ``paths``, newest first (git's order, not timestamps)."""
        ...

    def trailers(self, key: str) -> list[tuple[str, str]]: ...

    def commit(self, paths: list[str], message: str) -> str: ...

    def restore(self, rel: str) -> None: ...

    def config_value(self, key: str) -> str | None: ...

    def upstream(self) -> tuple[str, str] | None:
        """(remote, branch) the current branch tracks."""
        ...

    def current_branch(self) -> str | None: ...

    def remote_url(self, remote: str) -> str | None: ...

    def fetch(self, remote: str, branch: str, timeout: float = 30.0) -> None: ...

    def ahead_behind(self, ref: str) -> tuple[int, int]: ...

    def fast_forward(self, ref: str) -> None: ...

    def push(self, remote: str, branch: str, timeout: float = 30.0) -> bool:
        """False when the remote moved on (not a fast-forward); never forced."""
        ...

    def rebase(self, ref: str) -> None: ...

    def text_at(self, ref: str, rel: str) -> str | None: ...

    def files_under(self, ref: str, folder: str) -> list[str]: ...


@dataclass(frozen=True)
class Target:
    """Where something runs: an account and a region, and how opsdeck reaches them."""

    name: str  # an environment's name, or "build"
    region: str
    account: str | None = None  # the configured account id (checked against STS before a change)
    role: str | None = None  # a role to assume
    profile: str | None = None  # or a profile of the AWS config

    def describe(self) -> str:
        where = f"account {self.account}" if self.account else "the default account"
        how = f" as {self.role}" if self.role else f" with profile {self.profile}" if self.profile else ""
        return f"{self.name} ({where}, {self.region}{how})"


@dataclass(frozen=True)
class EnvTools:
    """One environment's tools, bound to its target and credentials."""

    target: Target
    terraform: TerraformPort
    cloud: CloudPort


class Tools(Protocol):
    """The one factory of tools a deck's operations use."""

    @property
    def git(self) -> GitPort: ...

    @property
    def is_local(self) -> bool:
        """On the embedded local cloud (dummy credentials, the local endpoint)."""
        ...

    def endpoint(self) -> str | None:
        """The local cloud's endpoint; None for a real account."""
        ...

    def check_endpoint(self) -> None:
        """The cloud answers (cheap; nothing to check for a real account)."""
        ...

    def env(self, name: str, credentials: Credentials | None = None) -> EnvTools:
        """``name``'s tools, with its own credentials (its role or profile), or with ``credentials``
        (break-glass) instead."""
        ...

    def env_copy(self, name: str, region: str, workdir: Path, credentials: Credentials | None = None) -> EnvTools:
        """``name``'s tools (its account, its credentials or ``credentials``) aimed at ``region``, with
        Terraform in ``workdir``: a copy of its root module (opsdeck recover)."""
        ...

    def build(self, region: str | None = None) -> CloudPort:
        """The build account (where images are baked and kept), in its region or in ``region``."""
        ...

    def build_target(self) -> Target: ...

    def account(self, account: str, region: str) -> CloudPort:
        """``account`` in ``region``, reached as the first environment in that account (or the build)
        is; RefusedError naming the account when the deck reaches no such account."""
        ...

    def packer(self) -> PackerPort: ...

    def policy(self) -> PolicyPort:
        """The policy engine; ToolMissingError (one line: how to install it) when there is none."""
        ...

    def backend_config(self) -> dict[str, str]:
        """Extra `-backend-config` settings for `terraform init` (the local cloud needs some)."""
        ...

    def redact(self, text: str) -> str:
        """``text`` with every secret this factory handed out masked."""
        ...
