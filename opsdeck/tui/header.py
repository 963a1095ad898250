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
        text = Text()
        text.append("opsdeck ", style=Style(bold=True))
        short = self.size.width and self.size.width < 100
        text.append(f"· {self.deck} · {self.envs} {'envs' if short else 'environments'}")
        if self.services > 1:
            text.append(f" · {self.services} {'svc' if short else 'services'}")
        if self.accounts > 1:
            text.append(f" · {self.accounts} {'accts' if short else 'accounts'}")
        text.append(" · " if short else " · cloud ")
        if self.cloud == "unreachable":
            text.append("UNREACHABLE", style=Style(color=self.app.theme_variables.get("error", "red"), bold=True))
        else:
            text.append(self.cloud)
        if self.taken_at:
            text.append(f" · read {age(self.taken_at, self.now)} ago", style=Style(dim=True))
        ledger = self.ledger or {}
        warn = Style(color=self.app.theme_variables.get("warning", "yellow"), bold=True)
        if ledger.get("offline") and ledger.get("remote"):
            text.append(" · ledger OFFLINE", style=warn)
        elif ledger.get("behind"):
            text.append(f" · behind the remote by {ledger['behind']}", style=warn)
        if self.engine is not None:
            line, well = self.engine
            text.append(f" · {line}", style=Style(dim=True) if well else warn)
        frozen = sorted(env for env, until in self.frozen.items() if until > self.now)
        if frozen:
            text.append(f" · ❄ FROZEN {', '.join(frozen)}", style=warn)
        if self.freeze_problems:
            text.append(f" · freeze record not counted: {', '.join(self.freeze_problems)}", style=warn)
        if self.ahead:
            keys = {"promote": "p", "deploy": "u", "rollback": "r"}
            ready = ", ".join(f"{env} {' '.join(keys[a] for a in acts)}" for env, acts in self.ahead.items())
            text.append(f" · planned ahead: {ready}", style=Style(dim=True))
        if self.service:
            text.append(f"  [service: {self.service}]", style=Style(bold=True))
        if self.read_only:
            text.append("  [READ-ONLY]", style=Style(bold=True, reverse=True))
        glass = self.glass
        if glass is not None and glass.active(self.now):
            left = int(glass.remaining(self.now))
            text.append(
                f"  BREAK-GLASS {glass.env} {left // 60:02d}:{left % 60:02d} · {glass.reason}", style=Style(bold=True)
            )
            if glass.source.startswith("the demo"):
                text.append(" · demo credentials (local cloud only)")
        return text

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
