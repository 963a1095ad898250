"""A deck builds its tools on first use, once, whichever threads reach for them first: opening a deck to
show its stored snapshot builds none (the deck's first frame, bench/frame.py)."""

from __future__ import annotations

import threading
from pathlib import Path

from opsdeck.core.estate.config import DeckConfig
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.settings import UserSettings
from tests.fakes import FakeTools, fake_tools
from tests.unit.estate import make_estate


def test_a_deck_builds_its_tools_on_first_use_and_only_once(tmp_path: Path) -> None:
    shop, world = make_estate(tmp_path / "shop")
    shop.tools.git.close()  # type: ignore[attr-defined]
    made: list[FakeTools] = []
    gate = threading.Event()
    make = fake_tools(world)

    def slow_factory(root: Path, config: DeckConfig, settings: UserSettings) -> FakeTools:
        gate.wait(5)  # every thread is inside `tools` before the first build ends
        made.append(make(root, config, settings))
        return made[-1]

    deck = Deck.open(shop.root, tools=slow_factory)
    assert made == []  # opened (config, settings, state keys checked): no tool built

    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(deck.tools)) for _ in range(8)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert len(made) == 1
    assert seen == [made[0]] * 8
    assert deck.tools is made[0]
    made[0].git.close()
