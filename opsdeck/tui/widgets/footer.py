"""The deck's footer: Textual's compact footer, its keys made compact as they are built rather than as
each one mounts."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # not exported; the footer's own key widget


class DeckFooter(Footer):
    """Looks and behaves as ``Footer(compact=...)``. Textual's footer gives each key its ``-compact`` class
    from a watcher as the key mounts, and every class change restyles the key on its own: with the deck's
    fifteen keys, ~6 ms of the deck's first frame (bench/frame.py). A key built with the class already set
    is styled once, as it mounts; the watcher then finds nothing to change."""

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                widget.set_class(self.compact, "-compact", update=False)
            yield widget
