"""Release notices: each change's result told to the deck's ``[notify]`` targets, off the change's path.

A promote, rollback, deploy, executed request, nuke-and-rebuild or sandbox expiry tells the targets once its
closing audit record is written and its lock released (``Deck.announce``); opening break-glass tells them as
it opens. A notice says what changed (from -> to per service), who made it and why, and the result (ok,
failed, refused, cancelled or requested, with the one-line reason). Targets are the drift alarm's (webhooks,
``env:NAME``, SNS topics), told the same way and retried as it retries (core/hygiene/notify.py).

Sending runs on a thread of its own, so a slow or dead target never holds up or fails the change. A target
still not told after its attempts is an audit record (action ``notify``, result ``failed``) and a line
for the person (``on_failure``: a notice in the deck, stderr on the command line). ``wait`` is how long a
command lets sending go on before it exits; what is still unsent then is recorded the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.hygiene.notify import Alarm, Delivery, deliver, parse_target
from opsdeck.core.ports.outside import WebhookPort
from opsdeck.core.safety import audit
from opsdeck.errors import ConfigError

# The operations whose result the targets hear of ("apply" only as an executed request).
TOLD = ("promote", "rollback", "deploy", "apply", "nuke-rebuild", "sandbox-expire", "break-glass")
RESULTS = {"interrupted": "cancelled"}  # the audit log's word -> the notice's


@dataclass(frozen=True)
class Notice:
    """What the targets are told of one change."""

    action: str
    environment: str
    result: str  # ok | failed | refused | cancelled | requested | opened
    text: str  # one line
    body: dict[str, Any]

    def alarm(self) -> Alarm:
        return Alarm(self.result, self.text, self.body)


def changes_of(record: dict[str, Any]) -> list[dict[str, str]]:
    """Each service's from -> to as the record has them (one id for one service, or a map per service)."""
    services = [str(s) for s in record.get("services") or []]
    before, after = record.get("from"), record.get("to")
    out = []
    for service in services:
        old = before.get(service, "") if isinstance(before, dict) else (before or "") if len(services) == 1 else ""
        new = after.get(service, "") if isinstance(after, dict) else (after or "") if len(services) == 1 else ""
        out.append({"service": service, "from": str(old or ""), "to": str(new or "")})
    return out


def notice_of(deck_name: str, record: dict[str, Any], result: str | None = None) -> Notice | None:
    """The notice of a closing (or break-glass) audit record; None when the targets need not hear of it."""
    action, env = str(record.get("action", "")), str(record.get("environment") or "")
    said = result or RESULTS.get(str(record.get("result")), str(record.get("result")))
    if action not in TOLD or said == "started" or (action == "apply" and "request" not in record):
        return None
    if action == "break-glass" and said != "opened":
        return None
    who = record.get("who") or {}
    by = str(who.get("git") or who.get("user") or who.get("aws") or "?")
    reason = " ".join(str(record.get("reason") or "").split())
    error = " ".join(str(record.get("error") or "").split())
    changes = changes_of(record)
    what = ", ".join(f"{c['service']} {c['from'] or '-'} -> {c['to'] or '-'}" for c in changes)
    if action == "break-glass":
        until = datetime.fromtimestamp(float(record.get("expires_at") or 0), UTC).strftime("%H:%M UTC")
        head = f"break-glass opened on {env} until {until}"
    else:
        executed = f" (request {record['request']})" if record.get("request") and said != "requested" else ""
        head = f"{action} {env}{executed} {said}" + (f": {what}" if what else "")
        if action == "nuke-rebuild" and said == "ok":
            head += f": {record.get('destroyed', 0)} destroyed, {record.get('created', 0)} created"
        elif action == "sandbox-expire" and said == "ok":
            head += f": its lifetime ended; {record.get('destroyed', 0)} destroyed, not rebuilt"
    text = f"opsdeck {deck_name}: {head}" + (f" ({error})" if error and said != "ok" else "")
    text += f"; by {by}" + (f"; reason: {reason}" if reason else "")
    body: dict[str, Any] = {
        "text": text,
        "deck": deck_name,
        "action": action,
        "environment": env,
        "result": said,
        "changes": changes,
        "who": who,
        "reason": reason,
        "error": error,
        "at": record.get("at") or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "audit": {"seq": record.get("seq"), "hash": record.get("hash")},
    }
    for key in ("commit", "request", "approved_by", "break_glass", "freeze_bypassed", "expires_at"):
        if record.get(key) not in (None, "", [], False):
            body[key] = record[key]
    return Notice(action, env, said, text, body)


