"""The deck's first frame waits for nothing it does not show: a new process that opens a deck on its stored
snapshot (as `opsdeck` does, the real tools installed) loads no adapter, builds no tool and imports no
operation by the time that frame is drawn. The time it takes is measured by bench/frame.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT
from tests.tui import fixture

PROBE = """
import json, sys
from pathlib import Path
from opsdeck import wiring
from opsdeck.core.estate.deck import Deck
from opsdeck.tui.app import OpsDeckApp

def loaded():
    names = ("opsdeck.adapters", "opsdeck.wiring.tools", "opsdeck.core.engine", "boto3", "git")
    return sorted(m for m in sys.modules if m.startswith(names))

seen = {}

def first_frame(app):
    seen["shown"] = app.deck_screen.state is not None
    seen["at_first_frame"] = loaded()
    app.exit()

wiring.install()
OpsDeckApp(Deck.open(Path(sys.argv[1])), live=False, on_first_frame=first_frame).run(
    headless=True, size=(120, 40)
)
print(json.dumps(seen))
"""


def test_the_first_frame_loads_no_adapter_tool_or_operation(tmp_path: Path) -> None:
    deck = fixture.build(tmp_path / "deck")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(deck)], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"shown": True, "at_first_frame": []}
