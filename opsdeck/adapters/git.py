"""The deck's git repository through GitPython: pins, their history, the head commit, pin commits.

Git is the ledger: ``envs/<env>/image.auto.tfvars.json`` holds an environment's image, so the history
of that file is the environment's release history.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from opsdeck.errors import OpsdeckError, ToolError

PIN_FILE = "image.auto.tfvars.json"


@dataclass(frozen=True)
class PinChange:
    """One commit that changed a pin file."""

    commit: str
    image_id: str | None
    when: datetime
    author: str
    message: str


def read_pin_text(text: str, where: str) -> str:
    """The image id in a pin file's text."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise OpsdeckError(f"{where}: invalid JSON ({exc})") from None
    image = data.get("image_id") if isinstance(data, dict) else None
    if not isinstance(image, str) or not image:
        raise OpsdeckError(f'{where}: expected {{"image_id": "ami-..."}}')
    return image


def pin_text(image_id: str) -> str:
    return json.dumps({"image_id": image_id}, indent=2) + "\n"


T = TypeVar("T")


def _serialized(method: Callable[..., T]) -> Callable[..., T]:
    """One call at a time per repository: GitPython keeps persistent `git cat-file` processes per
    Repo, and two threads talking to one of them at once mix their answers or hang for good (the
    deck's state loader, its operations and its details worker all share the deck's repository)."""

    @functools.wraps(method)
    def locked(self: Git, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class Git:
    """A deck's repository."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._repo: Any = None
        self._lock = threading.RLock()

    @property
    def repo(self) -> Any:
        if self._repo is None:
            import git

            try:
                self._repo = git.Repo(self.root)
            except (git.InvalidGitRepositoryError, git.NoSuchPathError):
                raise OpsdeckError(
                    f"{self.root} is not a git repository (a deck is one: run `git init` and commit it)"
                ) from None
        return self._repo

    @staticmethod
    def init(root: Path, name: str | None = None, email: str | None = None) -> Git:
        import git

        repo = git.Repo.init(root, initial_branch="main")
        with repo.config_reader() as reader:
            has_name = reader.get_value("user", "name", default="")
            has_email = reader.get_value("user", "email", default="")
        if not (has_name and has_email):
            with repo.config_writer() as writer:
                writer.set_value("user", "name", name or "opsdeck demo")
                writer.set_value("user", "email", email or "opsdeck-demo@localhost")
        return Git(root)

    @_serialized
    def head(self) -> str:
        """The head commit's sha; errors on an empty repository."""
        try:
            return str(self.repo.head.commit.hexsha)
        except ValueError:
            raise OpsdeckError(f"{self.root}: the git repository has no commit yet") from None

    def short_head(self) -> str:
        return self.head()[:12]

    @_serialized
    def is_detached(self) -> bool:
        return bool(self.repo.head.is_detached)

    @_serialized
    def identity(self) -> str:
        """ "Name <email>" from git config, or an error naming the setting to fix."""
        with self.repo.config_reader() as reader:
            name = reader.get_value("user", "name", default="")
            email = reader.get_value("user", "email", default="")
        if not name or not email:
            raise OpsdeckError("git has no user.name / user.email: set them with `git config user.name ...`")
        return f"{name} <{email}>"

    @_serialized
    def is_dirty(self, rel: str) -> bool:
        """The path has uncommitted changes (staged, unstaged or untracked)."""
        return bool(self.repo.git.status("--porcelain", "--", rel).strip())

    def pin(self, rel: str) -> str:
        """The image pinned in the working tree."""
        path = self.root / rel
        try:
            return read_pin_text(path.read_text(encoding="utf-8"), rel)
        except FileNotFoundError:
            raise OpsdeckError(f"{rel}: the pin file is missing") from None

    @_serialized
    def pin_history(self, rel: str, limit: int = 200) -> list[PinChange]:
        """Commits that changed the pin file, newest first, with the image each one pinned."""
        changes = []
        for commit in self.repo.iter_commits(paths=rel, max_count=limit):
            try:
                blob = commit.tree / rel
                image: str | None = read_pin_text(blob.data_stream.read().decode("utf-8"), rel)
            except (KeyError, OpsdeckError):
                image = None  # the file was deleted or broken in that commit
            changes.append(
                PinChange(
                    commit=commit.hexsha,
                    image_id=image,
                    when=datetime.fromtimestamp(commit.committed_date, tz=UTC),
                    author=f"{commit.author.name} <{commit.author.email}>",
                    message=commit.message.strip(),
                )
            )
        return changes

    @_serialized
    def trailers(self, key: str) -> list[tuple[str, str]]:
        """(commit, value) of every commit on HEAD's history carrying the trailer ``key``, newest
        first; empty when there is no history to read."""
        import git

        try:
            log = self.repo.git.log(f"--format=%H %(trailers:key={key},valueonly,separator=%x20)")
        except (OpsdeckError, git.GitCommandError):
            return []
        found = []
        for line in log.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                found.append((parts[0], parts[1]))
        return found

    @_serialized
    def commit(self, paths: list[str], message: str) -> str:
        """Commit exactly these paths (nothing else that is staged) and return the sha."""
        import git

        repo = self.repo
        try:
            repo.git.add("--", *paths)
            repo.git.commit("-m", message, "--only", "--", *paths)
        except git.GitCommandError as exc:
            raise ToolError("git commit", (exc.stderr or str(exc)).strip().splitlines()[-1]) from None
        return str(repo.head.commit.hexsha)

    @_serialized
    def restore(self, rel: str) -> None:
        """Put a file back as it is at HEAD."""
        self.repo.git.checkout("HEAD", "--", rel)

    @_serialized
    def add_all_and_commit(self, message: str) -> str:
        repo = self.repo
        repo.git.add("-A")
        repo.git.commit("-m", message)
        return str(repo.head.commit.hexsha)
