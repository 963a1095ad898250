"""Break-glass: elevated credentials for a protected environment, for a reason and a time box.

Protected environments are read-only. Break-glass loads the environment's credentials from the
keyring (stored with `opsdeck secrets set ENV`) into the break-glass value itself: the operation
that holds it hands them to that environment's tools only. It lasts until it expires; every action
taken under it is audited with its reason. A frozen environment that is not protected may be broken
into too: there are no elevated credentials then, the break-glass only passes the freeze.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from opsdeck.core.estate.deck import Deck
from opsdeck.core.ledger.remote import latest
from opsdeck.core.safety import audit
from opsdeck.core.safety.freeze import Freeze, read_freeze
from opsdeck.core.types.cloud import Credentials
from opsdeck.errors import OpsdeckError, RefusedError, SecretsUnavailableError


@dataclass(frozen=True)
class BreakGlass:
    env: str
    reason: str
    opened_at: float
    expires_at: float
    credentials: Credentials | None = field(default=None, repr=False, compare=False)
    source: str = "keyring"  # where the credentials came from, shown wherever break-glass is

    def active(self, now: float | None = None) -> bool:
        return (now or time.time()) < self.expires_at

    def remaining(self, now: float | None = None) -> float:
        return max(0.0, self.expires_at - (now or time.time()))


def open_break_glass(deck: Deck, env: str, reason: str, minutes: float | None = None) -> BreakGlass:
    """Load ``env``'s elevated credentials and start the time box; audited, refusals included."""
    try:
        return _open(deck, env, reason, minutes)
    except RefusedError as exc:
        audit.append(
            deck,
            action="break-glass",
            environment=env,
            result="refused",
            reason=reason,
            error=str(exc),
            who=audit.who(deck, env),
        )
        raise


def _open(deck: Deck, env: str, reason: str, minutes: float | None) -> BreakGlass:
    settings = deck.env(env)
    frozen = None if settings.protected else _freeze_of(deck, env)
    if not settings.protected and frozen is None:
        raise RefusedError(f"{env} is not protected; break-glass is only for protected (or frozen) environments")
    if not reason.strip():
        raise RefusedError("break-glass needs a reason (--reason TEXT)")
    creds: Credentials | None = None
    if frozen is None:
        creds, source = load_credentials(deck, env)
    else:  # nothing to elevate: break-glass here only passes the freeze (audited as its bypass)
        source = f"{env}'s own credentials (not protected: break-glass passes its freeze only)"
    now = time.time()
    span = 60.0 * (minutes if minutes is not None else deck.config.safety.break_glass_minutes)
    glass = BreakGlass(
        env=env, reason=reason.strip(), opened_at=now, expires_at=now + span, credentials=creds, source=source
    )
    audit.append(
        deck,
        action="break-glass",
        environment=env,
        result="opened",
        reason=glass.reason,
        expires_at=glass.expires_at,
        credentials_from=source,
        who=audit.who(deck, env, creds),
        **({"freeze": frozen.record()} if frozen is not None else {}),
    )
    return glass


def _freeze_of(deck: Deck, env: str) -> Freeze | None:
    """The freeze in force on ``env``, as the team's remote has it when it can be reached."""
    with contextlib.suppress(OpsdeckError):
        latest(deck)
    return read_freeze(deck, env).freeze


def load_credentials(deck: Deck, env: str) -> tuple[Credentials, str]:
    """``env``'s break-glass credentials and where they came from (the deck's secrets: the keyring; a
    demo deck on the local cloud without a keyring backend keeps its own file, and says so)."""
    try:
        found = deck.tools.secrets().load(env)
    except SecretsUnavailableError as exc:
        raise RefusedError(str(exc)) from None
    if found is None:
        raise RefusedError(
            f"no break-glass credentials for {env} in the keyring; store them with `opsdeck secrets set {env}`"
        )
    return found


def close_break_glass(deck: Deck, glass: BreakGlass, why: str = "closed") -> None:
    audit.append(deck, action="break-glass", environment=glass.env, result=why, reason=glass.reason)


def guard(deck: Deck, env: str, glass: BreakGlass | None, action: str, *, approved: bool = False) -> None:
    """Refuse to change a protected environment without an active break-glass for it (a request its
    approvers signed is the pipeline's way in, and needs none)."""
    if not deck.env(env).protected or approved:
        return
    if glass is None or glass.env != env:
        raise RefusedError(
            f"{env} is protected: {action} needs break-glass (--break-glass --reason TEXT, or ! in the deck)"
        )
    if not glass.active():
        ended = time.strftime("%H:%M:%S", time.localtime(glass.expires_at))
        raise RefusedError(f"break-glass for {env} expired at {ended}; open it again to {action}")
