"""The caller side: send a job to its account's queue and follow it as if it ran here.

Before a job is sent, the live workers' registrations say whether any serves its queue; while none
does, the caller reports "waiting for a worker for account …" and gives up after its wait with one
line. Once sent, the worker's events arrive through the job's Redis stream and go to the caller's
Reporter labelled with the worker; a change's confirmation is asked here and answered to the worker;
cancelling here cancels there. A worker that stops refreshing the job's "alive" key is lost: a
read-only job is sent again (to any worker of its queue), a mutating one never is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opsdeck.core.engine.jobs import (
    KEY_TTL,
    WORKER_PREFIX,
    JobSpec,
    alive_key,
    answer_key,
    cancel_key,
    event_from_json,
    events_key,
    preview_from_json,
)
from opsdeck.core.engine.packages import engine_packages
from opsdeck.core.engine.settings import broker_url, wait_seconds
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.safety.confirm import Confirm, confirmed
from opsdeck.core.sandbox.nuke import NukePlan
from opsdeck.errors import CloudUnavailableError, ConfigError, LockedError, OpsdeckError, RefusedError, ToolError

with engine_packages():
    import redis
    import redis.asyncio as aioredis

READ_ONLY_RESENDS = 2
START_SECONDS = 30.0  # a sent job no worker started in this long, while none serves its queue, is given up
READ_BLOCK_MS = 1000  # one read of a job's stream waits this long for news before the alive key is checked


class EngineError(OpsdeckError):
    """The engine itself failed: the broker cannot be reached, no worker serves an account, a worker was lost."""


_ERRORS: dict[str, type[OpsdeckError]] = {
    cls.__name__: cls
    for cls in (OpsdeckError, ConfigError, RefusedError, LockedError, CloudUnavailableError, ToolError)
}


def where(broker: str) -> str:
    parts = urlsplit(broker)
    return f"{parts.hostname or '?'}:{parts.port or 6379}"


def check_broker(broker: str) -> None:
    """The broker answers, or one line naming it."""
    client = redis.Redis.from_url(broker, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise EngineError(f"the job broker at {where(broker)} does not answer ({reason_of(exc)})") from None
    finally:
        client.close()


def reason_of(exc: BaseException) -> str:
    """The gist of a Redis error: "Error 111 connecting to 127.0.0.1:1. Connection refused." -> its last sentence."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    sentences = [part.strip(" .") for part in text.split(". ") if part.strip(" .")]
    return sentences[-1] if sentences else text


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker, as it registers itself."""

    name: str
    host: str
    pid: int
    queues: tuple[str, ...]
    deck: str
    concurrency: int = 1
    started: float = 0.0
    seen: float = 0.0
    jobs: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerInfo:
        return cls(
            name=str(data["name"]),
            host=str(data.get("host", "")),
            pid=int(data.get("pid", 0)),
            queues=tuple(str(q) for q in data.get("queues", [])),
            deck=str(data.get("deck", "")),
            concurrency=int(data.get("concurrency", 1)),
            started=float(data.get("started", 0.0)),
            seen=float(data.get("seen", 0.0)),
            jobs=tuple(data.get("jobs", [])),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "queues": list(self.queues),
            "deck": self.deck,
            "concurrency": self.concurrency,
            "started": self.started,
            "seen": self.seen,
            "jobs": list(self.jobs),
        }


def live_workers(client: redis.Redis, deck: str | None = None) -> list[WorkerInfo]:
    """The workers whose registration is fresh (of ``deck`` only, when given), by name."""
    found = []
    for key in client.scan_iter(match=f"{WORKER_PREFIX}*", count=100):
        body = client.get(key)
        if not body:
            continue
        try:
            info = WorkerInfo.from_json(json.loads(body))
        except (ValueError, KeyError, TypeError):
            continue
        if deck is None or info.deck == deck:
            found.append(info)
    return sorted(found, key=lambda w: w.name)


@dataclass(frozen=True)
class JobOutcome:
    """A finished job: its result JSON and the worker that ran it."""

    spec: JobSpec
    worker: str
    result: dict[str, Any]
    seconds: float
    attempts: int = 1
    workers: tuple[str, ...] = field(default=())  # every worker that took it (a read-only job sent again)


class Engine:
    """Sends a deck's jobs to its broker and follows them."""

    def __init__(self, deck: Deck, broker: str, wait: float | None = None) -> None:
        from opsdeck.core.engine.celery_app import make_app  # lazy: Celery (the optional engine extra) is heavy

        self.deck = deck
        self.broker = broker
        self.wait = wait_seconds(deck) if wait is None else wait
        self.app = make_app(broker)
        self.sync = redis.Redis.from_url(broker, socket_connect_timeout=2.0, socket_timeout=5.0)

    @classmethod
    def of(cls, deck: Deck) -> Engine | None:
        """The deck's engine when a broker is configured, None to run in this process."""
        broker = broker_url(deck)
        return cls(deck, broker) if broker else None

    def lost_broker(self, exc: BaseException, during: str) -> EngineError:
        return EngineError(f"the job broker at {where(self.broker)} went away during {during} ({reason_of(exc)})")

    def check(self) -> None:
        check_broker(self.broker)

    def workers(self) -> list[WorkerInfo]:
        return live_workers(self.sync, self.deck.name)

    def serving(self, queue: str) -> list[WorkerInfo]:
        return [w for w in self.workers() if queue in w.queues]

    def close(self) -> None:
        self.sync.close()

    async def _wait_for_worker(self, spec: JobSpec, rep: Reporter) -> None:
        deadline = time.monotonic() + self.wait
        told = False
        while not await asyncio.to_thread(self.serving, spec.queue):
            if not told:
                text = f"waiting for a worker for account {spec.account} (queue {spec.queue}) to run {spec.label()}"
                rep.progress(text)
                rep.log(text, "notice")
                told = True
            if time.monotonic() >= deadline:
                raise EngineError(
                    f"no worker serves account {spec.account} (queue {spec.queue}) after {self.wait:.0f}s: "
                    f"{spec.label()} was not run; start one with `opsdeck worker --queue {spec.queue}`"
                )
            await asyncio.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    def _send(self, spec: JobSpec) -> None:
        self.app.send_task(spec.task, args=[spec.to_json()], queue=spec.queue, task_id=spec.id)

    async def run(self, spec: JobSpec, rep: Reporter, confirm: Confirm = confirmed) -> JobOutcome:
        """Run ``spec`` on a worker of its account; its events go to ``rep``; its result, or its error as
        the same one-line error it was on the worker."""
        started = time.monotonic()
        workers: list[str] = []
        current = spec
        attempts = 0
        while True:
            attempts += 1
            try:
                await self._wait_for_worker(current, rep)
                try:
                    await asyncio.to_thread(self._send, current)
                except asyncio.CancelledError:
                    await asyncio.shield(asyncio.to_thread(self._cancel, current))
                    raise
                worker, result = await self._follow(current, rep, confirm, workers)
            except redis.RedisError as exc:
                raise self.lost_broker(exc, current.label()) from None
            except _Lost as lost:
                if current.mutating:
                    left = (
                        f"{current.env} is left as the worker left it: check it with `opsdeck status`, then "
                        f"release it with `opsdeck unlock {current.env}`"
                        if current.env
                        else "Packer's builder instance or a half-made image may be left in the build account: "
                        "`opsdeck orphans` finds them"  # a bake
                    )
                    raise WorkerLostError(
                        f"worker {lost.worker} was lost during {current.label()} (job {current.id[:12]}): nothing "
                        f"runs it again; {left}"
                    ) from None
                if attempts > READ_ONLY_RESENDS:
                    raise EngineError(
                        f"{current.label()} lost its worker {attempts} times (last {lost.worker}); giving up"
                    ) from None
                rep.log(f"worker {lost.worker} was lost during {current.label()}: sending it again", "warning")
                current = JobSpec.new(self.deck, spec.op, spec.env, spec.args, spec.head)
                continue
            return JobOutcome(spec, worker, result, time.monotonic() - started, attempts, tuple(workers))

    async def _follow(
        self, spec: JobSpec, rep: Reporter, confirm: Confirm, workers: list[str]
    ) -> tuple[str, dict[str, Any]]:
        client = aioredis.Redis.from_url(self.broker, socket_connect_timeout=2.0)
        stream, last = events_key(spec.id), "0-0"
        worker = ""
        silent = 0
        sent_at = time.monotonic()
        try:
            while True:
                entries: Any = await client.xread({stream: last}, block=READ_BLOCK_MS, count=500)
                for _, messages in entries or []:
                    for message_id, fields in messages:
                        last = message_id
                        data = json.loads(fields[b"data"])
                        kind = data.get("kind")
                        if kind == "started":
                            worker = str(data.get("worker", "?"))
                            workers.append(worker)
                            if data.get("attempt"):
                                rep.log(f"{spec.label()}: attempt {data['attempt'] + 1} on {worker}", "notice")
                        elif kind == "event":
                            event = event_from_json(data.get("event") or {}, worker)
                            if event is not None:
                                rep.sink(event)
                        elif kind == "retrying":  # back in its queue (Celery retries it): no worker holds it now
                            rep.log(f"{spec.label()} failed on {worker} ({data.get('error')}): retrying", "warning")
                            worker, sent_at = "", time.monotonic()
                        elif kind == "confirm":
                            answer = False
                            try:
                                if "nuke" in data:
                                    answer = await confirm(NukePlan.from_json(data["nuke"]))  # type: ignore[arg-type]
                                else:
                                    answer = await confirm(preview_from_json(data["preview"]))
                            finally:  # refused or failed here: the worker hears "no" and changes nothing
                                await client.rpush(answer_key(spec.id), "yes" if answer else "no")
                                await client.expire(answer_key(spec.id), KEY_TTL)  # never left without expiry
                        elif kind == "done":
                            if data.get("ok"):
                                return str(data.get("worker") or worker), dict(data.get("result") or {})
                            raise _error(data)
                if worker:
                    if await client.exists(alive_key(spec.id)):
                        silent = 0
                    else:  # a worker drops the key right after its "done": read once more before calling it lost
                        silent += 1
                        if silent > 1:
                            raise _Lost(worker)
                elif time.monotonic() - sent_at > START_SECONDS and not await asyncio.to_thread(
                    self.serving, spec.queue
                ):
                    raise EngineError(
                        f"{spec.label()} was sent, but no worker for account {spec.account} is left to run it"
                    )
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.to_thread(self._cancel, spec))
            raise
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    def _cancel(self, spec: JobSpec) -> None:
        """Cancel ``spec`` wherever it is: taken by a worker (the cancel key) or still queued (revoked)."""
        try:
            self.sync.set(cancel_key(spec.id), "1", ex=KEY_TTL)
            self.sync.rpush(answer_key(spec.id), "no")
            self.sync.expire(answer_key(spec.id), KEY_TTL)
        except redis.RedisError:
            return  # the broker is gone: so is every way to reach the worker
        with contextlib.suppress(Exception):
            self.app.control.revoke(spec.id)


class WorkerLostError(EngineError):
    """The worker running a mutating job stopped answering: the job is not run again."""


class _Lost(Exception):
    def __init__(self, worker: str) -> None:
        super().__init__(worker)
        self.worker = worker


def _error(data: dict[str, Any]) -> OpsdeckError:
    """The worker's error, as the same kind of error here (so exit codes and audits classify it alike)."""
    kind = _ERRORS.get(str(data.get("error_type")), OpsdeckError)
    error = kind.__new__(kind)
    error.args = (str(data.get("error") or "the job failed on its worker"),)
    return error
