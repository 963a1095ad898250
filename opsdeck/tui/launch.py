"""Opening the deck from the command line: which deck, which theme, read-only or not."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsdeck.core.estate.config import CONFIG_FILE

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.hygiene.notices import Notices
    from opsdeck.tui.app import OpsDeckApp


def _choose_root(args: Any) -> Path | None:
    explicit = getattr(args, "deck", None) or os.environ.get("OPSDECK_DECK")
    if explicit:
        return Path(explicit).expanduser().resolve()
    if (Path.cwd() / CONFIG_FILE).is_file():
        return Path.cwd()
    from opsdeck.core.estate.demo_deck import last_demo_deck

    return last_demo_deck()


def open_default(args: Any) -> int:
    """`opsdeck` with no command: the deck named, the one here, or the demo deck."""
    root = _choose_root(args)
    if root is None:
        print(
            "opsdeck: no deck here and no demo deck yet: run `opsdeck demo` to make one (or pass --deck DIR)",
            file=sys.stderr,
        )
        return 1
    return open_deck_tui(root, args)


def open_deck_tui(root: Path, args: Any) -> int:
    from opsdeck.core.estate.deck import Deck, find_deck_root
    from opsdeck.errors import ConfigError

    deck = Deck.open(find_deck_root(str(root)))
    theme = getattr(args, "theme", None)
    if theme:
        from opsdeck.core.estate.settings import save_setting
        from opsdeck.tui.themes import load_themes

        known = load_themes()
        if theme not in known:
            raise ConfigError(f"--theme: unknown theme {theme!r} (expected one of: {', '.join(sorted(known))})")
        save_setting("theme", theme)
    from opsdeck.tui.app import OpsDeckApp

    app = OpsDeckApp(deck, read_only=bool(getattr(args, "read_only", False)), theme=theme)
    notices = attach_notices(deck, app)
    app.run(mouse=mouse_wanted(args))
    if notices is not None and notices.wait(deck.config.notify.wait_seconds) == 0:
        notices.close()
    return app.return_code or 0


def mouse_wanted(args: Any) -> bool:
    """The mouse is the deck's unless --no-mouse or the user's config (mouse = false) says otherwise."""
    from opsdeck.core.estate.settings import load_settings

    return not getattr(args, "no_mouse", False) and load_settings().mouse


def attach_notices(deck: Deck, app: OpsDeckApp) -> Notices | None:
    """The deck tells its [notify] targets of each change in the background; a target not told is a
    notice on screen (a line on stderr once the deck has closed)."""
    from opsdeck.core.hygiene.notices import Notices

    def failed(line: str) -> None:
        try:
            app.call_from_thread(app.notify, line, title="release notice", severity="error", timeout=12)
        except RuntimeError:  # the app is not running (any more), or this is its own thread
            print(f"opsdeck: {line}", file=sys.stderr)

    if not deck.config.notify.targets:
        return None
    deck.announcer = notices = Notices(deck, on_failure=failed)
    return notices
