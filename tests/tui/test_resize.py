"""The deck reflows on every resize, from 80x24 to 250x70 and back, keeping the selection, the filter,
the service shown and an open dialog (fake tools). A resize reaches a screen's own handler before
Textual lays the screen out again, so the width to plan for is the event's, never the screen's size."""

from __future__ import annotations

from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.tui.app import OpsDeckApp
from opsdeck.tui.widgets.details import ImagesPane
from tests.fakes import World
from tests.tui.pilot import make_app, select

MUST_SHOW = ("env", "plan", "drift", "op")  # ENV, PLAN, DRIFT and STATE, at any width


def columns(app: OpsDeckApp) -> list[str]:
    return [key for key, _, _ in app.deck_screen.table._layout]


def fits(app: OpsDeckApp) -> bool:
    table = app.deck_screen.table
    return sum(c.get_render_width(table) for c in table.ordered_columns) <= app.size.width


def bottom_line(app: OpsDeckApp) -> str:
    return "".join(segment.text for segment in app.screen._compositor.render_strips()[-1])


async def resize(pilot: Any, width: int, height: int) -> None:
    await pilot.resize_terminal(width, height)
    await pilot.pause()
    await pilot.pause()


async def test_the_table_and_panes_follow_every_resize(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    app = make_app(deck, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "staging")
        for width, height in ((80, 24), (200, 60), (80, 24), (250, 70), (100, 30), (120, 40), (80, 24)):
            await resize(pilot, width, height)
            shown = columns(app)
            assert all(key in shown for key in MUST_SHOW), (width, shown)
            assert fits(app), (width, shown)
            per_service = any(key.startswith("svc:") for key in shown)
            assert per_service if width >= 200 else (per_service or width <= 100), (width, shown)
            assert not (per_service and width <= 100), (width, shown)
            assert app.deck_screen.query_one(ImagesPane).display is (width >= 100), width
            assert app.deck_screen.table.selected == "staging"
            assert bottom_line(app).endswith("^p palette "), bottom_line(app)  # no key text left beside it


async def test_a_resize_keeps_the_filter_the_service_and_an_open_dialog(shop: tuple[Deck, World]) -> None:
    deck, _ = shop
    app = make_app(deck, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")  # the first service alone
        service = app.deck_screen.table.service
        assert service is not None
        await pilot.press("slash", *"dev", "enter")
        filtered = [e.name for e in app.deck_screen.table.visible_rows()]
        await pilot.press("question_mark")  # the keys' help, a modal
        modal = type(app.screen)
        for width, height in ((80, 24), (220, 60), (80, 24)):
            await resize(pilot, width, height)
            assert type(app.screen) is modal
            assert app.deck_screen.table.service == service
            assert [e.name for e in app.deck_screen.table.visible_rows()] == filtered
            assert all(key in columns(app) for key in MUST_SHOW)


async def test_the_header_fits_what_is_planned_ahead_after_every_warning(shop: tuple[Deck, World]) -> None:
    """What the idle deck planned ahead goes last on the header's one line, as much of it as fits: it never
    pushes the read-only mark (or a freeze, or a break-glass) off the line, at any width."""
    deck, _ = shop
    app = make_app(deck, live=False, read_only=True)
    async with app.run_test(size=(200, 40)) as pilot:
        header = app.deck_screen.header
        header.ahead = {env: ["promote", "deploy", "rollback"] for env in ("sandbox", "dev", "staging", "prod")}
        header.frozen = {"prod": header.now + 3600}
        await pilot.pause()
        wide = str(header.render())
        assert "planned ahead: sandbox p u r, dev p u r, staging p u r, prod p u r" in wide
        assert wide.index("[READ-ONLY]") < wide.index("planned ahead")
        shown = []
        for width in (150, 120, 100, 80):
            await resize(pilot, width, 30)
            line = str(header.render())
            assert "❄ FROZEN prod" in line and "[READ-ONLY]" in line, (width, line)
            assert len(line) <= width, (width, line)
            shown.append(line[line.index("[READ-ONLY]") + len("[READ-ONLY]") :])
        assert shown == [" · ahead: 4 envs", "", "", ""]
        assert "4 envs · reachable" in line and "services" not in line  # at 80 the counts went first
