"""Fixtures of the deck's pilot tests: the shop estate on the fake tools (milliseconds to make), with a
stored snapshot so the deck opens on it, and the team of two clones (tests/unit/team.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.observe.status import deck_status
from tests.fakes import World
from tests.unit.estate import make_estate
from tests.unit.team import team as team


@pytest.fixture()
def shop(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    """The shop deck, applied on the fake cloud, without approvals (a change to staging runs at once),
    and its status stored as the snapshot the deck's first frame shows."""
    deck, world = make_estate(tmp_path / "shop")
    asyncio.run(deck_status(deck, Reporter("status")))
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]
