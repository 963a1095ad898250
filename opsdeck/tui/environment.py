"""The environment controller: f, d, n and h — refresh, drift, nuke-and-rebuild and hygiene — and the
deck's live state: read from the cloud when the deck opens and every refresh_minutes after.

Refresh, drift and nuke run their core operations from the registry in the operations pane (core's
operation types are imported on the first key press, not on the start path); the state comes back as a
StateLoaded message; the hygiene view reads and scans off the UI loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import work
from textual.message import Message

from opsdeck.errors import OpsdeckError
from opsdeck.tui import keys
from opsdeck.tui.controller import Controller, DeckContext

if TYPE_CHECKING:
    from opsdeck.core.engine.operation import Ran
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.hygiene.store import EnvHygiene
    from opsdeck.core.model import DeckState


def scan(deck: Deck, env: str) -> tuple[list[str], EnvHygiene | None]:
    """Orphans everywhere the deck knows and every configured trail (read-only), kept for the panes; then
    ``env``'s hygiene. Whatever went wrong is said (problems), and the scan still ends."""
    from datetime import timedelta

    from opsdeck.core.events import Reporter
    from opsdeck.core.hygiene import store
    from opsdeck.core.hygiene.orphans import find_orphans
    from opsdeck.core.hygiene.trail import read_trail, trail_envs

    problems: list[str] = []
    try:
        try:
            store.save_orphans(deck, asyncio.run(find_orphans(deck, Reporter("orphans"))))
        except OpsdeckError as exc:
            problems.append(f"orphans: {exc}")
        if trail_envs(deck):
            try:
                reports = asyncio.run(read_trail(deck, None, timedelta(hours=24), Reporter("trail")))
                problems += [f"trail of {r.name} not read: {r.error}" for r in reports if r.error]
            except OpsdeckError as exc:
                problems.append(f"trail: {exc}")
        return problems, store.env_hygiene(deck, env)
    except Exception as exc:  # the view stops saying "scanning" whatever happened
        return [*problems, f"hygiene scan: {type(exc).__name__}: {' '.join(str(exc).split())}"], None


class EnvironmentController(Controller):
    BINDINGS = keys.bindings("nuke", "refresh", "drift", "hygiene")

    @dataclass
    class StateLoaded(Message):
        """A new state of the deck, read from the cloud (after a refresh: with new plans and drift)."""

        state: DeckState

    def __init__(self, ctx: DeckContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.scanning = False  # one hygiene scan at a time, whichever view asked for it

    # -- the live state ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="state", exit_on_error=False)
    def load_state(self, plans: bool = False, drift: bool = False) -> None:
        """Status from the cloud, then (``plans``) a refresh of plans that went stale and (``drift``) a
        drift check where the last one is older than the deck's drift_minutes. A thread of its own: the
        status reads boto3 and git inline."""
        from opsdeck.core.engine import registry, runner
        from opsdeck.core.engine.operation import RefreshArgs
        from opsdeck.core.events import Reporter
        from opsdeck.core.observe.refresh import stale_drift
        from opsdeck.core.observe.status import deck_status

        state = asyncio.run(deck_status(self.deck, Reporter("status")))
        self.post_message(self.StateLoaded(state))
        if (plans or drift) and state.cloud == "reachable":
            what = RefreshArgs(drift_envs=stale_drift(self.deck, self.ctx.clock()) if drift else [])
            ran = asyncio.run(runner.run(self.deck, registry.REFRESH, what, Reporter("refresh")))
            self.post_message(self.StateLoaded(ran.result.state))

    def scheduled_refresh(self) -> None:
        """The deck's own refresh (every refresh_minutes): plans, instances and drift that went stale."""
        self.load_state(plans=True, drift=True)

    # -- the keys ---------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        if not self.ctx.live:
            return
        from opsdeck.core.engine.operation import RefreshArgs

        def summary(ran: Ran[Any]) -> str:
            workers = sorted({w for w in ran.result.workers.values() if w})
            seconds = ran.result.seconds
            return f"refreshed {len(ran.result.plans)} plans in {seconds:.1f}s" + (
                f" on {', '.join(workers)}" if workers else ""
            )

        self.run("refresh", None, "refresh", RefreshArgs(with_drift=False), summary)

    def action_drift(self) -> None:
        from opsdeck.core.engine.operation import EnvsArgs

        def summary(ran: Ran[Any]) -> str:
            drifted = [r.name for r in ran.result if r.status == "drifted"]
            return f"drift: {', '.join(drifted)} drifted" if drifted else "drift: every environment is clean"

        self.run("drift", None, "drift-check", EnvsArgs(), summary)

    def action_nuke(self) -> None:
        env = self.selected()
        if env is None or self.refused_read_only():
            return
        if not self.deck.env(env).sandbox:
            self.notify(
                f"nuke-and-rebuild is only for sandbox environments; {env} is not one", severity="error", timeout=8
            )
            return
        from opsdeck.core.engine.operation import EnvArgs
        from opsdeck.tui.confirm import Confirmations

        def summary(ran: Ran[Any]) -> str:
            r, on = ran.result, f" on {ran.worker}" if ran.worker else ""
            return (
                f"nuked and rebuilt {env}: -{r.destroyed} managed, -{r.unmanaged_deleted} strays, "
                f"+{r.created} ({r.seconds:.0f}s{on})"
            )

        self.run(f"nuke {env}", env, "nuke", EnvArgs(env), summary, confirm=Confirmations(self.app, self.ctx).nuke)

    # -- hygiene: recovered copies, orphans and their cost, changes outside the pipeline ----------------

    def action_hygiene(self) -> None:
        env = self.table.selected
        if env is None:
            self.notify("no environment selected", timeout=3)
            return
        self._open_hygiene(env)

    @work(exclusive=True, group="hygiene", exit_on_error=False)
    async def _open_hygiene(self, env: str) -> None:
        from opsdeck.core.hygiene.store import env_hygiene
        from opsdeck.tui.hygiene import HygieneScreen

        hygiene = await asyncio.to_thread(env_hygiene, self.deck, env)
        screen = self.app.screen
        if isinstance(screen, HygieneScreen) and screen.hygiene.env == hygiene.env:
            screen.scanned(hygiene)
        elif not isinstance(screen, HygieneScreen):
            tab = "orphans" if hygiene.orphans and not hygiene.copies else "copies"
            self.app.push_screen(HygieneScreen(hygiene, self.rescan, tab))

    def rescan(self, env: str) -> bool:
        """Start a scan unless one runs (a closed and reopened view does not start a second)."""
        if self.scanning:
            self.notify("a hygiene scan is already running", timeout=3)
            return False
        self.scanning = True
        self._scan(env)
        return True

    @work(exclusive=True, group="hygiene-scan", exit_on_error=False)
    async def _scan(self, env: str) -> None:
        """The scan's result goes to the view it was asked from, if that view is still open (never a new
        one on top of whatever is there now); the environment pane reloads either way."""
        from opsdeck.tui.hygiene import HygieneScreen
        from opsdeck.tui.widgets.details import Details

        try:
            problems, hygiene = await asyncio.to_thread(scan, self.deck, env)
        finally:
            self.scanning = False
        for problem in problems:
            self.notify(problem, severity="error", timeout=10)
        for screen in self.app.screen_stack:
            if isinstance(screen, HygieneScreen) and screen.hygiene.env == env:
                screen.scanned(hygiene or screen.hygiene)
        self.query_one(Details).load(self.table.selected)
