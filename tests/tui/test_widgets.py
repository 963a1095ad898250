"""Widgets on the fixture deck (no cloud): the operations pane and the confirmation's keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import LogLine, PhaseFinished, PhaseStarted, Progress
from opsdeck.tui.app import OpsDeckApp
from opsdeck.tui.screens import ConfirmScreen
from tests.tui import fixture


@pytest.fixture()
def deck(tmp_path: Path) -> Deck:
    return Deck.open(fixture.build(tmp_path / "deck"))


def _app(deck: Deck) -> OpsDeckApp:
    return OpsDeckApp(deck, theme="opsdeck-dark", live=False, clock=lambda: fixture.NOW)


def _text(widget: Any) -> str:
    return str(widget.render())


async def test_events_before_the_row_is_mounted_are_drawn(deck: Deck) -> None:
    async with _app(deck).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.deck_screen.operations
        pane.show("drift#1", "drift")  # no pause: the row is not composed yet when events arrive
        pane.feed("drift#1", PhaseStarted("drift", "dev", "refresh"))
        pane.feed("drift#1", Progress("drift", "dev", "refresh", "refreshed 3 of 7", 3, 7))
        pane.feed("drift#1", PhaseFinished("drift", "dev", "refresh", 2.5))
        pane.feed("drift#1", PhaseStarted("drift", "prod", "refresh"))
        await pilot.pause(0.2)
        row = pane.rows["drift#1"]
        assert _text(row.query_one(".op-phases")) == "✓ dev refresh 2.5s · … prod refresh"
        pane.feed("drift#1", LogLine("drift", "prod", "prod: plan skipped, promote is running", "notice"))
        pane.finish("drift#1", True, "drift: every environment is clean")
        await pilot.pause(0.1)
        assert _text(row.query_one(".op-status")).startswith("✓ drift: every environment is clean (")


async def test_a_single_environment_operation_does_not_repeat_its_name(deck: Deck) -> None:
    async with _app(deck).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.deck_screen.operations
        pane.show("promote → dev#1", "promote → dev", "dev")
        await pilot.pause()
        pane.feed("promote → dev#1", PhaseStarted("promote", "dev", "plan"))
        pane.feed("promote → dev#1", PhaseFinished("promote", "dev", "plan", 4.0))
        await pilot.pause()
        assert _text(pane.rows["promote → dev#1"].query_one(".op-phases")) == "✓ plan 4.0s"


async def test_the_newest_operation_stays_in_view(deck: Deck) -> None:
    async with _app(deck).run_test(size=(120, 40)) as pilot:
        pane = pilot.app.deck_screen.operations
        for n in range(6):
            pane.show(f"bake#{n}", f"bake {n}")
            for i in range(8):
                pane.feed(f"bake#{n}", PhaseFinished("bake", None, f"phase {i}", 1.0))
            await pilot.pause()
        pane.scroll_end(animate=False)
        await pilot.pause()
        pane.show("bake#new", "bake new")
        await pilot.pause(0.2)
        assert pane.scroll_y == 0 and pane.rows["bake#new"].region.y < pane.region.bottom


@pytest.mark.parametrize(("typed", "answer"), [(None, True), ("prod", None)])
async def test_y_applies_only_where_no_name_is_asked(deck: Deck, typed: str | None, answer: bool | None) -> None:
    async with _app(deck).run_test(size=(120, 40)) as pilot:
        answers: list[bool | None] = []
        pilot.app.push_screen(ConfirmScreen("promote staging", "plan +2 ~1 -2", typed=typed), answers.append)
        await pilot.pause()
        assert pilot.app.focused is not None and pilot.app.focused.id == ("typed" if typed else "cancel")
        await pilot.press("y")
        await pilot.pause()
        assert answers == ([answer] if answer is not None else [])  # typed: "y" is a letter of the input
        if typed:
            await pilot.press("escape")
            await pilot.pause()
            assert answers == [False]
