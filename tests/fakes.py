"""In-memory fakes of the tools core works with (Terraform, the cloud, Packer), for fast unit tests.

A ``World`` holds what the cloud holds, per account and region: images (with launch permissions),
auto scaling groups and their instances, S3 objects (Terraform state). ``FakeTools`` hands core the
same kinds of objects the real factory does, bound to each environment's account and region:

- ``FakeTerraform`` simulates an environment's root module: one auto scaling group per service, running
  the image its pin file pins, plus a VPC. A plan compares the pins with the applied state (saved in the
  world's S3, with a serial, so a stale saved plan is refused on apply as Terraform refuses it); apply
  replaces a changed service's group red/black; a refresh-only plan reports a group resized outside.
- ``FakePacker`` reads a JSON template's tags and makes the image in the build account.
- git is real (a repository in a temporary directory costs milliseconds).
Faults can be injected: a role that cannot be assumed, an apply that fails, a cloud that is gone.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from opsdeck.adapters.checkov import INSTALL_HINT
from opsdeck.adapters.git import Git
from opsdeck.adapters.process import LocalProcesses
from opsdeck.adapters.secrets import KeyringSecrets
from opsdeck.adapters.sshsig import SshSigner
from opsdeck.core.estate.backend import backend_of
from opsdeck.core.estate.config import DeckConfig
from opsdeck.core.estate.pins import pin_or_none, pin_spec
from opsdeck.core.estate.settings import UserSettings
from opsdeck.core.ports.factory import EnvTools, Target
from opsdeck.core.types.cloud import CloudResource, Credentials, Group, Image, Instance, Rule, TargetGroup
from opsdeck.core.types.hygiene import Snapshot, Tagged
from opsdeck.core.types.tools import BuildResult, DeliveryError, Failure, PackerLine, Report
from opsdeck.errors import CloudUnavailableError, RefusedError, ToolError, ToolMissingError
from tests import fake_fleet
from tests.fake_locked import FakeLockedStore

if TYPE_CHECKING:
    from tests.fake_hygiene import FakeHygiene

DEFAULT_ACCOUNT = "123456789012"
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids):017x}"


@dataclass
class FakeGroup:
    name: str
    desired: int
    tags: dict[str, str]
    instances: list[Instance] = field(default_factory=list)
    image: str = ""  # what its launch template launches now
    version: str = "1"  # the template version it names


@dataclass
class Place:
    """One account and region of the world."""

    images: dict[str, Image] = field(default_factory=dict)
    permissions: dict[str, set[str]] = field(default_factory=dict)  # image -> accounts allowed to launch
    groups: dict[str, FakeGroup] = field(default_factory=dict)
    strays: list[CloudResource] = field(default_factory=list)  # made by hand, outside Terraform
    tagged: list[Tagged] = field(default_factory=list)  # with cost facts (tests/fake_hygiene.py)
    snapshots: dict[str, list[Snapshot]] = field(default_factory=dict)  # image -> its snapshots
    plain: list[Instance] = field(default_factory=list)  # instances no group runs (tests/fake_fleet.py)
    refreshes: dict[str, list[fake_fleet.Refreshing]] = field(default_factory=dict)  # group -> its refreshes


@dataclass
class World:
    """Everything the fake cloud holds."""

    places: dict[tuple[str, str], Place] = field(default_factory=dict)
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (bucket, key) -> body
    buckets: set[str] = field(default_factory=set)
    keys: dict[str, str] = field(default_factory=dict)  # access key -> account
    unassumable: set[str] = field(default_factory=set)  # roles that cannot be assumed
    down: bool = False  # the cloud does not answer
    fail_apply: set[str] = field(default_factory=set)  # environments whose next apply fails
    calls: list[str] = field(default_factory=list)  # what the tools were asked to do, in order
    sizes: dict[str, int] = field(default_factory=dict)  # "env/service" -> desired instances (default 2)
    policy_failures: list[tuple[str, str]] = field(default_factory=list)  # (check id, resource) that fail
    policy_missing: bool = False  # no policy engine installed
    topics: set[str] = field(default_factory=set)  # SNS topic ARNs that exist
    published: list[tuple[str, str, str]] = field(default_factory=list)  # (topic, subject, message)
    kinds: dict[str, str] = field(default_factory=dict)  # "env/service" -> how it rolls (tests/fake_fleet.py)
    refresh_fail: set[str] = field(default_factory=set)  # groups whose instance refresh fails half way
    object_lock: dict[str, tuple[str, int]] = field(default_factory=dict)  # bucket -> (mode, days) (fake_locked.py)
    versions: dict[tuple[str, str], list[tuple[bytes, float]]] = field(default_factory=dict)  # locked, oldest first
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def place(self, account: str, region: str) -> Place:
        return self.places.setdefault((account, region), Place())

    def account_of(self, creds: Credentials | None, fallback: str) -> str:
        if creds is None:
            return fallback
        return self.keys.get(creds.access_key, DEFAULT_ACCOUNT)

    def check(self) -> None:
        if self.down:
            raise CloudUnavailableError("fake cloud: cannot reach it (down)")


class FakeCloud:
    """The CloudPort of one account and region."""

    def __init__(self, world: World, account: str, region: str) -> None:
        self.world, self.account, self._region = world, account, region

    @property
    def region(self) -> str:
        return self._region

    @property
    def here(self) -> Place:
        return self.world.place(self.account, self.region)

    def caller_identity(self) -> dict[str, str]:
        self.world.check()
        return {"account": self.account, "arn": f"arn:aws:sts::{self.account}:assumed-role/fake/opsdeck"}

    def bucket_exists(self, bucket: str) -> bool:
        self.world.check()
        return bucket in self.world.buckets

    def ensure_bucket(self, bucket: str) -> None:
        self.world.buckets.add(bucket)

    def object_etag(self, bucket: str, key: str) -> str | None:
        self.world.check()
        body = self.world.objects.get((bucket, key))
        return None if body is None else str(hash(body))

    def read_object(self, bucket: str, key: str) -> bytes | None:
        self.world.check()
        return self.world.objects.get((bucket, key))

    def put_object(self, bucket: str, key: str, body: bytes, *, if_absent: bool = False) -> bool:
        self.world.check()
        with self.world.lock:  # one writer at a time, as S3's conditional writes are decided
            if if_absent and (bucket, key) in self.world.objects:
                return False
            self.world.objects[(bucket, key)] = body
        return True

    def delete_object(self, bucket: str, key: str) -> None:
        self.world.check()
        self.world.objects.pop((bucket, key), None)

    def list_keys(self, bucket: str, prefix: str, start_after: str = "") -> list[str]:
        self.world.check()
        keys = [k for b, k in list(self.world.objects) if b == bucket and k.startswith(prefix)]
        return sorted(k for k in keys if k > start_after)

    def open_object(self, bucket: str, key: str) -> BinaryIO | None:
        body = self.read_object(bucket, key)
        return None if body is None else io.BytesIO(body)

    def images(self, **tags: str) -> list[Image]:
        self.world.check()
        found = [i for i in self.here.images.values() if all(i.tags.get(k) == v for k, v in tags.items())]
        return sorted(found, key=lambda i: (i.created, i.id))

    def image(self, image_id: str) -> Image | None:
        self.world.check()
        return self.here.images.get(image_id)

    def tag_image(self, image_id: str, tags: dict[str, str]) -> None:
        image = self.here.images[image_id]
        self.here.images[image_id] = replace(image, tags={**image.tags, **tags})

    def launch_permissions(self, image_id: str) -> list[str]:
        return sorted(self.here.permissions.get(image_id, set()))

    def share_image(self, image_id: str, account: str) -> None:
        self.world.calls.append(f"share {image_id} {account}")
        self.here.permissions.setdefault(image_id, set()).add(account)

    def copy_image(self, image_id: str, source_region: str, name: str, description: str = "") -> str:
        source = self.world.place(self.account, source_region).images[image_id]
        copy = new_id("ami")
        self.world.calls.append(f"copy {image_id} {source_region}->{self.region} {copy}")
        self.here.images[copy] = Image(copy, name, f"2026-11-25T10:00:{next(_ids) % 60:02d}", {}, "available")
        assert source
        return copy

    def target_groups(self, tag_key: str, value: str) -> list[TargetGroup]:
        self.world.check()
        return []  # the fake root module has no load balancer

    def listener_rules(self, tag_key: str, value: str) -> list[Rule]:
        self.world.check()
        return []

    def target_health(self, target_group: str) -> dict[str, str]:
        self.world.check()
        return {}  # the fake root module has no load balancer: nothing is registered anywhere

    def forward(self, rule: str, target_group: str) -> None:
        self.world.calls.append(f"forward {rule} {target_group}")

    def rule_targets(self, rules: list[str]) -> dict[str, str | None]:
        self.world.check()
        return dict.fromkeys(rules)

    def groups(self, tag_key: str, value: str) -> list[Group]:
        self.world.check()
        return [
            Group(g.name, g.desired, g.desired, g.desired, None, dict(g.tags), tuple(g.instances))
            for g in self.here.groups.values()
            if g.tags.get(tag_key) == value
        ]

    def find(self, env: str, vpc_ids: Iterable[str], tag_key: str) -> list[CloudResource]:
        self.world.check()
        vpcs = set(vpc_ids)
        found = []
        for group in self.here.groups.values():
            if group.tags.get(tag_key) == env:
                found.append(CloudResource("autoscaling:group", group.name, None, dict(group.tags)))
                for i in group.instances:
                    found.append(
                        CloudResource("ec2:instance", i.id, None, dict(i.tags), i.image_id, group.name, i.state)
                    )
        for i in self.here.plain:
            if i.tags.get(tag_key) == env and i.state != "terminated":
                found.append(CloudResource("ec2:instance", i.id, None, dict(i.tags), i.image_id, None, i.state))
        for stray in self.here.strays:
            if stray.tags.get(tag_key) == env or (stray.vpc_id and stray.vpc_id in vpcs):
                found.append(stray)
        return found

    def delete(self, resource: CloudResource) -> None:
        self.world.calls.append(f"delete {resource.type} {resource.id}")
        self.here.strays = [s for s in self.here.strays if s.id != resource.id]
        self.here.groups.pop(resource.id, None)

    def hygiene(self) -> FakeHygiene:
        from tests.fake_hygiene import FakeHygiene  # it imports this module

        return FakeHygiene(self)

    def fleet(self) -> fake_fleet.FakeFleet:
        return fake_fleet.FakeFleet(self)

    def locked_store(self) -> FakeLockedStore:
        return FakeLockedStore(self.world)

    def publish(self, topic_arn: str, subject: str, message: str) -> str:
        self.world.check()
        account, region = topic_arn.split(":")[4], topic_arn.split(":")[3]
        if topic_arn not in self.world.topics or (account, region) != (self.account, self.region):
            raise ToolError(f"aws sns publish {topic_arn}", "NotFound: Topic does not exist")
        self.world.published.append((topic_arn, subject, message))
        return f"msg-{len(self.world.published)}"


_PROVIDER_AWS = re.compile(r'^provider\s+"aws"\s*\{', re.MULTILINE)
_MODULE_CALL = re.compile(r'^module\s+"(?P<name>[\w-]+)"\s*\{', re.MULTILINE)


def _blocks(text: str, header: re.Pattern[str]) -> list[tuple[re.Match[str], str]]:
    """Each top-level block ``header`` opens, with its body's top-level attributes (nested blocks aside)."""
    found = []
    for match in header.finditer(text):
        depth, index = 1, match.end()
        while depth and index < len(text):
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        body = text[match.end() : index - 1]
        while re.search(r"\{[^{}]*\}", body):
            body = re.sub(r"\{[^{}]*\}", "", body)
        found.append((match, body))
    return found


