"""The environments table: one row per environment, production impossible to mistake."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from opsdeck.core.model import DeckState, EnvStatus
from opsdeck.core.observe.snapshot import age

# key, label, width at 120 columns, width at 80 (0: hidden)
COLUMNS = (
    ("env", "ENV", 11, 10),
    ("image", "IMAGE", 27, 8),
    ("inst", "PIN/RUN/WANT", 12, 7),
    ("plan", "PLAN", 15, 10),
    ("drift", "DRIFT", 12, 10),
    ("lag", "LAG", 15, 0),
    ("op", "STATE", 14, 10),
)
AGED = ("plan", "drift", "lag")  # cells that carry an age, redrawn as it ticks


class EnvironmentsTable(DataTable[Text]):
    """Environments of the deck; ``running`` maps an environment to the operation running on it."""

    DEFAULT_CSS = """
    EnvironmentsTable { height: auto; max-height: 50%; }
    """

    def __init__(self, clock: Callable[[], float] = time.time, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.clock = clock
        self.state: DeckState | None = None
        self.filter = ""
        self.running: dict[str, str] = {}
        self.narrow = False
        self._shown: dict[tuple[str, str], str] = {}  # (env, column) -> the text drawn there

    def on_mount(self) -> None:
        self._columns()

    def _widths(self) -> dict[str, int]:
        return {
            key: (narrow if self.narrow else wide)
            for key, _, wide, narrow in COLUMNS
            if (narrow if self.narrow else wide)
        }

    def _columns(self) -> None:
        self.clear(columns=True)
        widths = self._widths()
        for key, label, _, _ in COLUMNS:
            if key in widths:
                self.add_column("INST" if self.narrow and key == "inst" else label, key=key, width=widths[key])

    def set_narrow(self, narrow: bool) -> None:
        if narrow != self.narrow:
            self.narrow = narrow
            self._columns()
            self.refresh_rows()

    def show(self, state: DeckState) -> None:
        self.state = state
        self.refresh_rows()

    def set_filter(self, text: str) -> None:
        self.filter = text.strip().lower()
        self.refresh_rows()

    def visible_rows(self) -> list[EnvStatus]:
        if self.state is None:
            return []
        if not self.filter:
            return list(self.state.environments)
        return [e for e in self.state.environments if self.filter in self._haystack(e)]

    @staticmethod
    def _haystack(env: EnvStatus) -> str:
        parts = [env.name, env.drift, env.image.id if env.image else "", env.image.version if env.image else ""]
        if env.protected:
            parts.append("protected prod")
        if env.sandbox:
            parts.append("sandbox")
        return " ".join(parts).lower()

    @property
    def selected(self) -> str | None:
        rows = self.visible_rows()
        if not rows or self.cursor_row < 0 or self.cursor_row >= len(rows):
            return None
        return rows[self.cursor_row].name

    def refresh_rows(self) -> None:
        keep = self.selected
        self.clear()
        self._shown.clear()
        widths = self._widths()
        for env in self.visible_rows():
            cells = self._cells(env)
            row = []
            for key, width in widths.items():
                cell = self._fit(env, cells[key], width)
                self._shown[(env.name, key)] = cell.plain
                row.append(cell)
            self.add_row(*row, key=env.name)
        names = [e.name for e in self.visible_rows()]
        if keep in names:
            self.move_cursor(row=names.index(keep))

    @staticmethod
    def _fit(env: EnvStatus, cell: Text, width: int) -> Text:
        if env.protected:  # the production band runs across the whole row
            cell.truncate(width, overflow="ellipsis", pad=True)
        return cell

    def tick_ages(self) -> None:
        """Redraw the cells whose age moved on ("clean 9s" a minute later reads "clean 1m")."""
        widths = self._widths()
        for env in self.visible_rows():
            cells = self._cells(env)
            for key in AGED:
                if key not in widths:
                    continue
                cell = self._fit(env, cells[key], widths[key])
                if self._shown.get((env.name, key)) != cell.plain:
                    self._shown[(env.name, key)] = cell.plain
                    self.update_cell(env.name, key, cell)

    def _var(self, name: str, fallback: str) -> str:
        return self.app.theme_variables.get(name, fallback)

    def _tint(self, env: EnvStatus, var: str, fallback: str, *, bold: bool | None = None) -> Style:
        """A cell's colour; inside the production band every cell keeps the band's own foreground
        (a theme colour on the band's red is unreadable in some themes) and the word says it."""
        if env.protected:
            return Style(bold=bold)
        return Style(color=self._var(var, fallback), bold=bold)

    def _cells(self, env: EnvStatus) -> dict[str, Text]:
        now = self.clock()
        prod = Style(
            color=self._var("prod-foreground", "white"), bgcolor=self._var("prod-background", "red"), bold=True
        )
        row_style = prod if env.protected else Style()
        label = env.name.upper() if env.protected else env.name
        marks = " ⚠" if env.protected else " ◇" if env.sandbox else ""
        cells = {"env": Text(label + marks, style=row_style + Style(bold=True))}
        if env.image:
            shown = env.image.version or "?" if self.narrow else f"{env.image.version or '?'} {env.image.id}"
            image = Text(shown, style=row_style)
            if env.image.revoked:
                image.append(" REVOKED", style=row_style + self._tint(env, "error", "red", bold=True))
        else:
            image = Text("unknown", style=row_style + Style(dim=True))
        cells["image"] = image
        n = env.instances
        healthy = n.desired > 0 and n.running == n.desired == n.on_pinned_image
        inst_style = Style() if healthy else self._tint(env, "warning", "yellow")
        cells["inst"] = Text(
            f"{n.on_pinned_image}/{n.running}/{n.desired}" if env.image else "-", style=row_style + inst_style
        )
        if env.plan is None:
            cells["plan"] = Text("unknown", style=row_style + Style(dim=True))
        else:
            plan = Text(style=row_style)
            for sign, count, var in (
                ("+", env.plan.add, "plan-create"),
                ("~", env.plan.change, "plan-update"),
                ("-", env.plan.destroy, "plan-delete"),
            ):
                plan.append(f"{sign}{count} ", style=self._tint(env, var, "white") if count else Style(dim=True))
            if env.plan_at and not self.narrow:
                plan.append(age(env.plan_at, now), style=Style(dim=True))
            cells["plan"] = plan
        drift = Text(env.drift, style=row_style + self._tint(env, f"drift-{env.drift}", "white"))
        if env.drift_at:
            drift.append(f" {age(env.drift_at, now)}", style=Style(dim=True))
        cells["drift"] = drift
        cells["lag"] = Text(self._lag(env, now), style=row_style)
        cells["op"] = self._state_cell(env, row_style)
        return cells

    @staticmethod
    def _lag(env: EnvStatus, now: float) -> str:
        if env.lag is None:
            return "-"
        if env.lag.in_sync:
            return f"= {env.lag.source}"
        behind = f"-{env.lag.behind} {env.lag.source}" if env.lag.behind else f"≠ {env.lag.source}"
        return f"{behind} {age(env.lag.since, now)}" if env.lag.since else behind

    def _state_cell(self, env: EnvStatus, row_style: Style) -> Text:
        if env.name in self.running:
            return Text(f"▶ {self.running[env.name]}", style=row_style + self._tint(env, "accent", "yellow"))
        if env.lock:
            state = "INTERRUPTED" if env.lock.get("state") == "interrupted" else "locked"
            return Text(f"{state} {env.lock.get('operation', '')}", style=row_style + self._tint(env, "error", "red"))
        if env.error:
            return Text(f"✗ {env.error}", style=row_style + self._tint(env, "error", "red"))
        return Text("ready", style=row_style + Style(dim=True))
