"""What the deck's parts share: the deck and its mode (`DeckContext`), and the base of the controllers that
own the deck's keys.

A controller is an invisible container around the deck's screen: the widgets inside it (the table, the
panes) are its descendants, so whichever of them has the focus, the controller's bindings answer, its
``action_*`` methods run, and its ``check_action`` disables, visibly, what a read-only deck must not do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.containers import Container
from textual.worker import Worker, WorkerState

from opsdeck.errors import OpsdeckError
from opsdeck.tui import keys

if TYPE_CHECKING:
    from opsdeck.core.engine.operation import Ask, Ran
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.release.preplan import PrePlan
    from opsdeck.core.safety.breakglass import BreakGlass
    from opsdeck.tui.widgets.envtable import EnvironmentsTable
    from opsdeck.tui.widgets.ops import OperationsPane


@dataclass(frozen=True)
class DeckContext:
    """The deck an app shows, and how."""

    deck: Deck
    read_only: bool = False
    live: bool = True  # False: only the stored snapshot, no refreshes (snapshots, demos, tests)
    clock: Callable[[], float] = time.time
    closing: threading.Event = field(default_factory=threading.Event)  # set when the app ends


def one_line(exc: BaseException) -> str:
    """An error for a notice: opsdeck's own as it is, anything else named as an internal error."""
    if isinstance(exc, OpsdeckError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"


class TellsFailures:
    """The one handler that turns a failed worker into an error notice. Textual's worker messages do not
    bubble, so each node that runs workers takes this in; Textual calls it beside a handler of the node's
    own (each class's handler in the method resolution order runs)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        error = event.worker.error
        if event.state is WorkerState.ERROR and error is not None:
            event.worker.node.app.notify(one_line(error), severity="error", timeout=10)


class Controller(TellsFailures, Container):
    """Owns some of the deck's keys and what they do."""

    DEFAULT_CSS = """
    Controller { width: 1fr; height: 1fr; layout: vertical; overflow: hidden hidden; }
    """

    def __init__(self, ctx: DeckContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ctx = ctx

    @property
    def deck(self) -> Deck:
        return self.ctx.deck

    @property
    def table(self) -> EnvironmentsTable:
        from opsdeck.tui.widgets.envtable import EnvironmentsTable

        return self.query_one(EnvironmentsTable)

    @property
    def operations(self) -> OperationsPane:
        from opsdeck.tui.widgets.ops import OperationsPane

        return self.query_one(OperationsPane)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.ctx.read_only and action in keys.mutating():
            return None  # shown, visibly disabled
        return True

    def refused_read_only(self) -> bool:
        """What the command palette reaches is refused too, with a notice."""
        if self.ctx.read_only:
            self.notify("the deck is read-only (--read-only)", severity="error")
        return self.ctx.read_only

    def run(
        self,
        title: str,
        env: str | None,
        operation: str,
        what: Any,
        summarize: Callable[[Ran[Any]], str],
        *,
        confirm: Ask | None = None,
        glass: BreakGlass | None = None,
        preplanned: PrePlan | None = None,
    ) -> str | None:
        """Run the registry's ``operation`` on ``what`` in the operations pane, one per environment at a
        time; the runner chooses here or a worker. Its key, or None when ``env`` is busy."""
        from opsdeck.core.engine import registry, runner  # on the first key press, not on the start path

        op, deck = registry.operation(operation), self.deck
        work = partial(runner.run, deck, op, what, confirm=confirm, glass=glass, preplanned=preplanned)
        return self.operations.start(title, env, lambda rep: work(rep), summarize)

    def selected(self) -> str | None:
        env = self.table.selected
        if env is None:
            self.notify("select an environment first", severity="warning")
        return env
