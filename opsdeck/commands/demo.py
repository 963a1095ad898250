"""`opsdeck demo [DIR] [--reset] [--no-open]`: prepare the demo deck on the local cloud, then open it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from opsdeck.commands import Printer, print_json, run
from opsdeck.core.events import Reporter


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="prepare the demo deck on the embedded local cloud, then open it")
    demo.add_argument("dir", nargs="?", type=Path, default=None, help="where (default: under the data dir)")
    demo.add_argument("--reset", action="store_true", help="rebuild it from nothing, on a fresh local cloud")
    demo.add_argument("--no-open", action="store_true", help="prepare it and exit")
    demo.add_argument("--json", action="store_true", help="print JSON (implies --no-open)")
    demo.add_argument("-v", "--verbose", action="store_true", help="print every phase as it starts")
    demo.set_defaults(handler=demo_cmd)


def demo_cmd(args: argparse.Namespace) -> int:
    from opsdeck import demo, paths

    target = args.dir or paths.default_demo_dir()
    started = time.monotonic()
    printer = Printer(verbose=args.verbose)
    rep = Reporter("demo", None, printer)
    deck = run(demo.prepare(target, rep, reset=args.reset))
    seconds = time.monotonic() - started
    if args.json:
        print_json({"deck": str(deck.root), "phases": rep.phase_list(), "seconds": round(seconds, 3)})
        return 0
    print(f"demo deck ready at {deck.root} ({seconds:.1f}s)")
    if args.no_open:
        print(f"open it with: opsdeck --deck {deck.root}")
        return 0
    from opsdeck.tui.launch import open_deck_tui

    return open_deck_tui(deck.root, args)
