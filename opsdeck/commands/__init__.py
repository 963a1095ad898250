"""Headless commands: each module registers its subcommands and turns core results into text or JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from opsdeck.core.estate.deck import Deck, find_deck_root
from opsdeck.core.events import Event, LogLine, PhaseFinished, PhaseStarted, Reporter

if TYPE_CHECKING:
    from opsdeck.core.hygiene.notices import Notices

T = TypeVar("T")


def open_deck(args: Any) -> Deck:
    deck = Deck.open(find_deck_root(getattr(args, "deck", None), command=argv_without_deck(getattr(args, "argv", []))))
    attach_notices(deck)
    return deck


# The release notices of the decks this command opened: ``finish_notices`` waits for them before it exits.
_outboxes: list[Notices] = []


def attach_notices(deck: Deck) -> None:
    """Tell the deck's [notify] targets of each change; a target not told is a line on stderr."""
    if deck.config.notify.targets and deck.announcer is None:
        from opsdeck.core.hygiene.notices import Notices  # only for a deck with targets: ~10 ms of every command

        deck.announcer = notices = Notices(deck, on_failure=lambda line: print(f"opsdeck: {line}", file=sys.stderr))
        _outboxes.append(notices)


def finish_notices() -> None:
    """Wait for notices still being sent, at most [notify] wait_seconds per deck, then let them go."""
    try:
        while _outboxes:
            notices = _outboxes.pop()
            if notices.wait(notices.settings.wait_seconds) == 0:
                notices.close()
    except KeyboardInterrupt:  # Ctrl-C while waiting: the person chose not to wait (no traceback)
        print("opsdeck: stopped waiting for release notices", file=sys.stderr)
        _outboxes.clear()


def argv_without_deck(argv: Sequence[str]) -> list[str]:
    """The command line as typed, without its --deck (the advice to run it on another deck adds its own)."""
    kept: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--deck":
            skip = True
        elif not word.startswith("--deck="):
            kept.append(word)
    return kept


class Printer:
    """Prints an operation's phases and warnings to stderr as they happen (stdout stays for results)."""

    def __init__(self, stream: TextIO | None = None, verbose: bool = False, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.quiet = quiet

    def __call__(self, event: Event) -> None:
        if self.quiet and not (isinstance(event, LogLine) and event.level in ("warning", "notice")):
            return  # stdout is for the result, the error is one line at the end; only notices go to stderr
        label = " ".join(p for p in (event.op, event.env if event.env and event.env not in event.op else "") if p)
        if event.worker:
            label += f" on {event.worker}"
        if isinstance(event, PhaseStarted) and self.verbose:
            self._line(f"  … {label}: {event.phase}")
        elif isinstance(event, PhaseFinished):
            mark = "✓" if event.ok else "✗"
            self._line(f"  {mark} {label}: {event.phase} ({event.seconds:.1f}s)")
        elif isinstance(event, LogLine) and (self.verbose or event.level in ("warning", "error", "notice")):
            prefix = f"{event.level}: " if event.level in ("warning", "error") else ""
            self._line(f"    {prefix}{event.text}")

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def reporter(args: Any, op: str, env: str | None = None) -> Reporter:
    """Phases are shown to a person at a terminal (or with -v); scripts get the result and one error line."""
    verbose = bool(getattr(args, "verbose", False))
    quiet = (bool(getattr(args, "json", False)) or not sys.stderr.isatty()) and not verbose
    return Reporter(op, env, Printer(verbose=verbose, quiet=quiet))


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(_wrap(coro))


async def _wrap(coro: Awaitable[T]) -> T:
    return await coro


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned table (no colour: headless output is for logs and pipes)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


Handler = Callable[[Any], int]
