"""Measures of the core's shape (issue 21): long functions, long files, adapter imports, package cycles, lazy imports.

Run from the checkout: ``python scripts/measure_core.py`` (``--list`` prints every import placed inside a
function). It reads the source only (ast), so it runs without the package's dependencies installed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "opsdeck"
FUNCTION_LIMIT = 80
FILE_LIMIT = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def product_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "sample_envs" not in p.parts)


def imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The absolute names an import statement brings in (``from opsdeck import tui`` -> opsdeck.tui)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def imports(path: Path) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement of a file, with whether it sits inside a function."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_function
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from walk(child, inner)

    yield from walk(ast.parse(path.read_text()), False)


def longest_functions(paths: list[Path], top: int) -> list[tuple[int, str]]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                found.append((length, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)[:top]


def package_of(name: str) -> str | None:
    """The core package a module belongs to: opsdeck.core.release.promote -> release; core/model.py -> model."""
    parts = name.split(".")
    if parts[:2] != ["opsdeck", "core"] or len(parts) < 3:
        return None
    return parts[2]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--list", action="store_true", help="print every import placed inside a function")
    args = parser.parse_args()
    files = product_files()
    core = [p for p in files if p.is_relative_to(PACKAGE / "core")]

    print(f"Longest functions in opsdeck/core (goal <= {FUNCTION_LIMIT} lines):")
    for length, where in longest_functions(core, 5):
        print(f"  {length:4d}  {where}")

    over = [(len(p.read_text().splitlines()), p) for p in files]
    over = sorted(((n, p) for n, p in over if n > FILE_LIMIT), reverse=True)
    print(f"Product files over {FILE_LIMIT} lines (goal none): {len(over)}")
    for n, p in over:
        print(f"  {n:4d}  {p.relative_to(ROOT)}")

    adapter_users: dict[str, set[str]] = defaultdict(set)
    graph: dict[str, set[str]] = defaultdict(set)
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    lazy: dict[str, list[str]] = defaultdict(list)
    for path in files:
        name = module_name(path)
        layer = name.split(".")[1] if name.count(".") else "opsdeck"
        source = package_of(name)
        for node, in_function in imports(path):
            names = imported(node, name, path.name == "__init__.py")
            if in_function:
                where = "core" if layer == "core" else layer if layer in ("tui", "commands") else "other"
                if layer == "cli":
                    where = "cli"
                lazy[where].append(f"{path.relative_to(ROOT)}:{node.lineno} {names[0]}")
            if layer != "core":
                continue
            if any(n.startswith("opsdeck.adapters") for n in names):
                adapter_users[name].add(names[0])
            for target in {package_of(n) for n in names} - {None, source}:
                assert source is not None and target is not None
                graph[source].add(target)
                edges[(source, target)].append(f"{path.relative_to(ROOT)}:{node.lineno}")

    print(f"Core modules importing an adapter (goal 0): {len(adapter_users)}")
    for name in sorted(adapter_users):
        print(f"  {name}: {', '.join(sorted(adapter_users[name]))}")

    found = cycles(graph)
    print(f"Import cycles among core packages, function-level imports counted (goal 0): {len(found)}")
    for component in found:
        print(f"  {' <-> '.join(component)}")
        members = set(component)
        for (a, b), where in sorted(edges.items()):
            if a in members and b in members:
                print(f"      {a} -> {b}: {len(where)} ({where[0]}{', ...' if len(where) > 1 else ''})")

    total = sum(len(v) for v in lazy.values())
    print(f"Imports placed inside functions: {total}")
    for where in sorted(lazy):
        print(f"  {where}: {len(lazy[where])}")
        if args.list:
            for line in lazy[where]:
                print(f"      {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
