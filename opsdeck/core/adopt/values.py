"""What an expression of an environment's Terraform comes to, read without running Terraform.

References are followed across module boundaries (a module's ``var.image_id`` is whatever its caller
passed), through locals and module outputs, and into a few functions teams use for tags and images
(``merge``, ``lookup``, ``coalesce`` ...). At the root module a variable is either where a value comes
from (a ``Feed``: tracing which variable feeds an image) or its value from the tfvars files.
Anything known only after apply, or written in a way not modelled here, is ``Unknown`` with why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias, cast

from opsdeck.core.adopt.modules import ModuleNode
from opsdeck.core.types.hcl import Call, Expr, Index, Opaque, Ref, Template, refs, shown

MAX_STEPS = 64


@dataclass(frozen=True)
class Feed:
    """A root module variable, and the keys into it, that a value comes from."""

    variable: str
    keys: tuple[str | int, ...] = ()

    @property
    def label(self) -> str:
        """How opsdeck's ``pin_variable`` spells it: ``web_ami``, ``images.web``."""
        return ".".join(str(p) for p in (self.variable, *self.keys))


@dataclass(frozen=True)
class Unknown:
    """A value that cannot be known from the files, and why."""

    why: str


Value: TypeAlias = str | int | float | bool | Feed | Unknown | dict[str, "Value"] | tuple["Value", ...] | None
RootVariable = Callable[[str], "Value"]
Each = tuple[str, object] | None  # a for_each instance's each.key and each.value


class Evaluator:
    """Evaluates expressions of one environment; ``at_root`` answers for the root module's variables."""

    def __init__(self, at_root: RootVariable) -> None:
        self.at_root = at_root

    def eval(self, node: ModuleNode, expr: Expr, steps: int = 0, each: Each = None) -> Value:
        """``expr`` in module ``node``; ``each`` is the for_each instance the expression belongs to (a
        module call's arguments are evaluated in its caller, with the instance's each.key)."""
        if steps > MAX_STEPS:
            return Unknown("references loop or nest too deep")
        if expr is None or isinstance(expr, str | int | float | bool):
            return expr
        if isinstance(expr, dict):
            return {k: self.eval(node, v, steps + 1, each) for k, v in expr.items()}
        if isinstance(expr, tuple):
            return tuple(self.eval(node, v, steps + 1, each) for v in expr)
        if isinstance(expr, Ref):
            return self._ref(node, expr, steps + 1, each)
        if isinstance(expr, Index):
            key = self.eval(node, expr.key, steps + 1, each)
            return index(self.eval(node, expr.of, steps + 1, each), key, shown(expr))
        if isinstance(expr, Template):
            return self._template(node, expr, steps + 1, each)
        if isinstance(expr, Call):
            return self._call(node, expr, steps + 1, each)
        assert isinstance(expr, Opaque)
        return Unknown(f"{expr.text} (an expression opsdeck does not evaluate)")

    def _ref(self, node: ModuleNode, ref: Ref, steps: int, each: Each) -> Value:
        head, rest = ref.parts[0], ref.parts[1:]
        if head in ("var", "local") and rest and isinstance(rest[0], str):
            name, keys = rest[0], rest[1:]
            value = self._variable(node, name, steps) if head == "var" else self._local(node, name, steps)
        elif head == "module" and len(rest) >= 2 and isinstance(rest[0], str) and isinstance(rest[1], str):
            value, keys = self._output(node, rest[0], rest[1], steps), rest[2:]
        elif head == "each" and each is not None and rest[:1] in (("key",), ("value",)):
            value, keys = (each[0] if rest[0] == "key" else cast(Value, each[1])), rest[1:]
        elif head == "data":
            return Unknown(f"{shown(ref)} in {node.label} (looked up when Terraform plans)")
        else:
            return Unknown(f"{shown(ref)} in {node.label} (known only when Terraform runs)")
        for key in keys:
            value = index(value, key, shown(ref))
        return value

    def _variable(self, node: ModuleNode, name: str, steps: int) -> Value:
        if node.parent is None or node.call is None:
            return self.at_root(name)
        if name in node.call.attrs:
            return self.eval(node.parent, node.call.attrs[name], steps, node.each)
        declared = node.variable(name)
        if declared is None:
            return Unknown(f"{node.label} has no variable {name}")
        if "default" in declared.attrs:
            return self.eval(node, declared.attrs["default"], steps)
        return Unknown(f"{node.label}: var.{name} is not set by its caller")

    def _local(self, node: ModuleNode, name: str, steps: int) -> Value:
        value = node.local(name)
        if value is None:
            return Unknown(f"{node.label} has no local {name}")
        return self.eval(node, value, steps)

    def _output(self, node: ModuleNode, module: str, output: str, steps: int) -> Value:
        child = node.children.get(module)
        if child is None:
            return Unknown(f"{node.prefix()}module.{module} was not followed")
        block = child.output(output)
        if block is None or "value" not in block.attrs:
            return Unknown(f"{child.label} has no output {output}")
        return self.eval(child, block.attrs["value"], steps)

    def _template(self, node: ModuleNode, template: Template, steps: int, each: Each) -> Value:
        pieces: list[str] = []
        for part in template.parts:
            value = self.eval(node, part, steps, each)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                why = value.why if isinstance(value, Unknown) else f"{shown(part)} is not a string"
                return Unknown(why)
            pieces.append(str(value))
        return "".join(pieces)

    def _call(self, node: ModuleNode, call: Call, steps: int, each: Each) -> Value:
        args = [self.eval(node, a, steps, each) for a in call.args]
        if call.name == "merge":
            merged: dict[str, Value] = {}
            for arg in args:  # an argument that cannot be read adds nothing (the others still tell)
                if isinstance(arg, dict):
                    merged.update(arg)
            return merged
        if call.name == "lookup" and len(args) in (2, 3):
            found = index(args[0], args[1], shown(call))
            if len(args) == 3 and isinstance(found, Unknown) and isinstance(args[0], dict):
                return args[2]
            return found
        if call.name in ("tomap", "tostring", "tolist", "toset") and len(args) == 1:
            return args[0]
        if call.name in ("coalesce", "try"):
            for arg in args:
                if isinstance(arg, Unknown):
                    if call.name == "coalesce":
                        return arg
                    continue
                if arg not in (None, ""):
                    return arg
            return Unknown(f"{shown(call)}: no argument has a value")
        if call.name in ("lower", "upper") and len(args) == 1 and isinstance(args[0], str):
            return args[0].lower() if call.name == "lower" else args[0].upper()
        return Unknown(f"{shown(call)} (a function opsdeck does not evaluate)")


