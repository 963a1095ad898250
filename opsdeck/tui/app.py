"""The deck: one screen with every environment, its plan, drift and images, and the running operations.

The app receives its Deck; it renders state and sends intents. Everything that touches a subprocess,
the network or git runs in a worker (see operations.py); the first frame comes from the snapshot on
disk, so the deck opens at once and fills in live data as it arrives.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input

from opsdeck.core.estate.deck import Deck
from opsdeck.core.model import DeckState
from opsdeck.core.observe.snapshot import load_snapshot
from opsdeck.errors import OpsdeckError
from opsdeck.tui import keys
from opsdeck.tui.header import DeckHeader
from opsdeck.tui.messages import DetailsLoaded, OpDone, OpEvent, StateLoaded
from opsdeck.tui.operations import Operations
from opsdeck.tui.themes import DEFAULT, load_themes
from opsdeck.tui.widgets.details import EnvPane, ImagesPane, PlanPane
from opsdeck.tui.widgets.envtable import EnvironmentsTable
from opsdeck.tui.widgets.ops import OperationsPane

NARROW_WIDTH = 100
DETAILS_DELAY = 0.12  # seconds the cursor rests on a row before its details load


def settle_heap() -> None:
    """Move what has lived this long (Textual, Rich, boto3's clients and service models) out of the
    garbage collector's sight. A full collection otherwise walks all of it with the GIL held: up to
    1.3 s of frozen UI on 2 busy cores, measured while a plan and a bake ran (bench/tui.py). The
    young generations are collected first (milliseconds), so little garbage is frozen with it; a
    cycle among frozen objects that dies later (a removed operation row) is never reclaimed: some
    kilobytes per operation, against seconds of frozen UI."""
    gc.collect(1)
    gc.freeze()


STANDBY_CHECK_SECONDS = 30  # how often the deck looks for warm standbys past their window


ENGINE_SECONDS = 5.0


def engine_line(status: dict[str, Any]) -> tuple[str, bool]:
    """The header's engine segment from `engine status --json`: (text, whether all is well)."""
    if not status.get("reachable"):
        return f"engine: broker {status.get('broker', '?')} UNREACHABLE", False
    workers = status.get("workers") or []
    waiting = sum(int(q.get("waiting", 0)) for q in status.get("queues") or [])
    busy = sum(len(w.get("jobs") or []) for w in workers)
    text = f"engine {len(workers)} worker{'s' * (len(workers) != 1)}"
    if busy:
        text += f" · {busy} running"
    if waiting:
        text += f" · {waiting} waiting"
    unserved = status.get("unserved") or []
    if unserved:
        text += f" · no worker for {', '.join(unserved)}"
    return text, not unserved


class OpsDeckApp(Operations, App[int]):
    """The deck. ``live=False`` shows only the stored snapshot (no workers): for snapshots and demos."""

    CSS_PATH = "deck.tcss"
    TITLE = "opsdeck"
    BINDINGS: ClassVar[list[BindingType]] = list(keys.BINDINGS)

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
        super().__init__()
        self.deck = deck
        self.read_only = read_only
        self.live = live
        self.clock = clock
        self.on_first_frame = on_first_frame
        self.state: DeckState | None = None
        self.service_filter: str | None = None  # the one service the deck shows and acts on (None: all)
        self.last_done: OpDone | None = None
        self.details: DetailsLoaded | None = None
        self._details_timer: Timer | None = None
        self.themes = load_themes()
        for item in self.themes.values():
            self.register_theme(item)
        wanted = theme or deck.settings.theme
        self.theme = wanted if wanted in self.themes else DEFAULT
        self.set_keymap(keys.keymap(deck.settings.keys))
        self.init_operations()

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield DeckHeader(self.deck.name, id="header")
        yield EnvironmentsTable(clock=self.clock, id="envs")
        with Horizontal(id="details"):
            yield PlanPane("Plan", id="plan")
            yield EnvPane("Environment", id="env")
            yield ImagesPane("Images", id="images")
        yield OperationsPane(id="ops")
        yield Footer(compact=True)

    @property
    def main_screen(self) -> Screen[Any]:
        """The deck's own screen, whatever modal is on top of it."""
        return self.screen_stack[0] if self.screen_stack else self.screen

    def main(self, selector: Any, expect: Any = None) -> Any:
        """A widget of the deck's own screen."""
        screen = self.main_screen
        return screen.query_one(selector, expect) if expect is not None else screen.query_one(selector)

    @property
    def table(self) -> EnvironmentsTable:
        return self.main_screen.query_one(EnvironmentsTable)

    @property
    def header(self) -> DeckHeader:
        return self.main_screen.query_one(DeckHeader)

    def on_mount(self) -> None:
        self.header.read_only = self.read_only
        self.header.envs = len(self.deck.config.environments)
        snapshot = load_snapshot(self.deck.root)
        if snapshot is not None:
            self.show_state(snapshot)
        else:
            self.header.redraw(self.clock())
            self.notify("no snapshot of this deck yet: loading it live", timeout=4)
        self.table.focus()
        if self.on_first_frame is not None:
            self.call_after_refresh(self.on_first_frame, self)
        self.call_after_refresh(settle_heap)  # after the first frame, never before it
        self.set_interval(1.0, self.tick)
        if self.live:
            self.load_state(plans=True, drift=True)
            self.set_interval(self.deck.config.refresh_minutes * 60, self.scheduled_refresh)
            self.watch_engine()

    def watch_engine(self) -> None:
        """With a job broker configured, the header shows the engine: workers, waiting jobs, accounts
        no worker serves, or that the broker does not answer (read every ENGINE_SECONDS)."""
        from opsdeck.core.engine.settings import broker_url

        try:
            if not broker_url(self.deck):
                return
        except OpsdeckError as exc:
            self.notify(str(exc), title="engine", severity="error", timeout=10)
            return
        self.poll_engine()
        self.set_interval(ENGINE_SECONDS, self.poll_engine)

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def poll_engine(self) -> None:
        try:
            from opsdeck.core.engine.status import engine_status  # without the engine's packages: one line

            status = engine_status(self.deck)
        except OpsdeckError as exc:
            line = (f"engine: {exc}", False)
        else:
            line = engine_line(status.to_json())
        self.call_from_thread(self._show_engine, line)

    def _show_engine(self, line: tuple[str, bool]) -> None:
        from textual.css.query import NoMatches

        try:
            self.header.engine = line
            self.header.redraw(self.clock())
        except NoMatches:
            return  # the deck is closing

    def on_resize(self) -> None:
        narrow = self.size.width < NARROW_WIDTH
        (self.screen_stack[0] if self.screen_stack else self.screen).set_class(narrow, "-narrow")
        self.table.set_width(self.size.width, narrow)

    # -- state --------------------------------------------------------------------------------

    def show_state(self, state: DeckState) -> None:
        self.state = state
        self.header.cloud = state.cloud
        self.header.taken_at = state.taken_at
        self.header.ledger = state.ledger
        self.header.envs = len(state.environments)
        self.header.services = len(self.deck.config.services)
        self.header.accounts = len({e.account for e in state.environments if e.account})
        self.header.redraw(self.clock())
        self.table.running = dict(self.running_envs)
        self.table.show(state)
        self.main(ImagesPane).show(list(state.images) if state.images else None)
        self.call_after_refresh(self.load_details)  # its worker starts after this frame is drawn

    def on_state_loaded(self, message: StateLoaded) -> None:
        settle_heap()  # after the first live state, boto3's clients and models live for good
        self.show_state(message.state)
        if message.state.cloud == "unreachable":
            first = next((e.error for e in message.state.environments if e.error), "the cloud does not answer")
            self.notify(first or "", title="cloud unreachable", severity="error", timeout=8)

    @work(thread=True, exclusive=True, group="state", exit_on_error=False)
    def load_state(self, plans: bool = False, drift: bool = False) -> None:
        """Status from the cloud, then (``plans``) a refresh of plans that went stale and (``drift``)
        a drift check where the last one is older than the deck's drift_minutes; never on the UI loop."""
        import asyncio

        from opsdeck.core.events import Reporter
        from opsdeck.core.observe.status import deck_status

        state = asyncio.run(deck_status(self.deck, Reporter("status")))
        self.post_message(StateLoaded(state))
        if (plans or drift) and state.cloud == "reachable":
            from opsdeck.core.engine import registry, runner
            from opsdeck.core.engine.operation import RefreshArgs
            from opsdeck.core.observe.refresh import stale_drift

            what = RefreshArgs(drift_envs=stale_drift(self.deck, self.clock()) if drift else [])
            ran = asyncio.run(runner.run(self.deck, registry.REFRESH, what, Reporter("refresh")))
            self.post_message(StateLoaded(ran.result.state))

    def scheduled_refresh(self) -> None:
        """The deck's own refresh (every refresh_minutes): plans, instances and drift that went stale."""
        self.load_state(plans=True, drift=True)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # Debounced: scrolling or filtering through many rows loads only where the cursor rests.
        if self._details_timer is not None:
            self._details_timer.stop()
        self._details_timer = self.set_timer(DETAILS_DELAY, self.load_details)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_details()  # enter on a row: the table keeps the key, so its event opens the details

    def load_details(self) -> None:
        if not self.screen_stack:  # a timer firing while the deck closes
            return
        env = self.table.selected
        if env is not None:
            self._details(env)

    @work(thread=True, exclusive=True, group="details", exit_on_error=False)
    def _details(self, env: str) -> None:
        from opsdeck.core.drift import store as drift_store
        from opsdeck.core.hygiene.store import env_hygiene
        from opsdeck.core.observe import planning

        try:
            hygiene = env_hygiene(self.deck, env)
        except OpsdeckError:
            hygiene = None  # a broken copy record: the hygiene view names it
        self.post_message(
            DetailsLoaded(env, planning.stored_plan(self.deck, env), drift_store.load(self.deck, env), None, hygiene)
        )

    def on_details_loaded(self, message: DetailsLoaded) -> None:
        if not self.screen_stack:
            return
        from textual.css.query import NoMatches

        self.details = message
        try:
            pane = self.main(PlanPane)
            env_pane = self.main(EnvPane)
        except NoMatches:
            return  # the deck is closing: the details arrived after its panes went
        pane.show(message.env, message.plan, full=self.screen.maximized is pane)
        env_pane.show(self.state.env(message.env) if self.state else None, message.drift, message.hygiene)

    # -- operations feedback ------------------------------------------------------------------

    def on_op_event(self, message: OpEvent) -> None:
        self.main(OperationsPane).feed(message.key, message.event)

    def on_op_done(self, message: OpDone) -> None:
        self.last_done = message
        self.finish_operation(message)
        self.main(OperationsPane).finish(message.key, message.ok, message.summary)
        from opsdeck.tui.requests import RequestsScreen

        if isinstance(self.screen, RequestsScreen):
            self.open_requests(reload_only=True)
        self.notify(message.summary, severity="information" if message.ok else "error", timeout=6 if message.ok else 12)
        self.table.running = dict(self.running_envs)
        self.table.refresh_rows()
        if message.refresh and self.live:
            self.load_state(plans=True)  # what the operation changed is planned again

    def tick(self) -> None:
        from textual.css.query import NoMatches

        try:
            header, table = self.header, self.table
        except NoMatches:
            return  # the app is closing: the timer outlived the widgets
        now = self.clock()
        glass = self.glass
        header.glass = glass
        header.redraw(now)
        table.tick_ages()
        if glass is not None and not glass.active(now):
            self.expire_break_glass()
        if self.live and int(now) % STANDBY_CHECK_SECONDS == 0:
            self.expire_standbys()

    # -- simple actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.read_only and action in keys.MUTATING:
            return None  # shown, visibly disabled
        return True

    def action_filter(self) -> None:
        from textual.widgets import Input  # made on first use: not on the start path

        boxes = self.main_screen.query("#filter")
        if boxes:
            box = boxes.first(Input)
        else:
            box = Input(
                placeholder="filter: name, account, region, service, image, version, drift, protected", id="filter"
            )
            self.main_screen.mount(box, before=self.table)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.table.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = bool(event.value.strip())
            self.table.focus()

    def action_service(self) -> None:
        """Show and act on one service at a time: each in turn, then all of them again."""
        names = self.deck.config.service_names
        if len(names) < 2:
            self.notify("this deck has one service", timeout=2)
            return
        order: list[str | None] = [None, *names]
        self.service_filter = order[(order.index(self.service_filter) + 1) % len(order)]
        self.table.set_service(self.service_filter)
        self.header.service = self.service_filter
        self.header.redraw(self.clock())
        shown = self.service_filter or "every service"
        self.notify(f"showing and acting on {shown}", timeout=2)

    def action_theme(self) -> None:
        from opsdeck.core.estate.settings import save_setting

        names = sorted(self.themes)
        self.theme = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else DEFAULT
        save_setting("theme", self.theme)
        if self.state is not None:
            self.show_state(self.state)
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_details(self) -> None:
        if self._details_timer is not None:
            self._details_timer.stop()
            self.load_details()  # the row under the cursor, not the one the debounce was waiting on
        pane = self.main(PlanPane)
        details = self.details
        if self.screen.maximized is pane:
            self.screen.minimize()
            full = False
        else:
            self.screen.maximize(pane, container=False)
            full = True
        if details is not None:
            pane.show(details.env, details.plan, full=full)

    def action_help(self) -> None:
        from opsdeck.tui.screens import HelpScreen

        self.push_screen(HelpScreen(dict(self.deck.settings.keys or {}), self.read_only))

    def on_unmount(self) -> None:
        self.closing.set()  # a worker waiting for a modal's answer gives up: nothing is confirmed

    async def action_quit(self) -> None:
        self.closing.set()
        self.exit(0)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action in keys.ACTIONS:
            if action.name == "quit" or (self.read_only and action.mutating):
                continue
            yield SystemCommand(action.description, action.help, getattr(self, f"action_{action.name}"))
