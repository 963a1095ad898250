"""Which deck is the demo deck: its marker inside the deck, and where the last one was made. Kept below
`opsdeck/demo.py` so a deck's own errors can tell the demo from a team's deck and point at the demo."""

from __future__ import annotations

from pathlib import Path

from opsdeck import paths

MARKER = "demo.json"


def marker(root: Path) -> Path:
    """The file `opsdeck demo` writes into the deck it makes (what it was built on, whether it is complete)."""
    return root / ".opsdeck" / MARKER


def is_demo_deck(root: Path) -> bool:
    return marker(root).is_file()


def last_demo_deck() -> Path | None:
    """The demo deck opsdeck made last, if it is still there."""
    try:
        root = Path((paths.state_dir() / "demo-deck").read_text("utf-8").strip())
    except OSError:
        root = paths.default_demo_dir()
    return root if (root / "opsdeck.toml").is_file() else None
