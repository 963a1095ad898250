"""The layers stay apart: core never loads a UI library, and the import contracts (pyproject.toml
[tool.importlinter], checked by `lint-imports` in scripts/test.sh) hold and are the ones written down."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "opsdeck"


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


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return list(config["contracts"])


def test_every_package_of_core_has_its_place_in_the_layers() -> None:
    (core,) = [c for c in _contracts() if c.get("containers") == ["opsdeck.core"]]
    assert core["type"] == "layers" and core["exhaustive"] is True
    listed = {name.strip() for layer in core["layers"] for name in layer.replace(":", "|").split("|")}
    children = {p.stem for p in (PACKAGE / "core").iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert listed == children - {"__init__"}
    assert core["layers"][-1] == "types" and core["layers"][0].startswith("engine")


def test_core_is_forbidden_the_adapters_the_wiring_and_the_ui() -> None:
    (rule,) = [c for c in _contracts() if c.get("source_modules") == ["opsdeck.core"]]
    assert {"opsdeck.adapters", "opsdeck.wiring", "textual", "rich", "boto3", "keyring"} <= set(
        rule["forbidden_modules"]
    )  # type: ignore[call-overload]


def test_the_contracts_hold() -> None:
    """`lint-imports` itself, so a plain pytest run checks the layers too."""
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter), "--no-cache"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout
