"""Status, drift, refresh, nuke-and-rebuild, reconcile and unlock on the fake tools: each environment read in
its own account and region, every refusal one line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdeck.core.drift.check import check
from opsdeck.core.drift.reconcile import apply_env
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pins
from opsdeck.core.events import Reporter
from opsdeck.core.observe.refresh import refresh
from opsdeck.core.observe.status import deck_status
from opsdeck.core.release import recovery
from opsdeck.core.safety import audit, locks
from opsdeck.core.sandbox.nuke import inventory, nuke_rebuild
from opsdeck.core.types.cloud import CloudResource
from opsdeck.errors import RefusedError
from tests.fakes import FakeGroup, World, fake_tools
from tests.unit.estate import make_estate

BUILD_DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333"


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "shop")
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


def rep() -> Reporter:
    return Reporter("test")


def group_of(world: World, account: str, region: str, env: str, service: str) -> FakeGroup:
    place = world.place(account, region)
    return next(g for g in place.groups.values() if g.tags["env"] == env and g.tags["app"] == service)


def test_status_shows_every_service_of_every_environment_in_its_account_and_region(
    estate: tuple[Deck, World],
) -> None:
    deck, _ = estate
    state = asyncio.run(deck_status(deck, rep()))
    rows = {e.name: e for e in state.environments}
    assert {(e.name, e.account, e.region) for e in state.environments} == {
        ("sandbox", BUILD_DEV, "us-east-1"),
        ("dev", BUILD_DEV, "us-east-1"),
        ("staging", STAGING, "us-east-1"),
        ("prod", PROD, "us-west-2"),
    }
    for env in rows.values():
        assert [s.name for s in env.services] == ["web", "api", "worker"]
        pins = read_pins(deck, env.name)
        for service in env.services:
            assert service.image is not None and service.image.id == pins[service.name]
            assert service.image.version == "1.0.0"
            assert service.instances.healthy and service.instances.desired == 2
        assert env.instances.desired == sum(s.instances.desired for s in env.services) == 6
        assert env.image is None  # three services, three images
    assert rows["staging"].lag is not None and rows["staging"].lag.in_sync
    assert {i["service"] for i in state.images} == {None, "web", "api", "worker"}


def test_each_account_sees_only_its_own_groups(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    tag = deck.config.conventions.env_tag
    assert len(deck.tools.env("prod").cloud.groups(tag, "prod")) == 3
    assert deck.tools.build().groups(tag, "prod") == []  # the build account: none of production's
    assert deck.tools.build("us-west-2").groups(tag, "prod") == []


def test_a_role_that_cannot_be_assumed_leaves_an_error_in_its_row_only(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    world.unassumable.add("arn:aws:iam::222222222222:role/opsdeck-deploy")
    rows = {e.name: e for e in asyncio.run(deck_status(deck, rep())).environments}
    assert rows["staging"].error == (
        "staging: cannot assume arn:aws:iam::222222222222:role/opsdeck-deploy in account 222222222222: AccessDenied"
    )
    assert all(rows[n].error is None for n in ("sandbox", "dev", "prod"))


def test_drift_finds_each_kind_in_the_environments_own_account_only(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    group_of(world, STAGING, "us-east-1", "staging", "api").desired = 5
    dev = world.place(BUILD_DEV, "us-east-1")
    dev.strays.append(CloudResource("ec2:instance", "i-0stray", None, {"env": "dev"}, "ami-0x", None, "running"))
    # A look-alike tagged env = dev in another account is not dev's: dev is read in its own account.
    world.place(STAGING, "us-east-1").strays.append(
        CloudResource("ec2:instance", "i-0elsewhere", None, {"env": "dev"}, "ami-0y", None, "running")
    )
    reports = {r.name: r for r in asyncio.run(check(deck, None, rep()))}
    assert reports["staging"].status == "drifted"
    assert reports["staging"].managed == [
        {"address": "module.api.aws_autoscaling_group.this", "attributes": ["desired_capacity"], "action": "update"}
    ]
    assert reports["dev"].unmanaged == [{"type": "ec2:instance", "id": "i-0stray"}]
    assert reports["dev"].image == [{"instance": "i-0stray", "image_id": "ami-0x", "service": ""}]
    assert reports["sandbox"].status == reports["prod"].status == "clean"
    assert "i-0elsewhere" not in json.dumps([r.to_json() for r in reports.values()])


def test_refresh_plans_every_environment_and_leaves_a_busy_one_alone(estate: tuple[Deck, World]) -> None:
    deck, _world = estate
    with locks.env_lock(deck, "dev", "promote"):
        result = asyncio.run(refresh(deck, rep(), with_drift=False))
    assert result.skipped == {"dev": "promote"}
    assert sorted(result.plans) == ["prod", "sandbox", "staging"]
    assert all(not p.summary.has_changes for p in result.plans.values())
    assert result.errors == {}


def test_nuke_and_rebuild_deletes_strays_and_rebuilds_on_the_same_pins(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    place = world.place(BUILD_DEV, "us-east-1")
    place.strays.append(CloudResource("ec2:instance", "i-0debug", None, {"env": "sandbox"}, "ami-0z", None, "running"))
    plan = asyncio.run(inventory(deck, "sandbox"))
    assert plan.account == BUILD_DEV and [r.id for r in plan.unmanaged] == ["i-0debug"]
    assert any("aws_autoscaling_group" in a for a in plan.managed)
    before = {g.name for g in place.groups.values() if g.tags["env"] == "sandbox"}
    result = asyncio.run(nuke_rebuild(deck, "sandbox", rep()))
    after = {g.name for g in place.groups.values() if g.tags["env"] == "sandbox"}
    assert result.unmanaged_deleted == 1 and not (before & after) and len(after) == 3
    assert "delete ec2:instance i-0debug" in world.calls and "destroy sandbox" in world.calls
    dev_groups = {g.name for g in place.groups.values() if g.tags["env"] == "dev"}
    assert len(dev_groups) == 3  # dev shares the account and is untouched
    with pytest.raises(RefusedError, match="only for sandbox environments; dev is not one"):
        asyncio.run(nuke_rebuild(deck, "dev", rep()))
    assert audit.read(deck)[-1]["result"] == "refused"


def test_nuke_is_refused_in_a_protected_account_by_the_real_account_id(
    estate: tuple[Deck, World], tmp_path: Path
) -> None:
    deck, world = estate
    toml = deck.root / "opsdeck.toml"
    toml.write_text(
        toml.read_text().replace('protected_accounts = ["333333333333"]', 'protected_accounts = ["111111111111"]')
    )
    again = Deck.open(deck.root, tools=fake_tools(world))
    with pytest.raises(RefusedError, match=r"account 111111111111 is listed in aws\.protected_accounts"):
        asyncio.run(nuke_rebuild(again, "sandbox", rep()))
    again.tools.git.close()  # type: ignore[attr-defined]


def test_apply_with_nothing_pending_changes_nothing(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    result = asyncio.run(apply_env(deck, "dev", rep()))
    assert not result.applied
    assert not [c for c in world.calls if c.startswith("apply dev")][1:]  # only the setup's apply
    assert audit.read(deck)[-1]["note"] == "nothing to apply"


def test_unlock_releases_what_an_interrupted_operation_left_and_closes_its_record(
    estate: tuple[Deck, World],
) -> None:
    deck, _ = estate
    audit.append(deck, action="promote", environment="dev", result="started", who={"user": "ghost"})
    path = deck.local_dir / "locks" / "dev.lock"
    path.parent.mkdir(exist_ok=True)
    record = {
        "id": "lock-1",
        "env": "dev",
        "operation": "promote",
        "pid": 999999,
        "host": "gone",
        "user": "ghost",
        "since": 1.0,
        "detail": {"services": "web", "to": "ami-0new", "pin": "envs/dev/images.auto.tfvars.json"},
    }
    path.write_text(json.dumps(record))
    found = recovery.inspect(deck, "dev")
    assert found is not None and found.advice() == "the pin files are as committed"
    asyncio.run(recovery.unlock(deck, "dev", rep()))
    assert locks.status(deck, "dev") is None
    closing = audit.read(deck)[-2]
    assert closing["result"] == "interrupted" and closing["action"] == "promote"
    assert audit.read(deck)[-1]["action"] == "unlock"
    assert audit.verify(deck).ok


def _interrupted(deck: Deck, env: str, detail: dict[str, str], operation: str = "promote") -> None:
    """A lock left by an operation killed with its pins half written (its process and host are gone)."""
    audit.append(deck, action=operation, environment=env, result="started", who={"user": "ghost"})
    path = deck.local_dir / "locks" / f"{env}.lock"
    path.parent.mkdir(exist_ok=True)
    record = {"id": "lock-2", "env": env, "operation": operation, "pid": 999999, "host": "gone", "user": "ghost"}
    path.write_text(json.dumps({**record, "since": 1.0, "detail": detail}))


@pytest.mark.parametrize("applied", ["here", "elsewhere", "never"])
def test_unlock_settles_the_pins_of_a_killed_change_to_what_the_cloud_runs(
    estate: tuple[Deck, World], applied: str
) -> None:
    """A replace-style release killed after its pins were written: Terraform finished the apply (or never
    started it); or an engine worker's, whose pins were in the worker's clone. unlock commits the pins the
    cloud runs, with its audit anchor, or puts the old ones back."""
    from opsdeck.core.estate.pins import write_pins
    from opsdeck.core.plans import planning
    from opsdeck.core.release import rollout
    from opsdeck.core.release.bake import bake
    from tests.unit.estate import git

    deck, world = estate
    (baked,) = asyncio.run(bake(deck, rep(), services=["web"]))
    before = read_pins(deck, "sandbox")
    write_pins(deck, "sandbox", {"web": baked.id})
    if applied != "never":
        plan = asyncio.run(planning.plan(deck, "sandbox", rep(), reuse=False))
        asyncio.run(rollout.apply_plan(deck, "sandbox", plan, rep()))
    if applied == "elsewhere":
        git(deck.root, "checkout", "--", "envs/sandbox/images.auto.tfvars.json")  # the worker's clone had them
    _interrupted(deck, "sandbox", {"services": "web", "to": baked.id})
    head = git(deck.root, "rev-parse", "HEAD")
    planned = len(world.calls)
    asyncio.run(recovery.unlock(deck, "sandbox", rep()))
    plans = [c for c in world.calls[planned:] if c == "plan sandbox"]
    # The working tree holds the target's pins (here, and never applied): they are planned once, not twice.
    assert len(plans) == {"here": 1, "elsewhere": 1, "never": 2}[applied], world.calls[planned:]
    assert locks.status(deck, "sandbox") is None and not git(deck.root, "status", "--porcelain").strip()
    record = audit.read(deck)[-1]
    assert record["action"] == "unlock" and record["reconciled"] == ("restored" if applied == "never" else "committed")
    if applied != "never":
        assert read_pins(deck, "sandbox")["web"] == baked.id
        body = git(deck.root, "log", "-1", "--format=%B")
        assert body.startswith("settle sandbox after an interrupted promote: the cloud runs these pins")
        assert f"Opsdeck-Audit: {audit.read(deck)[-3]['hash']}" in body  # the unlock's own started record
    else:
        assert read_pins(deck, "sandbox") == before and git(deck.root, "rev-parse", "HEAD") == head
    plan = asyncio.run(planning.plan(deck, "sandbox", rep(), reuse=False))
    assert not plan.summary.has_changes  # the ledger, the state and the cloud agree


def test_status_says_how_long_prod_waits_for_stagings_image_to_soak(estate: tuple[Deck, World]) -> None:
    from opsdeck.core.release.bake import bake
    from opsdeck.core.release.promote import promote

    deck, _ = estate
    (web,) = asyncio.run(bake(deck, rep(), services=["web"]))
    asyncio.run(promote(deck, web.id, "dev", rep(), services=["web"]))
    asyncio.run(promote(deck, "dev", "staging", rep(), services=["web"]))
    state = asyncio.run(deck_status(deck, rep()))
    prod = next(e for e in state.environments if e.name == "prod")
    lag = next(s for s in prod.services if s.name == "web").lag
    assert lag is not None and not lag.in_sync and lag.source == "staging"
    assert lag.soak_needed == 30 and lag.soaked is not None and lag.soaked < 1
    assert 29 < lag.soak_left <= 30
    staging = next(e for e in state.environments if e.name == "staging")
    assert all(s.lag is None or s.lag.soak_needed == 0 for s in staging.services)  # staging wants no soak
