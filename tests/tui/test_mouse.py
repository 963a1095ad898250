"""The mouse in the deck (fake tools): a click selects a row, a click on a footer key runs it, the wheel
scrolls a pane; `--no-mouse` and the config's `mouse = false` leave the mouse to the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from textual import events
from textual.widgets._footer import FooterKey

from opsdeck.cli import main
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.settings import load_settings, settings_file
from opsdeck.tui.launch import mouse_wanted
from opsdeck.tui.widgets.details import PlanPane
from tests.fakes import World
from tests.tui.pilot import SIZE, make_app, until


async def test_a_click_selects_a_row_and_a_footer_key_runs(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        table = app.deck_screen.table
        assert table.selected == "sandbox"
        names = [e.name for e in table.visible_rows()]
        await pilot.click(table, offset=(3, 2 + names.index("staging")))  # under its border and header
        await pilot.pause()
        assert table.selected == "staging"
        service = next(k for k in app.screen.query(FooterKey) if k.key == "s")
        await pilot.click(service)
        await pilot.pause()
        assert table.service is not None  # the s key ran: one service shown


async def test_the_wheel_scrolls_a_pane(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    app = make_app(deck, live=False)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.deck_screen.query_one(PlanPane)
        await pilot.pause()
        pane.body.update("\n".join(f"resource {i}" for i in range(200)))
        await until(pilot, lambda: pane.max_scroll_y > 0, timeout=10, what="the long plan laid out")
        assert pane.scroll_y == 0
        for _ in range(3):
            pane.post_message(events.MouseScrollDown(pane, 2, 2, 0, 1, 0, False, False, False))
        await pilot.pause()
        assert pane.scroll_y > 0


def test_no_mouse_and_the_config_leave_the_mouse_to_the_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    before = settings_file().read_bytes() if settings_file().is_file() else None
    try:
        assert mouse_wanted(argparse.Namespace(no_mouse=False)) is load_settings().mouse
        assert mouse_wanted(argparse.Namespace(no_mouse=True)) is False
        assert main(["config", "set", "mouse", "false"]) == 0
        assert load_settings().mouse is False and "mouse = false" in settings_file().read_text()
        assert mouse_wanted(argparse.Namespace(no_mouse=False)) is False
        kept = settings_file().read_bytes()
        assert main(["config", "set", "mouse", "sometimes"]) == 1  # one line, and the file as it was
        assert "mouse" in capfd.readouterr().err and settings_file().read_bytes() == kept
        assert main(["config", "set", "mouse", "true"]) == 0 and load_settings().mouse is True
    finally:
        path: Path = settings_file()
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)
