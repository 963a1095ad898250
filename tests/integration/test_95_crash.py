"""A crash at each kind of phase, on the session's demo deck: opsdeck SIGKILLed as the phase starts (read
from its -v lines), then `unlock`, and the checks of tests/crash/cell.py (status names the interruption;
unlock recovers; the ledger, Terraform's state and the cloud agree; no pin half-moved; nothing orphaned
unnoticed; the same operation then succeeds). One cell per kind of phase; `make crash` runs them all.
Runs last of the integration tests: the deck is left unlocked and clean, every environment applied.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import write_color_pins
from opsdeck.core.release.bluegreen import color_pins
from tests.crash.cell import run_cell
from tests.crash.kill import Phase
from tests.crash.operations import BY_NAME

pytestmark = pytest.mark.integration

KINDS = [
    ("before anything is applied", "promote (replace)", "policy"),
    ("during an apply", "rollback (replace)", "apply@terraform"),
    ("after the apply, before the commit", "promote (replace)", "verify instances"),
    ("committed, not pushed", "deploy", "push"),
    ("blue/green staged, traffic never moved", "promote (blue/green)", "health"),
    ("a blue/green switch", "promote (blue/green)", "apply#2@terraform"),
    ("traffic moved by the API, not committed", "rollback (instant)", "commit"),
    ("nuke's destroy", "nuke-rebuild", "terraform destroy@terraform"),
    ("a copy in another region applied, not recorded", "recover", "apply@terraform"),
]


@pytest.mark.parametrize(("kind", "operation", "phase"), KINDS, ids=[k for k, _, _ in KINDS])
def test_killed_as_a_phase_starts_recovers(demo_deck: Path, kind: str, operation: str, phase: str) -> None:
    cell = run_cell(demo_deck, BY_NAME[operation], Phase.parse(phase))
    assert cell.recovered, f"{operation} killed at {phase} ({kind}): " + "; ".join(cell.failures)


def _as_its_switch_began(deck: Path) -> str:
    """What a promote killed after it wrote the switched pins, before its Terraform moved a rule, leaves: the
    stage applied, traffic where it was, the working tree's pins switched (live on the new color). The
    switch's own phase line cannot time that kill (Terraform may start first), so the pins are switched
    here, as the release writes them, over a kill at the health gate."""
    opened = Deck.open(deck)
    pins = color_pins(opened, "dev")
    staged = {s: p for s, p in pins.items() if p.standby == "warm" and p.warm_until is None and p.idle_image}
    assert staged, f"no staged color in dev's working tree: {pins}"
    minutes = opened.env("dev").standby_minutes
    write_color_pins(opened, "dev", {s: p.switched(minutes) for s, p in staged.items()})
    return "pins switched in the working tree, traffic not: " + ", ".join(
        f"{s} live {p.idle} ({p.idle_image})" for s, p in staged.items()
    )


def test_a_blue_green_switch_killed_before_its_terraform_ran_recovers(demo_deck: Path) -> None:
    cell = run_cell(demo_deck, BY_NAME["promote (blue/green)"], Phase.parse("health"), _as_its_switch_began)
    assert cell.recovered, "promote (blue/green) killed as its switch began: " + "; ".join(cell.failures)
