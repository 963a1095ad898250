"""What a deck that cannot be used yet tells a new user: a state bucket the local cloud does not hold (which
bucket, in which account and region, how to make it; the demo's own advice only for the demo deck), a
local cloud that is not running, and a directory that is no deck while the demo deck exists."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from opsdeck.commands import argv_without_deck
from opsdeck.core.estate.deck import Deck, find_deck_root
from opsdeck.core.estate.demo_deck import marker
from opsdeck.core.estate.settings import load_settings
from opsdeck.core.events import Reporter
from opsdeck.core.observe.status import deck_status
from opsdeck.errors import CloudUnavailableError, ConfigError
from opsdeck.wiring.tools import LiveTools
from tests.fakes import World
from tests.unit.estate import make_estate

SANDBOX_BUCKET = "opsdeck-demo-tfstate-111111111111"  # sandbox's and dev's state (sample_envs)
PROD_BUCKET = "opsdeck-demo-tfstate-333333333333"


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "shop")
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


def _refusal(deck: Deck) -> str:
    with pytest.raises(CloudUnavailableError) as caught:
        deck.check_cloud()
    return str(caught.value)


def test_a_decks_missing_state_bucket_is_named_with_its_account_region_and_how_to_make_it(
    estate: tuple[Deck, World],
) -> None:
    deck, world = estate
    deck.check_cloud()  # every bucket there: nothing to say
    world.buckets.discard(SANDBOX_BUCKET)
    said = _refusal(deck)
    assert said.startswith(
        f"the state bucket {SANDBOX_BUCKET} of sandbox and dev does not exist on the local cloud "
        "(account 111111111111, us-east-1): never applied there, or the cloud was restarted since"
    ), said
    create = f"aws s3api create-bucket --bucket {SANDBOX_BUCKET} --region us-east-1 --endpoint-url http://fake.invalid"
    assert f"(`{create}`)" in said and "then apply sandbox and dev (`opsdeck apply ENV`)" in said, said
    assert "opsdeck demo" not in said and "\n" not in said, said


def test_a_state_bucket_outside_us_east_1_is_made_with_its_location_constraint(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    prod = deck.env("prod")
    deck.config = replace(deck.config, environments=(prod, *(e for e in deck.config.environments if e is not prod)))
    world.buckets.discard(PROD_BUCKET)
    said = _refusal(deck)
    assert f"the state bucket {PROD_BUCKET} of prod does not exist" in said, said
    assert "(account 333333333333, us-west-2)" in said, said
    assert (
        f"aws s3api create-bucket --bucket {PROD_BUCKET} --region us-west-2 "
        "--create-bucket-configuration LocationConstraint=us-west-2 --endpoint-url http://fake.invalid"
    ) in said, said


def test_the_demo_deck_keeps_its_demo_advice(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    marker(deck.root).write_text("{}", encoding="utf-8")  # what `opsdeck demo` leaves in the deck it makes
    world.buckets.discard(SANDBOX_BUCKET)
    said = _refusal(deck)
    assert said == (
        f"the local cloud does not hold this deck's state (bucket {SANDBOX_BUCKET} is gone: the cloud was "
        "restarted and keeps state in memory); run `opsdeck demo --reset` to recreate the demo deck"
    )


def test_status_shows_the_missing_bucket_in_each_row(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    world.buckets.discard(SANDBOX_BUCKET)
    state = asyncio.run(deck_status(deck, Reporter("status"), fetch=False))
    assert state.cloud == "unreachable"
    assert all(
        row.error and row.error.startswith(f"the state bucket {SANDBOX_BUCKET} of sandbox and dev")
        for row in state.environments
    ), [row.error for row in state.environments]


def test_a_local_cloud_that_is_not_running_is_advised_by_the_kind_of_deck(
    estate: tuple[Deck, World], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSDECK_HOME", str(tmp_path / "no-cloud-here"))
    deck, _ = estate
    live = LiveTools(deck.root, deck.config, load_settings())
    with pytest.raises(CloudUnavailableError) as caught:
        live.check_endpoint()
    assert "opsdeck demo" not in str(caught.value) and "`opsdeck cloud start` starts an empty one" in str(caught.value)

    marker(deck.root).write_text("{}", encoding="utf-8")
    with pytest.raises(CloudUnavailableError, match=r"run `opsdeck demo --reset` to recreate the demo deck"):
        live.check_endpoint()


def _demo_made_at(home: Path, deck: Path) -> None:
    """What `opsdeck demo` leaves: a deck, and where it is in opsdeck's state dir."""
    deck.mkdir(parents=True)
    (deck / "opsdeck.toml").write_text('name = "shop"\n', encoding="utf-8")
    (home / "state").mkdir(parents=True)
    (home / "state" / "demo-deck").write_text(str(deck), encoding="utf-8")


def test_a_directory_that_is_no_deck_points_at_the_demo_deck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, here = tmp_path / "home", tmp_path / "checkout"
    here.mkdir()
    monkeypatch.setenv("OPSDECK_HOME", str(home))
    monkeypatch.delenv("OPSDECK_DECK", raising=False)
    monkeypatch.chdir(here)
    assert find_deck_root(None, ["status"]) == here  # no demo deck yet: Deck.open says there is no opsdeck.toml

    demo = tmp_path / "my demo"
    _demo_made_at(home, demo)
    with pytest.raises(ConfigError) as caught:
        find_deck_root(None, ["status", "--json"])
    assert str(caught.value) == (
        f"no opsdeck.toml in {here} (pass --deck DIR or set OPSDECK_DECK); the demo deck is at {demo}: "
        f"`opsdeck --deck '{demo}' status --json`, or `export OPSDECK_DECK='{demo}'`"
    )
    # A deck named on purpose is not second-guessed; a directory that is a deck is that deck.
    assert find_deck_root(str(here)) == here
    monkeypatch.setenv("OPSDECK_DECK", str(here))
    assert find_deck_root(None) == here
    monkeypatch.delenv("OPSDECK_DECK")
    (here / "opsdeck.toml").write_text('name = "mine"\n', encoding="utf-8")
    assert find_deck_root(None, ["status"]) == here


@pytest.mark.parametrize(
    ("argv", "kept"),
    [
        (["status", "--json"], ["status", "--json"]),
        (["--deck", "", "status"], ["status"]),
        (["plan", "dev", "--deck=", "--json"], ["plan", "dev", "--json"]),
    ],
)
def test_the_advice_repeats_the_command_without_its_deck(argv: list[str], kept: list[str]) -> None:
    assert argv_without_deck(argv) == kept
