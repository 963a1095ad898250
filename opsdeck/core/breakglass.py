"""Break-glass: elevated credentials for a protected environment, for a reason and a time box.

Protected environments are read-only. Break-glass loads the environment's credentials from the
keyring (stored with `opsdeck secrets set ENV`), hands them to that environment's tools only, and
lasts until it expires; every action taken under it is audited with its reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from opsdeck.adapters import secrets
from opsdeck.core import audit
from opsdeck.core.deck import Deck
from opsdeck.errors import RefusedError


@dataclass(frozen=True)
class BreakGlass:
    env: str
    reason: str
    opened_at: float
    expires_at: float

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
    if not settings.protected:
        raise RefusedError(f"{env} is not protected; break-glass is only for protected environments")
    if not reason.strip():
        raise RefusedError("break-glass needs a reason (--reason TEXT)")
    creds = secrets.load(deck.name, env)
    if creds is None:
        raise RefusedError(
            f"no break-glass credentials for {env} in the keyring; store them with `opsdeck secrets set {env}`"
        )
    deck.use_credentials(env, creds)
    now = time.time()
    span = 60.0 * (minutes if minutes is not None else deck.config.safety.break_glass_minutes)
    glass = BreakGlass(env=env, reason=reason.strip(), opened_at=now, expires_at=now + span)
    audit.append(
        deck,
        action="break-glass",
        environment=env,
        result="opened",
        reason=glass.reason,
        expires_at=glass.expires_at,
        who=audit.who(deck, env),
    )
    return glass


def close_break_glass(deck: Deck, glass: BreakGlass, why: str = "closed") -> None:
    deck.drop_credentials(glass.env)
    audit.append(deck, action="break-glass", environment=glass.env, result=why, reason=glass.reason)


def guard(deck: Deck, env: str, glass: BreakGlass | None, action: str) -> None:
    """Refuse to change a protected environment without an active break-glass for it."""
    if not deck.env(env).protected:
        return
    if glass is None or glass.env != env:
        raise RefusedError(
            f"{env} is protected: {action} needs break-glass (--break-glass --reason TEXT, or ! in the deck)"
        )
    if not glass.active():
        deck.drop_credentials(env)
        ended = time.strftime("%H:%M:%S", time.localtime(glass.expires_at))
        raise RefusedError(f"break-glass for {env} expired at {ended}; open it again to {action}")
