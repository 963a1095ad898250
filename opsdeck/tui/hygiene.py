"""The hygiene view of one environment: its recovered copies, the orphans where it runs (with their
estimated cost by the hour), and the changes its trail shows outside the pipeline.

What it shows comes from core (`core/hygiene/store.env_hygiene`); `f` scans again (orphans in every
account and region the deck knows, and the trails), off the UI loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static, TabbedContent, TabPane

if TYPE_CHECKING:
    from opsdeck.core.hygiene.store import EnvHygiene

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
    HygieneScreen TabbedContent { height: 1fr; }
    HygieneScreen TabPane { height: 1fr; padding: 0; }
    HygieneScreen DataTable { height: 1fr; }
    HygieneScreen #hygiene-detail { height: auto; max-height: 8; border-top: solid $secondary; }
    HygieneScreen .hint { color: $text-muted; }
    """

    def __init__(self, hygiene: EnvHygiene, rescan: Callable[[str], bool], tab: str = "copies") -> None:
        super().__init__()
        self.hygiene = hygiene
        self.rescan = rescan  # starts a scan of an environment unless one runs (then False)
        self.tab = tab if tab in TABS else "copies"
        self.scanning = False

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
            yield Static("", id="hygiene-detail", markup=False)
            yield Label(
                "← → tabs · ↑ ↓ a row's detail · f scan again (orphans in every account, and the trails) · esc close",
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
        if not h.copies:
            copies.add_row("-", "none", "", "", "")
        for c in h.copies:
            images = ", ".join(f"{s} {v if isinstance(v, str) else v.get('live', '?')}" for s, v in c["images"].items())
            healthy = Text("yes" if c.get("healthy") else "no", style=Style(bold=not c.get("healthy")))
            copies.add_row(c["region"], c["created"], healthy, str(c.get("by", "")).split(" <")[0], images)
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
                    str(f.get("who", "")).split(":")[-1],  # user/mallory, assumed-role/NAME/session
                    f.get("action", ""),
                    ", ".join(f.get("resources") or []) or "-",
                    f.get("source_ip", "") or "-",
                )
        self.query_one("#trail-summary", Label).update(summary)
        tab = self.query_one(TabbedContent).active or self.tab
        if tab in TABS:
            table = self.query_one(f"#{tab}-table", DataTable)
            self.detail(table.id or "", table.cursor_row)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        tab = self.query_one(TabbedContent).active or self.tab
        if event.data_table.id == f"{tab}-table":  # the other tabs' tables fill in too: not shown
            self.detail(event.data_table.id, event.cursor_row)

    def on_tabbed_content_tab_activated(self, _: TabbedContent.TabActivated) -> None:
        tab = self.query_one(TabbedContent).active
        table = self.query_one(f"#{tab}-table", DataTable)
        self.detail(table.id or "", table.cursor_row)

    def detail(self, table: str, row: int) -> None:
        """The highlighted row in full: what the columns cut."""
        h, out = self.hygiene, Text()
        if table == "copies-table" and 0 <= row < len(h.copies):
            c = h.copies[row]
            state = c.get("state") or {}
            out.append(f"{c['environment']}@{c['region']}", style=Style(bold=True))
            out.append(f" · state s3://{state.get('bucket')}/{state.get('key')} · by {c.get('by', '?')}")
            if c.get("error"):
                out.append(f"\n{c['error']}", style=Style(bold=True))
            out.append(f"\nremove it: opsdeck recover {c['environment']} --region {c['region']} --destroy")
        elif table == "copies-table":
            out.append(f"no recovered copy of {h.env}: `opsdeck recover {h.env} --region R` makes one")
        elif table == "orphans-table" and h.orphans_scanned is None:
            out.append("not scanned yet: f scans every account and region the deck knows")
        elif table == "orphans-table" and 0 <= row < len(h.orphans):
            o = h.orphans[row]
            cost = o.get("cost") or {}
            out.append(f"{o.get('kind')} {o.get('type')} {o.get('id')}", style=Style(bold=True))
            out.append(f"\n{o.get('detail', '')}")
            usd = cost.get("usd_per_hour")
            figure = "unknown" if usd is None else f"~${usd}/h"
            out.append(
                f"\ncost: {figure}, an estimate ({cost.get('basis', '')}; prices {cost.get('price_table', '?')})"
            )
            how = o.get("how") or ("opsdeck orphans --delete --only " + str(o.get("id")) if o.get("removable") else "")
            if how:
                out.append(f"\nremove it: {how}")
        elif table == "trail-table" and 0 <= row < len((h.trail or {}).get("findings") or []):
            f = (h.trail or {})["findings"][row]
            out.append(f"{f.get('action')} at {f.get('time')}", style=Style(bold=True))
            out.append(f"\nby {f.get('who')} ({f.get('principal_type')}) from {f.get('source_ip') or '?'}")
            out.append(f"\nresources: {', '.join(f.get('resources') or []) or '-'} · event {f.get('event_id')}")
        self.query_one("#hygiene-detail", Static).update(out)

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
        if self.rescan(self.hygiene.env):
            self.scanning = True
            self.show(self.hygiene)

    def scanned(self, h: EnvHygiene) -> None:
        self.scanning = False
        self.show(h)
