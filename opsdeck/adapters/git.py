"""The deck's git repository through GitPython: files as each commit left them, the head, commits.

Git is the ledger: the pin files hold which image each service runs in each environment, so the
history of a pin file is the release history (core/release/ledger.py reads it).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from opsdeck.core.types.tools import FileVersion
from opsdeck.errors import OpsdeckError, ToolError

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


def _ledger_write(method: Callable[..., T]) -> Callable[..., T]:
    """A call that writes the repository (index, refs, config): one at a time per repository across
    every opsdeck process on this machine (two environments' operations commit at the same moment;
    git itself would refuse the second with "index.lock exists" or "cannot lock ref"). A lock held by
    someone else's git (an editor, a shell) is waited out briefly, then reported."""

    @functools.wraps(method)
    def locked(self: Git, *args: Any, **kwargs: Any) -> T:
        import git

        with self._lock, self._process_lock():
            for attempt in range(_LOCK_RETRIES):
                try:
                    return method(self, *args, **kwargs)
                except (ToolError, git.GitCommandError) as exc:
                    if attempt + 1 == _LOCK_RETRIES or not any(m in str(exc) for m in _LOCK_MESSAGES):
                        raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    return locked


_LOCK_RETRIES = 8
_LOCK_MESSAGES = ("index.lock", "cannot lock ref", "Unable to create", "could not lock config file")


