"""The full crash matrix (`make crash`): each mutating operation run once to its end (its phases must be
the ones the matrix kills at, so a new phase is not left out), then SIGKILLed at the start of each of its
phases in turn (and, where the phase runs Terraform, once more after Terraform started), each cell
checked by tests/crash/cell.py. On the session's own demo deck; writes the table to $OPSDECK_CRASH_TABLE
(crash-matrix.md by default) and every cell's findings beside it (.json). Not collected by `make test`:
its file name does not start with test_."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.crash import kill, table
from tests.crash.cell import Cell, heal, run_cell
from tests.crash.kill import Phase
from tests.crash.operations import OPERATIONS, Operation

pytestmark = pytest.mark.integration

CELLS: list[tuple[Operation, Phase | None]] = [(op, phase) for op in OPERATIONS for phase in [None, *op.all_cells]]


@pytest.fixture(scope="module")
def found() -> list[Cell]:
    return []


@pytest.mark.parametrize(
    ("op", "phase"), CELLS, ids=[f"{op.name}: {phase.shown() if phase else 'run to its end'}" for op, phase in CELLS]
)
def test_crash(demo_deck: Path, found: list[Cell], op: Operation, phase: Phase | None) -> None:
    if phase is None:
        ran_to_its_end(demo_deck, op)
        return
    cell = run_cell(demo_deck, op, phase)
    found.append(cell)
    table.write(found, Path(os.environ.get("OPSDECK_CRASH_TABLE", "crash-matrix.md")))  # as it goes
    assert cell.recovered, cell.failures


def ran_to_its_end(deck: Path, op: Operation) -> None:
    """The operation, not killed: it succeeds, and its phases are the ones the matrix kills at."""
    heal(deck)
    prepared = op.prepare(deck)
    run = kill.run(deck, prepared.args, None)
    if op.cleanup is not None:
        op.cleanup(deck)
    assert run.returncode == 0, run.tail()
    assert [str(p) for p in run.reached] == [str(p) for p in op.cells], run.tail(60)
