"""The layers stay apart: core never loads a UI library, and imports only point down (tui -> core -> adapters)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "opsdeck"
CORE_MODULES = sorted("opsdeck.core." + p.stem for p in (PACKAGE / "core").glob("*.py") if p.stem != "__init__")
ADAPTER_MODULES = sorted(
    "opsdeck.adapters." + p.stem for p in (PACKAGE / "adapters").glob("*.py") if p.stem != "__init__"
)


@pytest.mark.parametrize("module", CORE_MODULES + ADAPTER_MODULES)
def test_module_loads_no_ui(module: str) -> None:
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')); "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"{module} loads {result.stdout.strip()}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_imports_point_down() -> None:
    rules = {
        "adapters": ("opsdeck.core", "opsdeck.tui", "opsdeck.commands", "opsdeck.cli"),
        "core": ("opsdeck.tui", "opsdeck.commands", "opsdeck.cli", "textual", "rich"),
    }
    wrong = []
    for layer, forbidden in rules.items():
        for path in (PACKAGE / layer).rglob("*.py"):
            for name in _imports(path):
                if name.startswith(forbidden):
                    wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert wrong == []