class Notices:
    """The deck's outbox: ``announce`` returns at once; the sending runs on a thread of its own."""

    def __init__(
        self,
        deck: Deck,
        *,
        targets: Sequence[str] | None = None,
        webhook: WebhookPort | None = None,
        on_failure: Callable[[str], None] | None = None,
        backoff: float = 1.0,
    ) -> None:
        self.deck = deck
        self.settings = deck.config.notify
        self.targets = tuple(targets if targets is not None else self.settings.targets)
        self.webhook = webhook
        self.on_failure = on_failure or (lambda _line: None)
        self.backoff = backoff
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Each notice being sent, with the targets already told or given up on.
        self._pending: dict[concurrent.futures.Future[None], tuple[Notice, set[str]]] = {}

    def announce(self, record: dict[str, Any], result: str | None = None) -> None:
        """Start telling the targets of ``record``'s change (when they are told of such changes). It never
        raises: the change it tells of is already done."""
        try:
            notice = notice_of(self.deck.name, record, result)
            if notice is None or not self.targets:
                return
            settled: set[str] = set()
            future = asyncio.run_coroutine_threadsafe(self._tell_all(notice, settled), self._running_loop())
        except Exception as exc:  # a notice that cannot be made is said, never raised into the change
            where = f"{record.get('action', '?')} {record.get('environment') or ''}".strip()
            self.on_failure(f"notify: no notice of {where}: {type(exc).__name__}: {' '.join(str(exc).split())}")
            return
        with self._lock:
            self._pending[future] = (notice, settled)
        future.add_done_callback(self._done)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    @property
    def unsent(self) -> list[str]:
        """The targets still being told, one entry per notice."""
        with self._lock:
            return [t for _, settled in self._pending.values() for t in self.targets if t not in settled]

    def wait(self, seconds: float) -> int:
        """Let sending go on for at most ``seconds``; what is still unsent then is recorded as not told
        (the caller is about to exit). How many notices were left."""
        with self._lock:
            pending = list(self._pending)
        if pending:
            concurrent.futures.wait(pending, timeout=seconds)
        with self._lock:
            left = [
                (notice, set(self.targets) - settled) for f, (notice, settled) in self._pending.items() if not f.done()
            ]
        for notice, unsent in left:
            why = f"still being sent after {seconds:g}s, when opsdeck exited"
            for target in sorted(unsent, key=self.targets.index):
                self._failed(notice, Delivery(_shown(target), False, 0, why))
        return len(left)

    def close(self) -> None:
        """Stop the sending thread (once nothing is pending; a pending send is left to the process's exit)."""
        with self._lock:
            loop, thread, busy = self._loop, self._thread, any(not f.done() for f in self._pending)
            if busy or loop is None or thread is None:
                return
            self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="opsdeck-notices", daemon=True)
                self._thread.start()
            return self._loop

    def _done(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            notice, _ = self._pending.pop(future, (None, None))
        if notice is not None and not future.cancelled() and future.exception() is not None:
            exc = future.exception()
            self.on_failure(f"notify: {notice.action} {notice.environment}: {type(exc).__name__}: {exc}")

    async def _tell_all(self, notice: Notice, settled: set[str]) -> None:
        rep = Reporter("notify", notice.environment or None)
        await asyncio.gather(*(self._tell(notice, target, rep, settled) for target in self.targets))

    async def _tell(self, notice: Notice, text: str, rep: Reporter, settled: set[str]) -> None:
        try:
            await self._tell_one(notice, text, rep)
        finally:
            with self._lock:
                settled.add(text)

    async def _tell_one(self, notice: Notice, text: str, rep: Reporter) -> None:
        try:
            target = parse_target(text)  # an env:NAME target is read now: the variable may be set late
        except ConfigError as exc:
            why = str(exc).removeprefix(f"--notify {text}: ")  # parse_target speaks of the command's flag
            await asyncio.to_thread(self._failed, notice, Delivery(_shown(text), False, 0, why))
            return
        settings = self.settings
        done = await deliver(
            self.deck,
            target,
            notice.alarm(),
            rep,
            timeout=settings.timeout_seconds,
            attempts=settings.attempts,
            backoff=self.backoff,
            webhook=self.webhook,
        )
        if not done.ok:
            await asyncio.to_thread(self._failed, notice, done)

    def _failed(self, notice: Notice, delivery: Delivery) -> None:
        """A target not told: the audit log keeps it, and the person hears of it."""
        tries = f" ({delivery.attempts} attempt{'s' * (delivery.attempts != 1)})" if delivery.attempts else ""
        audit.append(
            self.deck,
            action="notify",
            environment=notice.environment or None,
            result="failed",
            about=notice.action,
            about_seq=notice.body["audit"]["seq"],
            target=delivery.target,
            attempts=delivery.attempts,
            error=delivery.detail,
        )
        where = f"{notice.action} {notice.environment}".strip()
        self.on_failure(f"notify: {delivery.target} was not told of {where}: {delivery.detail}{tries}")


def _shown(text: str) -> str:
    """A target as it may be printed: a webhook's path (its key) left out."""
    if "://" in text:
        scheme, rest = text.split("://", 1)
        return f"{scheme}://{rest.split('/', 1)[0]}/…"
    return text
