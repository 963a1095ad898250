"""One audited operation: protection, the caller's real account, the environment's lock, the audit
records, and how the operation ended, owned in one place for every mutating operation.

    async with audited(deck, "promote", "dev", rep, glass=glass, fields={...}) as run:
        ...                       # the work; run.note(commit=sha) adds to the closing record

Before anything is locked or recorded, a protected environment needs break-glass, a frozen one
refuses (break-glass passes, recorded as ``freeze_bypassed``; see core/safety/freeze.py), and the
credentials the operation will use must reach the account the deck says the environment is in
(STS); a refusal there is audited as an attempt. Then the lock is taken and a "started" record is
written, so an operation killed midway stays visible; the closing record says ok, refused, failed or
interrupted by one rule (``audit.outcome``). Once the lock is released, the closing record goes to the
deck's announcer (release notices, core/hygiene/notices.py), which returns at once, and the records are
shipped off the machine when the deck says so (core/safety/audit_shipping.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opsdeck.core.ledger.remote import sync_before_change
from opsdeck.core.safety import audit, audit_shipping
from opsdeck.core.safety.breakglass import guard
from opsdeck.core.safety.confirm import NotConfirmedError
from opsdeck.core.safety.freeze import check_freeze
from opsdeck.core.safety.locks import check_unlocked, env_lock
from opsdeck.errors import LockedError, RefusedError

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter
    from opsdeck.core.safety.breakglass import BreakGlass
    from opsdeck.core.types.cloud import Credentials


@dataclass
class Run:
    """What the operation's body adds to its closing record."""

    record: audit.AuditedRun
    closing: dict[str, Any] = field(default_factory=dict)
    result: str = "ok"
    error: str = ""

    @property
    def hash(self) -> str:
        """The "started" record's hash (a git trailer anchors commits to it)."""
        return self.record.hash

    def note(self, **fields: Any) -> None:
        self.closing.update(fields)

    def end_as(self, result: str, error: str = "") -> None:
        """Close as ``result`` although the body returns normally (an applied change left unverified)."""
        self.result, self.error = result, error


def verify_account(deck: Deck, env: str, credentials: Credentials | None = None) -> str | None:
    """The account the credentials really reach (STS); refused when it is not the configured one."""
    expected = deck.env(env).account
    tools = deck.tools.env(env, credentials)
    if expected is None:
        return None
    actual = tools.cloud.caller_identity().get("account", "")
    if actual != expected:
        how = "the break-glass credentials" if credentials is not None else f"{tools.target.describe()}'s credentials"
        raise RefusedError(
            f"{env}: {how} reach account {actual or '?'}, but opsdeck.toml says {env} is in account {expected}; "
            "nothing was changed"
        )
    return actual


def preflight(deck: Deck, env: str, action: str, glass: BreakGlass | None) -> None:
    """The refusals a change meets before it syncs and plans (break-glass, a freeze, the environment's
    lock held or left by an interrupted operation), checked before a pre-made plan's confirmation opens:
    a refusal comes at the key, never after its "y". Blocking; the operation checks each again, after its
    sync, under its lock."""
    guard(deck, env, glass, action)
    check_freeze(deck, env, glass, action)
    check_unlocked(deck, env)


def refuse(deck: Deck, action: str, env: str | None, exc: Exception, **fields: Any) -> None:
    """Audit an attempt refused before its operation started (attempts count too)."""
    who = audit.who(deck, env)
    audit.append(deck, action=action, environment=env, result="refused", error=str(exc), who=who, **fields)


@contextlib.asynccontextmanager
async def audited(
    deck: Deck,
    action: str,
    env: str | None,
    rep: Reporter,
    *,
    glass: BreakGlass | None = None,
    fields: dict[str, Any] | None = None,
    lock: bool = True,
    lock_detail: dict[str, str] | None = None,
    approved: bool = False,
    sync: bool = True,
) -> AsyncIterator[Run]:
    """Run one mutating operation under the deck's safety rules (see the module's docstring).
    ``approved``: a request its approvers signed (a protected environment needs no break-glass for it);
    ``sync``: bring the clone level with the team's remote first (unless the caller just did)."""
    fields = dict(fields or {})
    if env is not None:
        fields.setdefault("break_glass", glass is not None and glass.env == env)
    credentials = glass.credentials if glass is not None and glass.env == env else None
    who = await asyncio.to_thread(audit.who, deck, env, credentials)
    stack = contextlib.ExitStack()
    run: Run | None = None
    closing: dict[str, Any] | None = None
    told: str | None = None  # the notice's word for the result, where it differs from the audit log's
    ship = True
    try:
        if env is not None:
            guard(deck, env, glass, action, approved=approved)
            if sync:
                ledger = await asyncio.to_thread(sync_before_change, deck, rep, offline_ok=credentials is not None)
                if ledger.offline:
                    fields["offline"] = True
            # After the sync: the freezes are the team's, as the remote has them.
            bypassed = await asyncio.to_thread(check_freeze, deck, env, glass, action)
            if bypassed is not None:
                fields["freeze_bypassed"] = bypassed
            await asyncio.to_thread(verify_account, deck, env, credentials)
            if lock:
                stack.enter_context(env_lock(deck, env, action, lock_detail, credentials))
        run = Run(audit.AuditedRun(deck, action, env, fields, who=who).open())
        yield run
    except BaseException as exc:
        ship = isinstance(exc, Exception)  # not when cancelled or interrupted: the next operation ships
        if run is None:
            if isinstance(exc, RefusedError | LockedError):  # an attempt counts too
                audit.append(deck, action=action, environment=env, result="refused", error=str(exc), who=who, **fields)
        else:
            closing = run.record.close(audit.outcome(exc), error=str(exc), phases=rep.phase_list(), **run.closing)
            told = "cancelled" if isinstance(exc, NotConfirmedError) else None
        raise
    else:
        assert run is not None
        closing = run.record.close(run.result, error=run.error, phases=rep.phase_list(), **run.closing)
    finally:
        stack.close()
        if closing is not None:  # after the lock is released; it returns at once
            deck.announce(closing, told)
        if run is not None and ship:  # after the change and its lock: a failure to ship is only a notice
            await asyncio.to_thread(audit_shipping.ship_after, deck, rep)
