"""One process that starts a Textual app, shows its first frame, and exits: `opsdeck DECK` or `bare`.

Run by bench/tui.py; headless, so it measures the app, not a terminal. The parent puts its clock at
spawn in BENCH_SPAWNED; at the first frame this prints the seconds since then (teardown not counted).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def first_frame(app: Any) -> None:
    spawned = float(os.environ.get("BENCH_SPAWNED", "nan"))
    print(f"{time.time() - spawned:.6f}", flush=True)
    app.exit()


def bare() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Footer, Header

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Header()
            yield DataTable()
            yield Footer()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            # the deck's columns at 120 wide: where, a column per service, plan, drift, state
            table.add_columns("ENV", "ACCOUNT/REGION", "WEB", "API", "WORKER", "PLAN", "DRIFT", "STATE")
            for env in ("sandbox", "dev", "staging", "prod"):
                services = ("1.0.1 2/2/2", "1.0.1 2/2/2", "1.0.1 1/1/1")
                table.add_row(env, "111111111111 us-east-1", *services, "+0 ~0 -0", "clean", "idle")
            self.call_after_refresh(first_frame, self)

    Bare().run(headless=True, size=(120, 40))


def opsdeck(deck: str) -> None:
    from opsdeck import wiring
    from opsdeck.core.estate.deck import Deck
    from opsdeck.tui.app import OpsDeckApp

    shown: list[bool] = []

    def frame(app: OpsDeckApp) -> None:
        shown.append(app.deck_screen.state is not None)
        first_frame(app)

    wiring.install()  # the real tools for the decks a benchmark opens
    app = OpsDeckApp(Deck.open(Path(deck)), live=False, on_first_frame=frame)
    app.run(headless=True, size=(120, 40))
    if shown != [True]:
        raise SystemExit("bench: the deck had no stored snapshot to show")


if __name__ == "__main__":
    if sys.argv[1] == "bare":
        bare()
    else:
        opsdeck(sys.argv[2])
