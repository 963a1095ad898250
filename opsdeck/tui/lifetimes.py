"""The deck's warnings that a sandbox's lifetime is running out: a notice when 2 hours are left and
again at 30 minutes (each once per lifetime; an extension that moves the end warns again)."""

from __future__ import annotations

from textual.notifications import SeverityLevel

from opsdeck.core.model import DeckState


class LifetimeWatch:
    """Which warnings were given, so each is given once."""

    def __init__(self) -> None:
        self.given: set[tuple[str, float, float]] = set()  # (env, its end, the threshold)

    def due(self, state: DeckState | None, now: float) -> list[tuple[str, SeverityLevel]]:
        """(text, severity) of each warning due now."""
        found: list[tuple[str, SeverityLevel]] = []
        for env in state.environments if state is not None else ():
            end = (env.lifetime or {}).get("expires_at")
            if not end:
                continue
            # Here, not at the top: a deck without lifetimes never loads them (nor does its first frame).
            from opsdeck.core.estate.lifetimes import WARNINGS, time_left

            left = float(end) - now
            crossed = [t for t in WARNINGS if left <= t and (env.name, float(end), t) not in self.given]
            if not crossed:
                continue
            for threshold in WARNINGS:  # the smaller ones too: one notice says it
                if left <= threshold:
                    self.given.add((env.name, float(end), threshold))
            if left <= 0:
                text = f"{env.name}'s lifetime has ended: `opsdeck sandbox expire` destroys it"
            else:
                text = f"{env.name}'s lifetime ends in {time_left(float(end), now)}: `opsdeck sandbox extend` keeps it"
            found.append((text, "error" if left <= min(WARNINGS) else "warning"))
        return found
