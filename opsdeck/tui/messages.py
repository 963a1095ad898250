"""Typed messages from workers to the deck. Progress collapses (can_replace) so a flood never backs up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:  # annotations only: core's event classes stay off the deck's start path
    from opsdeck.core.events import Event
    from opsdeck.core.model import DeckState


@dataclass
class StateLoaded(Message):
    """A new snapshot of the deck (from disk at start, then from refreshes)."""

    state: DeckState
    live: bool = True


@dataclass
class DetailsLoaded(Message):
    """The selected environment's plan and drift, and the deck's images."""

    env: str
    plan: Any
    drift: Any
    images: list[dict[str, Any]] | None
    hygiene: Any = None  # core.hygiene.store.EnvHygiene: copies, orphans, trail


@dataclass
class OpEvent(Message):
    """One event of a running operation (phase, progress, log line)."""

    key: str
    event: Event

    def can_replace(self, message: Message) -> bool:
        from opsdeck.core.events import Progress

        return (
            isinstance(message, OpEvent)
            and message.key == self.key
            and isinstance(message.event, Progress)
            and isinstance(self.event, Progress)
        )


@dataclass
class OpDone(Message):
    """An operation ended: ok with a one-line summary, or failed with its one-line error."""

    key: str
    ok: bool
    summary: str
    refresh: bool = True
