"""Driving the deck key by key (Textual's pilot): waiting for what it shows, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.tui import app as app_module
from opsdeck.tui.app import OpsDeckApp
from opsdeck.tui.deck_screen import DeckScreen
from opsdeck.tui.screens import ConfirmScreen
from opsdeck.tui.widgets.ops import OperationsPane

SIZE = (120, 40)


class TellingApp(OpsDeckApp):
    """The deck, keeping every notice it shows: a notice times out on screen, and a loaded machine can
    be slower than its timeout, so a test reads what was said, not what is still up."""

    CSS_PATH = str(Path(app_module.__file__).parent / OpsDeckApp.CSS_PATH)  # type: ignore[operator]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.told: list[str] = []

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.told.append(str(message))
        super().notify(message, *args, **kwargs)


def make_app(deck: Deck, **kw: Any) -> OpsDeckApp:
    return TellingApp(deck, theme="opsdeck-dark", **kw)


async def until(pilot: Any, predicate: Callable[[], bool], timeout: float = 240.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def deck_screen(app: OpsDeckApp) -> DeckScreen:
    return app.deck_screen


def operations(app: OpsDeckApp) -> OperationsPane:
    return app.deck_screen.operations


async def confirm_dialog(pilot: Any, app: OpsDeckApp, typed: str | None = None) -> ConfirmScreen:
    """Wait for the confirmation modal, let it finish mounting, and confirm it."""
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
    screen = app.screen
    assert isinstance(screen, ConfirmScreen)

    def laid_out() -> bool:
        buttons = screen.query("#ok")
        return bool(buttons) and buttons.first().region.area > 0

    await until(pilot, laid_out, timeout=10, what="the modal laid out")
    assert screen.typed == typed
    if typed:
        await pilot.press(*typed, "enter")
    else:
        await pilot.click("#ok")
    await until(pilot, lambda: app.screen is not screen, timeout=10, what="the modal to close")
    return screen


async def select(pilot: Any, app: OpsDeckApp, env: str) -> None:
    table = app.deck_screen.table
    names = [e.name for e in table.visible_rows()]
    table.move_cursor(row=names.index(env))
    await pilot.pause()
    assert table.selected == env


async def done(pilot: Any, app: OpsDeckApp, count: int, timeout: float = 240.0) -> OperationsPane.Finished:
    """Operation number ``count`` of this deck has ended (and nothing runs)."""
    ops = operations(app)
    await until(
        pilot,
        lambda: ops.last is not None and ops.last.key.endswith(f"#{count}") and not ops.running,
        timeout=timeout,
        what=f"operation #{count} to end",
    )
    assert ops.last is not None
    return ops.last


def notices(app: OpsDeckApp) -> list[str]:
    """Every notice the deck showed (a TellingApp), else the ones still on screen."""
    told = getattr(app, "told", None)
    return list(told) if told is not None else [str(n.message) for n in app._notifications]
