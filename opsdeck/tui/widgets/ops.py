"""The operations pane: every running (and recently finished) operation, its progress and phase timeline."""

from __future__ import annotations

import time
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, ProgressBar, Static

from opsdeck.core.events import Event, LogLine, PhaseFinished, PhaseStarted, Progress

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

    def __init__(self, key: str, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.title = title
        self.started = time.monotonic()
        self.phases: list[tuple[str, float | None, bool]] = []
        self.status_text = "starting"

    def compose(self):  # type: ignore[no-untyped-def]
        with Horizontal():
            yield Label(self.title, classes="op-title")
            yield ProgressBar(total=None, show_eta=False, show_percentage=False)
            yield Label(self.status_text, classes="op-status", markup=False)
        yield Static("", classes="op-phases", markup=False)

    def feed(self, event: Event) -> None:
        bar = self.query_one(ProgressBar)
        if isinstance(event, PhaseStarted):
            self.phases.append((event.phase, None, True))
            self._status(event.phase + "…")
        elif isinstance(event, PhaseFinished):
            for i in range(len(self.phases) - 1, -1, -1):
                if self.phases[i][0] == event.phase and self.phases[i][1] is None:
                    self.phases[i] = (event.phase, event.seconds, event.ok)
                    break
            else:
                self.phases.append((event.phase, event.seconds, event.ok))
        elif isinstance(event, Progress):
            if event.total:
                bar.update(total=event.total, progress=event.done or 0)
            self._status(event.message)
        elif isinstance(event, LogLine) and event.level in ("warning", "error", "notice"):
            self._status(event.text)
        self._timeline()

    def finish(self, ok: bool, summary: str) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=1, progress=1)
        self.add_class("-done" if ok else "-failed")
        elapsed = time.monotonic() - self.started
        self._status(f"{'✓' if ok else '✗'} {summary} ({elapsed:.1f}s)")

    def _status(self, text: str) -> None:
        self.status_text = " ".join(text.split())
        self.query_one(".op-status", Label).update(self.status_text)

    def _timeline(self) -> None:
        line = Text()
        for name, seconds, ok in self.phases:
            mark = "…" if seconds is None else ("✓" if ok else "✗")
            line.append(
                f"{mark} {name}" + ("" if seconds is None else f" {seconds:.1f}s"),
                style=Style() if ok else Style(color="red"),
            )
            line.append(" · ")
        self.query_one(".op-phases", Static).update(line[:-3] if len(line) > 3 else line)


class OperationsPane(VerticalScroll):
    DEFAULT_CSS = """
    OperationsPane { border: round $secondary; height: auto; max-height: 12; min-height: 3; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "Operations"
        self.rows: dict[str, OpRow] = {}
        self.finished: list[str] = []

    def start(self, key: str, title: str) -> None:
        row = OpRow(key, title)
        self.rows[key] = row
        self.mount(row, before=0)

    def feed(self, key: str, event: Event) -> None:
        if key in self.rows:
            self.rows[key].feed(event)

    def finish(self, key: str, ok: bool, summary: str) -> None:
        if key not in self.rows:
            self.start(key, key)
        self.rows[key].finish(ok, summary)
        self.finished.append(key)
        while len(self.finished) > KEEP_FINISHED:
            old = self.finished.pop(0)
            self.rows.pop(old).remove()
