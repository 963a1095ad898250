"""Typed events every operation emits, and the Reporter operations emit them through.

An operation is an async function that takes a Reporter. The headless CLI prints the events, the TUI
turns them into messages for its operations pane, and the audit log keeps the phases of each run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    op: str
    env: str | None
    worker: str = field(default="", kw_only=True)  # the engine's worker that ran it ("" in this process)


@dataclass(frozen=True)
class PhaseStarted(Event):
    phase: str


@dataclass(frozen=True)
class PhaseFinished(Event):
    phase: str
    seconds: float
    ok: bool = True
    error: str = ""


@dataclass(frozen=True)
class Progress(Event):
    phase: str
    message: str
    done: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class LogLine(Event):
    text: str
    level: str = "info"


@dataclass(frozen=True)
class OpFinished(Event):
    ok: bool
    seconds: float
    error: str = ""
    result: Any = None


Sink = Callable[[Event], None]


def discard(_: Event) -> None:
    """A sink that drops everything."""


@dataclass
class Reporter:
    """Emits an operation's events to a sink and remembers how long each phase took."""

    op: str
    env: str | None = None
    sink: Sink = discard
    phases: list[tuple[str, float]] = field(default_factory=list)
    current: str = ""
    started: float = field(default_factory=time.monotonic)

    def child(self, op: str | None = None, env: str | None = None) -> Reporter:
        """A reporter for a sub-operation, to the same sink."""
        return Reporter(op or self.op, env if env is not None else self.env, self.sink)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.current = name
        self.sink(PhaseStarted(self.op, self.env, name))
        t0 = time.monotonic()
        try:
            yield
        except BaseException as exc:
            seconds = time.monotonic() - t0
            self.phases.append((name, seconds))
            self.sink(PhaseFinished(self.op, self.env, name, seconds, ok=False, error=str(exc) or type(exc).__name__))
            raise
        seconds = time.monotonic() - t0
        self.phases.append((name, seconds))
        self.sink(PhaseFinished(self.op, self.env, name, seconds))

    def progress(self, message: str, done: int | None = None, total: int | None = None) -> None:
        self.sink(Progress(self.op, self.env, self.current, message, done, total))

    def log(self, text: str, level: str = "info") -> None:
        self.sink(LogLine(self.op, self.env, text, level))

    def finished(self, ok: bool, error: str = "", result: Any = None) -> None:
        self.sink(OpFinished(self.op, self.env, ok, time.monotonic() - self.started, error, result))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def phase_list(self) -> list[dict[str, Any]]:
        return [{"name": name, "seconds": round(seconds, 3)} for name, seconds in self.phases]
