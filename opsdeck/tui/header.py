"""The deck's header: deck name, cloud, what mode it is in (READ-ONLY, BREAK-GLASS with a countdown), the
environments frozen, and the job engine's line when the deck has a broker (read from it every ENGINE_SECONDS)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual import work
from textual.reactive import reactive
from textual.widget import Widget

from opsdeck.core.observe.snapshot import age
from opsdeck.errors import OpsdeckError
from opsdeck.tui.controller import TellsFailures

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.safety.breakglass import BreakGlass

ENGINE_SECONDS = 5.0


def _fitted(parts: list[tuple[str, Style | None, int]], width: int) -> list[tuple[str, Style | None, int]]:
    """``parts`` in their order, without the most readily dropped ones while they overflow ``width`` (0: not
    laid out yet, all of them): a warning or a mode is never pushed off the line by a count or an age."""
    kept = list(parts)
    while width and sum(Text(p).cell_len for p, _, _ in kept) > width:
        worst = max(rank for _, _, rank in kept)
        if worst == 0:
            break
        kept.remove(next(p for p in reversed(kept) if p[2] == worst))
    return kept


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


class DeckHeader(TellsFailures, Widget):
    DEFAULT_CSS = """
    DeckHeader { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    DeckHeader.-break-glass { background: $breakglass-background; color: $breakglass-foreground; text-style: bold; }
    """

    now: reactive[float] = reactive(0.0)  # the clock the ages and the countdown are read against
    cloud: reactive[str] = reactive("unknown")
    read_only: reactive[bool] = reactive(False)
    glass: reactive[BreakGlass | None] = reactive(None)
    envs: reactive[int] = reactive(0)
    taken_at: reactive[float | None] = reactive(None)  # when the shown state was read from the cloud
    services: reactive[int] = reactive(0)
    accounts: reactive[int] = reactive(0)
    service: reactive[str | None] = reactive(None)  # the service filter
    ledger: reactive[dict[str, object] | None] = reactive(None)  # where the clone stands against the remote
    engine: reactive[tuple[str, bool] | None] = reactive(None)  # the engine's line and whether it is well
    frozen: reactive[dict[str, float]] = reactive(dict)  # environment -> when its freeze ends
    freeze_problems: reactive[list[str]] = reactive(list)  # environments with a freeze record that does not count
    ahead: reactive[dict[str, list[str]]] = reactive(dict)  # environment -> the change keys planned ahead

    def __init__(self, deck: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deck = deck

    def watch_now(self) -> None:
        self._glass_band()

    def watch_glass(self) -> None:
        self._glass_band()

    def _glass_band(self) -> None:
        glass = self.glass
        self.set_class(glass is not None and glass.active(self.now), "-break-glass")

    def render(self) -> Text:
        short = self.size.width and self.size.width < 100
        dim = Style(dim=True)
        warn = Style(color=self.app.theme_variables.get("warning", "yellow"), bold=True)
        # (text, style, how readily it goes when the line is full: 0 never, the highest first)
        parts: list[tuple[str, Style | None, int]] = [("opsdeck ", Style(bold=True), 0), (f"· {self.deck}", None, 0)]
        parts.append((f" · {self.envs} {'envs' if short else 'environments'}", None, 3))
        if self.services > 1:
            parts.append((f" · {self.services} {'svc' if short else 'services'}", None, 4))
        if self.accounts > 1:
            parts.append((f" · {self.accounts} {'accts' if short else 'accounts'}", None, 4))
        if self.cloud == "unreachable":
            parts.append((" · " if short else " · cloud ", None, 0))
            parts.append(("UNREACHABLE", Style(color=self.app.theme_variables.get("error", "red"), bold=True), 0))
        else:
            parts.append(((" · " if short else " · cloud ") + self.cloud, None, 2))
        if self.taken_at:
            parts.append((f" · read {age(self.taken_at, self.now)} ago", dim, 1))
        ledger = self.ledger or {}
        if ledger.get("offline") and ledger.get("remote"):
            parts.append((" · ledger OFFLINE", warn, 0))
        elif ledger.get("behind"):
            parts.append((f" · behind the remote by {ledger['behind']}", warn, 0))
        if self.engine is not None:
            line, well = self.engine
            parts.append((f" · {line}", dim if well else warn, 2 if well else 0))
        frozen = sorted(env for env, until in self.frozen.items() if until > self.now)
        if frozen:
            parts.append((f" · ❄ FROZEN {', '.join(frozen)}", warn, 0))
        if self.freeze_problems:
            parts.append((f" · freeze record not counted: {', '.join(self.freeze_problems)}", warn, 0))
        if self.service:
            parts.append((f"  [service: {self.service}]", Style(bold=True), 0))
        if self.read_only:
            parts.append(("  [READ-ONLY]", Style(bold=True, reverse=True), 0))
        glass = self.glass
        if glass is not None and glass.active(self.now):
            left = int(glass.remaining(self.now))
            band = f"  BREAK-GLASS {glass.env} {left // 60:02d}:{left % 60:02d} · {glass.reason}"
            parts.append((band, Style(bold=True), 0))
            if glass.source.startswith("the demo"):
                parts.append((" · demo credentials (local cloud only)", None, 1))
        text = Text()
        for part, style, _ in _fitted(parts, self.size.width):
            text.append(part, style=style)
        if self.ahead:  # last, and only as much as fits: never pushes a warning off the line
            room = self.size.width - text.cell_len if self.size.width else None  # None: not laid out yet
            text.append(self._ahead_fitted(room), style=dim)
        return text

    def _ahead_fitted(self, room: int | None) -> str:
        """The change keys planned ahead in the widest form that fits ``room`` cells ("" when none does):
        each environment's keys, then run together, then only how many environments."""
        keys = {"promote": "p", "deploy": "u", "rollback": "r"}
        forms = (
            " · planned ahead: "
            + ", ".join(f"{env} {' '.join(keys[a] for a in acts)}" for env, acts in self.ahead.items()),
            " · ahead: " + " ".join(f"{env} {''.join(keys[a] for a in acts)}" for env, acts in self.ahead.items()),
            f" · ahead: {len(self.ahead)} env{'s' if len(self.ahead) > 1 else ''}",
        )
        return next((form for form in forms if room is None or len(form) <= room), "")

    # -- the engine -------------------------------------------------------------------------------

    def follow_engine(self, deck: Deck) -> None:
        """With a job broker configured, show the engine: workers, waiting jobs, accounts no worker
        serves, or that the broker does not answer."""
        from opsdeck.core.engine.settings import broker_url

        try:
            if not broker_url(deck):
                return
        except OpsdeckError as exc:
            self.notify(str(exc), title="engine", severity="error", timeout=10)
            return
        self.poll_engine(deck)
        self.set_interval(ENGINE_SECONDS, lambda: self.poll_engine(deck))

    @work(exclusive=True, group="engine", exit_on_error=False)
    async def poll_engine(self, deck: Deck) -> None:
        try:
            from opsdeck.core.engine.status import engine_status  # without the engine's packages: one line

            status = await asyncio.to_thread(engine_status, deck)  # Redis's blocking client
        except OpsdeckError as exc:
            self.engine = (f"engine: {exc}", False)
        else:
            self.engine = engine_line(status.to_json())
