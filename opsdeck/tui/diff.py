"""An attribute's change as a person reads it: ``name: before → after``, coloured by the theme."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text

if TYPE_CHECKING:
    from opsdeck.core.model import AttributeChange


def change_text(change: AttributeChange, action: str, colors: dict[str, str], indent: str = "") -> Text:
    """One attribute's ``before → after``, coloured, long values elided in the middle."""
    from opsdeck.core.observe.plans import UNKNOWN, show_value

    line = Text(f"{indent}{change.name}: ", style=Style(dim=True))
    if action != "create":
        line.append(show_value(change.before), style=Style(color=colors["del"]))
        line.append(" → ")
    after = UNKNOWN if change.after_unknown else show_value(change.after)
    line.append(after, style=Style(color=colors["add"], dim=change.after_unknown))
    if change.forces_replacement:
        line.append("  forces replacement", style=Style(italic=True, dim=True))
    return line
