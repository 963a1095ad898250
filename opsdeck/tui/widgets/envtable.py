"""The environments table: one row per environment, production impossible to mistake.

Each row names the environment's account and region. Where the terminal is wide enough, each service
has its own column (version and pinned/running/wanted instances); otherwise one cell sums the
services up and the details pane holds the rest. A service filter narrows the table to one service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable

from opsdeck.core.model import DeckState, EnvStatus, ServiceStatus
from opsdeck.core.observe.snapshot import age

# key, label, width at full width, width when narrow (0: hidden)
FIXED = (
    ("env", "ENV", 10, 10),
    ("where", "ACCOUNT/REGION", 22, 0),
    ("plan", "PLAN", 12, 10),  # "+0 ~0 -0 28s"
    ("drift", "DRIFT", 10, 10),
    ("op", "STATE", 10, 10),
)
SERVICE_WIDTH = 11  # "1.0.12 3/3/3"
SUMMARY_WIDTH = 16
PADDING = 2  # a DataTable cell's padding, left and right
CHROME = 6  # the table's border and margins
AGED = ("env", "plan", "drift", "op")  # cells with an age, a time left or a freeze, redrawn as it ticks


class EnvironmentsTable(DataTable[Text]):
    """Environments of the deck, and what runs on each."""

    DEFAULT_CSS = """
    EnvironmentsTable { height: auto; max-height: 50%; }
    """

    service: reactive[str | None] = reactive(None, init=False)  # the one service shown (None: all)
    running: reactive[dict[str, str]] = reactive(dict, init=False)  # environment -> the operation running there

    def __init__(self, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.clock = clock
        self.state: DeckState | None = None
        self.filter = ""
        self.services: list[str] = []  # the deck's services, in its order
        self.narrow = False
        self.width_hint = 120
        self._layout: list[tuple[str, str, int]] = []  # (key, label, width) of the columns drawn
        self._shown: dict[tuple[str, str], str] = {}  # (env, column) -> the text drawn there

    def on_mount(self) -> None:
        self._columns()

    # -- layout -----------------------------------------------------------------------------------

    def _fixed(self) -> list[tuple[str, str, int]]:
        return [(key, label, narrow if self.narrow else wide) for key, label, wide, narrow in FIXED]

    def column_plan(self) -> list[tuple[str, str, int]]:
        """The columns for this width: a column per shown service when they fit, else one summary."""
        fixed = [c for c in self._fixed() if c[2]]
        shown = [self.service] if self.service else self.services
        used = sum(w + PADDING for _, _, w in fixed) + CHROME
        per_service = len(shown) * (SERVICE_WIDTH + PADDING)
        if shown and used + per_service <= self.width_hint:
            middle = [(f"svc:{s}", s.upper(), SERVICE_WIDTH) for s in shown]
        else:
            middle = [("services", "SERVICES", SUMMARY_WIDTH if not self.narrow else 12)]
        return [*fixed[:2], *middle, *fixed[2:]] if not self.narrow else [fixed[0], *middle, *fixed[1:]]

    def _columns(self) -> None:
        """Lay the columns out again, then the rows, on the same environment (clearing the columns
        moves the cursor to the first row)."""
        keep = self.selected
        self._layout = self.column_plan()
        self.clear(columns=True)
        for key, label, width in self._layout:
            # A Text, not a str: a str label is parsed as markup, which loads Rich's emoji table (~1.5 ms of
            # the deck's first frame) for labels that hold none.
            self.add_column(Text(label), key=key, width=width)
        self.refresh_rows(keep)

    def set_width(self, width: int, narrow: bool) -> None:
        if (width, narrow) != (self.width_hint, self.narrow):
            self.width_hint, self.narrow = width, narrow
            if self.column_plan() != self._layout:
                self._columns()
            else:
                self.refresh_rows()

    def watch_service(self, old: str | None, new: str | None) -> None:
        if new != old:  # the screen's binding sets it once as the table mounts: nothing to lay out again
            self._columns()

    def watch_running(self) -> None:
        self.refresh_rows()

    def show(self, state: DeckState) -> None:
        self.state = state
        names = list(dict.fromkeys(s.name for e in state.environments for s in e.services))
        if names and names != self.services:
            self.services = names
            self._columns()
        else:
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
        parts = [env.name, env.drift, env.account or "", env.region]
        for service in env.services:
            parts.append(service.name)
            if service.image:
                parts += [service.image.id, service.image.version]
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

    def refresh_rows(self, keep: str | None = None) -> None:
        """Draw the rows again, the cursor staying on ``keep`` (default: the environment selected)."""
        keep = keep or self.selected
        self.clear()
        self._shown.clear()
        for env in self.visible_rows():
            cells = self._cells(env)
            row = []
            for key, _, width in self._layout:
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
        widths = {key: width for key, _, width in self._layout}
        for env in self.visible_rows():
            cells = self._cells(env)
            for key in AGED:
                if key not in widths:
                    continue
                cell = self._fit(env, cells[key], widths[key])
                if self._shown.get((env.name, key)) != cell.plain:
                    self._shown[(env.name, key)] = cell.plain
                    self.update_cell(env.name, key, cell)

    # -- cells ------------------------------------------------------------------------------------

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
        marks += " ⧉" if env.copies else ""  # a recovered copy in another region: h shows it
        marks += " ❄" if frozen(env, now) else ""  # frozen: every change is refused but break-glass
        cells = {"env": Text(label + marks, style=row_style + Style(bold=True))}
        cells["where"] = Text(f"{env.account or '?'} {env.region}", style=row_style + Style(dim=not env.protected))
        for service in self.services:
            found = env.service(service)
            cells[f"svc:{service}"] = self._service_cell(env, found, row_style)
        cells["services"] = self._summary_cell(env, row_style)
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
        cells["op"] = self._state_cell(env, row_style)
        return cells

    def _service_cell(self, env: EnvStatus, service: ServiceStatus | None, row_style: Style) -> Text:
        if service is None or service.image is None:
            return Text("-", style=row_style + Style(dim=True))
        n = service.instances
        # Behind the environment it promotes from: the version in the accent colour (underlined on the
        # production band, which keeps its own colours); the details pane says how far.
        behind = service.lag is not None and not service.lag.in_sync
        version = self._tint(env, "accent", "yellow") + Style(underline=env.protected) if behind else Style()
        text = Text(service.image.version or "?", style=row_style + version)
        text.append(" ", style=row_style)
        if service.image.revoked:
            text.append("REVOKED", style=row_style + self._tint(env, "error", "red", bold=True))
            return text
        style = Style() if n.healthy else self._tint(env, "warning", "yellow")
        text.append(f"{n.on_pinned_image}/{n.running}/{n.desired}", style=row_style + style)
        return text

    def _summary_cell(self, env: EnvStatus, row_style: Style) -> Text:
        shown = [s for s in env.services if self.service in (None, s.name)]
        if not shown:
            return Text("unknown", style=row_style + Style(dim=True))
        if len(shown) == 1 and shown[0].image is not None:
            return self._service_cell(env, shown[0], row_style)
        versions = {s.image.version for s in shown if s.image}
        healthy = all(s.instances.healthy for s in shown)
        revoked = any(s.image and s.image.revoked for s in shown)
        behind = [s.name for s in shown if s.lag is not None and not s.lag.in_sync]
        total = sum(s.instances.on_pinned_image for s in shown), sum(s.instances.desired for s in shown)
        text = Text(f"{len(shown)} svc " + (f"{versions.pop()} " if len(versions) == 1 else ""), style=row_style)
        text.append(
            f"{total[0]}/{total[1]}", style=row_style + (Style() if healthy else self._tint(env, "warning", "yellow"))
        )
        if revoked:
            text.append(" REVOKED", style=row_style + self._tint(env, "error", "red", bold=True))
        elif behind:
            text.append(" ↓", style=row_style + self._tint(env, "accent", "yellow"))
        return text

    def _state_cell(self, env: EnvStatus, row_style: Style) -> Text:
        if env.name in self.running:
            return Text(f"▶ {self.running[env.name]}", style=row_style + self._tint(env, "accent", "yellow"))
        if env.lock:
            state = "INTERRUPTED" if env.lock.get("state") == "interrupted" else "locked"
            who = str(env.lock.get("who") or env.lock.get("user", "")).split(" <")[0]
            by = f" by {who}" if who else ""
            text = f"{state} {env.lock.get('operation', '')}{by}"
            return Text(text, style=row_style + self._tint(env, "error", "red"))
        if env.error:
            return Text(f"✗ {env.error}", style=row_style + self._tint(env, "error", "red"))
        if env.request:
            waiting = f"awaiting {env.request['approvals']}/{env.request['needed']}"
            return Text(waiting, style=row_style + self._tint(env, "warning", "yellow", bold=True))
        now = self.clock()
        if frozen(env, now) and env.freeze is not None:
            left = float(env.freeze["until"]) - now  # the whole freeze is in the header and `status`
            short = f"{int(left // 86400)}d" if left >= 86400 else f"{int(left // 3600)}h" if left >= 3600 else ""
            short = short or f"{max(1, int(left // 60))}m"
            return Text(f"frozen {short}", style=row_style + self._tint(env, "accent", "cyan", bold=True))
        end = (env.lifetime or {}).get("expires_at")
        if end:
            from opsdeck.core.estate.lifetimes import WARNINGS, time_left  # only for a sandbox with a lifetime

            left_s = float(end) - now
            var = "error" if left_s <= min(WARNINGS) else "warning" if left_s <= max(WARNINGS) else "foreground"
            return Text(f"⏳ {time_left(float(end), now)}", style=row_style + self._tint(env, var, "white"))
        return Text("ready", style=row_style + Style(dim=True))


def frozen(env: EnvStatus, now: float) -> bool:
    """A freeze in force on the row (it lifts itself at its end, before the next refresh says so)."""
    return env.freeze is not None and float(env.freeze.get("until", 0)) > now
