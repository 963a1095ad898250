"""Widgets on the fixture deck (no cloud): the operations pane and the confirmation's keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import LogLine, PhaseFinished, PhaseStarted, Progress
from opsdeck.tui import keys
from opsdeck.tui.app import OpsDeckApp
from opsdeck.tui.screens import ConfirmScreen
from opsdeck.tui.widgets.footer import DeckFooter
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


class _Keys(App[None]):
    """A footer alone, with some of the deck's bindings."""

    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("bake", "promote", "quit")

    def __init__(self, footer: Footer) -> None:
        super().__init__()
        self.footer = footer

    def compose(self) -> ComposeResult:
        yield self.footer


async def _key_classes(footer: Footer) -> dict[str, set[str]]:
    async with _Keys(footer).run_test(size=(80, 3)) as pilot:
        await pilot.pause()
        return {key.key: set(key.classes) for key in pilot.app.screen.query(FooterKey)}


@pytest.mark.parametrize("compact", [True, False])
async def test_the_decks_footer_builds_its_keys_as_textuals_own_does(compact: bool) -> None:
    """The deck's footer sets a key's compact class as it builds it, not as it mounts: every key ends
    with the classes Textual's own footer gives it (the palette's key is compact in both, as Textual
    makes it), so the deck's snapshots are unchanged."""
    ours = await _key_classes(DeckFooter(compact=compact))
    textuals = await _key_classes(Footer(compact=compact))
    assert ours == textuals
    assert {"b", "p", "q"} <= set(ours)
    assert all(("-compact" in classes) == compact for key, classes in ours.items() if key in ("b", "p", "q"))
