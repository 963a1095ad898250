"""The deck's git repository, the ledger of pins, split by what callers need: reading its history,
committing to it, following the team's remote, and who the operator is. ``GitPort`` is all of them."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from opsdeck.core.types.tools import FileVersion


class HistoryPort(Protocol):
    """What the ledger holds: the head, files as commits left them, which commits changed what."""

    @property
    def root(self) -> Path: ...

    def head(self) -> str: ...

    def is_detached(self) -> bool: ...

    def is_dirty(self, rel: str) -> bool: ...

    def history(self, rel: str, limit: int = 200) -> list[FileVersion]:
        """Commits that changed ``rel``, newest first, with its text in each."""
        ...

    def commits(self, paths: list[str], limit: int = 400) -> list[str]:
        """Commits that changed any of ``paths``, newest first (git's order, not timestamps)."""
        ...

    def trailers(self, key: str) -> list[tuple[str, str]]: ...

    def text_at(self, ref: str, rel: str) -> str | None: ...

    def files_under(self, ref: str, folder: str) -> list[str]: ...


class CommitPort(Protocol):
    """Changing the ledger: commit files, or put a file back as the head has it."""

    def commit(self, paths: list[str], message: str) -> str: ...

    def restore(self, rel: str) -> None: ...


class RemotePort(Protocol):
    """The team's remote: what the branch tracks, fetch, fast-forward, push (never forced), rebase."""

    def upstream(self) -> tuple[str, str] | None:
        """(remote, branch) the current branch tracks."""
        ...

    def current_branch(self) -> str | None: ...

    def remote_url(self, remote: str) -> str | None: ...

    def fetch(self, remote: str, branch: str, timeout: float = 30.0) -> None: ...

    def ahead_behind(self, ref: str) -> tuple[int, int]: ...

    def fast_forward(self, ref: str) -> None: ...

    def push(self, remote: str, branch: str, timeout: float = 30.0) -> bool:
        """False when the remote moved on (not a fast-forward); never forced."""
        ...

    def rebase(self, ref: str) -> None: ...


class GitIdentityPort(Protocol):
    """Who commits: git's identity and its settings (the signing key)."""

    def identity(self) -> str: ...

    def config_value(self, key: str) -> str | None: ...


class GitPort(HistoryPort, CommitPort, RemotePort, GitIdentityPort, Protocol):
    """The deck's repository: every port above."""
