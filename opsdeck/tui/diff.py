"""An attribute's change as a person reads it: ``name: before → after``, coloured by the theme."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text

if TYPE_CHECKING:
    from opsdeck.core.model import AttributeChange


def change_text(change: AttributeChange, action: str, colors: dict[str, str], indent: str = "") -> Text:
    """An attribute's ``before → after`` (one line per changed part), coloured, long values elided."""
    from opsdeck.core.plans.shown import change_lines

    out = Text()
    for index, (name, before, after) in enumerate(change_lines(change, action)):
        if index:
            out.append("\n")
        out.append(f"{indent}{name}: ", style=Style(dim=True))
        if action != "create":
            out.append(before, style=Style(color=colors["del"]))
            out.append(" → ")
        out.append(after, style=Style(color=colors["add"], dim=change.after_unknown))
    return out
