"""The hygiene view of one environment: its recovered copies, the orphans where it runs (with their
estimated cost by the hour), and the changes its trail shows outside the pipeline.

What it shows comes from core (`core/hygiene/store.env_hygiene`); `f` scans again (orphans in every
account and region the deck knows, and the trails), off the UI loop.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, TabbedContent, TabPane

if TYPE_CHECKING:
    from opsdeck.core.hygiene.store import EnvHygiene
    from opsdeck.tui.app import OpsDeckApp

TABS = ("copies", "orphans", "trail")


def ago(epoch: float | None, now: float | None = None) -> str:
    if epoch is None:
        return "never"
    seconds = max(0.0, (now or time.time()) - epoch)
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f}h ago"
    return f"{seconds / 86400:.0f}d ago"


def cost_line(h: EnvHygiene) -> str:
    """`3 · ~$0.0832/h est. (prices 2026-11-01)`: every figure labelled an estimate with its table."""
    if h.orphans_scanned is None:
        return "not scanned yet: h, then f"
    if not h.orphans:
        return f"none (scanned {ago(h.orphans_scanned)})"
    unknown = f", {h.unknown_cost} unknown" if h.unknown_cost else ""
    return f"{len(h.orphans)} · ~${h.usd_per_hour:.4f}/h est.{unknown} (prices {h.price_table})"


def finding_line(finding: dict[str, Any]) -> str:
    who = str(finding.get("who", "?")).rsplit("/", 1)[-1] or "?"
    return f"{finding.get('action', '?')} by {who} at {finding.get('time', '?')}"


class HygieneScreen(ModalScreen[None]):
    """Copies, orphans and trail of the environment that was selected."""

    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("f", "rescan", "Scan again"),
        Binding("left", "tab(-1)", "Previous tab", show=False),
        Binding("right", "tab(1)", "Next tab", show=False),
    ]
    DEFAULT_CSS = """
    HygieneScreen { align: center middle; }
    HygieneScreen > Vertical { width: 120; max-width: 98%; height: 90%; border: thick $primary;
                               background: $surface; padding: 0 1; }
    HygieneScreen .title { text-style: bold; }
    HygieneScreen DataTable { height: 1fr; }
    HygieneScreen .hint { color: $text-muted; }
    """

    def __init__(self, hygiene: EnvHygiene, tab: str = "copies") -> None:
        super().__init__()
        self.hygiene = hygiene
        self.tab = tab if tab in TABS else "copies"
        self.scanning = False

    @property
    def deck_app(self) -> OpsDeckApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("", id="hygiene-title", classes="title", markup=False)
            with TabbedContent(initial=self.tab, id="hygiene-tabs"):
                with TabPane("Recovered copies", id="copies"):
                    yield DataTable(id="copies-table", cursor_type="row")
                with TabPane("Orphans", id="orphans"):
                    yield Label("", id="orphans-total", markup=False)
                    yield DataTable(id="orphans-table", cursor_type="row")
                with TabPane("Trail", id="trail"):
                    yield Label("", id="trail-summary", markup=False)
                    yield DataTable(id="trail-table", cursor_type="row")
            yield Label(
                "← → tabs · f scan again (orphans in every account, and the trails) · esc close",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        columns = {
            "copies-table": [("REGION", 11), ("CREATED", 21), ("HEALTHY", 8), ("BY", 16), ("IMAGES", 40)],
            "orphans-table": [("KIND", 14), ("WHERE", 24), ("ID", 26), ("AGE", 8), ("EST. $/H", 10), ("DETAIL", 40)],
            "trail-table": [("TIME", 21), ("WHO", 30), ("ACTION", 26), ("RESOURCES", 30), ("SOURCE IP", 15)],
        }
        for table_id, cols in columns.items():
            table = self.query_one(f"#{table_id}", DataTable)
            for label, width in cols:
                table.add_column(label, width=width)
        self.show(self.hygiene)

    def show(self, h: EnvHygiene) -> None:
        self.hygiene = h
        state = " · scanning…" if self.scanning else ""
        self.query_one("#hygiene-title", Label).update(f"Hygiene · {h.env}{state}")
        copies = self.query_one("#copies-table", DataTable)
        copies.clear()
        for c in h.copies:
            images = ", ".join(f"{s} {v if isinstance(v, str) else v.get('live', '?')}" for s, v in c["images"].items())
            healthy = Text("yes" if c.get("healthy") else "no", style=Style(bold=not c.get("healthy")))
            copies.add_row(c["region"], c["created"], healthy, str(c.get("by", "")).split(" <")[0], images)
        if not h.copies:
            copies.add_row("-", f"no recovered copy of {h.env} (opsdeck recover {h.env} --region R)", "", "", "")
        self.query_one("#orphans-total", Label).update(f"orphans where {h.env} runs: {self._total(h)}")
        orphans = self.query_one("#orphans-table", DataTable)
        orphans.clear()
        for o in h.orphans:
            cost = o.get("cost") or {}
            usd = cost.get("usd_per_hour")
            age = o.get("age_hours")
            orphans.add_row(
                o.get("kind", ""),
                f"{o.get('account', '')} {o.get('region', '')}",
                o.get("id", ""),
                "?" if age is None else f"{age:.0f}h",
                "unknown" if usd is None else f"{usd:.4f}",
                o.get("detail", ""),
            )
        trail_table = self.query_one("#trail-table", DataTable)
        trail_table.clear()
        report = h.trail
        if report is None:
            summary = f'no trail read for {h.env} yet (it needs trail = "s3://…" in its [environments.{h.env}])'
        else:
            skipped = len(report.get("files_skipped") or [])
            summary = (
                f"{len(report.get('findings') or [])} change(s) outside the pipeline since {report.get('since')} · "
                f"{report.get('files_read', 0)} files read"
                + (f", {skipped} unreadable skipped" if skipped else "")
                + f" · read {ago(h.trail_read)}"
            )
            for f in report.get("findings") or []:
                trail_table.add_row(
                    f.get("time", ""),
                    f.get("who", ""),
                    f.get("action", ""),
                    ", ".join(f.get("resources") or []) or "-",
                    f.get("source_ip", "") or "-",
                )
        self.query_one("#trail-summary", Label).update(summary)

    def _total(self, h: EnvHygiene) -> str:
        line = cost_line(h)
        return line if h.orphans_scanned is None or not h.orphans else f"{line}, scanned {ago(h.orphans_scanned)}"

    def action_close(self) -> None:
        self.dismiss(None)

    def action_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        current = tabs.active if tabs.active in TABS else "copies"
        tabs.active = TABS[(TABS.index(current) + step) % len(TABS)]

    def action_rescan(self) -> None:
        if self.scanning:
            return
        if self.deck_app.scan_hygiene(self.hygiene.env):
            self.scanning = True
            self.show(self.hygiene)

    def scanned(self, h: EnvHygiene) -> None:
        self.scanning = False
        self.show(h)
