"""What status shows of the team's rules on each environment: the freeze in force (or a freeze record
that does not count, said aloud) and a sandbox's lifetime, both read from the ledger."""

from __future__ import annotations

from dataclasses import replace

from opsdeck.core.estate import lifetimes
from opsdeck.core.estate.deck import Deck
from opsdeck.core.model import EnvStatus
from opsdeck.core.safety.freeze import FreezeState, read_freezes


def with_governance(deck: Deck, rows: list[EnvStatus], now: float | None = None) -> list[EnvStatus]:
    """``rows`` with their freeze and lifetime filled in."""
    freezes = read_freezes(deck, [r.name for r in rows], now)
    found = []
    for row in rows:
        state = freezes.get(row.name) or FreezeState()
        found.append(
            replace(
                row,
                freeze=state.freeze.to_json() if state.freeze is not None else None,
                freeze_problem=state.problem,
                lifetime=lifetimes.status_of(deck, row.name),
            )
        )
    return found
