"""Terraform's files in core's words: blocks and expression values (a reference, an index, a call, a
template, literals, objects and tuples; anything else opaque, with its text and the references in it).

The reader (adapters/hcl.py) builds them from python-hcl2's tree; the inference in core (core/adopt)
reads their structure and never the parser's types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TypeAlias

from opsdeck.errors import OpsdeckError


@dataclass(frozen=True)
class Ref:
    """A reference: ``var.images["web"]`` is ("var", "images", "web"); literal indexes only."""

    parts: tuple[str | int, ...]

    @property
    def text(self) -> str:
        return ".".join(str(p) for p in self.parts)


@dataclass(frozen=True)
class Index:
    """``of[key]`` where the key is not a literal (``var.images[each.key]``)."""

    of: Expr
    key: Expr


@dataclass(frozen=True)
class Call:
    """A function call: ``lookup(var.images, "web")``."""

    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Template:
    """A quoted string with interpolations: its literal pieces (str) and expressions, in order."""

    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Opaque:
    """Any other expression (conditional, operation, for, splat, heredoc): its text and references."""

    text: str
    refs: tuple[Ref, ...]


Expr: TypeAlias = (
    str | int | float | bool | Ref | Index | Call | Template | Opaque | dict[str, "Expr"] | tuple["Expr", ...] | None
)


@dataclass(frozen=True)
class Block:
    """A block: ``resource "aws_instance" "web" {...}`` is type resource, labels (aws_instance, web)."""

    type: str
    labels: tuple[str, ...]
    attrs: dict[str, Expr] = field(default_factory=dict)
    blocks: tuple[Block, ...] = ()
    file: str = ""

    def children(self, type_: str) -> list[Block]:
        """Nested blocks of a type, including the content of ``dynamic "type"`` blocks."""
        found = [b for b in self.blocks if b.type == type_]
        for dynamic in self.blocks:
            if dynamic.type == "dynamic" and dynamic.labels == (type_,):
                found.extend(b for b in dynamic.blocks if b.type == "content")
        return found


class HclError(OpsdeckError):
    """A Terraform file python-hcl2 could not read: names the file and the line."""


def refs(value: Expr) -> list[Ref]:
    """Every reference in an expression value."""
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, Opaque):
        return list(value.refs)
    if isinstance(value, Index):
        return refs(value.of) + refs(value.key)
    if isinstance(value, Call):
        return [r for a in value.args for r in refs(a)]
    if isinstance(value, Template):
        return [r for p in value.parts for r in refs(p)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs(v)]
    if isinstance(value, tuple):
        return [r for v in value for r in refs(v)]
    return []


def shown(value: Expr) -> str:
    """An expression value written back the way Terraform spells it (for messages and comments)."""
    if isinstance(value, Ref):
        return "".join(
            (f"[{p}]" if isinstance(p, int) else f".{p}" if p.isidentifier() else f'["{p}"]') if i else str(p)
            for i, p in enumerate(value.parts)
        )
    if isinstance(value, Opaque):
        return value.text
    if isinstance(value, Index):
        return f"{shown(value.of)}[{shown(value.key)}]"
    if isinstance(value, Call):
        return f"{value.name}({', '.join(shown(a) for a in value.args)})"
    if isinstance(value, Template):
        return '"' + "".join(p if isinstance(p, str) else "${" + shown(p) + "}" for p in value.parts) + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    return json.dumps(value)
