"""Terraform's files read with python-hcl2: a module's blocks, tfvars, and what `terraform init` installed.

Expressions come back as small values in this module's own words (a reference, an index, a call, a
template, literals, objects and tuples; anything else opaque, with its text and the references in
it), built from the parser's tree rather than from its text, so the inference in core reads
structure and never python-hcl2's types. Nothing here follows a module source over the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import process_escape_sequences
from lark.exceptions import LarkError

from opsdeck.core.types.hcl import Block, Call, Expr, HclError, Index, Opaque, Ref, Template


def read_file(path: Path, label: str | None = None) -> list[Block]:
    """The top-level blocks of one ``.tf`` file (``label`` names it in errors and in each block)."""
    label = label or str(path)
    body = _parse(path, label)
    return [b for b in _body(body, label) if isinstance(b, Block)]


def read_tfvars(path: Path, label: str | None = None) -> dict[str, Expr]:
    """The values a ``.tfvars`` or ``.tfvars.json`` file sets."""
    label = label or str(path)
    if path.name.endswith(".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HclError(f"{label}: not readable as JSON ({exc})") from None
        if not isinstance(data, dict):
            raise HclError(f"{label}: expected a JSON object")
        return {str(k): _from_json(v) for k, v in data.items()}
    body = _parse(path, label)
    return {item[0]: item[1] for item in _body(body, label) if isinstance(item, tuple)}


def installed_modules(root_module: Path) -> dict[str, Path]:
    """What `terraform init` put in ``.terraform/modules``: a module call's key (``web.asg``) -> its
    directory. Empty when the root module was never initialised."""
    path = root_module / ".terraform" / "modules" / "modules.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found: dict[str, Path] = {}
    for entry in data.get("Modules", []) if isinstance(data, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("Key"), str) and isinstance(entry.get("Dir"), str):
            found[entry["Key"]] = root_module / entry["Dir"]
    return found


def _parse(path: Path, label: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HclError(f"{label}: not readable ({exc})") from None
    try:
        return hcl2.parses(text, discard_comments=True).body
    except LarkError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        line = getattr(exc, "line", None)
        where = f"{label}:{line}" if isinstance(line, int) and line > 0 else label
        raise HclError(f"{where}: not valid HCL ({first})") from None
    except (ValueError, RuntimeError) as exc:  # the transformer's own complaints
        raise HclError(f"{label}: not valid HCL ({exc})") from None


def _from_json(value: Any) -> Expr:
    if isinstance(value, dict):
        return {str(k): _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return None


def _name(node: Any) -> str:
    return str(node.lark_name())


def _rules(node: Any) -> list[Any]:
    """A rule's children that carry meaning (no tokens, no newlines or comments)."""
    return [c for c in getattr(node, "children", []) if _is_rule(c) and _name(c) != "new_line_or_comment"]


def _is_rule(node: Any) -> bool:
    return node is not None and hasattr(node, "children")


def _body(body: Any, file: str) -> list[Block | tuple[str, Expr]]:
    items: list[Block | tuple[str, Expr]] = []
    for child in _rules(body):
        if _name(child) == "attribute":
            items.append((_label(child.identifier), expr(child.expression)))
        elif _name(child) == "block":
            items.append(_block(child, file))
    return items


def _block(node: Any, file: str) -> Block:
    labels = tuple(_label(label) for label in node.labels)
    attrs: dict[str, Expr] = {}
    blocks: list[Block] = []
    for item in _body(node.body, file):
        if isinstance(item, Block):
            blocks.append(item)
        else:
            attrs[item[0]] = item[1]
    return Block(labels[0], labels[1:], attrs, tuple(blocks), file)


def _label(node: Any) -> str:
    """A block label or attribute name: an identifier, keyword or quoted string."""
    if _name(node) == "string":
        value = expr(node)
        return value if isinstance(value, str) else _text(node)
    return _token_text(node)


def _token_text(node: Any) -> str:
    """The text of a rule that wraps one token (identifier, keyword, literal)."""
    for child in getattr(node, "children", []):
        if child is not None and not _is_rule(child):
            return str(child.value)
        if _is_rule(child):
            return _token_text(child)
    return str(getattr(node, "value", ""))


def _text(node: Any) -> str:
    """The expression's source form, as python-hcl2 writes it (for messages and opaque values)."""
    text = node.serialize()
    if isinstance(text, str) and text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    return str(text)


