"""The deck shows freezes and sandbox lifetimes (fixture deck, fixed clock, no cloud): the frozen row and
the header, the time left on a sandbox's row, the notices at 2 hours and 30 minutes left, and break-glass
offered on a frozen row that is not protected."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.model import DeckState
from opsdeck.tui import app as app_module
from opsdeck.tui.app import OpsDeckApp
from opsdeck.tui.screens import ReasonScreen
from tests.tui import fixture
from tests.tui.pilot import select, until

NOW = fixture.NOW


class Recording(OpsDeckApp):
    """The deck, keeping each notice it shows (what a person would read on screen)."""

    CSS_PATH = str(Path(app_module.__file__).parent / OpsDeckApp.CSS_PATH)  # type: ignore[operator]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notices: list[tuple[str, str]] = []

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.notices.append((message, str(kwargs.get("severity", "information"))))
        super().notify(message, *args, **kwargs)


def _deck(tmp_path: Path) -> Deck:
    root = fixture.build(tmp_path / "deck")
    state = fixture.state()
    rows = []
    for env in state.environments:
        if env.name == "dev":
            env = replace(env, freeze={"by": "alice@shop.example", "reason": "black friday", "until": NOW + 3 * 3600})
        if env.name == "sandbox":
            env = replace(env, lifetime={"ttl_hours": 8.0, "expires_at": NOW + 90 * 60, "built_at": NOW - 6.5 * 3600})
        rows.append(env)
    (root / ".opsdeck" / "snapshot.json").write_text(json.dumps(replace(state, environments=tuple(rows)).to_json()))
    assert DeckState.from_json(json.loads((root / ".opsdeck" / "snapshot.json").read_text())).env("dev")
    return Deck.open(root)


async def test_the_deck_shows_a_freeze_and_the_time_left_and_warns_before_a_sandbox_ends(tmp_path: Path) -> None:
    clock = [NOW]
    app = Recording(_deck(tmp_path), theme="opsdeck-dark", live=False, clock=lambda: clock[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.deck_screen
        table = screen.table
        assert str(table.get_cell("dev", "op")) == "frozen 3h"
        assert "❄" in str(table.get_cell("dev", "env")) and "❄" not in str(table.get_cell("staging", "env"))
        assert str(table.get_cell("sandbox", "op")) == "⏳ 1h30m"
        assert "❄ FROZEN dev" in str(screen.header.render())
        screen.tick()
        assert app.notices[-1] == ("sandbox's lifetime ends in 1h30m: `opsdeck sandbox extend` keeps it", "warning")
        count = len(app.notices)
        screen.tick()
        assert len(app.notices) == count  # once
        clock[0] = NOW + 65 * 60
        screen.tick()
        assert app.notices[-1] == ("sandbox's lifetime ends in 25m: `opsdeck sandbox extend` keeps it", "error")
        assert str(table.get_cell("sandbox", "op")) == "⏳ 25m"
        clock[0] = NOW + 3 * 3600 + 1  # the freeze lifts itself at its end, before any refresh
        screen.tick()
        assert "FROZEN" not in str(screen.header.render())
        assert str(table.get_cell("dev", "op")) == "ready" and "❄" not in str(table.get_cell("dev", "env"))


async def test_break_glass_is_offered_on_a_frozen_row_and_refused_on_a_plain_one(tmp_path: Path) -> None:
    app = Recording(_deck(tmp_path), theme="opsdeck-dark", live=False, clock=lambda: NOW)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "sandbox")  # neither protected nor frozen
        await pilot.press("!")
        await until(pilot, lambda: bool(app.notices), timeout=10, what="the refusal")
        assert app.notices[-1] == (
            "sandbox is not protected; break-glass is only for protected (or frozen) environments",
            "warning",
        )
        assert not isinstance(app.screen, ReasonScreen)
        await select(pilot, app, "dev")  # frozen: break-glass passes its freeze
        await pilot.press("!")
        await until(pilot, lambda: isinstance(app.screen, ReasonScreen), timeout=10, what="the reason prompt")
        await pilot.press("escape")


async def test_a_failure_to_ship_the_audit_log_is_a_warning_that_outlives_the_operation(tmp_path: Path) -> None:
    from opsdeck.core.events import LogLine
    from opsdeck.tui.widgets.ops import OperationsPane

    app = Recording(_deck(tmp_path), theme="opsdeck-dark", live=False, clock=lambda: NOW)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(OperationsPane)
        unshipped = "audit log not shipped: cannot read the audit bucket acme-audit (NoSuchBucket); 2 records wait"
        pane.post_message(OperationsPane.Progressed("promote dev", LogLine("promote", "dev", unshipped, "notice")))
        pane.post_message(
            OperationsPane.Progressed("promote dev", LogLine("promote", "dev", "the demo deck is ready", "notice"))
        )
        await pilot.pause()
        assert (unshipped, "warning") in app.notices
        assert not [n for n in app.notices if "demo deck" in n[0]]  # other notices stay in the pane
