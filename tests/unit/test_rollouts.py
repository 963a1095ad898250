"""Rollout strategies on the fake tools: a group rolled in place by its instance refresh (followed, stopped and
refreshed back), a group that rolls nothing (said before the apply, ended at once), opsdeck starting the
refresh itself, plain instances, and ``auto`` choosing each from the plan."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin
from opsdeck.core.events import Event, Progress, Reporter
from opsdeck.core.observe.status import deck_status
from opsdeck.core.release.bake import bake
from opsdeck.core.release.facts import read_facts
from opsdeck.core.release.promote import deploy_newest, rollback
from opsdeck.core.release.results import ReleaseResult
from opsdeck.core.release.strategies import auto
from opsdeck.core.safety import audit
from opsdeck.core.safety.confirm import Preview
from opsdeck.errors import OpsdeckError
from tests.fakes import World
from tests.unit.estate import git, make_estate

SANDBOX = ("111111111111", "us-east-1")
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "plan_refresh.json"


def rep() -> Reporter:
    return Reporter("test")


def shop(tmp_path: Path, **kinds: str) -> tuple[Deck, World]:
    world = World(kinds={f"sandbox/{service}": kind for service, kind in kinds.items()})
    return make_estate(tmp_path / "shop", world)


@pytest.fixture()
def closing() -> Iterator[list[Deck]]:
    decks: list[Deck] = []
    yield decks
    for deck in decks:
        deck.tools.git.close()  # type: ignore[attr-defined]


def web_group(world: World) -> tuple[str, list[str]]:
    place = world.place(*SANDBOX)
    (group,) = [g for g in place.groups.values() if g.tags.get("env") == "sandbox" and g.tags.get("app") == "web"]
    return group.name, [i.image_id for i in group.instances]


def new_web(deck: Deck) -> str:
    (baked,) = asyncio.run(bake(deck, rep(), services=["web"]))
    return baked.id


def deploy(deck: Deck, previews: list[Preview] | None = None, reporter: Reporter | None = None) -> ReleaseResult:
    async def confirm(preview: Preview) -> bool:
        if previews is not None:
            previews.append(preview)
        return True

    result = asyncio.run(deploy_newest(deck, "sandbox", reporter or rep(), services=["web"], confirm=confirm))
    assert isinstance(result, ReleaseResult)
    return result


def test_a_refresh_rollout_keeps_the_group_and_replaces_every_instance(tmp_path: Path, closing: list[Deck]) -> None:
    deck, world = shop(tmp_path, web="refresh")
    closing.append(deck)
    name, _ = web_group(world)
    image = new_web(deck)
    lines: list[str] = []
    reporter = Reporter("test", sink=lambda e: lines.append(e.message) if isinstance(e, Progress) else None)
    previews: list[Preview] = []
    result = deploy(deck, previews, reporter)
    assert web_group(world) == (name, [image, image])  # the same group, every instance replaced
    assert result.rollouts["web"]["rollout"] == "instance-refresh" and result.rollouts["web"]["group"] == name
    assert f"the apply starts an instance refresh of {name}, 50% kept in service" in previews[0].note
    assert any(line.startswith(f"web: instance refresh of {name} InProgress 50%") for line in lines), lines
    assert any(f"web: instance refresh of {name} Successful 100%" in line for line in lines), lines
    assert not [c for c in world.calls if c.startswith(("start-refresh", "cancel-refresh"))]
    assert read_pin(deck, "sandbox", "web") == image
    # Rolling back is a refresh back to the previous pin, in the same group.
    back = asyncio.run(rollback(deck, "sandbox", rep(), services=["web"]))
    assert isinstance(back, ReleaseResult) and back.rollouts["web"]["rollout"] == "instance-refresh"
    assert web_group(world) == (name, [back.moved[0].to_image] * 2)


@pytest.mark.parametrize(
    ("kind", "why"), [("refresh-none", "has no instance_refresh block"), ("refresh-latest", "launches $Latest")]
)
def test_a_group_that_rolls_nothing_says_so_first_and_ends_at_once(
    tmp_path: Path, closing: list[Deck], kind: str, why: str
) -> None:
    deck, world = shop(tmp_path, web=kind)
    closing.append(deck)
    name, before = web_group(world)
    image = new_web(deck)
    previews: list[Preview] = []
    result = deploy(deck, previews)
    assert f"web: instances keep the old image ({name} {why}" in previews[0].note
    assert result.still == ("web: 2 of 2 instances still run the old image (nothing in sandbox replaces them)",)
    assert web_group(world) == (name, before)  # nothing replaced them, and nothing waited for it
    assert read_pin(deck, "sandbox", "web") == image  # the code says the new image: committed, and said
    body = git(deck.root, "log", "-1", "--format=%B")
    assert "web: 2 of 2 instances still run the old image" in body
    assert "verify instances" not in [name for name, _ in result.phases]


def test_with_start_refresh_opsdeck_starts_the_refresh_itself(tmp_path: Path, closing: list[Deck]) -> None:
    deck, world = shop(tmp_path, web="refresh-none")
    closing.append(deck)
    deck.config = replace(
        deck.config,
        environments=tuple(
            replace(e, start_refresh=True) if e.name == "sandbox" else e for e in deck.config.environments
        ),
    )
    name, _ = web_group(world)
    image = new_web(deck)
    previews: list[Preview] = []
    result = deploy(deck, previews)
    assert f"web: opsdeck starts an instance refresh of {name}, 90% kept in service" in previews[0].note
    assert f"start-refresh {name}" in world.calls
    assert web_group(world) == (name, [image, image]) and not result.still


def test_a_refresh_that_fails_is_stopped_and_refreshed_back(tmp_path: Path, closing: list[Deck]) -> None:
    deck, world = shop(tmp_path, web="refresh")
    closing.append(deck)
    name, before = web_group(world)
    was = read_pin(deck, "sandbox", "web")
    new_web(deck)
    world.refresh_fail.add(name)
    with pytest.raises(OpsdeckError) as failed:
        deploy(deck)
    assert str(failed.value).startswith(
        f"deploy of sandbox failed at rollout (refreshed back to the previous pins): the instance refresh of {name} "
        "ended Failed: instances failed health checks"
    )
    assert read_pin(deck, "sandbox", "web") == was and web_group(world) == (name, before)
    assert not git(deck.root, "status", "--porcelain").strip()  # the ledger says what runs
    (closing_record,) = audit.read(deck)[-1:]
    assert closing_record["result"] == "failed" and closing_record["refreshed_back"] is True


def test_ctrl_c_mid_refresh_cancels_it_then_refreshes_back(tmp_path: Path, closing: list[Deck]) -> None:
    deck, world = shop(tmp_path, web="refresh")
    closing.append(deck)
    name, before = web_group(world)
    was = read_pin(deck, "sandbox", "web")
    new_web(deck)

    async def interrupted() -> None:
        task: asyncio.Task[object] | None = None

        def sink(event: Event) -> None:
            if task is not None and isinstance(event, Progress) and "InProgress 50%" in event.message:
                task.cancel()  # Ctrl-C as the refresh is half way

        task = asyncio.ensure_future(deploy_newest(deck, "sandbox", Reporter("test", sink=sink), services=["web"]))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    assert f"cancel-refresh {name}" in world.calls
    statuses = [r.status for r in world.place(*SANDBOX).refreshes[name] for r in [r.refresh]]
    assert statuses[-2:] == ["Cancelled", "Successful"]  # cancelled, then the refresh back
    assert read_pin(deck, "sandbox", "web") == was and web_group(world) == (name, before)
    record = audit.read(deck)[-1]
    assert record["result"] == "interrupted" and "was cancelled at 50%" in str(record["stopped"])


def test_plain_instances_are_replaced_and_counted(tmp_path: Path, closing: list[Deck]) -> None:
    deck, world = shop(tmp_path, web="instances")
    closing.append(deck)
    place = world.place(*SANDBOX)
    assert not [g for g in place.groups.values() if g.tags.get("app") == "web" and g.tags.get("env") == "sandbox"]
    image = new_web(deck)
    result = deploy(deck)
    assert result.rollouts["web"] == {"rollout": "instances"}
    plain = [i for i in place.plain if i.tags.get("env") == "sandbox" and i.tags.get("app") == "web"]
    assert len(plain) == 2 and {i.image_id for i in plain} == {image}
    state = asyncio.run(deck_status(deck, rep(), envs=["sandbox"], fetch=False))
    (row,) = state.environments
    web = next(s for s in row.services if s.name == "web")
    assert (web.instances.desired, web.instances.running, web.instances.on_pinned_image) == (2, 2, 2)


def test_auto_reads_each_service_from_a_real_plan() -> None:
    """A plan Terraform 1.11 made of the adopt estate (tests/decks/adopt) after both images moved."""
    facts = read_facts(json.loads(FIXTURE.read_text()), "Service", ["web", "batch"])
    web, batch = facts.of("web"), facts.of("batch")
    (group,) = web.groups
    assert group.name == "web-qa" and group.actions == ("update",) and group.refresh is not None
    assert group.version_before == "1" and group.version_after is None and group.starts_refresh
    assert web.templates_changed and not web.instances
    assert batch.instances_replaced and batch.plain_count == 1 and not batch.groups
    assert auto(web, None, "web") == "instance-refresh" and auto(batch, None, "batch") == "instances"


def test_plain_instances_are_managed_and_rebuilt_by_nuke(tmp_path: Path, closing: list[Deck]) -> None:
    """Plain instances are Terraform's: not strays to the nuke's inventory or to drift, destroyed with the
    environment and launched again on the same pins."""
    from opsdeck.core.drift.check import check
    from opsdeck.core.sandbox.nuke import inventory, nuke_rebuild

    deck, world = shop(tmp_path, web="instances")
    closing.append(deck)
    place = world.place(*SANDBOX)
    before = {i.id for i in place.plain if i.tags.get("env") == "sandbox"}
    assert len(before) == 2
    plan = asyncio.run(inventory(deck, "sandbox"))
    assert not plan.unmanaged and any("aws_instance" in a for a in plan.managed)
    (report,) = asyncio.run(check(deck, ["sandbox"], rep()))
    assert report.status == "clean", report
    result = asyncio.run(nuke_rebuild(deck, "sandbox", rep()))
    after = {i.id: i.image_id for i in place.plain if i.tags.get("env") == "sandbox"}
    assert result.unmanaged_deleted == 0 and len(after) == 2 and not set(after) & before
    assert set(after.values()) == {read_pin(deck, "sandbox", "web")}