def expr(node: Any) -> Expr:
    """An expression rule of the parser's tree as a plain value."""
    kind = _name(node)
    inner = _rules(node)
    if kind in ("expr_term", "object_elem_key"):
        return expr(inner[0]) if inner else Opaque(_text(node), ())
    if kind in ("int_lit", "float_lit"):
        value = _token_text(node)
        try:
            return int(value) if kind == "int_lit" else float(value)
        except ValueError:
            return Opaque(value, ())
    if kind == "literal_value":
        return {"true": True, "false": False, "null": None}.get(_token_text(node))
    if kind == "string":
        return _string(node)
    if kind == "identifier":
        return Ref((_token_text(node),))
    if kind == "tuple":
        return tuple(expr(e) for e in inner)
    if kind == "object":
        return _object(node, inner)
    if kind == "function_call":
        return _call(node, inner)
    if kind in ("get_attr_expr_term", "index_expr_term"):
        return _traversal(node, kind, inner)
    return Opaque(_text(node), tuple(_refs_in(node)))


def _string(node: Any) -> Expr:
    parts: list[Expr] = []
    for part in _rules(node):  # string_part rules
        content = part.children[0]
        if _is_rule(content) and _name(content) == "interpolation":
            parts.append(expr(_rules(content)[0]))
        elif _is_rule(content):  # a template directive (%{ if } ...): not a value we can read
            return Opaque(_text(node), tuple(_refs_in(node)))
        elif content.lark_name() == "STRING_CHARS":
            parts.append(process_escape_sequences(str(content.value)))
        else:  # $${ and %%{ escapes stand for a literal ${ and %{
            parts.append(str(content.value)[1:])
    merged: list[Expr] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + part
        else:
            merged.append(part)
    if not merged:
        return ""
    if len(merged) == 1 and isinstance(merged[0], str):
        return merged[0]
    return Template(tuple(merged))


def _object(node: Any, elems: list[Any]) -> Expr:
    result: dict[str, Expr] = {}
    for elem in elems:
        key_node, value_node = _rules(elem)[0], _rules(elem)[-1]
        if _name(key_node) != "object_elem_key":  # a computed key: (var.k) = ...
            return Opaque(_text(node), tuple(_refs_in(node)))
        key = _rules(key_node)[0] if _rules(key_node) else key_node
        if _name(key) == "identifier" or _name(key) == "keyword":
            result[_token_text(key)] = expr(value_node)
            continue
        value = expr(key)
        if not isinstance(value, str):
            return Opaque(_text(node), tuple(_refs_in(node)))
        result[value] = expr(value_node)
    return result


def _call(node: Any, inner: list[Any]) -> Expr:
    names = [c for c in inner if _name(c) == "identifier"]
    arguments = [c for c in inner if _name(c) == "arguments"]
    name = "::".join(_token_text(n) for n in names)
    args = tuple(expr(a) for a in _rules(arguments[0])) if arguments else ()
    return Call(name, args)


def _traversal(node: Any, kind: str, inner: list[Any]) -> Expr:
    base = expr(inner[0])
    step = inner[1]
    key: Expr
    if kind == "get_attr_expr_term":
        key = _token_text(_rules(step)[0]) if _rules(step) else _token_text(step)
    elif _name(step) == "short_index":
        key = int(_token_text(step).lstrip("."))
    else:
        key = expr(_rules(step)[0])
    if isinstance(base, Ref) and isinstance(key, str | int) and not isinstance(key, bool):
        return Ref((*base.parts, key))
    if isinstance(base, Opaque):
        return Opaque(_text(node), tuple(_refs_in(node)))
    return Index(base, key)


def _refs_in(node: Any) -> list[Ref]:
    """The references inside an expression the values above do not model (the outermost of each)."""
    found: list[Ref] = []
    for child in _rules(node):
        if _name(child) in ("get_attr_expr_term", "index_expr_term", "identifier"):
            value = expr(child)
            if isinstance(value, Ref):
                found.append(value)
                continue
        found.extend(_refs_in(child))
    return found


class HclFiles:
    """core's TerraformFilesPort: the readers above."""

    def read_file(self, path: Path, label: str | None = None) -> list[Block]:
        return read_file(path, label)

    def read_tfvars(self, path: Path, label: str | None = None) -> dict[str, Expr]:
        return read_tfvars(path, label)

    def installed_modules(self, root_module: Path) -> dict[str, Path]:
        return installed_modules(root_module)