def _attr(body: str, name: str) -> str | None:
    match = re.search(rf'^\s*{name}\s*=\s*"(?P<v>[^"]*)"', body, re.MULTILINE)
    return match.group("v") if match else None


def provider_config(workdir: Path) -> dict[str, Any]:
    """What `terraform show -json` reports as ``configuration.provider_config`` for a module's AWS providers:
    its own blocks merged with its override files (in name order, later wins; an override may set the
    default provider where the module has none), and the blocks of local child modules (one level)."""
    configs: dict[str, Any] = {}

    def add(key: str, body: str, module: str | None, merge: bool) -> None:
        alias, region = _attr(body, "alias"), _attr(body, "region")
        key = f"{key}.{alias}" if alias else key
        config = configs.get(key) if merge else None
        if config is None:
            config = {"name": "aws", "full_name": "registry.terraform.io/hashicorp/aws", "expressions": {}}
            if alias:
                config["alias"] = alias
            if module:
                config["module_address"] = module
            configs[key] = config
        if region is not None:
            config["expressions"]["region"] = {"constant_value": region}

    def is_override(path: Path) -> bool:
        return path.name == "override.tf" or path.name.endswith("_override.tf")

    files = sorted(workdir.glob("*.tf"), key=lambda p: (is_override(p), p.name))
    for path in files:
        text = path.read_text(encoding="utf-8")
        for _match, body in _blocks(text, _PROVIDER_AWS):
            add("aws", body, None, is_override(path))
        for match, body in _blocks(text, _MODULE_CALL):
            source = _attr(body, "source")
            if source is None or not source.startswith("."):
                continue
            module = f"module.{match.group('name')}"
            for child in sorted((workdir / source).glob("*.tf")):
                for _m, child_body in _blocks(child.read_text(encoding="utf-8"), _PROVIDER_AWS):
                    add(f"{module}:aws", child_body, module, False)
    return configs


