"""A change key to its confirmation on screen, on the demo deck opened live (in process, Textual's pilot).

`u` on dev (its newest web image not deployed yet; a second web image is baked first when needed): from the
key press to the confirmation laid out, with the deploy planned ahead by the idle deck (the deck's own
pre-planner, waited for, not timed), and without a pre-made plan (dropped just before the key: the key
plans, shows and gates as it did before). Each confirmation is answered "no": nothing is applied, and an
idle deck keeps its pre-made plan for the next run. `python -m bench.run --only keys`; results also in
bench/results/keys.json.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

KEY_TIMEOUT = 300.0


async def _until(pilot: Any, predicate: Any, what: str, timeout: float = KEY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        await pilot.pause(0.01)


async def _keys(deck_dir: Path, runs: int) -> dict[str, list[float]]:
    from opsdeck import wiring
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.release import preplan
    from opsdeck.tui.app import OpsDeckApp
    from opsdeck.tui.screens import ConfirmScreen

    wiring.install()
    deck = Deck.open(deck_dir)
    app = OpsDeckApp(deck, live=True)
    found: dict[str, list[float]] = {"ahead": [], "planning": []}
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.deck_screen
        releases = screen.releases

        def settled() -> bool:
            return releases._idle() and not releases._planning_ahead and not releases._ahead_due

        def shown() -> bool:
            modal = app.screen
            return isinstance(modal, ConfirmScreen) and any(b.region.area > 0 for b in modal.query("#ok"))

        await _until(pilot, lambda: "dev" in [e.name for e in screen.table.visible_rows()], "the deck's rows")
        names = [e.name for e in screen.table.visible_rows()]
        screen.table.move_cursor(row=names.index("dev"))
        for with_plan in [True] * runs + [False] * runs:
            await _until(pilot, lambda: screen.state is not None and settled(), "the deck to be idle")
            if with_plan and preplan.stored(deck, "dev", "deploy") is None:
                raise SystemExit("bench: the idle deck made no plan of dev's deploy")
            if not with_plan:
                preplan.forget(deck, "dev")
            t0 = time.perf_counter()
            await pilot.press("u")
            await _until(pilot, shown, "the confirmation")
            found["ahead" if with_plan else "planning"].append(time.perf_counter() - t0)
            await pilot.press("escape")  # "no": nothing changes
            await _until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the confirmation to close")
            await _until(pilot, lambda: not screen.operations.busy, "the declined release to end")
    return found


def measure(deck: Path, runs: int, newer_web: Any) -> dict[str, Any]:
    newer_web()
    found = asyncio.run(_keys(deck, runs))
    ahead, planning = statistics.median(found["ahead"]), statistics.median(found["planning"])
    return {
        "ahead_ms": ahead * 1000,
        "planning_ms": planning * 1000,
        "samples_ahead_ms": [round(s * 1000) for s in found["ahead"]],
        "samples_planning_ms": [round(s * 1000) for s in found["planning"]],
        "rows": [
            (
                "`u` on dev to its confirmation on screen, planned ahead by the idle deck vs not",
                f"{ahead * 1000:.0f} ms",
                f"{planning * 1000:.0f} ms",
                f"{ahead / planning:.3f}×",
                "≤ 300 ms",
            )
        ],
    }
