"""Images a team's pipeline baked, on the fake tools: found by the deck's own service and version tags,
listed (by creation time when they have no version), deployed as the newest by creation time,
promoted by id, counted in lag and history, and kept or left as orphans by creation time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin
from opsdeck.core.events import Reporter
from opsdeck.core.hygiene.orphans import find_orphans
from opsdeck.core.observe.status import deck_status
from opsdeck.core.release.bake import bake
from opsdeck.core.release.images import catalog_rows, is_revoked, load_catalog, revoke
from opsdeck.core.release.ledger import history
from opsdeck.core.release.promote import ReleaseResult, deploy_newest, promote
from opsdeck.core.types.cloud import Image
from opsdeck.errors import OpsdeckError, RefusedError
from tests.fakes import World, new_id
from tests.unit.estate import git, make_estate

BUILD = ("111111111111", "us-east-1")
TEAM_TAGS = {"image_service_tag": "Service", "image_version_tag": "Release"}


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "shop")
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


@pytest.fixture()
def team_estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    """The shop deck with its team's own image tags: Service and Release."""
    deck, world = make_estate(tmp_path / "team", conventions=TEAM_TAGS)
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


def rep() -> Reporter:
    return Reporter("test")


def pipeline_image(world: World, created: str, **tags: str) -> str:
    """An image the team's pipeline baked in the build account: only the tags it chose, none of opsdeck's."""
    image_id = new_id("ami")
    world.place(*BUILD).images[image_id] = Image(image_id, f"ci-{image_id}", created, dict(tags), "available")
    return image_id


def web_behind(deck: Deck, env: str) -> int:
    state = asyncio.run(deck_status(deck, rep()))
    row = next(e for e in state.environments if e.name == env)
    lag = next(s for s in row.services if s.name == "web").lag
    assert lag is not None
    return lag.behind


def test_a_deck_with_its_own_tag_names_bakes_finds_and_copies_by_them(team_estate: tuple[Deck, World]) -> None:
    deck, world = team_estate
    catalog = load_catalog(deck)
    (web,) = catalog.service_images("web")
    # The sample recipes tag app and version; opsdeck bake adds the deck's own names.
    assert (web.tags["Service"], web.tags["Release"], web.version) == ("web", "1.0.0", "1.0.0")
    (base,) = catalog.bases()
    assert base.tags["Release"] == "1.0.0" and base.tags["role"] == "base"
    copy = catalog.copies[web.id]["us-west-2"]  # prod's region: the copy keeps the team's tags
    assert (catalog.by_id[copy].tags["Service"], catalog.by_id[copy].tags["Release"]) == ("web", "1.0.0")

    # An image tagged only the default way (app = web) is not this deck's; one with the team's tags is.
    stray = pipeline_image(world, "2026-12-04T10:00:00.000Z", app="web", version="9.9.9")
    ci = pipeline_image(world, "2026-12-04T10:31:22.000Z", Service="web", Release="1.4.0")
    catalog = load_catalog(deck)
    assert stray not in catalog.by_id and [i.id for i in catalog.service_images("web")] == [web.id, ci]
    assert catalog.find("1.4.0", deck.config.service_names) == catalog.by_id[ci]
    (baked,) = asyncio.run(bake(deck, rep(), services=["web"]))
    assert baked.version == "1.4.1"  # the next patch after the pipeline's newest
    assert load_catalog(deck).by_id[baked.id].tags["Release"] == "1.4.1"
    revoke(deck, "1.4.0", "built from a bad commit")
    assert is_revoked(load_catalog(deck).by_id[ci])


def test_a_recipe_that_tags_another_service_is_refused(team_estate: tuple[Deck, World]) -> None:
    deck, _ = team_estate
    recipe = deck.root / "packer" / "web.json"
    recipe.write_text(recipe.read_text().replace('"tags": {', '"tags": {\n        "Service": "api",', 1))
    with pytest.raises(OpsdeckError, match=r"packer/web\.json tagged its image Service = 'api', not 'web'"):
        asyncio.run(bake(deck, rep(), services=["web"]))


