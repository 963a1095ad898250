"""The fakes unit tests hand core are true to the ports: every method of a port exists on its fake with the
same parameters (names, kinds, defaults) and the same sync or async nature, every property is there.
mypy checks the types of the same pairs (tests/port_checks.py, in mypy's files)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Protocol

import pytest

from opsdeck.adapters.git import Git
from opsdeck.adapters.process import LocalProcesses
from opsdeck.adapters.secrets import FallbackSecrets, FileSecrets, KeyringSecrets
from opsdeck.adapters.sshsig import SshSigner

# Fakes of a port. The machine's own systems (git, the keyring, ssh-keygen, processes) are real in unit
# tests; their adapters are checked against the same ports here.
from opsdeck.core.ports.cloud import CloudPort, FleetPort, HygienePort
from opsdeck.core.ports.factory import Tools
from opsdeck.core.ports.git import GitPort
from opsdeck.core.ports.outside import ProcessPort, SecretsPort, SignerPort
from opsdeck.core.ports.tools import PackerPort, PolicyPort, TerraformPort
from opsdeck.core.release import fleet
from opsdeck.core.types.cloud import Group, Instance
from tests.fake_fleet import FakeFleet
from tests.fake_hygiene import FakeHygiene
from tests.fakes import FakeCloud, FakePacker, FakePolicy, FakeTerraform, FakeTools
from tests.unit.estate import make_estate

PAIRS: list[tuple[type[Any], type[Any]]] = [
    (CloudPort, FakeCloud),
    (FleetPort, FakeFleet),
    (HygienePort, FakeHygiene),
    (TerraformPort, FakeTerraform),
    (PackerPort, FakePacker),
    (PolicyPort, FakePolicy),
    (Tools, FakeTools),
    (GitPort, Git),
    (SecretsPort, KeyringSecrets),
    (SecretsPort, FileSecrets),
    (SecretsPort, FallbackSecrets),
    (SignerPort, SshSigner),
    (ProcessPort, LocalProcesses),
]


def members(port: type[Any]) -> dict[str, Any]:
    """What a port declares, its bases' too (CloudPort is the narrow ports together)."""
    found: dict[str, Any] = {}
    for klass in reversed(port.__mro__):
        if klass in (object, Protocol, port.__mro__[-1]) or not getattr(klass, "_is_protocol", False):
            continue
        found.update({k: v for k, v in vars(klass).items() if not k.startswith("_")})
    return found


def shape(function: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_ports_are_split_small() -> None:
    """A fake implements only what its test uses when a caller asks for the narrow port it needs."""
    assert len(members(CloudPort)) > 20 and len(members(GitPort)) > 18  # the whole, for the factory
    from opsdeck.core.ports import cloud, git

    narrow = [cloud.IdentityPort, cloud.ObjectStorePort, cloud.ImagesPort, cloud.GroupsPort, cloud.TrafficPort]
    narrow += [cloud.InventoryPort, cloud.NotificationsPort, git.HistoryPort, git.CommitPort, git.RemotePort]
    assert all(len(members(port)) <= 9 for port in narrow)


@pytest.mark.parametrize(("port", "fake"), PAIRS, ids=lambda x: x.__name__)
def test_the_fake_has_every_member_of_its_port_with_the_same_parameters(port: type[Any], fake: type[Any]) -> None:
    declared = members(port)
    assert declared, f"{port.__name__} declares nothing"
    for name, member in declared.items():
        if isinstance(member, property):
            assert hasattr(fake, name) or name in fake.__init__.__code__.co_names, f"{fake.__name__} has no {name}"
            continue
        mine = getattr(fake, name, None)
        assert callable(mine), f"{fake.__name__} has no {name}() of {port.__name__}"
        assert shape(mine) == shape(member), f"{fake.__name__}.{name}{inspect.signature(mine)} != {port.__name__}"
        ours, theirs = inspect.iscoroutinefunction(mine), inspect.iscoroutinefunction(member)
        assert ours == theirs, f"{fake.__name__}.{name} is {'async' if ours else 'sync'}, the port's is not"


def test_a_drifted_fake_is_caught() -> None:
    class Drifted:
        def put_object(self, bucket: str, key: str, data: bytes, *, if_absent: bool = False) -> bool:
            return True

    member = members(CloudPort)["put_object"]
    assert shape(Drifted.put_object) != shape(member)


class OnlyGroups:
    """Only what the release's view of a fleet reads (groups, plain instances), nothing else of a cloud."""

    def __init__(self, groups: list[Group], plain: list[Instance]) -> None:
        self._groups, self._plain = groups, plain

    def groups(self, tag_key: str, value: str) -> list[Group]:
        return [g for g in self._groups if g.tags.get(tag_key) == value]

    def fleet(self) -> OnlyGroups:
        return self

    def standalone(self, tag_key: str, value: str) -> list[Instance]:
        return [i for i in self._plain if i.tags.get(tag_key) == value]


def test_a_caller_of_a_narrow_port_runs_on_a_fake_of_that_port_alone(tmp_path: Path) -> None:
    deck, _ = make_estate(tmp_path / "shop")
    tag = deck.config.conventions.env_tag
    web = Instance("i-web", "ami-web", "running", group="dev-web", tags={tag: "dev"})
    group = Group("dev-web", 1, 1, 1, None, {tag: "dev", "app": "web"}, (web,))
    spare = Instance("i-spare", "ami-spare", "running", tags={tag: "dev"})
    snap = fleet.snapshot(deck, "dev", cloud=OnlyGroups([group], [spare]))  # snapshot asks for a GroupsPort
    assert [g.name for g in snap.groups] == ["dev-web"] and [i.id for i in snap.plain] == ["i-spare"]
    assert not hasattr(OnlyGroups, "put_object")  # none of the object store, images, traffic ...
