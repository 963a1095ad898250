"""Each fake is its port, as mypy (strict) sees it: this module is in mypy's files (pyproject.toml), so a
fake that drifts from a port (a method missing, a parameter renamed or retyped, a result of another
type) fails the type check. tests/unit/test_fakes_match_ports.py checks the same at run time."""

from __future__ import annotations

from opsdeck.core.estate.installed import ToolsFactory
from opsdeck.core.ports.cloud import (
    CloudPort,
    FleetPort,
    GroupsPort,
    HygienePort,
    IdentityPort,
    ImagesPort,
    InventoryPort,
    NotificationsPort,
    ObjectStorePort,
    TrafficPort,
)
from opsdeck.core.ports.factory import Tools
from opsdeck.core.ports.git import CommitPort, GitIdentityPort, GitPort, HistoryPort, RemotePort
from opsdeck.core.ports.outside import ProcessPort, SecretsPort, SignerPort
from opsdeck.core.ports.tools import PackerPort, PolicyPort, TerraformPort
from tests.fake_fleet import FakeFleet
from tests.fake_hygiene import FakeHygiene
from tests.fakes import FakeCloud, FakePacker, FakePolicy, FakeTerraform, FakeTools, World, fake_tools


def cloud_ports(cloud: FakeCloud) -> None:
    whole: CloudPort = cloud
    identity: IdentityPort = cloud
    objects: ObjectStorePort = cloud
    images: ImagesPort = cloud
    groups: GroupsPort = cloud
    traffic: TrafficPort = cloud
    inventory: InventoryPort = cloud
    notifications: NotificationsPort = cloud
    fleet: FleetPort = FakeFleet(cloud)
    hygiene: HygienePort = FakeHygiene(cloud)
    del whole, identity, objects, images, groups, traffic, inventory, notifications, fleet, hygiene


def tool_ports(tools: FakeTools, terraform: FakeTerraform, packer: FakePacker, policy: FakePolicy) -> None:
    factory: Tools = tools
    made: ToolsFactory = fake_tools(World())
    tf: TerraformPort = terraform
    build: PackerPort = packer
    check: PolicyPort = policy
    secrets: SecretsPort = tools.secrets()
    signer: SignerPort = tools.signer()
    processes: ProcessPort = tools.processes()
    del factory, made, tf, build, check, secrets, signer, processes


def git_ports(tools: FakeTools) -> None:
    git: GitPort = tools.git  # the real repository: git costs milliseconds
    history: HistoryPort = git
    commits: CommitPort = git
    remote: RemotePort = git
    identity: GitIdentityPort = git
    del history, commits, remote, identity
