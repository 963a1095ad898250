"""The README's screenshot (docs/deck.svg): the real demo deck, live, at 120x40.

    .venv/bin/python scripts/screenshot.py [DECK]      (default: the demo deck `opsdeck demo` made)

Opens the deck as a person would (live: status, plans, drift from the local cloud), waits until the
live state is in, selects an environment with a pending change if there is one, and saves the screen.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from opsdeck import wiring
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.demo_deck import last_demo_deck
from opsdeck.tui.app import OpsDeckApp

OUT = Path(__file__).resolve().parents[1] / "docs" / "deck.svg"


async def shoot(root: Path) -> None:
    wiring.install()
    app = OpsDeckApp(Deck.open(root), live=True)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.deck_screen
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (screen.state and all(e.plan for e in screen.state.environments)):
            await pilot.pause(0.5)
        rows = [e.name for e in screen.table.visible_rows()]
        changing = [e.name for e in screen.state.environments if e.plan and e.plan.has_changes] if screen.state else []
        busy = (changing or rows[1:])[0]
        screen.table.move_cursor(row=rows.index(busy))
        await pilot.pause(1.0)
        app.save_screenshot(filename=OUT.name, path=str(OUT.parent))
    print(f"saved {OUT}")


if __name__ == "__main__":
    deck = Path(sys.argv[1]) if len(sys.argv) > 1 else last_demo_deck()
    if deck is None:
        raise SystemExit("no demo deck yet: run `opsdeck demo` first")
    asyncio.run(shoot(deck))
