"""SSH signatures in core's words: a line of an allowed_signers file, and what checking a signature found."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

APPROVAL_NAMESPACE = "opsdeck-approval"  # the SSH signature namespace of requests, approvals, rejections and freezes


def canonical(value: Any) -> bytes:
    """A value's canonical JSON bytes: what a signature over a record covers."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Listing:
    """One line of an allowed_signers file: ``principals [options] keytype base64 [comment]``."""

    number: int  # its line number, from 1
    principals: str
    options: tuple[str, ...]  # as written, e.g. ('namespaces="git"', "cert-authority")
    key: str  # "keytype base64"

    @property
    def namespaces(self) -> str | None:
        """Its ``namespaces`` pattern-list (None: the key may sign in any namespace)."""
        for option in self.options:
            name, _, value = option.partition("=")
            if name.lower() == "namespaces":
                return value.strip('"')
        return None

    def permits(self, namespace: str) -> bool:
        patterns = self.namespaces
        return patterns is None or namespace_matches(namespace, patterns)

    def with_namespace(self, namespace: str) -> str:
        """This line with ``namespace`` added to its namespaces, its other options kept: what to write so
        the key also signs there."""
        wanted = f'namespaces="{self.namespaces},{namespace}"' if self.namespaces else f'namespaces="{namespace}"'
        options = [wanted if o.partition("=")[0].lower() == "namespaces" else o for o in self.options]
        if wanted not in options:
            options.append(wanted)
        return f"{self.principals} {','.join(options)} {self.key}"


@dataclass(frozen=True)
class Verified:
    """What checking a signature found: the principal it is from, or why it is not valid. ``listed``: the
    signing key's lines in allowed_signers when it is there but none lets it sign in the namespace
    checked (a key teams list for git commits only, ``namespaces="git"``)."""

    valid: bool
    principal: str = ""
    problem: str = ""
    listed: tuple[Listing, ...] = ()


def namespace_matches(name: str, patterns: str) -> bool:
    """OpenSSH's pattern-list: comma-separated patterns with * and ?, a leading ! negates (and wins)."""
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lstrip("!"))
        if re.fullmatch(regex, name):
            if negated:
                return False
            matched = True
    return matched
