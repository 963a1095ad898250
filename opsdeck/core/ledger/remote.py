"""The shared ledger: the deck's git remote is the truth, every engineer's clone follows it.

Before any change opsdeck fetches, fast-forwards when it is behind and clean, and refuses when the
clone has diverged or its pin files are dirty. After its commit it pushes; when a teammate pushed in
between (a change to another environment: pins of different environments never conflict) it rebases
onto theirs and pushes again; it never force-pushes. When the remote cannot be reached, reads go on
from the local ledger marked offline, and changes are refused, except under break-glass, which runs
offline on the record. A deck whose branch tracks no remote keeps a local ledger, as a lone engineer's.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from opsdeck.core.estate.pins import pin_files
from opsdeck.errors import OpsdeckError, RefusedError, ToolError

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter

PUSH_ATTEMPTS = 4


@dataclass(frozen=True)
class Ledger:
    """Where the clone stands against the team's remote."""

    remote: str | None = None  # None: no remote, the ledger is this clone's own
    branch: str | None = None
    url: str | None = None
    ahead: int = 0  # commits here the remote lacks
    behind: int = 0  # commits of the remote not here yet
    offline: bool = False  # the remote could not be reached; figures are from the last fetch
    error: str = ""
    checked_at: float = 0.0

    @property
    def shared(self) -> bool:
        return self.remote is not None

    @property
    def ref(self) -> str:
        return f"{self.remote}/{self.branch}"

    def describe(self) -> str:
        if not self.shared:
            return "local ledger (no remote)"
        parts = [self.ref]
        if self.offline:
            parts.append("OFFLINE")
        if self.behind:
            parts.append(f"behind the remote by {self.behind}")
        if self.ahead:
            parts.append(f"{self.ahead} not pushed")
        return " · ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def team_remote(deck: Deck) -> tuple[str, str] | None:
    """(remote, branch) that is the truth for this deck, None when it has no remote."""
    git = deck.tools.git
    settings = deck.config.team
    tracked = git.upstream()
    remote = settings.remote or (tracked[0] if tracked else None)
    branch = settings.branch or (tracked[1] if tracked else None) or git.current_branch()
    if remote is None or branch is None:
        return None
    if git.remote_url(remote) is None:
        raise RefusedError(f"opsdeck.toml: team.remote: the deck's git repository has no remote named {remote!r}")
    return remote, branch


def check(deck: Deck, *, fetch: bool = True) -> Ledger:
    """Fetch (unless told not to) and count how far the clone is ahead of and behind the remote."""
    git = deck.tools.git
    found = team_remote(deck)
    if found is None:
        return Ledger(checked_at=time.time())
    remote, branch = found
    offline, error = False, ""
    if fetch:
        try:
            git.fetch(remote, branch, timeout=deck.config.team.fetch_seconds)
        except ToolError as exc:
            offline, error = True, str(exc)
    try:
        ahead, behind = git.ahead_behind(f"{remote}/{branch}")
    except ToolError:  # never fetched: nothing is known of the remote yet
        ahead, behind = 0, 0
        if not offline:
            offline, error = True, f"{remote}/{branch} was never fetched"
    return Ledger(remote, branch, git.remote_url(remote), ahead, behind, offline, error, time.time())


def follow(deck: Deck, ledger: Ledger) -> Ledger:
    """Fast-forward a clone that is behind and clean (what the open deck does on its refresh timer, so
    it shows what the team's ledger says); otherwise leave it and say how far behind it is."""
    if not ledger.shared or ledger.offline or not ledger.behind or ledger.ahead or _dirty(deck):
        return ledger
    try:
        deck.tools.git.fast_forward(ledger.ref)
    except ToolError:
        return ledger
    return Ledger(**{**asdict(ledger), "behind": 0})


def latest(deck: Deck) -> Ledger:
    """The clone brought level with the remote for reading (fetch, then fast-forward when it can); the
    ledger says what stands in the way when it could not (offline, or local changes)."""
    return follow(deck, check(deck))


def _dirty(deck: Deck) -> list[str]:
    git = deck.tools.git
    return [rel for env in deck.config.env_names for rel in pin_files(deck, env) if git.is_dirty(rel)]


def sync_before_change(deck: Deck, rep: Reporter, *, offline_ok: bool = False) -> Ledger:
    """Bring the clone level with the team's remote before a change, or refuse with one line.
    ``offline_ok``: break-glass, which may run with the remote unreachable (and says so)."""
    with rep.phase("sync"):
        ledger = check(deck)
        if not ledger.shared:
            return ledger
        if ledger.offline:
            if offline_ok:
                rep.log(f"the remote {ledger.url} cannot be reached: break-glass proceeds offline", "warning")
                return ledger
            raise RefusedError(
                f"the deck's remote {ledger.url} cannot be reached ({ledger.error}); changes are refused "
                "until it is back (break-glass may proceed offline)"
            )
        if ledger.ahead and ledger.behind:
            raise RefusedError(
                f"the deck has diverged from {ledger.ref} ({ledger.ahead} commits here, {ledger.behind} there): "
                "reconcile them with git (pull --rebase) first"
            )
        if ledger.behind:
            dirty = _dirty(deck)
            if dirty:
                raise RefusedError(
                    f"the deck is {ledger.behind} commits behind {ledger.ref} and {', '.join(dirty)} has uncommitted "
                    "changes: commit or discard them first"
                )
            deck.tools.git.fast_forward(ledger.ref)
            rep.log(f"fast-forwarded {ledger.behind} commits from {ledger.ref}", "notice")
            ledger = Ledger(**{**asdict(ledger), "behind": 0})
        return ledger


def publish(deck: Deck, rep: Reporter) -> tuple[bool, str]:
    """Push the clone's commits to the team's remote; when a teammate pushed meanwhile, rebase onto
    theirs and push again (never forced). Returns (pushed, head): the head moves when rebased."""
    git = deck.tools.git
    found = team_remote(deck)
    if found is None:
        return False, git.head()
    remote, branch = found
    timeout = deck.config.team.fetch_seconds
    with rep.phase("push"):
        for _ in range(PUSH_ATTEMPTS):
            try:
                if git.push(remote, branch, timeout=timeout):
                    return True, git.head()
                git.fetch(remote, branch, timeout=timeout)
            except ToolError as exc:
                rep.log(f"not pushed, the remote cannot be reached ({exc}): it goes with the next change", "warning")
                return False, git.head()
            rep.log(f"{remote}/{branch} moved on: rebasing onto it and pushing again", "notice")
            try:
                git.rebase(f"{remote}/{branch}")
            except ToolError as exc:
                raise OpsdeckError(
                    f"committed here, but it does not rebase onto {remote}/{branch} ({exc}): "
                    "a teammate changed the same pins; reconcile with git"
                ) from None
    raise OpsdeckError(f"committed here, but {remote}/{branch} kept moving: push it with git")