def test_an_image_without_a_version_is_listed_by_its_creation_time(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    ci = pipeline_image(world, "2026-12-04T10:31:22.000Z", app="web", ci="github-actions shop/web run 42")
    rows = catalog_rows(deck, with_accounts=False)
    web = [r for r in rows if r["service"] == "web"]
    assert [r["version"] for r in web] == ["1.0.0", "2026-12-04T10:31Z"]  # newest last
    row = web[-1]
    assert (row["id"], row["versioned"], row["built_by"], row["git_sha"]) == (
        ci,
        False,
        "github-actions shop/web run 42",
        "",
    )
    assert row["environments"] == [] and row["base"] is None and not row["base_outdated"]
    assert web[0]["versioned"] is True and web[0]["built_by"] == "Unit Tester <unit@example.com>"


def test_deploy_takes_the_newest_by_creation_time_when_versions_do_not_compare(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    (baked,) = asyncio.run(bake(deck, rep(), services=["web"]))  # 1.0.1
    assert baked.version == "1.0.1"
    unversioned = pipeline_image(world, "2026-12-04T10:31:22.000Z", app="web")
    result = asyncio.run(deploy_newest(deck, "sandbox", rep(), services=["web"]))
    assert isinstance(result, ReleaseResult)
    assert [(m.to_image, m.version) for m in result.moved] == [(unversioned, "2026-12-04T10:31Z")]
    assert read_pin(deck, "sandbox", "web") == unversioned
    subject = git(deck.root, "log", "-1", "--format=%s").strip()
    assert subject == "deploy web 2026-12-04T10:31Z to sandbox"

    later = pipeline_image(world, "2026-12-05T08:00:00.000Z", app="web", version="build-77")  # not MAJOR.MINOR.PATCH
    asyncio.run(deploy_newest(deck, "sandbox", rep(), services=["web"]))
    assert read_pin(deck, "sandbox", "web") == later
    with pytest.raises(RefusedError, match="sandbox already runs the newest image of web"):
        asyncio.run(deploy_newest(deck, "sandbox", rep(), services=["web"]))


def test_a_pipeline_image_is_promoted_by_id_counted_in_lag_and_named_in_history(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    first = pipeline_image(world, "2026-12-04T10:31:22.000Z", app="web")
    second = pipeline_image(world, "2026-12-04T11:02:09.000Z", app="web")
    asyncio.run(promote(deck, first, "dev", rep(), services=["web"]))
    assert read_pin(deck, "dev", "web") == first
    assert web_behind(deck, "staging") == 1  # dev runs the one image after staging's 1.0.0
    asyncio.run(promote(deck, second, "dev", rep(), services=["web"]))
    assert web_behind(deck, "staging") == 2  # both of the pipeline's images count

    asyncio.run(promote(deck, "dev", "staging", rep(), services=["web"]))
    assert read_pin(deck, "staging", "web") == second and web_behind(deck, "staging") == 0
    (latest, *_) = history(deck, "staging", ["web"])
    assert latest.message == "promote web 2026-12-04T11:02Z to staging"
    assert [c.image_id for c in latest.changes] == [second]
    with pytest.raises(RefusedError, match="has not run in dev"):
        asyncio.run(promote(deck, pipeline_image(world, "2026-12-06T00:00:00.000Z", app="web"), "staging", rep()))


def test_orphans_keep_each_services_newest_by_creation_time(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    for version in ("1.0.1", "1.0.2"):
        asyncio.run(bake(deck, rep(), services=["web"], version=version))
    catalog = load_catalog(deck)
    baked = {i.version: i.id for i in catalog.service_images("web")}
    ci = [pipeline_image(world, f"2026-12-0{day}T09:00:00.000Z", app="web") for day in (4, 5)]

    report = asyncio.run(find_orphans(deck, rep(), keep_images=3))
    images = {o.id: o.detail for o in report.orphans if o.kind == "image"}
    # Newest three by creation: 1.0.2 and the pipeline's two. 1.0.0 runs everywhere; 1.0.1 is left.
    assert set(images) == {baked["1.0.1"]}, images
    report = asyncio.run(find_orphans(deck, rep(), keep_images=1))
    images = {o.id: o.detail for o in report.orphans if o.kind == "image"}
    assert set(images) == {baked["1.0.1"], baked["1.0.2"], ci[0]}, images
    assert images[ci[0]].startswith("web 2026-12-04T09:00Z (")