class Git:
    """A deck's repository."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._repo: Any = None
        self._lock = threading.RLock()
        self._writing = False

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
            # Reads (status) never take the index lock to refresh it, which would make another
            # process's commit fail at that moment.
            self._repo.git.update_environment(GIT_OPTIONAL_LOCKS="0")
        return self._repo

    @contextlib.contextmanager
    def _process_lock(self) -> Iterator[None]:
        import fcntl

        if self._writing:  # already held by this thread (the thread lock is re-entrant)
            yield
            return
        path = Path(self.repo.git_dir) / "opsdeck-ledger.lock"
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._writing = True
            try:
                yield
            finally:
                self._writing = False
                fcntl.flock(handle, fcntl.LOCK_UN)

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

    @staticmethod
    def init_bare(path: Path) -> None:
        """A bare repository (a team's remote on disk)."""
        import git

        path.parent.mkdir(parents=True, exist_ok=True)
        git.Repo.init(path, bare=True, initial_branch="main")

    @_ledger_write
    def set_config(self, key: str, value: str) -> None:
        """Set a value in this repository's own git config."""
        section, _, name = key.rpartition(".")
        with self.repo.config_writer() as writer:
            writer.set_value(section, name, value)

    @_ledger_write
    def add_remote(self, name: str, url: str) -> None:
        self.repo.create_remote(name, url)

    @_ledger_write
    def push_upstream(self, remote: str, branch: str) -> None:
        """Push the current branch and make it track ``remote``'s ``branch``."""
        import git

        try:
            self.repo.git.push("--quiet", "--set-upstream", remote, f"HEAD:refs/heads/{branch}")
        except git.GitCommandError as exc:
            raise ToolError(f"git push {remote}", _last_line(exc)) from None

    @_serialized
    def close(self) -> None:
        """End GitPython's persistent `git cat-file` processes (they are started again when needed)."""
        if self._repo is not None:
            self._repo.close()
            self._repo = None

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

    def user_name(self) -> str | None:
        """user.name, when git has both user.name and user.email (as ``identity`` needs them); read by the
        git command, not GitPython, whose import alone takes ~40 ms: an operation needs this name before
        anything else (the session name of the role it assumes), on the way to starting Terraform."""
        import subprocess

        found = subprocess.run(
            ["git", "config", "--get-regexp", r"^user\.(name|email)$"],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        values = dict(line.partition(" ")[::2] for line in found.stdout.splitlines())  # the last one set wins
        name, email = values.get("user.name", "").strip(), values.get("user.email", "").strip()
        return name if name and email else None

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

    @_serialized
    def history(self, rel: str, limit: int = 200) -> list[FileVersion]:
        """Commits that changed ``rel``, newest first, with the file's text in each."""
        versions = []
        for commit in self.repo.iter_commits(paths=rel, max_count=limit):
            try:
                text: str | None = (commit.tree / rel).data_stream.read().decode("utf-8")
            except KeyError:
                text = None  # deleted in that commit
            versions.append(
                FileVersion(
                    commit=commit.hexsha,
                    when=datetime.fromtimestamp(commit.committed_date, tz=UTC),
                    author=f"{commit.author.name} <{commit.author.email}>",
                    message=commit.message.strip(),
                    text=text,
                )
            )
        return versions

    @_serialized
    def commits(self, paths: list[str], limit: int = 400) -> list[str]:
        """Commits that changed any of ``paths``, newest first (git's own order, not timestamps)."""
        return [c.hexsha for c in self.repo.iter_commits(paths=paths, max_count=limit)]

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
                found.append((parts[0], " ".join(parts[1:])))  # the value whole (a hash and a clone, say)
        return found

    @_ledger_write
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

    @_ledger_write
    def restore(self, rel: str) -> None:
        """Put a file back as it is at HEAD."""
        self.repo.git.checkout("HEAD", "--", rel)

    @_ledger_write
    def add_all_and_commit(self, message: str, leave: list[str] | None = None) -> str:
        """Commit everything in the working tree but the paths in ``leave``."""
        repo = self.repo
        repo.git.add("-A")
        if leave:
            repo.git.reset("-q", "--", *leave)
        repo.git.commit("-m", message)
        return str(repo.head.commit.hexsha)

    # -- the team's remote ------------------------------------------------------------------------

    @_serialized
    def config_value(self, key: str) -> str | None:
        """A git config value (user.signingkey, ...), None when unset."""
        import git

        try:
            value = self.repo.git.config("--get", key)
        except git.GitCommandError:
            return None
        return str(value).strip() or None

    @_serialized
    def upstream(self) -> tuple[str, str] | None:
        """(remote, branch) the current branch tracks, None when it tracks nothing."""
        try:
            tracking = self.repo.active_branch.tracking_branch()
        except (TypeError, ValueError):  # detached HEAD
            return None
        if tracking is None:
            return None
        return str(tracking.remote_name), str(tracking.remote_head)

    @_serialized
    def current_branch(self) -> str | None:
        try:
            return str(self.repo.active_branch.name)
        except TypeError:
            return None

    @_serialized
    def remote_url(self, remote: str) -> str | None:
        try:
            return str(self.repo.remote(remote).url)
        except ValueError:
            return None

    @_ledger_write
    def fetch(self, remote: str, branch: str, timeout: float = 30.0) -> None:
        """Fetch ``branch`` of ``remote``; ToolError with git's own words when it cannot be reached."""
        import git

        try:
            self.repo.git.fetch(
                "--quiet",
                "--no-tags",
                remote,
                f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}",
                kill_after_timeout=timeout,
            )
        except git.GitCommandError as exc:
            raise ToolError(f"git fetch {remote}", _last_line(exc)) from None

    @_serialized
    def ahead_behind(self, ref: str) -> tuple[int, int]:
        """How many commits HEAD has that ``ref`` lacks, and the other way round."""
        import git

        try:
            out = self.repo.git.rev_list("--left-right", "--count", f"HEAD...{ref}")
        except git.GitCommandError as exc:
            raise ToolError(f"git rev-list HEAD...{ref}", _last_line(exc)) from None
        ahead, behind = (int(n) for n in str(out).split())
        return ahead, behind

    @_ledger_write
    def fast_forward(self, ref: str) -> None:
        import git

        try:
            self.repo.git.merge("--ff-only", "--quiet", ref)
        except git.GitCommandError as exc:
            raise ToolError(f"git merge --ff-only {ref}", _last_line(exc)) from None

    @_ledger_write
    def push(self, remote: str, branch: str, timeout: float = 30.0) -> bool:
        """Push HEAD to ``remote``'s ``branch``, never forced; False when the remote has moved on
        (rejected as not a fast-forward), ToolError when it cannot be reached."""
        import git

        try:
            self.repo.git.push("--porcelain", remote, f"HEAD:refs/heads/{branch}", kill_after_timeout=timeout)
        except git.GitCommandError as exc:
            text = f"{exc.stdout or ''}\n{exc.stderr or ''}"
            if "[rejected]" in text or "non-fast-forward" in text or "fetch first" in text:
                return False
            raise ToolError(f"git push {remote}", _last_line(exc)) from None
        return True

    @_ledger_write
    def rebase(self, ref: str) -> None:
        """Replay local commits on ``ref``; on a conflict the rebase is abandoned and nothing changes."""
        import git

        try:
            self.repo.git.rebase("--quiet", ref)
        except git.GitCommandError as exc:
            with contextlib.suppress(git.GitCommandError):
                self.repo.git.rebase("--abort")
            raise ToolError(f"git rebase {ref}", _last_line(exc)) from None

    @_serialized
    def text_at(self, ref: str, rel: str) -> str | None:
        """A file as ``ref`` has it (None when it has none)."""
        try:
            return str((self.repo.commit(ref).tree / rel).data_stream.read().decode("utf-8"))
        except (KeyError, ValueError):
            return None

    @_serialized
    def files_under(self, ref: str, folder: str) -> list[str]:
        """Paths of the files under ``folder`` at ``ref`` (deck-relative)."""
        import git

        try:
            out = self.repo.git.ls_tree("-r", "--name-only", ref, "--", folder)
        except git.GitCommandError:
            return []
        return [line for line in str(out).splitlines() if line]


def _last_line(exc: Any) -> str:
    text = (getattr(exc, "stderr", "") or str(exc)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("hint:")]
    return (lines[-1] if lines else str(exc)).removeprefix("stderr: ").strip("'")
