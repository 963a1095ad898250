"""The Terraform of an estate as module trees: its root modules, and each one's module calls followed.

A module call is followed into a local source (``./``, ``../``) or into what `terraform init` already
put in ``.terraform/modules`` (its ``modules.json`` maps each call's key to a directory). A registry or
git source that was never downloaded is not fetched: it is reported as not followed. A call with
``for_each`` over a map or set its caller can tell is one module instance per key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from opsdeck.core.ports.outside import TerraformFilesPort
from opsdeck.core.types.hcl import Block, Expr, HclError

SKIPPED_DIRS = (".terraform", ".git", "node_modules")
MAX_DEPTH = 12
# The instances of a module call with for_each: (each.key, each.value) pairs, None when unknown.
Instances = Callable[["ModuleNode", Expr], list[tuple[str, object]] | None]


@dataclass
class ModuleNode:
    """One module instance of an environment: its root module, or a module call that was followed."""

    address: tuple[str, ...]  # the module call names from the root: ("web", "asg"), ('svc["web"]',)
    dir: Path
    blocks: list[Block]
    parent: ModuleNode | None = None
    call: Block | None = None  # the `module` block in the parent that calls this one
    children: dict[str, ModuleNode] = field(default_factory=dict)
    each: tuple[str, object] | None = None  # each.key and each.value of a for_each instance

    @property
    def names(self) -> tuple[str, ...]:
        """The call names from the root, an instance of a for_each call named by its key."""
        own = () if self.call is None else (self.each[0] if self.each else self.call.labels[0],)
        return (*(self.parent.names if self.parent else ()), *own)

    @property
    def label(self) -> str:
        return ".".join(f"module.{name}" for name in self.address) or "the root module"

    def prefix(self) -> str:
        """What goes before a resource's address inside this module."""
        return "".join(f"module.{name}." for name in self.address)

    def of_type(self, type_: str) -> list[Block]:
        return [b for b in self.blocks if b.type == type_]

    def resources(self, kind: str) -> list[Block]:
        return [b for b in self.of_type("resource") if b.labels[:1] == (kind,) and len(b.labels) == 2]

    def resource(self, kind: str, name: str) -> Block | None:
        return next((b for b in self.resources(kind) if b.labels[1] == name), None)

    def variable(self, name: str) -> Block | None:
        return next((b for b in self.of_type("variable") if b.labels == (name,)), None)

    def local(self, name: str) -> Expr | None:
        for block in self.of_type("locals"):
            if name in block.attrs:
                return block.attrs[name]
        return None

    def output(self, name: str) -> Block | None:
        return next((b for b in self.of_type("output") if b.labels == (name,)), None)

    def walk(self) -> list[ModuleNode]:
        """This module and every module under it, callers first."""
        found = [self]
        for child in self.children.values():
            found.extend(child.walk())
        return found


@dataclass(frozen=True)
class Unfollowed:
    """A module call whose source could not be read (nothing is fetched)."""

    parent: ModuleNode
    call: Block
    source: str
    why: str

    @property
    def address(self) -> str:
        return f"{self.parent.prefix()}module.{self.call.labels[0]}"


class ModuleReader:
    """Reads each directory's ``.tf`` files once (environments share their modules); a file the
    parser refuses is a problem reported once, not an error that stops the survey."""

    def __init__(self, repo: Path, files: TerraformFilesPort) -> None:
        self.repo = repo
        self.files = files
        self._blocks: dict[Path, list[Block]] = {}
        self.problems: list[str] = []

    def rel(self, path: Path) -> str:
        try:
            return os.path.relpath(path, self.repo)
        except ValueError:
            return str(path)

    def blocks(self, directory: Path) -> list[Block]:
        directory = directory.resolve()
        if directory not in self._blocks:
            found: list[Block] = []
            for path in sorted(directory.glob("*.tf")):
                try:
                    found.extend(self.files.read_file(path, self.rel(path)))
                except HclError as exc:
                    self.problems.append(str(exc))
            self._blocks[directory] = found
        return self._blocks[directory]

    def root_modules(self) -> list[Path]:
        """Directories whose Terraform declares a backend (``terraform { backend "..." {} }``)."""
        roots: list[Path] = []
        for current, dirs, files in os.walk(self.repo):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
            if not any(f.endswith(".tf") for f in files):
                continue
            directory = Path(current)
            if any(backend_of(b) for b in self.blocks(directory)):
                roots.append(directory)
        return roots

    def tree(self, root: Path, instances: Instances) -> tuple[ModuleNode, list[Unfollowed]]:
        """A root module with every module call under it that can be followed."""
        node = ModuleNode((), root, self.blocks(root))
        unfollowed: list[Unfollowed] = []
        self._follow(node, root, _Follow(self.files.installed_modules(root), instances, unfollowed))
        return node, unfollowed

    def _follow(self, node: ModuleNode, root: Path, how: _Follow) -> None:
        out = how.unfollowed
        for call in node.of_type("module"):
            if not call.labels:
                continue
            name = call.labels[0]
            source = call.attrs.get("source")
            if not isinstance(source, str):
                out.append(Unfollowed(node, call, str(source), "its source is not a literal string"))
                continue
            key = ".".join((*(a.split("[")[0] for a in node.address), name))
            if source.startswith(("./", "../")):
                directory = (node.dir / source).resolve()
            elif key in how.installed:
                directory = how.installed[key].resolve()
            else:
                why = f"{source} is not downloaded (run terraform init in {self.rel(root)}; opsdeck never fetches it)"
                out.append(Unfollowed(node, call, source, why))
                continue
            if not directory.is_dir():
                out.append(Unfollowed(node, call, source, f"{self.rel(directory)} does not exist"))
                continue
            if len(node.address) >= MAX_DEPTH:
                out.append(Unfollowed(node, call, source, f"modules nest deeper than {MAX_DEPTH} calls"))
                continue
            each = how.instances(node, call.attrs["for_each"]) if "for_each" in call.attrs else None
            for key, value in each if each is not None else [("", None)]:
                element = f"{name}[{json.dumps(key)}]" if each is not None else name
                child = ModuleNode((*node.address, element), directory, self.blocks(directory), node, call)
                child.each = (key, value) if each is not None else None
                node.children[element] = child
                self._follow(child, root, how)


@dataclass(frozen=True)
class _Follow:
    installed: dict[str, Path]
    instances: Instances
    unfollowed: list[Unfollowed]


def backend_of(block: Block) -> str | None:
    """The backend type a ``terraform`` block declares, if any."""
    if block.type != "terraform":
        return None
    for inner in block.blocks:
        if inner.type == "backend" and inner.labels:
            return inner.labels[0]
    return None
