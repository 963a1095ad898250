"""Modal screens: confirm what will change (typed for protected or `approval = "typed"`), a reason, help."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from opsdeck.tui.diff import change_text
from opsdeck.tui.keys import ACTIONS

if TYPE_CHECKING:
    from opsdeck.core.safety.confirm import Preview

MAX_LINES = 24


class ConfirmScreen(ModalScreen[bool]):
    """What will change, and a confirmation; ``typed`` asks for a word (the environment's name).

    Cancel has the focus, so a stray enter never applies; ``y`` applies where no word is asked for.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("y", "confirm", "Apply", show=False)]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 90; max-width: 95%; height: auto; max-height: 90%;
                               border: thick $warning; background: $surface; padding: 1 2; }
    ConfirmScreen.-protected > Vertical { border: thick $error; }
    ConfirmScreen .title { text-style: bold; margin-bottom: 1; }
    ConfirmScreen VerticalScroll { height: auto; max-height: 16; }
    ConfirmScreen Horizontal { height: auto; margin-top: 1; }
    ConfirmScreen Button { margin-right: 2; }
    ConfirmScreen .hint { color: $text-muted; }
    """

    def __init__(
        self,
        title: str,
        body: RenderableType,
        *,
        typed: str | None = None,
        danger: bool = False,
        confirm_label: str = "Apply",
    ) -> None:
        super().__init__(classes="-protected" if danger else "")
        self.title_text = title
        self.body = body
        self.typed = typed
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title", markup=False)
            with VerticalScroll():
                yield Static(self.body, markup=False)
            if self.typed:
                yield Label(f"Type {self.typed} to confirm:", classes="hint", markup=False)
                yield Input(placeholder=self.typed, id="typed")
            with Horizontal():
                yield Button(
                    self.confirm_label, variant="error" if self.typed else "warning", id="ok", disabled=bool(self.typed)
                )
                yield Button("Cancel", variant="default", id="cancel")
            hint = (
                f"type {self.typed} and press enter · esc cancels"
                if self.typed
                else f"y: {self.confirm_label.lower()} · esc: cancel"
            )
            yield Label(hint, classes="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#typed" if self.typed else "#cancel").focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#ok", Button).disabled = event.value.strip() != self.typed

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.typed:
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "ok")

    def action_confirm(self) -> None:
        if not self.typed:
            self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


def preview_body(preview: Preview, colors: dict[str, str]) -> RenderableType:
    """The plan summary and from -> to of a promote, rollback or apply."""
    lines = []
    for change in preview.changes:
        if change.from_image.id == change.to_image.id:
            continue
        line = Text(f"{change.service:<8} ", style=Style(bold=True))
        line.append(f"{change.from_image.version or '?'} {change.from_image.id}", style=Style(color=colors["del"]))
        line.append("  →  ")
        line.append(f"{change.to_image.version or '?'} {change.to_image.id}", style=Style(color=colors["add"]))
        lines.append(line)
    for part in (p for p in preview.note.split("; ") if p):
        # What will not happen matters most: instances that keep the old image are said loudly.
        loud = "keep the old image" in part
        lines.append(Text(part, style=Style(bold=True, color=colors.get("warn")) if loud else Style(dim=True)))
    s = preview.plan.summary
    lines.append(Text(f"plan   +{s.add} ~{s.change} -{s.destroy}", style=Style(bold=True)))
    symbol = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
    body: list[Text] = []
    for res in preview.plan.resources:
        body.append(Text(f"  {symbol.get(res.action, '?'):>3} {res.address}", style=Style(bold=True)))
        for attribute in res.changes:
            body.append(change_text(attribute, res.action, colors, indent="        "))
        if not res.changes and res.attributes:
            body.append(Text(f"        {', '.join(res.attributes)}", style=Style(dim=True)))
    lines += body[:MAX_LINES]
    if len(body) > MAX_LINES:
        lines.append(
            Text(
                f"  … {len(body) - MAX_LINES} more lines (enter on the row shows the whole plan)", style=Style(dim=True)
            )
        )
    if preview.reason:
        lines.append(Text(f"reason {preview.reason}", style=Style(italic=True)))
    return Group(*lines)


class ReasonScreen(ModalScreen[str | None]):
    """Asks why (break-glass needs a reason; it goes into the audit log)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    ReasonScreen { align: center middle; }
    ReasonScreen > Vertical { width: 80; max-width: 95%; height: auto; border: thick $error;
                              background: $surface; padding: 1 2; }
    ReasonScreen .title { text-style: bold; margin-bottom: 1; }
    """

    def __init__(self, title: str, prompt: str) -> None:
        super().__init__()
        self.title_text = title
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, classes="title", markup=False)
            yield Label(self.prompt, markup=False)
            yield Input(placeholder="reason (required)", id="reason")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 96; max-width: 95%; height: auto; border: thick $primary;
                            background: $surface; padding: 1 2; }
    """

    def __init__(self, keys: dict[str, str], read_only: bool) -> None:
        super().__init__()
        self.keys = keys
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        lines = [Text("opsdeck keys", style=Style(bold=True)), Text("")]
        for action in ACTIONS:
            key = self.keys.get(action.name, action.key)
            shown = {"slash": "/", "exclamation_mark": "!", "question_mark": "?"}.get(key, key)
            line = Text(f"  {shown:<7} ")
            line.append(f"{action.description:<12}", style=Style(bold=True))  # the footer's name for it
            line.append(action.help)
            if self.read_only and action.mutating:
                line.append("  (disabled: read-only)", style=Style(dim=True))
            lines.append(line)
        lines += [Text(""), Text("ctrl+p opens the command palette; every action is there too.", style=Style(dim=True))]
        with Vertical():
            yield Static(Group(*lines), markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
