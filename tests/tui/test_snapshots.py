"""SVG snapshots of the deck: main screen in each theme at 120x40 and 80x24, plan diff, drift, each modal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.screen import Screen

from opsdeck.core.estate.deck import Deck
from opsdeck.core.safety.confirm import Preview
from opsdeck.tui.app import OpsDeckApp
from opsdeck.tui.screens import ConfirmScreen, HelpScreen, ReasonScreen, preview_body
from tests.tui import fixture

THEMES = ("opsdeck-dark", "opsdeck-light", "opsdeck-high-contrast")
SIZES = ((120, 40), (80, 24))


@pytest.fixture()
def deck(tmp_path: Path) -> Deck:
    return Deck.open(fixture.build(tmp_path / "deck"))


def app(deck: Deck, theme: str = "opsdeck-dark", **kw: Any) -> OpsDeckApp:
    return OpsDeckApp(deck, theme=theme, live=False, clock=lambda: fixture.NOW, **kw)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("theme", THEMES)
def test_main_screen(snap_compare: Any, deck: Deck, theme: str, size: tuple[int, int]) -> None:
    assert snap_compare(app(deck, theme), terminal_size=size)


def _keys(*keys: str) -> Any:
    """Press keys, letting the debounced details of the row under the cursor load."""

    async def run(pilot: Any) -> None:
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.3)

    return run


def test_plan_diff(snap_compare: Any, deck: Deck) -> None:
    assert snap_compare(app(deck), terminal_size=(120, 40), run_before=_keys("down", "enter"))


def test_drift_view(snap_compare: Any, deck: Deck) -> None:
    assert snap_compare(app(deck), terminal_size=(120, 40), run_before=_keys("down", "down"))


def test_read_only(snap_compare: Any, deck: Deck) -> None:
    assert snap_compare(app(deck, read_only=True), terminal_size=(120, 40))


def _preview(deck: Deck, env: str, action: str = "promote") -> Preview:
    from opsdeck.core.model import ImageRef

    plan = fixture.dev_plan(deck.root / ".opsdeck" / "plans" / "dev.tfplan")
    from opsdeck.core.safety.confirm import ServiceChange

    return Preview(
        action,
        env,
        deck.env(env).confirmation,
        (ServiceChange("web", ImageRef(fixture.NEW, "1.4.2"), ImageRef(fixture.NEWER, "1.5.0")),),
        plan,
        "release 1.5.0",
    )


def _modal(deck: Deck, screen: Any) -> OpsDeckApp:
    """The deck with ``screen`` on top (or with what ``screen`` makes of the running app)."""
    the_app = app(deck)

    async def show(pilot: Any) -> None:
        if not isinstance(screen, Screen):
            await pilot.pause()  # the deck's screen is mounted: what the factory asks of it is there
        the_app.push_screen(screen if isinstance(screen, Screen) else screen(the_app))
        await pilot.pause()

    the_app.snapshot_before = show  # type: ignore[attr-defined]
    return the_app


COLORS = {"add": "#5FD38D", "del": "#F25F5C"}


def test_confirm_modal(snap_compare: Any, deck: Deck) -> None:
    screen = ConfirmScreen("promote staging", preview_body(_preview(deck, "staging"), COLORS))
    the_app = _modal(deck, screen)
    assert snap_compare(the_app, terminal_size=(120, 40), run_before=the_app.snapshot_before)  # type: ignore[attr-defined]


def test_typed_confirm_modal_for_production(snap_compare: Any, deck: Deck) -> None:
    screen = ConfirmScreen(
        "rollback prod  (PRODUCTION)",
        preview_body(_preview(deck, "prod", "rollback"), COLORS),
        typed="prod",
        danger=True,
    )
    the_app = _modal(deck, screen)
    assert snap_compare(the_app, terminal_size=(120, 40), run_before=the_app.snapshot_before)  # type: ignore[attr-defined]


def test_break_glass_modal(snap_compare: Any, deck: Deck) -> None:
    screen = ReasonScreen("BREAK-GLASS · prod", "Elevated credentials for prod from your keyring, for 30 minutes. Why?")
    the_app = _modal(deck, screen)
    assert snap_compare(the_app, terminal_size=(120, 40), run_before=the_app.snapshot_before)  # type: ignore[attr-defined]


def test_nuke_modal(snap_compare: Any, deck: Deck) -> None:
    from rich.text import Text

    body = Text(
        "sandbox (account 123456789012): destroy 7 managed resources and delete 2 unmanaged\n\n"
        "  destroy  module.web.aws_vpc.this\n  delete   ec2:instance i-0f00dfeedbeef0002"
    )
    screen = ConfirmScreen(
        "nuke and rebuild sandbox", body, typed="sandbox", danger=True, confirm_label="Nuke and rebuild"
    )
    the_app = _modal(deck, screen)
    assert snap_compare(the_app, terminal_size=(120, 40), run_before=the_app.snapshot_before)  # type: ignore[attr-defined]


def test_help_modal(snap_compare: Any, deck: Deck) -> None:
    the_app = _modal(deck, HelpScreen({}, read_only=False))
    assert snap_compare(the_app, terminal_size=(120, 40), run_before=the_app.snapshot_before)  # type: ignore[attr-defined]


def test_requests_view(snap_compare: Any, deck: Deck) -> None:
    from opsdeck.tui.requests import RequestsScreen

    def row(rid: str, env: str, needed: int, approvals: list[dict[str, Any]], status: str) -> dict[str, Any]:
        return {
            "id": rid,
            "environment": env,
            "action": "promote",
            "plan_sha256": "3f9a1c0d2b7e4f6a8c1d0e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b",
            "requested_by": "Alice <alice@shop.example>",
            "reason": "release 1.5.0",
            "approvals": approvals,
            "needed": needed,
            "status": status,
            "created_at": fixture.NOW - 600,
            "services": [
                {
                    "name": "web",
                    "from_image": fixture.NEW,
                    "to_image": fixture.NEWER,
                    "version": "1.5.0",
                    "from_version": "1.4.2",
                }
            ],
            "summary": {"add": 2, "change": 1, "destroy": 2},
            "diff": [
                "~ module.web.aws_launch_template.this  (replace)",
                f"    image_id: {fixture.NEW} → {fixture.NEWER}",
            ],
        }

    rows = [
        row(
            "r20261125-7f3a9c",
            "prod",
            2,
            [{"by": "bob@shop.example", "key": "SHA256:bob", "at": fixture.NOW, "valid": True}],
            "pending",
        ),
        row(
            "r20261125-1c2d3e",
            "staging",
            1,
            [
                {
                    "by": "carol@shop.example",
                    "key": "SHA256:x",
                    "at": fixture.NOW,
                    "valid": False,
                    "problem": "signed by bob@shop.example, not by carol",
                }
            ],
            "pending",
        ),
    ]
    the_app = _modal(deck, lambda a: RequestsScreen(rows, a.ctx, a.deck_screen.operations))
    assert snap_compare(the_app, terminal_size=(120, 40), run_before=the_app.snapshot_before)  # type: ignore[attr-defined]
