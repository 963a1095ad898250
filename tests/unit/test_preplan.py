"""Plans made ahead on the fake tools: what the change keys would apply is planned once, while nothing
changes, without touching a pin file; a key applies exactly that plan (or files its request from it); a plan
whose inputs moved is never used."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin
from opsdeck.core.events import LogLine, Reporter
from opsdeck.core.release import preplan
from opsdeck.core.release.bake import bake
from opsdeck.core.release.promote import deploy_newest, promote
from opsdeck.core.release.results import ReleaseResult
from opsdeck.core.safety.confirm import Preview
from opsdeck.core.team.requests import Request
from tests.fakes import World
from tests.unit.estate import git, make_estate
from tests.unit.team import Team


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "shop")
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


def rep() -> Reporter:
    return Reporter("test")


def plans(world: World) -> list[str]:
    return [c for c in world.calls if c.startswith("plan ")]


async def never(preview: Preview) -> bool:
    raise AssertionError(f"asked to confirm {preview.action} {preview.environment} again")


def test_ahead_plans_each_key_once_and_touches_no_pin_file(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    asyncio.run(bake(deck, rep(), services=["web"]))  # sandbox's deploy now moves web
    made = asyncio.run(preplan.ahead(deck, rep()))
    kinds = {(p.env, p.action) for p in made}
    takes_deploys = {e.name for e in deck.config.environments if e.promote_from is None}  # sandbox, dev
    assert ("sandbox", "deploy") in kinds and all(e in takes_deploys for e, a in kinds if a == "deploy")
    assert not git(deck.root, "status", "--porcelain", "--", "envs").strip()  # the working tree as it was
    sandbox = preplan.stored(deck, "sandbox", "deploy")
    assert sandbox is not None and list(sandbox.usable) == ["web"]
    assert "images" in json.loads(next(iter(sandbox.texts.values())))  # the pin file as a deploy writes it
    before = len(plans(world))
    assert asyncio.run(preplan.ahead(deck, rep())) == []  # nothing changed: no Terraform run
    assert len(plans(world)) == before
    asyncio.run(bake(deck, rep(), services=["web"]))  # a newer web: sandbox's deploy is planned again
    again = asyncio.run(preplan.ahead(deck, rep(), envs=["sandbox"]))
    assert [(p.env, p.action) for p in again] == [("sandbox", "deploy")]


def test_a_key_applies_exactly_the_plan_made_ahead(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    asyncio.run(bake(deck, rep(), services=["web"]))
    asyncio.run(preplan.ahead(deck, rep(), envs=["sandbox"]))
    pre = preplan.stored(deck, "sandbox", "deploy")
    assert pre is not None
    planned = len(plans(world))
    said: list[str] = []
    reporter = Reporter("test", sink=lambda e: said.append(e.text) if isinstance(e, LogLine) else None)
    result = asyncio.run(deploy_newest(deck, "sandbox", reporter, services=["web"], preplanned=pre, confirm=never))
    assert isinstance(result, ReleaseResult)
    assert len(plans(world)) == planned  # not planned again
    assert read_pin(deck, "sandbox", "web") == pre.usable["web"]
    assert any(line.startswith("applying the plan of sandbox made ahead at") for line in said), said
    assert preplan.stored(deck, "sandbox", "deploy") is None  # used: the pins it was made for are gone


def test_a_plan_whose_inputs_moved_is_not_used(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    asyncio.run(bake(deck, rep(), services=["web"]))
    asyncio.run(preplan.ahead(deck, rep(), envs=["sandbox"]))
    pre = preplan.stored(deck, "sandbox", "deploy")
    assert pre is not None
    backend = deck.backend("sandbox")
    assert backend is not None
    world.objects[(backend.bucket, backend.key)] += b" "  # someone applied to sandbox meanwhile
    asked: list[Preview] = []

    async def confirm(preview: Preview) -> bool:
        asked.append(preview)
        return True

    planned = len(plans(world))
    result = asyncio.run(deploy_newest(deck, "sandbox", rep(), services=["web"], preplanned=pre, confirm=confirm))
    assert isinstance(result, ReleaseResult) and len(asked) == 1  # planned again, and shown again
    assert len(plans(world)) == planned + 1


def test_a_request_is_filed_from_the_plan_made_ahead(team: Team) -> None:
    """staging takes approvals: its promotion's request carries the plan made ahead, filed at once."""
    deck, world = team.a, team.world
    asyncio.run(bake(deck, rep(), services=["web"]))
    asyncio.run(deploy_newest(deck, "dev", rep(), services=["web"]))
    asyncio.run(preplan.ahead(deck, rep(), envs=["staging"]))
    pre = preplan.stored(deck, "staging", "promote")
    assert pre is not None
    sha = hashlib.sha256(Path(pre.result().planfile).read_bytes()).hexdigest()
    planned = len(plans(world))
    made = asyncio.run(promote(deck, "dev", "staging", rep(), preplanned=pre, confirm=never))
    assert isinstance(made, Request) and made.plan_sha256 == sha and len(plans(world)) == planned


def test_ready_for_is_the_confirmation_of_exactly_what_a_key_asks(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    asyncio.run(bake(deck, rep(), services=["web"]))
    assert preplan.ready_for(deck, "deploy", "dev") is None  # nothing made ahead: no catalog read, None
    asyncio.run(preplan.ahead(deck, rep(), envs=["dev"]))
    planned = len(plans(world))
    ready = preplan.ready_for(deck, "deploy", "dev")
    assert ready is not None and not ready.request and len(plans(world)) == planned  # no Terraform
    pre = preplan.stored(deck, "dev", "deploy")
    assert pre is not None and ready.pre.inputs == pre.inputs
    [change] = ready.preview.changes
    assert change.service == "web" and change.to_image.id == pre.usable["web"]
    assert change.from_image.id == read_pin(deck, "dev", "web") != change.to_image.id
    assert ready.preview.plan.planfile == pre.result().planfile
    assert preplan.ready_for(deck, "deploy", "dev", services=["web"]) is not None  # the same release
    assert preplan.ready_for(deck, "rollback", "dev") is None  # another key: not made ahead
    backend = deck.backend("dev")
    assert backend is not None
    world.objects[(backend.bucket, backend.key)] += b" "
    assert preplan.ready_for(deck, "deploy", "dev") is None  # its state moved
