"""The requests view: changes waiting for approvals, with their before → after diff; approve, reject or
run them from here. What is shown comes from core (the ledger's requests, signatures checked)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

if TYPE_CHECKING:
    from opsdeck.tui.app import OpsDeckApp


class RequestsScreen(ModalScreen[None]):
    """Every open request (and the decided ones below them); keys act on the one under the cursor."""

    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("a", "approve", "Approve"),
        Binding("x", "reject", "Reject"),
        Binding("e", "execute", "Execute"),
        Binding("f", "reload", "Reload"),
    ]
    DEFAULT_CSS = """
    RequestsScreen { align: center middle; }
    RequestsScreen > Vertical { width: 110; max-width: 98%; height: 90%; border: thick $primary;
                                background: $surface; padding: 0 1; }
    RequestsScreen .title { text-style: bold; }
    RequestsScreen DataTable { height: auto; max-height: 40%; }
    RequestsScreen VerticalScroll { height: 1fr; border-top: solid $secondary; }
    RequestsScreen .hint { color: $text-muted; }
    """

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows

    @property
    def deck_app(self) -> OpsDeckApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Requests: changes waiting for approvals", classes="title", markup=False)
            yield DataTable(id="requests", cursor_type="row", zebra_stripes=False)
            with VerticalScroll():
                yield Static("", id="request-detail", markup=False)
            yield Label(
                "a approve (signs with your git signing key) · x reject · e execute an approved one · "
                "f reload · esc close",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label, width in (
            ("id", "REQUEST", 17),
            ("env", "ENV", 9),
            ("action", "ACTION", 9),
            ("status", "STATUS", 9),
            ("approvals", "APPROVALS", 10),
            ("by", "REQUESTED BY", 18),
            ("what", "WHAT", 18),
        ):
            table.add_column(label, key=key, width=width)
        self.show(self.rows)
        table.focus()

    def show(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        table = self.query_one(DataTable)
        table.clear()
        for row in rows:
            valid = sum(1 for a in row["approvals"] if a["valid"])
            what = ", ".join(f"{s['name']} {s.get('version') or ''}".strip() for s in row.get("services", []))
            table.add_row(
                row["id"],
                row["environment"],
                row["action"],
                row["status"],
                f"{valid}/{row['needed']}",
                row["requested_by"].split(" <")[0],  # the name; the detail below has the address
                what or "-",
                key=row["id"],
            )
        self.detail()

    @property
    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row < 0 or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self.detail()

    def detail(self) -> None:
        row = self.selected
        body = Text()
        if row is None:
            body.append("no open requests", style=Style(dim=True))
        else:
            body.append(f"{row['action']} {row['environment']}", style=Style(bold=True))
            if row.get("reason"):
                body.append(f" · {row['reason']}", style=Style(italic=True))
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row.get("created_at", 0)))
            body.append(f"\nrequested by {row['requested_by']} at {when} · plan {row['plan_sha256'][:16]}…")
            for service in row.get("services", []):
                body.append(f"\n{service['name']:<8} ", style=Style(bold=True))
                body.append(f"{service.get('from_version') or '?'} {service.get('from_image', '')}")
                body.append("  →  ")
                body.append(f"{service.get('version') or '?'} {service.get('to_image', '')}")
            for approval in row["approvals"]:
                mark = "✓" if approval["valid"] else "✗"
                problem = f" ({approval['problem']})" if approval.get("problem") else ""
                body.append(f"\n{mark} approved by {approval['by']}{problem}")
            if row.get("stale"):
                body.append(f"\nstale: {row['stale']}", style=Style(bold=True))
            body.append("\n\n")
            body.append("\n".join(row.get("diff", [])))
        self.query_one("#request-detail", Static).update(body)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_reload(self) -> None:
        self.deck_app.open_requests(reload_only=True)

    def action_approve(self) -> None:
        row = self.selected
        if row is not None:
            self.deck_app.approve_request(row["id"])

    def action_execute(self) -> None:
        row = self.selected
        if row is not None:
            self.deck_app.execute_request(row["id"])

    def action_reject(self) -> None:
        row = self.selected
        if row is None:
            return
        from opsdeck.tui.screens import ReasonScreen

        def rejected(reason: str | None) -> None:
            if reason:
                self.deck_app.reject_request(row["id"], reason)

        self.app.push_screen(ReasonScreen(f"reject {row['id']}", "Why is this change turned down?"), rejected)