def index(value: Value, key: Value, where: str) -> Value:
    """``value[key]``, or why it cannot be known."""
    if isinstance(value, Unknown):
        return value
    if isinstance(key, Unknown):
        return key
    if isinstance(value, Feed) and isinstance(key, str | int) and not isinstance(key, bool):
        return Feed(value.variable, (*value.keys, key))
    if isinstance(value, dict) and isinstance(key, str):
        return value[key] if key in value else Unknown(f"{where}: no key {key!r}")
    if isinstance(value, tuple) and isinstance(key, int) and not isinstance(key, bool):
        return value[key] if -len(value) <= key < len(value) else Unknown(f"{where}: no element {key}")
    return Unknown(f"{where}: cannot index {type(value).__name__} by {key!r}")


def dependencies(node: ModuleNode, expr: Expr, steps: int = 0) -> list[tuple[ModuleNode, Ref]]:
    """Every reference an expression depends on, followed through locals, module outputs and module
    inputs; each with the module it is resolved in (what a group's name or version is made of)."""
    found: list[tuple[ModuleNode, Ref]] = []
    if steps > MAX_STEPS:
        return found
    for ref in refs(expr):
        found.append((node, ref))
        head, rest = ref.parts[0], ref.parts[1:]
        name = rest[0] if rest and isinstance(rest[0], str) else None
        if name is None:
            continue
        if head == "local" and (value := node.local(name)) is not None:
            found.extend(dependencies(node, value, steps + 1))
        elif head == "var" and node.parent is not None and node.call is not None and name in node.call.attrs:
            found.extend(dependencies(node.parent, node.call.attrs[name], steps + 1))
        elif head == "module" and (child := node.children.get(name)) is not None and len(rest) >= 2:
            output = child.output(str(rest[1]))
            if output is not None and "value" in output.attrs:
                found.extend(dependencies(child, output.attrs["value"], steps + 1))
    return found


def refers_to(node: ModuleNode, ref: Ref, target: ModuleNode, kind: str, name: str) -> bool:
    """``ref`` (resolved in ``node``) is an attribute of resource ``kind.name`` of module ``target``."""
    return node is target and len(ref.parts) >= 2 and ref.parts[0] == kind and ref.parts[1] == name
