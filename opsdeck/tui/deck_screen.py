"""The deck's screen: every environment, its plan, drift and images, and the running operations.

The layout sits inside the two controllers that own the deck's keys (releases: b p u r !; environments:
f d n h); the screen owns the view's own (a requests, / filter, s service, enter details). UI state lives
in reactives: the deck's state and the service shown, bound to the widgets that show them. The first
frame comes from the snapshot on disk, so the deck opens at once and fills in live data as it arrives.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import ActiveBinding, BindingType
from textual.dom import DOMNode
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Input

from opsdeck.core.observe.snapshot import load_snapshot
from opsdeck.tui import keys
from opsdeck.tui.controller import DeckContext, TellsFailures
from opsdeck.tui.environment import EnvironmentController
from opsdeck.tui.header import DeckHeader
from opsdeck.tui.lifetimes import LifetimeWatch
from opsdeck.tui.releases import ReleasesController
from opsdeck.tui.widgets.details import Details
from opsdeck.tui.widgets.envtable import EnvironmentsTable
from opsdeck.tui.widgets.footer import DeckFooter
from opsdeck.tui.widgets.ops import OperationsPane

if TYPE_CHECKING:
    from opsdeck.core.model import DeckState

NARROW_WIDTH = 100


def settle_heap() -> None:
    """Move what has lived this long (Textual, Rich, boto3's clients and service models) out of the
    garbage collector's sight. A full collection otherwise walks all of it with the GIL held: up to
    1.3 s of frozen UI on 2 busy cores, measured while a plan and a bake ran (bench/tui.py). The
    young generations are collected first (milliseconds), so little garbage is frozen with it; a
    cycle among frozen objects that dies later (a removed operation row) is never reclaimed: some
    kilobytes per operation, against seconds of frozen UI."""
    gc.collect(1)
    gc.freeze()


class DeckScreen(TellsFailures, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = keys.bindings("requests", "details", "filter", "service")

    state: reactive[DeckState | None] = reactive(None, init=False, always_update=True)
    service: reactive[str | None] = reactive(None)  # the one service the deck shows and acts on (None: all)

    def __init__(self, ctx: DeckContext, on_first_frame: Callable[[Any], None] | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.on_first_frame = on_first_frame
        self.lifetimes = LifetimeWatch()  # the sandbox lifetime notices given

    def compose(self) -> ComposeResult:
        with ReleasesController(self.ctx, id="releases"), EnvironmentController(self.ctx, id="environments"):
            yield DeckHeader(self.ctx.deck.name, id="header").data_bind(DeckScreen.service)
            yield EnvironmentsTable(clock=self.ctx.clock, id="envs").data_bind(DeckScreen.service)
            yield Details(self.ctx.deck, id="details").data_bind(DeckScreen.state)
            yield OperationsPane(id="ops")
        yield DeckFooter(compact=True)  # the screen's own child: it stays beside a maximized pane

    @property
    def header(self) -> DeckHeader:
        return self.query_one(DeckHeader)

    @property
    def table(self) -> EnvironmentsTable:
        return self.query_one(EnvironmentsTable)

    @property
    def details(self) -> Details:
        return self.query_one(Details)

    @property
    def operations(self) -> OperationsPane:
        return self.query_one(OperationsPane)

    @property
    def releases(self) -> ReleasesController:
        return self.query_one(ReleasesController)

    @property
    def environments(self) -> EnvironmentController:
        return self.query_one(EnvironmentController)

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """As Textual collects them from the focused widget outwards, put in the key map's order: the
        footer lists the keys as the help does, whichever controller declares each."""
        found = super().active_bindings
        last = len(keys.ORDER)
        return dict(sorted(found.items(), key=lambda item: keys.ORDER.get(item[1].binding.id or "", last)))

    def on_mount(self) -> None:
        deck = self.ctx.deck
        self.header.read_only = self.ctx.read_only
        self.header.envs = len(deck.config.environments)
        self.header.now = self.ctx.clock()
        self.watch(self.operations, "running", self._show_running, init=False)
        snapshot = load_snapshot(deck.root)
        if snapshot is not None:
            self.state = snapshot
        else:
            self.notify("no snapshot of this deck yet: loading it live", timeout=4)
        self.table.focus()
        if self.on_first_frame is not None:
            self.app.call_after_refresh(self.on_first_frame, self.app)
        self.app.call_after_refresh(settle_heap)  # after the first frame, never before it
        self.set_interval(1.0, self.tick)
        if self.ctx.live:
            self.environments.load_state(plans=True, drift=True)
            self.set_interval(deck.config.refresh_minutes * 60, self.environments.scheduled_refresh)
            self.header.follow_engine(deck)

    def on_resize(self) -> None:
        narrow = self.size.width < NARROW_WIDTH
        self.set_class(narrow, "-narrow")
        self.table.set_width(self.size.width, narrow)

    # -- state ------------------------------------------------------------------------------------

    def watch_state(self, state: DeckState | None) -> None:
        if state is None:
            return
        header = self.header
        header.cloud = state.cloud
        header.taken_at = state.taken_at
        header.ledger = state.ledger
        header.envs = len(state.environments)
        header.services = len(self.ctx.deck.config.services)
        header.accounts = len({e.account for e in state.environments if e.account})
        header.frozen = {e.name: float(e.freeze["until"]) for e in state.environments if e.freeze}
        header.freeze_problems = [e.name for e in state.environments if e.freeze_problem]
        header.now = self.ctx.clock()
        self.table.show(state)
        self.call_after_refresh(self.load_details)  # its worker starts after this frame is drawn

    def on_environment_controller_state_loaded(self, message: EnvironmentController.StateLoaded) -> None:
        settle_heap()  # after the first live state, boto3's clients and models live for good
        self.state = message.state
        self.releases.plan_ahead()  # new state (the start, a refresh, an operation's end): plans may be stale
        if message.state.cloud == "unreachable":
            first = next((e.error for e in message.state.environments if e.error), "the cloud does not answer")
            self.notify(first or "", title="cloud unreachable", severity="error", timeout=8)

    def _show_running(self, running: dict[str, str]) -> None:
        self.table.running = dict(running)

    def on_operations_pane_finished(self, message: OperationsPane.Finished) -> None:
        from opsdeck.tui.requests import RequestsScreen

        if isinstance(self.app.screen, RequestsScreen):
            self.app.screen.reload()
        if self.ctx.live:
            self.environments.load_state(plans=True)  # what the operation changed is planned again
        self.releases.plan_ahead()  # a bake, a commit, an apply: what the keys would apply may have moved

    def key_owner(self, action: str) -> DOMNode:
        """The part of the deck whose key runs ``action`` (the command palette runs it there)."""
        for node in (self.releases, self.environments, self):
            if hasattr(node, f"action_{action}"):
                return node
        return self.app

    def tick(self) -> None:
        if not self.is_attached:
            return  # the app is closing: the timer outlived the screen
        now = self.ctx.clock()
        self.header.now = now
        self.table.tick_ages()
        self.releases.tick(now)
        for text, severity in self.lifetimes.due(self.state, now):  # a sandbox's lifetime running out
            self.notify(text, title="sandbox lifetime", severity=severity, timeout=15)

    # -- the details of the row under the cursor ----------------------------------------------------

    def load_details(self) -> None:
        if self.is_attached:
            self.details.load(self.table.selected)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.table:
            self.details.select(self.table.selected)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table is self.table:
            self.action_details()  # enter on a row: the table keeps the key, so its event opens the details

    def action_details(self) -> None:
        self.details.toggle_full(self.table.selected)

    # -- the view's keys ------------------------------------------------------------------------------

    def action_filter(self) -> None:
        boxes = self.query("#filter")
        if boxes:
            box = boxes.first(Input)
        else:
            box = Input(
                placeholder="filter: name, account, region, service, image, version, drift, protected", id="filter"
            )
            self.environments.mount(box, before=self.table)
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
        names = self.ctx.deck.config.service_names
        if len(names) < 2:
            self.notify("this deck has one service", timeout=2)
            return
        order: list[str | None] = [None, *names]
        self.service = order[(order.index(self.service) + 1) % len(order)]
        self.notify(f"showing and acting on {self.service or 'every service'}", timeout=2)

    def action_requests(self) -> None:
        self._open_requests()

    @work(exclusive=True, group="requests", exit_on_error=False)
    async def _open_requests(self) -> None:
        """Read the ledger's requests (signatures checked) off the UI loop, then show them."""
        import asyncio

        from opsdeck.tui.requests import RequestsScreen, load_requests

        rows, warning = await asyncio.to_thread(load_requests, self.ctx.deck)
        if warning:
            self.notify(warning, severity="warning")
        if not isinstance(self.app.screen, RequestsScreen):
            self.app.push_screen(RequestsScreen(rows, self.ctx, self.operations))
