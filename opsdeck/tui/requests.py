"""The requests view: changes waiting for approvals, with their before → after diff; approve, reject or
run them from here (a, x, e: the registry's operations, in the deck's operations pane). What is shown
comes from core (the ledger's requests, signatures checked)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from opsdeck.core.engine import registry, runner
from opsdeck.core.engine.operation import ApproveArgs, ExecuteArgs, Operation, RejectArgs
from opsdeck.tui.controller import TellsFailures

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.tui.controller import DeckContext
    from opsdeck.tui.widgets.ops import OperationsPane


def load_requests(deck: Deck) -> tuple[list[dict[str, Any]], str]:
    """The team's requests (not only the ones this clone has), open ones first, and a warning when the
    ledger could not be brought level with the team's remote."""
    from opsdeck.core.ledger.remote import latest
    from opsdeck.core.team.requests import all_requests

    ledger = latest(deck)
    warning = f"requests as this clone has them: {ledger.describe()}" if ledger.offline or ledger.behind else ""
    rows = [r.to_json() for r in all_requests(deck)]
    open_first = sorted(rows, key=lambda r: (r["status"] not in ("pending", "approved", "stale"), -r["created_at"]))
    return open_first, warning


class RequestsScreen(TellsFailures, ModalScreen[None]):
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

    def __init__(self, rows: list[dict[str, Any]], ctx: DeckContext, operations: OperationsPane) -> None:
        super().__init__()
        self.rows = rows
        self.ctx = ctx
        self.operations = operations  # the deck's: a decision runs there like any operation

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
        self.reload()

    @work(exclusive=True, group="requests", exit_on_error=False)
    async def reload(self) -> None:
        rows, warning = await asyncio.to_thread(load_requests, self.ctx.deck)
        if warning:
            self.notify(warning, severity="warning")
        self.show(rows)

    def _decide(self, op: Operation[Any, Any], what: Any, title: str, summary: Callable[[Any], str]) -> None:
        if self.ctx.read_only:
            self.notify("the deck is read-only (--read-only)", severity="error")
            return
        from opsdeck.tui.confirm import Confirmations

        ask = Confirmations(self.app, self.ctx).preview
        self.operations.start(title, None, lambda rep: runner.run(self.ctx.deck, op, what, rep, confirm=ask), summary)

    def action_approve(self) -> None:
        row = self.selected
        if row is not None:
            self._decide(
                registry.APPROVE,
                ApproveArgs(row["id"]),
                f"approve {row['id']}",
                lambda ran: (
                    f"approved {ran.result.id}: {len(ran.result.valid_approvers)}/{ran.result.needed} "
                    f"approvals, {ran.result.status}"
                ),
            )

    def action_execute(self) -> None:
        row = self.selected
        if row is not None:
            rid = row["id"]
            self._decide(
                registry.EXECUTE,
                ExecuteArgs(rid),
                f"execute {rid}",
                lambda ran: (
                    f"executed {rid}: {ran.result.action} {ran.result.environment} {ran.result.summary()}, "
                    f"commit {ran.result.commit[:10]}"
                ),
            )

    def action_reject(self) -> None:
        row = self.selected
        if row is None:
            return
        from opsdeck.tui.screens import ReasonScreen

        def rejected(reason: str | None) -> None:
            if reason:
                self._decide(
                    registry.REJECT,
                    RejectArgs(row["id"], reason),
                    f"reject {row['id']}",
                    lambda ran: f"rejected {ran.result.id}: {reason}",
                )

        self.app.push_screen(ReasonScreen(f"reject {row['id']}", "Why is this change turned down?"), rejected)
