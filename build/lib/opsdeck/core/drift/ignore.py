"""The deck's `.driftignore`: drift a team has looked at and accepts, as data.

One entry per line, `#` starts a comment:
    attribute:<resource type or address>.<attribute>   a changed attribute of a managed resource
    resource:<address>                                  a whole managed resource
    id:<cloud resource id>                              an unmanaged resource, or an instance's image drift
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from opsdeck.errors import ConfigError

IGNORE_FILE = ".driftignore"
_INDEX = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class DriftIgnore:
    attributes: frozenset[tuple[str, str]] = frozenset()  # (type or address, attribute)
    resources: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    lines: int = field(default=0, compare=False)

    def attribute(self, address: str, type_: str, name: str) -> bool:
        plain = _INDEX.sub("", address)
        return any((sel, name) in self.attributes for sel in (address, plain, type_))

    def resource(self, address: str) -> bool:
        return address in self.resources or _INDEX.sub("", address) in self.resources

    def id(self, ident: str) -> bool:
        return ident in self.ids


def load_ignore(root: Path) -> DriftIgnore:
    path = root / IGNORE_FILE
    if not path.is_file():
        return DriftIgnore()
    attributes, resources, ids = set(), set(), set()
    count = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, value = line.partition(":")
        value = value.strip()
        where = f"{IGNORE_FILE}: line {number}"
        if not value:
            raise ConfigError(f"{where}: expected <kind>:<value>, got {line!r}")
        if kind == "attribute":
            selector, _, name = value.rpartition(".")
            if not selector or not name:
                raise ConfigError(f"{where}: expected attribute:<type or address>.<attribute>, got {line!r}")
            attributes.add((selector, name))
        elif kind == "resource":
            resources.add(value)
        elif kind == "id":
            ids.add(value)
        else:
            raise ConfigError(f"{where}: unknown kind {kind!r} (expected attribute, resource or id)")
        count += 1
    return DriftIgnore(frozenset(attributes), frozenset(resources), frozenset(ids), count)
