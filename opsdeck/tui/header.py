"""The deck's header: deck name, cloud, what mode it is in (READ-ONLY, BREAK-GLASS with a countdown),
and the environments frozen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from opsdeck.core.observe.snapshot import age

if TYPE_CHECKING:
    from opsdeck.core.safety.breakglass import BreakGlass


class DeckHeader(Static):
    DEFAULT_CSS = """
    DeckHeader { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    DeckHeader.-break-glass { background: $breakglass-background; color: $breakglass-foreground; text-style: bold; }
    """

    def __init__(self, deck: str, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.deck = deck
        self.cloud = "unknown"
        self.read_only = False
        self.glass: BreakGlass | None = None
        self.envs = 0
        self.taken_at: float | None = None  # when the shown state was read from the cloud
        self.services = 0
        self.accounts = 0
        self.service: str | None = None  # the service filter
        self.ledger: dict[str, object] | None = None  # where the clone stands against the team's remote
        self.engine: tuple[str, bool] | None = None  # the job engine's line and whether it is well (None: in-process)
        self.frozen: dict[str, float] = {}  # environment -> when its freeze ends
        self.freeze_problems: list[str] = []  # environments with a freeze record that does not count

    def redraw(self, now: float) -> None:
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
            text.append(f" · read {age(self.taken_at, now)} ago", style=Style(dim=True))
        ledger = self.ledger or {}
        warn = Style(color=self.app.theme_variables.get("warning", "yellow"), bold=True)
        if ledger.get("offline") and ledger.get("remote"):
            text.append(" · ledger OFFLINE", style=warn)
        elif ledger.get("behind"):
            text.append(f" · behind the remote by {ledger['behind']}", style=warn)
        if self.engine is not None:
            line, well = self.engine
            text.append(f" · {line}", style=Style(dim=True) if well else warn)
        frozen = sorted(env for env, until in self.frozen.items() if until > now)
        if frozen:
            text.append(f" · ❄ FROZEN {', '.join(frozen)}", style=warn)
        if self.freeze_problems:
            text.append(f" · freeze record not counted: {', '.join(self.freeze_problems)}", style=warn)
        if self.service:
            text.append(f"  [service: {self.service}]", style=Style(bold=True))
        if self.read_only:
            text.append("  [READ-ONLY]", style=Style(bold=True, reverse=True))
        glass = self.glass
        if glass is not None and glass.active(now):
            left = int(glass.remaining(now))
            text.append(
                f"  BREAK-GLASS {glass.env} {left // 60:02d}:{left % 60:02d} · {glass.reason}", style=Style(bold=True)
            )
            if glass.source.startswith("the demo"):
                text.append(" · demo credentials (local cloud only)")
            self.add_class("-break-glass")
        else:
            self.remove_class("-break-glass")
        self.update(text)
