"""The layers stay apart: core never loads a UI library, and imports only point down (tui -> core -> adapters)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "opsdeck"


def _modules(layer: str) -> list[str]:
    """Every module of a layer, in its subpackages too (core/estate/config.py -> opsdeck.core.estate.config)."""
    found = []
    for path in (PACKAGE / layer).rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(found)


CORE_MODULES = _modules("core")
ADAPTER_MODULES = _modules("adapters")


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
    """Every module a file imports, at any depth; ``from opsdeck import tui`` counts as opsdeck.tui."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_walk_sees_every_spelling_of_an_import(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text(
        "from opsdeck import tui\ndef f():\n    import textual.app\n    from opsdeck.adapters import aws\n"
    )
    found = _imports(sample)
    assert {"opsdeck.tui", "textual.app", "opsdeck.adapters.aws"} <= found
    assert len(CORE_MODULES) > 20 and "opsdeck.core.estate.config" in CORE_MODULES


def test_imports_point_down() -> None:
    rules = {
        "adapters": ("opsdeck.core", "opsdeck.tui", "opsdeck.commands", "opsdeck.cli"),
        "core": ("opsdeck.tui", "opsdeck.commands", "opsdeck.cli", "textual", "rich"),
        # The deck renders what core gives it: it never reaches an outside system itself.
        "tui": ("opsdeck.adapters", "opsdeck.commands", "opsdeck.cli", "boto3", "botocore", "git", "keyring"),
    }
    wrong = []
    for layer, forbidden in rules.items():
        for path in (PACKAGE / layer).rglob("*.py"):
            for name in _imports(path):
                if name.startswith(forbidden) and not (layer == "adapters" and name.startswith("opsdeck.core.types")):
                    wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert wrong == []
