"""The deck app: one screen with every environment (deck_screen.py), the modals over it, the themes, the
key map and the command palette.

The app receives its Deck and renders it; everything that touches a subprocess, the network or git runs
in a worker of the part that asked for it (the controllers, the operations pane, the panes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.screen import Screen

from opsdeck.core.estate.deck import Deck
from opsdeck.tui import keys
from opsdeck.tui.controller import DeckContext
from opsdeck.tui.deck_screen import DeckScreen, settle_heap
from opsdeck.tui.themes import DEFAULT, load_themes


class OpsDeckApp(App[int]):
    """The deck. ``live=False`` shows only the stored snapshot (no workers): for snapshots and demos."""

    CSS_PATH = "deck.tcss"
    TITLE = "opsdeck"
    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("theme", "help", "quit")

    def __init__(
        self,
        deck: Deck,
        *,
        read_only: bool = False,
        theme: str | None = None,
        live: bool = True,
        clock: Callable[[], float] = time.time,
        on_first_frame: Callable[[OpsDeckApp], None] | None = None,
    ) -> None:
        # What the imports and the deck's opening made lives as long as the app: out of the collector's
        # sight before the first frame, whose allocations otherwise set off a full collection of it
        # (~11 ms of a ~240 ms first frame, bench/frame.py).
        settle_heap()
        super().__init__()
        self.ctx = DeckContext(deck, read_only, live, clock)
        self.on_first_frame = on_first_frame
        self.themes = load_themes()
        for item in self.themes.values():
            self.register_theme(item)
        wanted = theme or deck.settings.theme
        self.theme = wanted if wanted in self.themes else DEFAULT
        self.set_keymap(keys.keymap(deck.settings.keys))

    @property
    def deck(self) -> Deck:
        return self.ctx.deck

    def refresh_css(self, animate: bool = True) -> None:
        if self.screen_stack:  # something has been styled: Textual's refresh (a new stylesheet, parsed whole)
            super().refresh_css(animate)
            return
        # The theme chosen as the app is made (its watcher asks for this before any screen exists): the
        # stylesheet takes the theme's variables and parses its sources once with them. Textual's refresh
        # would parse them in a new stylesheet, and its own would parse them all again as the first screen
        # is styled (~2 ms of the deck's first frame).
        self.stylesheet.set_variables(self.get_css_variables())
        self.stylesheet.parse()

    def get_default_screen(self) -> Screen[Any]:
        return DeckScreen(self.ctx, self.on_first_frame)

    @property
    def deck_screen(self) -> DeckScreen:
        """The deck's own screen, whatever modal is on top of it."""
        screen = self.screen_stack[0]
        assert isinstance(screen, DeckScreen)  # get_default_screen made it
        return screen

    def action_theme(self) -> None:
        from opsdeck.core.estate.settings import save_setting

        names = sorted(self.themes)
        self.theme = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else DEFAULT
        save_setting("theme", self.theme)
        screen = self.deck_screen
        screen.state = screen.state  # the table's cells take the new theme's colours
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_help(self) -> None:
        from opsdeck.tui.screens import HelpScreen

        self.push_screen(HelpScreen(dict(self.deck.settings.keys or {}), self.ctx.read_only))

    def on_unmount(self) -> None:
        self.ctx.closing.set()  # a worker waiting for a modal's answer gives up: nothing is confirmed

    async def action_quit(self) -> None:
        self.ctx.closing.set()
        self.exit(0)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action in keys.ACTIONS:
            if action.name == "quit" or (self.ctx.read_only and action.mutating):
                continue
            run = partial(self.run_action, action.name, self.deck_screen.key_owner(action.name))
            yield SystemCommand(action.description, action.help, run)
