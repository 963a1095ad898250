"""The deck sends release notices in the background, and a target never told is a notice on screen."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from opsdeck.core.estate.deck import Deck
from opsdeck.core.safety import audit
from opsdeck.tui.launch import attach_notices
from tests.helpers import Hook
from tests.tui import fixture
from tests.tui.test_governance import Recording


async def test_a_target_never_told_is_a_notice_in_the_deck(tmp_path: Path) -> None:
    gone = Hook([404])  # a 4xx is final: one attempt
    root = fixture.build(tmp_path / "deck")
    toml = root / "opsdeck.toml"
    toml.write_text(toml.read_text() + f'\n[notify]\ntargets = ["{gone.url}"]\n')
    deck = Deck.open(root)
    app = Recording(deck, theme="opsdeck-dark", live=False, clock=lambda: fixture.NOW)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            notices = attach_notices(deck, app)
            assert notices is not None and deck.announcer is notices
            # What an operation's audited context hands the deck once its lock is released.
            closing = audit.append(
                deck,
                action="promote",
                environment="dev",
                result="ok",
                services=["api"],
                to="ami-0000000000000000b",
                **{"from": "ami-0000000000000000a"},
                who={"git": "Alice <alice@shop.example>"},
            )
            deck.announce(closing)
            deadline = time.monotonic() + 20
            while not any("was not told of promote dev" in m for m, _ in app.notices):
                assert time.monotonic() < deadline, app.notices
                await asyncio.sleep(0.05)
                await pilot.pause()
            port = gone.server.server_address[1]
            line = f"notify: http://127.0.0.1:{port}/… was not told of promote dev: HTTP 404 Not Found (1 attempt)"
            assert (line, "error") in app.notices
            assert gone.bodies[0]["changes"] == [
                {"service": "api", "from": "ami-0000000000000000a", "to": "ami-0000000000000000b"}
            ]
            assert notices.wait(5) == 0
            notices.close()
    finally:
        gone.close()