class FakeTerraform:
    """An environment's root module: a VPC and one auto scaling group per service."""

    def __init__(self, world: World, tools: FakeTools, env: str, cloud: FakeCloud, workdir: Path | None = None) -> None:
        self.world, self.tools, self.name, self.cloud = world, tools, env, cloud
        self.workdir = workdir or tools.root / tools.config.env(env).path
        self.env: dict[str, str] = {"AWS_REGION": cloud.region}

    # -- the module's state, in the world's S3 --------------------------------------------------

    def _location(self) -> tuple[str, str]:
        backend = backend_of(self.workdir)
        assert backend is not None, f"{self.workdir} has no backend block"
        return backend.bucket, backend.key

    def _state(self) -> dict[str, Any]:
        body = self.world.objects.get(self._location())
        return json.loads(body) if body else {"serial": 0, "pins": {}, "vpc": None, "resources": []}

    def _save(self, pins: dict[str, str], vpc: str | None) -> None:
        state = self._state()
        groups = [g for g in self.cloud.here.groups.values() if g.tags.get(self._env_tag) == self.name]
        resources = []
        if vpc:
            resources.append(
                {"mode": "managed", "type": "aws_vpc", "name": "this", "instances": [{"attributes": {"id": vpc}}]}
            )
        for g in groups:
            service = g.tags[self._service_tag]
            resources.append(
                {
                    "module": f"module.{service}",
                    "mode": "managed",
                    "type": "aws_autoscaling_group",
                    "name": "this",
                    "instances": [{"attributes": {"id": g.name, "name": g.name}}],
                }
            )
        for i in self.cloud.here.plain:
            if i.tags.get(self._env_tag) == self.name and i.state != "terminated":
                resources.append(
                    {
                        "module": f"module.{i.tags.get(self._service_tag)}",
                        "mode": "managed",
                        "type": "aws_instance",
                        "name": "this",
                        "instances": [{"attributes": {"id": i.id}}],
                    }
                )
        body = {"serial": state["serial"] + 1, "pins": pins, "vpc": vpc, "resources": resources}
        self.world.objects[self._location()] = json.dumps(body).encode()

    @property
    def _env_tag(self) -> str:
        return self.tools.config.conventions.env_tag

    @property
    def _service_tag(self) -> str:
        return self.tools.config.conventions.service_tag

    def _wanted(self, overrides: dict[str, Any] | None = None) -> dict[str, str]:
        """Each service's pin as Terraform reads it: the pin files, overridden by ``-var-file`` values."""
        config = self.tools.config
        pins = {}
        for service in config.service_names:
            spec = pin_spec(config, service)
            path = self.workdir / spec.file
            text = path.read_text() if path.is_file() else None
            if overrides and spec.variable[0] in overrides:
                text = json.dumps({**json.loads(text or "{}"), **overrides})
            pin = pin_or_none(text, spec)
            if pin is None:
                raise ToolError(f"terraform plan in {self.name}", f"variable {spec.label}: no value for {service}")
            pins[service] = pin
        return pins

    def _variables(self) -> dict[str, Any]:
        """The root module's variables as Terraform reads them from its *.auto.tfvars.json files."""
        found: dict[str, Any] = {}
        for path in sorted(self.workdir.glob("*.auto.tfvars.json")):
            found.update(json.loads(path.read_text()))
        return found

    # -- the port -------------------------------------------------------------------------------

    async def init(self, backend_config: Mapping[str, str], *, reconfigure: bool = False) -> None:
        self.world.check()
        self.world.calls.append(f"init {self.name}")
        bucket, key = self._location()
        bucket, key = backend_config.get("bucket", bucket), backend_config.get("key", key)  # as -backend-config
        (self.workdir / ".terraform").mkdir(exist_ok=True)
        recorded = {"backend": {"config": {"bucket": bucket, "key": key, "region": self.cloud.region}}}
        (self.workdir / ".terraform" / "terraform.tfstate").write_text(json.dumps(recorded))

    async def plan(
        self,
        out: Path,
        *,
        refresh_only: bool = False,
        destroy: bool = False,
        lock: bool = False,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        var_files: tuple[Path, ...] = (),
        refresh: bool = True,
    ) -> None:
        self.world.check()
        flags = (" -refresh-only" if refresh_only else "") + ("" if refresh else " -refresh=false")
        self.world.calls.append(f"plan {self.name}{flags}")
        state = self._state()
        overrides: dict[str, Any] = {}
        for file in var_files:
            overrides.update(json.loads(file.read_text()))
        wanted = {} if refresh_only else self._wanted(overrides)
        changed = sorted(s for s, image in wanted.items() if state["pins"].get(s) != image)
        drifted = []
        if refresh_only:
            for group in self.cloud.here.groups.values():
                if group.tags.get(self._env_tag) == self.name:
                    want = self.world.sizes.get(f"{self.name}/{group.tags[self._service_tag]}", 2)
                    if group.desired != want:
                        drifted.append((group.tags[self._service_tag], want, group.desired))
        fresh = state["vpc"] is None and not refresh_only
        plan = {"serial": state["serial"], "pins": wanted, "changed": changed, "drifted": drifted, "new": fresh}
        out.write_text(json.dumps({**plan, "variables": {**self._variables(), **overrides}}))
        add = 2 * len(changed) + (1 if fresh else 0)
        if on_event is not None:
            on_event({"type": "change_summary", "changes": {"add": add, "change": len(changed), "remove": 0}})

    async def show_json(self, planfile: Path) -> dict[str, Any]:
        plan = json.loads(planfile.read_text())
        state = self._state()
        changes = []
        for service in plan["changed"]:
            before = state["pins"].get(service)
            kind = self.world.kinds.get(f"{self.name}/{service}", "replace")
            if kind != "replace":
                changes += fake_fleet.shown_changes(self, service, before, plan["pins"][service], kind)
                continue
            changes.append(
                {
                    "address": f"module.{service}.aws_launch_template.this",
                    "module_address": f"module.{service}",
                    "mode": "managed",
                    "type": "aws_launch_template",
                    "name": "this",
                    "change": {
                        "actions": ["create", "delete"] if before else ["create"],
                        "before": {"image_id": before} if before else None,
                        "after": {"image_id": plan["pins"][service]},
                        "after_unknown": {},
                    },
                }
            )
        drift = [
            {
                "address": f"module.{service}.aws_autoscaling_group.this",
                "module_address": f"module.{service}",
                "mode": "managed",
                "type": "aws_autoscaling_group",
                "name": "this",
                "change": {
                    "actions": ["update"],
                    "before": {"desired_capacity": want},
                    "after": {"desired_capacity": now},
                    "after_unknown": {},
                },
            }
            for service, want, now in plan["drifted"]
        ]
        return {
            "variables": {name: {"value": value} for name, value in plan.get("variables", {}).items()},
            "resource_changes": changes,
            "resource_drift": drift,
            "configuration": {"provider_config": provider_config(self.workdir)},
        }

    async def apply(self, planfile: Path, *, on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.world.check()
        plan = json.loads(planfile.read_text())
        state = self._state()
        if plan["serial"] != state["serial"]:
            raise ToolError(f"terraform apply in {self.name}", "Saved plan is stale")
        if self.name in self.world.fail_apply:
            self.world.fail_apply.discard(self.name)
            raise ToolError(f"terraform apply in {self.name}", "Error: creating Auto Scaling Group: fake failure")
        self.world.calls.append(f"apply {self.name} {' '.join(plan['changed'])}".rstrip())
        here = self.cloud.here
        vpc = state["vpc"] or new_id("vpc")
        for service in plan["changed"]:
            kind = self.world.kinds.get(f"{self.name}/{service}", "replace")
            if kind != "replace":
                fake_fleet.apply_service(self, service, plan["pins"][service], kind)
                if on_event is not None:
                    on_event({"type": "apply_complete", "@message": f"module.{service}: updated"})
                continue
            for name in [n for n, g in here.groups.items() if g.tags.get(self._env_tag) == self.name]:
                if here.groups[name].tags.get(self._service_tag) == service:
                    del here.groups[name]
            self._launch(service, plan["pins"][service])
            if on_event is not None:
                on_event({"type": "apply_complete", "@message": f"module.{service}: replaced"})
        self._save({**state["pins"], **plan["pins"]}, vpc)

    def _launch(self, service: str, image: str) -> None:
        desired = self.world.sizes.get(f"{self.name}/{service}", 2)
        tags = {self._env_tag: self.name, self._service_tag: service, "managed_by": "terraform"}
        name = f"{self.name}-{service}-{new_id('lt')}"
        instances = [
            Instance(new_id("i"), image, "running", name, "InService", {**tags, "aws:autoscaling:groupName": name})
            for _ in range(desired)
        ]
        self.cloud.here.groups[name] = FakeGroup(name, desired, tags, instances, image)

    async def destroy(self, *, on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.world.check()
        self.world.calls.append(f"destroy {self.name}")
        here = self.cloud.here
        here.plain = [i for i in here.plain if i.tags.get(self._env_tag) != self.name]
        for name in [n for n, g in here.groups.items() if g.tags.get(self._env_tag) == self.name]:
            del here.groups[name]
            if on_event is not None:
                on_event({"type": "apply_complete", "hook": {"action": "delete"}, "@message": f"{name}: destroyed"})
        self.world.objects[self._location()] = json.dumps(
            {"serial": self._state()["serial"] + 1, "pins": {}, "vpc": None, "resources": []}
        ).encode()

    async def force_unlock(self, lock_id: str) -> None:
        self.world.calls.append(f"force-unlock {self.name} {lock_id}")


class FakePacker:
    """Packer: the template's tags, with its variables and source image filled in, on a new image."""

    def __init__(self, world: World, account: str, region: str) -> None:
        self.world, self.account, self.region = world, account, region

    async def build(
        self, template: Path, variables: Mapping[str, str], on_line: Callable[[PackerLine], None] | None = None
    ) -> BuildResult:
        self.world.check()
        data = json.loads(template.read_text())
        builder = data["builders"][0]
        values = {**data.get("variables", {}), **variables}
        place = self.world.place(self.account, self.region)
        bases = sorted((i for i in place.images.values() if i.tags.get("role") == "base"), key=lambda i: i.created)
        source = bases[-1].id if bases and "tag:role" in json.dumps(builder.get("source_ami_filter", {})) else ""

        def fill(text: str) -> str:
            text = re.sub(r"\{\{\s*user `(\w+)`\s*\}\}", lambda m: str(values.get(m.group(1), "")), text)
            text = re.sub(r"\{\{\s*\.SourceAMI\s*\}\}", source, text)
            return re.sub(r"\{\{[^}]*\}\}", "", text)

        image_id = new_id("ami")
        tags = {k: fill(v) for k, v in builder.get("tags", {}).items()}
        created = f"2026-11-25T09:00:00.{next(_ids):06d}Z"
        place.images[image_id] = Image(image_id, fill(builder.get("ami_name", image_id)), created, tags, "available")
        self.world.calls.append(f"bake {tags.get('app')} {tags.get('version')}")
        if on_line is not None:
            on_line(PackerLine("1", "", "ui", ("say", "==> fake: built")))
        return BuildResult(artifacts=[f"{self.region}:{image_id}"])


class FakeTools:
    """The Tools a unit test hands a deck: fakes bound to each environment's account and region."""

    def __init__(self, world: World, root: Path, config: DeckConfig, settings: UserSettings) -> None:
        self.world, self.root, self.config, self.settings = world, root, config, settings
        self._git = Git(root)
        self.handed_out: list[str] = []  # every secret given to a tool (for redaction)

    @property
    def git(self) -> Git:
        return self._git

    @property
    def is_local(self) -> bool:
        return True

    def endpoint(self) -> str | None:
        return "http://fake.invalid"

    def check_endpoint(self) -> None:
        self.world.check()

    def backend_config(self) -> dict[str, str]:
        return {}

    def redact(self, text: str) -> str:
        for secret in self.handed_out:
            text = text.replace(secret, "********")
        return text

    def _target(self, name: str) -> Target:
        env = self.config.env(name)
        return Target(name, env.region or self.config.aws.region, env.account, env.role, env.profile)

    def build_target(self) -> Target:
        build = self.config.build
        return Target("build", self.config.build_region, build.account, build.role, build.profile)

    def _reach(self, target: Target, credentials: Credentials | None) -> str:
        """The account the target's credentials reach (a role is assumed into its own account)."""
        if credentials is not None:
            self.handed_out.extend(credentials.secrets())
            return self.world.account_of(credentials, DEFAULT_ACCOUNT)
        if target.role is not None:
            if target.role in self.world.unassumable:
                raise RefusedError(
                    f"{target.name}: cannot assume {target.role} in account {target.account or '?'}: AccessDenied"
                )
            return target.role.split(":")[4]
        return DEFAULT_ACCOUNT

    def env(self, name: str, credentials: Credentials | None = None) -> EnvTools:
        target = self._target(name)
        cloud = FakeCloud(self.world, self._reach(target, credentials), target.region)
        return EnvTools(target, FakeTerraform(self.world, self, name, cloud), cloud)

    def env_copy(self, name: str, region: str, workdir: Path, credentials: Credentials | None = None) -> EnvTools:
        target = replace(self._target(name), region=region)
        cloud = FakeCloud(self.world, self._reach(target, credentials), region)
        return EnvTools(target, FakeTerraform(self.world, self, name, cloud, workdir), cloud)

    def build(self, region: str | None = None) -> FakeCloud:
        target = self.build_target()
        return FakeCloud(self.world, self._reach(target, None), region or target.region)

    def account(self, account: str, region: str) -> FakeCloud:
        targets = [self._target(name) for name in self.config.env_names] + [self.build_target()]
        for target in targets:
            if target.account == account:
                return FakeCloud(self.world, self._reach(target, None), region)
        raise RefusedError(f"no environment of this deck is in account {account}")

    def packer(self) -> FakePacker:
        target = self.build_target()
        return FakePacker(self.world, self._reach(target, None), target.region)

    def policy(self) -> FakePolicy:
        if self.world.policy_missing:
            raise ToolMissingError(INSTALL_HINT)
        return FakePolicy(self.world)

    # The machine's own systems are real here, as git is: the keyring (a file backend the test session
    # configures), ssh-keygen, and processes.
    def secrets(self) -> KeyringSecrets:
        return KeyringSecrets(self.config.name)

    def signer(self) -> SshSigner:
        return SshSigner()

    def processes(self) -> LocalProcesses:
        return LocalProcesses()


class FakePolicy:
    """Checkov's part: every resource the plan changes passes, but ``world.policy_failures``'s."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def scan(self, plan_json: Path, *, checks_dir: Path | None = None, skip: tuple[str, ...] = ()) -> Report:
        shown = json.loads(plan_json.read_text())
        changed = [c["address"] for c in shown.get("resource_changes", []) if c["change"]["actions"] != ["no-op"]]
        failed = tuple(
            Failure(cid, f"fake check {cid}", res) for cid, res in self.world.policy_failures if cid not in skip
        )
        self.world.calls.append(f"policy {plan_json.name} {len(changed)} resources")
        return Report(len(changed), failed, 0, "fake")


def fake_tools(world: World) -> Callable[[Path, DeckConfig, UserSettings], FakeTools]:
    """A ``Deck.open(root, tools=...)`` factory that binds the deck to ``world``."""

    def make(root: Path, config: DeckConfig, settings: UserSettings) -> FakeTools:
        return FakeTools(world, root, config, settings)

    return make


class FakeWebhook:
    """core's WebhookPort: each POST recorded (url, the JSON body) as it starts; ``answers`` are played in
    order (an int is a 2xx status, a DeliveryError is raised; the last repeats), and while ``hold`` is
    clear every POST waits for it (a target that hangs)."""

    def __init__(self, *answers: int | DeliveryError) -> None:
        self.answers: list[int | DeliveryError] = list(answers) or [200]
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.hold = threading.Event()
        self.hold.set()
        self._lock = threading.Lock()

    def post_json(self, url: str, body: bytes, timeout: float) -> int:
        with self._lock:
            self.posts.append((url, json.loads(body)))
            answer = self.answers[min(len(self.posts), len(self.answers)) - 1]
        self.hold.wait()
        if isinstance(answer, DeliveryError):
            raise answer
        return answer
