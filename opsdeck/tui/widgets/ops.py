"""The operations pane: runs each of the deck's operations in a worker, and shows every running (and
recently finished) one with its progress and phase timeline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Label, Static
from textual.worker import Worker, WorkerState

from opsdeck.errors import OpsdeckError
from opsdeck.tui.controller import one_line

if TYPE_CHECKING:
    from opsdeck.core.events import Event, Reporter

KEEP_FINISHED = 6


class OpRow(Static):
    """One operation: what, a progress bar, and its phases as they start and finish."""

    DEFAULT_CSS = """
    OpRow { height: auto; layout: vertical; padding: 0 1; }
    OpRow Horizontal { height: 1; }
    OpRow .op-title { width: 26; text-style: bold; }
    OpRow ProgressBar { width: 30; }
    OpRow .op-status { width: 1fr; }
    OpRow .op-phases { height: auto; color: $text-muted; }
    OpRow.-failed .op-title { color: $error; }
    OpRow.-done .op-title { color: $success; }
    """

    def __init__(self, key: str, title: str, env: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.title = title
        self.env = env
        self.started = time.monotonic()
        self.phases: list[tuple[str, float | None, bool]] = []
        self.status_text = "starting"
        self.bar: tuple[float | None, float] = (None, 0)  # total, progress

    def compose(self) -> ComposeResult:
        # Imported here, not at the top: the deck's first frame shows no operation.
        from textual.widgets import ProgressBar

        # Built from the recorded state: events may arrive before the row is mounted.
        with Horizontal():
            yield Label(self.title, classes="op-title")
            yield ProgressBar(total=self.bar[0], show_eta=False, show_percentage=False)
            yield Label(self._status_line(), classes="op-status", markup=False)
        yield Static(self._timeline(), classes="op-phases", markup=False)

    def feed(self, event: Event) -> None:
        # Imported here, not at the top: no operation runs before the first frame.
        from opsdeck.core.events import LogLine, PhaseFinished, PhaseStarted, Progress

        # A deck-wide operation (refresh, drift) runs phases in several environments: name them.
        phase = getattr(event, "phase", "")
        if phase and event.env and event.env != self.env:
            phase = f"{event.env} {phase}"
        if phase and event.worker:  # run by one of the engine's workers: say which
            phase = f"{phase} on {event.worker}"
        if isinstance(event, PhaseStarted):
            self.phases.append((phase, None, True))
            self.status_text = phase + "…"
        elif isinstance(event, PhaseFinished):
            for i in range(len(self.phases) - 1, -1, -1):
                if self.phases[i][0] == phase and self.phases[i][1] is None:
                    self.phases[i] = (phase, event.seconds, event.ok)
                    break
            else:
                self.phases.append((phase, event.seconds, event.ok))
        elif isinstance(event, Progress):
            if event.total:
                self.bar = (event.total, event.done or 0)
            self.status_text = event.message
        elif isinstance(event, LogLine) and event.level in ("warning", "error", "notice"):
            self.status_text = event.text
        self._render_state()

    def finish(self, ok: bool, summary: str) -> None:
        self.bar = (1, 1)
        self.add_class("-done" if ok else "-failed")
        elapsed = time.monotonic() - self.started
        self.status_text = f"{'✓' if ok else '✗'} {summary} ({elapsed:.1f}s)"
        self._render_state()

    def on_mount(self) -> None:
        if self.bar[0]:
            self.call_after_refresh(self._render_state)  # progress that arrived before the bar existed

    def _status_line(self) -> str:
        return " ".join(self.status_text.split())

    def _timeline(self) -> Text:
        line = Text()
        for name, seconds, ok in self.phases:
            mark = "…" if seconds is None else ("✓" if ok else "✗")
            line.append(
                f"{mark} {name}" + ("" if seconds is None else f" {seconds:.1f}s"),
                style=Style() if ok else Style(color="red"),
            )
            line.append(" · ")
        return line[:-3] if len(line) > 3 else line

    def _render_state(self) -> None:
        if not self.is_mounted or not self.children:
            return  # compose draws the recorded state
        total, progress = self.bar
        if total:
            from textual.widgets import ProgressBar  # loaded by compose, which made the bar

            self.query_one(ProgressBar).update(total=total, progress=progress)
        self.query_one(".op-status", Label).update(self._status_line())
        self.query_one(".op-phases", Static).update(self._timeline())


class OperationsPane(VerticalScroll):
    """Runs the deck's operations, each in its own worker, and shows them: a row per operation with its
    progress and phases, the newest on top. One operation at a time per environment."""

    DEFAULT_CSS = """
    OperationsPane { border: round $secondary; height: auto; max-height: 12; min-height: 3; }
    """

    running: reactive[dict[str, str]] = reactive(dict, init=False)  # environment -> the operation running there

    @dataclass
    class Progressed(Message, bubble=False):
        """One event of a running operation (phase, progress, log line); a flood of progress collapses."""

        key: str
        event: Event

        def can_replace(self, message: Message) -> bool:
            from opsdeck.core.events import Progress

            return (
                isinstance(message, OperationsPane.Progressed)
                and message.key == self.key
                and isinstance(message.event, Progress)
                and isinstance(self.event, Progress)
            )

    @dataclass
    class Finished(Message):
        """An operation ended: ok with its one-line summary, or failed with its one-line error."""

        key: str
        ok: bool
        summary: str
        env: str | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "Operations"
        self.rows: dict[str, OpRow] = {}
        self.finished: list[str] = []
        self.count = 0  # operations started since the deck opened
        self.last: OperationsPane.Finished | None = None
        self._envs: dict[str, str | None] = {}  # key -> its environment
        self._summaries: dict[str, Callable[[Any], str]] = {}

    @property
    def busy(self) -> bool:
        """An operation runs (one of an environment, or of none: a bake); read from the pre-planner's thread."""
        return bool(self._envs)

    # -- running ----------------------------------------------------------------------------------

    def start(
        self, title: str, env: str | None, work: Callable[[Reporter], Awaitable[Any]], summarize: Callable[[Any], str]
    ) -> str | None:
        """Start ``work`` (a core coroutine, given its reporter) unless an operation already runs on
        ``env``; returns its key. ``summarize`` turns its result into the line shown when it ends."""
        if env is not None and env in self.running:
            self.notify(f"{env} is busy: {self.running[env]} is running", severity="warning")
            return None
        self.count += 1
        key = f"{title}#{self.count}"
        self._envs[key] = env
        self._summaries[key] = summarize
        if env is not None:
            self.running = {**self.running, env: title}
        self.show(key, title, env)
        # A thread of its own: core's coroutines call git and boto3 inline here and there, which must
        # never block the deck's loop; asyncio runs Terraform and Packer in that thread's own loop.
        self.run_worker(
            partial(self._run, key, title, env, work),
            name=key,
            group=f"operation {key}",
            exclusive=True,
            thread=True,
            exit_on_error=False,
        )
        return key

    def _run(self, key: str, title: str, env: str | None, work: Callable[[Reporter], Awaitable[Any]]) -> Any:
        from opsdeck.core.events import Reporter

        def sink(event: Event) -> None:
            self.post_message(self.Progressed(key, event))  # from this thread: post_message is thread-safe

        result = asyncio.run(_awaited(work(Reporter(title, env, sink))))
        follow_up = getattr(getattr(result, "result", result), "follow_up", None)  # a Ran's, or the result's
        if follow_up is not None:  # the result is shown first: this tidies after it, never while one waits
            self.app.call_from_thread(self._ended, key, result)
            with contextlib.suppress(OpsdeckError):
                asyncio.run(_awaited(follow_up(Reporter("prepare switch back", env))))
        return result

    def on_operations_pane_progressed(self, message: OperationsPane.Progressed) -> None:
        if message.key in self.rows:
            self.rows[message.key].feed(message.event)
        from opsdeck.core.events import LogLine
        from opsdeck.core.safety.audit_shipping import NOT_SHIPPED

        event = message.event
        if isinstance(event, LogLine) and event.level == "notice" and event.text.startswith(NOT_SHIPPED):
            self.notify(event.text, severity="warning", timeout=12)  # outlives the pane's status line

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        key = event.worker.name
        if event.state is WorkerState.SUCCESS:
            self._ended(key, event.worker.result)
        elif event.state is WorkerState.ERROR:
            self._ended(key, None, event.worker.error or RuntimeError("failed"))

    def _ended(self, key: str, result: Any, error: BaseException | None = None) -> None:
        """An operation's result (or its error) shown, once: a follow-up may still run in its worker."""
        if key not in self._envs:
            return
        env = self._envs.pop(key)
        summarize = self._summaries.pop(key)
        if error is None:
            done = self.Finished(key, True, summarize(result), env)
        else:
            done = self.Finished(key, False, one_line(error), env)
        if env is not None:
            self.running = {e: t for e, t in self.running.items() if e != env}
        self.last = done
        self.finish(key, done.ok, done.summary)
        self.notify(done.summary, severity="information" if done.ok else "error", timeout=6 if done.ok else 12)
        self.post_message(done)

    # -- showing ----------------------------------------------------------------------------------

    def show(self, key: str, title: str, env: str | None = None) -> None:
        row = OpRow(key, title, env)
        self.rows[key] = row
        self.mount(row, before=0)
        self.scroll_home(animate=False)  # the newest operation is the one to watch

    def feed(self, key: str, event: Event) -> None:
        if key in self.rows:
            self.rows[key].feed(event)

    def finish(self, key: str, ok: bool, summary: str) -> None:
        if key not in self.rows:
            self.show(key, key)
        self.rows[key].finish(ok, summary)
        self.finished.append(key)
        while len(self.finished) > KEEP_FINISHED:
            old = self.finished.pop(0)
            self.rows.pop(old).remove()


async def _awaited(work: Awaitable[Any]) -> Any:
    """``asyncio.run`` takes a coroutine; core operations are awaitables."""
    return await work
