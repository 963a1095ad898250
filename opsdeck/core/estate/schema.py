"""Typed settings from TOML tables: dataclasses checked field by field, with one-line errors.

A settings class is a frozen dataclass whose fields carry a ``doc`` in their metadata. ``build``
turns a TOML table into it, and every mistake names the file, the dotted key and what was expected.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from opsdeck.errors import ConfigError

T = TypeVar("T")


def setting(default: Any = dataclasses.MISSING, *, doc: str, factory: Any = dataclasses.MISSING) -> Any:
    """A documented field of a settings dataclass."""
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


def describe(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(type(value))
    if kind is None:
        kind = "a table" if isinstance(value, dict) else "a list" if isinstance(value, list) else "a value"
    shown = repr(value) if not isinstance(value, dict | list) else ""
    return f"{shown} ({kind})" if shown else kind


class Where:
    """The file and dotted key an error is about."""

    def __init__(self, file: str, key: str = "") -> None:
        self.file, self.key = file, key

    def child(self, key: str) -> Where:
        return Where(self.file, f"{self.key}.{key}" if self.key else key)

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.key}: {message}" if self.key else f"{self.file}: {message}")


def _expected(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(f'"{a}"' for a in get_args(tp))
    if get_origin(tp) in (list, tuple):
        return f"a list of {_expected(get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _convert(tp: Any, value: Any, where: Where) -> Any:
    origin = get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in get_args(tp) if a is not type(None)]
        return None if value is None else _convert(options[0], value, where)
    if origin is Literal:
        if value not in get_args(tp):
            raise where.error(f"expected {_expected(tp)}, got {describe(value)}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise where.error(f"expected a table, got {describe(value)}")
        return {str(k): _convert(get_args(tp)[1], v, where.child(str(k))) for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise where.error(f"expected {_expected(tp)}, got {describe(value)}")
        return tuple(_convert(get_args(tp)[0], item, where.child(str(i))) for i, item in enumerate(value))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise where.error(f"expected a table, got {describe(value)}")
        return build(tp, value, where)
    # bool is an int in Python: keep `port = true` from passing as 1.
    ok = isinstance(value, tp) and not (tp in (int, float) and isinstance(value, bool))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise where.error(f"expected {_expected(tp)}, got {describe(value)}")
    return value


_SHAPES: dict[type, tuple[dict[str, dataclasses.Field[Any]], dict[str, Any]]] = {}


def _shape(cls: type) -> tuple[dict[str, dataclasses.Field[Any]], dict[str, Any]]:
    """A settings class's fields and resolved types, once per class: resolving the annotations compiles
    each one (a deck of five environments builds EnvSettings five times, on the deck's first frame too)."""
    shape = _SHAPES.get(cls)
    if shape is None:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        shape = _SHAPES[cls] = (fields, typing.get_type_hints(cls))
    return shape


def build(cls: type[T], table: dict[str, Any], where: Where) -> T:
    """Check ``table`` against the dataclass ``cls`` and build it; unknown keys are errors."""
    fields, hints = _shape(cls)
    for key in table:
        if key not in fields or not fields[key].init:
            known = ", ".join(name for name, f in fields.items() if f.init)
            raise where.child(key).error(f"unknown key (expected one of: {known})")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if not field.init:
            continue
        if name in table:
            values[name] = _convert(hints[name], table[name], where.child(name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise where.child(name).error(f"missing (expected {_expected(hints[name])})")
    return cls(**values)


def read_toml(path: Path, label: str) -> dict[str, Any]:
    """Parse a TOML file; a syntax error names the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{label}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot read: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: invalid TOML: {exc}") from None
