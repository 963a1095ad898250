"""The matrix as a Markdown table: each operation at each phase -> recovered yes/no, with the failing check."""

from __future__ import annotations

import json
from pathlib import Path

from tests.crash.cell import Cell
from tests.crash.kill import Phase

HEADER = (
    "| operation | killed as this phase started | lock after the kill | recovered | unlock and the run again |",
    "| --- | --- | --- | --- | --- |",
)


def markdown(cells: list[Cell]) -> str:
    rows = list(HEADER)
    for cell in cells:
        phase = Phase.parse(cell.phase).shown()
        if cell.reached:
            phase += f" (it had reached {cell.reached})"
        said = "; ".join(n for n in cell.notes if n.startswith(("unlock:", "run again:")))
        verdict = "yes" if cell.recovered else "**no**: " + "; ".join(cell.failures)
        rows.append(f"| {cell.operation} | {phase} | {cell.lock} | {_cell(verdict)} | {_cell(said)} |")
    recovered = sum(1 for c in cells if c.recovered)
    return "\n".join(rows) + f"\n\n{recovered} of {len(cells)} cells recovered.\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:400]


def write(cells: list[Cell], path: Path) -> None:
    """The table at ``path`` (Markdown) and every cell's findings beside it (``path`` with .json)."""
    path.write_text(markdown(cells), encoding="utf-8")
    path.with_suffix(".json").write_text(json.dumps([c.to_json() for c in cells], indent=2) + "\n", encoding="utf-8")
