"""The worker side: `opsdeck worker` consumes its accounts' queues and runs each job on its own clone.

For every job the worker checks that it serves the job's deck and runs the caller's ledger (it fetches
and fast-forwards its clone first), streams the operation's events to the job's Redis stream, keeps a
short-lived "alive" key fresh while it works, asks the caller to confirm a change (and waits for the
answer), stops when the caller cancels, and names itself in every lock it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from opsdeck.core.engine.dispatch import check_broker
from opsdeck.core.engine.jobs import (
    KEY_TTL,
    JobSpec,
    account_of,
    alive_key,
    answer_key,
    cancel_key,
    event_to_json,
    events_key,
    preview_to_json,
    queue_of_account,
    worker_key,
)
from opsdeck.core.engine.packages import engine_packages
from opsdeck.core.engine.runner import run_job
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Event, Reporter
from opsdeck.core.hygiene.notices import Notices
from opsdeck.core.ledger.remote import latest
from opsdeck.core.safety import locks
from opsdeck.core.safety.confirm import Preview
from opsdeck.core.safety.operation import verify_account
from opsdeck.errors import CloudUnavailableError, OpsdeckError, RefusedError, ToolError

with engine_packages():
    import redis

ALIVE_MS = 5000  # a job whose worker stops refreshing this for 5 s has lost its worker
BEAT_SECONDS = 1.0
CONFIRM_SECONDS = 900.0  # how long a change waits for its caller's answer before it counts as not confirmed
ANSWER_SLICE = 2  # seconds per wait for that answer (under the client's socket timeout)
REGISTRY_SECONDS = 2.0
REGISTRY_TTL = 8

_running: dict[str, dict[str, Any]] = {}  # job id -> {"op", "env", "since"}: what this worker runs now
_running_lock = threading.Lock()


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class Channel:
    """The worker's end of one job's Redis keys."""

    def __init__(self, client: redis.Redis, job_id: str, worker: str) -> None:
        self.client, self.job_id, self.worker = client, job_id, worker
        self.broken = False

    def send(self, kind: str, **data: Any) -> None:
        key = events_key(self.job_id)
        with self.client.pipeline() as pipe:
            pipe.xadd(key, {"data": json.dumps({"kind": kind, **data}, default=str)})
            pipe.expire(key, KEY_TTL)
            pipe.execute()

    def event(self, event: Event) -> None:
        """The operation's sink: a broker that went away must not break the operation it reports on."""
        try:
            self.send("event", event=event_to_json(event))
        except redis.RedisError as exc:
            if not self.broken:
                print(f"opsdeck worker {self.worker}: events of job {self.job_id} lost: {exc}", file=sys.stderr)
            self.broken = True

    def alive(self) -> None:
        self.client.set(alive_key(self.job_id), self.worker, px=ALIVE_MS)

    def answer(self, timeout: float) -> bool:
        """The caller's answer ("yes" or not) within ``timeout``; a cancel meanwhile is a "no". Waited
        for in slices shorter than the client's socket timeout: redis-py's reads time out after 5 s by
        default, and a single long BLPOP failed the change after 5 s of a person reading its plan."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            found = self.client.blpop([answer_key(self.job_id)], timeout=max(1, min(ANSWER_SLICE, int(left))))
            if found is not None:
                return found[1] in (b"yes", "yes")
            if self.cancelled():
                return False
        return False

    def cancelled(self) -> bool:
        return bool(self.client.exists(cancel_key(self.job_id)))


class _Beat:
    """Keeps a job's "alive" key fresh from a thread of its own while the job runs."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"job-alive-{channel.job_id[:8]}", daemon=True)

    def run(self) -> None:
        while not self.stop.wait(BEAT_SECONDS):
            with contextlib.suppress(redis.RedisError):
                self.channel.alive()


# -- the deck a worker serves ------------------------------------------------------------------------

_decks: dict[Path, tuple[int, Deck]] = {}
_decks_lock = threading.Lock()


def deck_for(root: Path) -> Deck:
    """The worker's deck, opened once and kept (its tools keep assumed credentials between jobs);
    opened again when its opsdeck.toml changed (a fast-forward brought a new one)."""
    stamp = (root / "opsdeck.toml").stat().st_mtime_ns
    with _decks_lock:
        known = _decks.get(root)
        if known is None or known[0] != stamp:
            deck = Deck.open(root)
            if deck.config.notify.targets:  # the worker runs the change, so it tells the team of it
                deck.announcer = Notices(deck, on_failure=lambda line: print(f"worker: {line}", file=sys.stderr))
            known = (stamp, deck)
            _decks[root] = known
        return known[1]


def same_ledger(deck: Deck, spec: JobSpec, worker: str) -> None:
    """Bring the worker's clone level with the team's remote, then check it runs the caller's ledger: a
    read runs on exactly the caller's commit, a change on it or on what the team pushed after it."""
    if spec.head and deck.tools.git.head() == spec.head:
        return  # already on the caller's commit (a change syncs again under its own rules)
    ledger = latest(deck)
    if ledger.shared and ledger.offline:
        raise OpsdeckError(f"worker {worker}: the deck's remote {ledger.url} cannot be reached ({ledger.error})")
    if not spec.head:
        return
    git = deck.tools.git
    head = git.head()
    if head == spec.head:
        return
    try:
        _, behind = git.ahead_behind(spec.head)
    except ToolError:
        raise RefusedError(
            f"worker {worker} does not have the caller's commit {spec.head[:12]}: push it to the deck's remote first"
        ) from None
    if spec.mutating and behind == 0:
        return
    raise RefusedError(
        f"worker {worker} runs the deck at {head[:12]}, the caller at {spec.head[:12]}: "
        "pull or push so that both run the same ledger, then try again"
    )


def open_for_job(root: Path, spec: JobSpec, worker: str) -> Deck:
    deck = deck_for(root)
    if deck.name != spec.deck:
        raise RefusedError(f"worker {worker} serves the deck {deck.name!r}, not {spec.deck!r}")
    same_ledger(deck, spec, worker)
    deck = deck_for(root)
    if not spec.env:
        return deck  # a bake: on the build account, of no environment
    rel = str(deck.env(spec.env).path)
    if not spec.mutating and deck.tools.git.is_dirty(rel):  # a change checks its own pin files under its lock
        raise RefusedError(
            f"worker {worker}'s clone has uncommitted changes in {rel} (left by an operation that did not finish): "
            "it plans committed code only; look at them there, then commit or discard them"
        )
    return deck


async def _run(root: Path, spec: JobSpec, channel: Channel, worker: str) -> dict[str, Any]:
    deck = await asyncio.to_thread(open_for_job, root, spec, worker)
    rep = Reporter(spec.op, spec.env, channel.event)

    async def confirm(preview: Any) -> bool:
        """Ask the caller: a release's preview, or a nuke-and-rebuild's plan."""
        if isinstance(preview, Preview):
            await asyncio.to_thread(channel.send, "confirm", preview=preview_to_json(preview))
        else:
            await asyncio.to_thread(channel.send, "confirm", nuke=preview.to_json())
        return await asyncio.to_thread(channel.answer, CONFIRM_SECONDS)

    work = asyncio.ensure_future(run_job(deck, spec, rep, confirm))
    while True:
        done, _ = await asyncio.wait({work}, timeout=0.5)
        if done:
            return work.result()
        if await asyncio.to_thread(channel.cancelled):
            rep.log(f"{spec.label()}: cancelled by its caller", "warning")
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            raise OpsdeckError(f"{spec.label()} was cancelled by its caller (on worker {worker})")


def execute_job(
    data: dict[str, Any], *, worker: str, deck_root: Path, broker: str, attempt: int, may_retry: bool
) -> dict[str, Any]:
    """Run one job (in a pool thread of the worker) and stream how it goes; its JSON result."""
    from opsdeck.core.engine.celery_app import RetryableJobError  # lazy: Celery is heavy, loaded by a worker only

    client = redis.Redis.from_url(broker, socket_connect_timeout=5.0)
    job_id = str(data.get("id", "?")) if isinstance(data, dict) else "?"
    channel = Channel(client, job_id, worker)
    beat = _Beat(channel)
    token = locks.WORKER.set(worker)
    try:
        spec = JobSpec.from_json(data)
        if channel.cancelled():
            raise OpsdeckError(f"{spec.label()} was cancelled by its caller before it started")
        with contextlib.suppress(redis.RedisError):
            channel.alive()
            channel.send("started", worker=worker, host=socket.gethostname(), pid=os.getpid(), attempt=attempt)
        beat.thread.start()
        with _running_lock:
            _running[spec.id] = {"id": spec.id, "op": spec.op, "env": spec.env, "since": time.time()}
        result = asyncio.run(_run(deck_root, spec, channel, worker))
    except BaseException as exc:
        transient = isinstance(exc, CloudUnavailableError | ConnectionError | TimeoutError)
        if may_retry and transient:
            with contextlib.suppress(redis.RedisError):
                channel.send("retrying", error=one_line(exc), worker=worker)
            raise RetryableJobError(one_line(exc)) from None
        if isinstance(exc, OpsdeckError):
            error, kind, code = one_line(exc), type(exc).__name__, exc.exit_code
        else:
            traceback.print_exc(file=sys.stderr)
            error, kind, code = f"internal error on worker {worker}: {type(exc).__name__}: {one_line(exc)}", "", 1
        with contextlib.suppress(redis.RedisError):
            channel.send("done", ok=False, error=error, error_type=kind, exit_code=code, worker=worker)
        if not isinstance(exc, Exception):
            raise
        return {"ok": False, "error": error, "worker": worker}
    else:
        with contextlib.suppress(redis.RedisError):
            channel.send("done", ok=True, result=result, worker=worker)
        return {"ok": True, "result": result, "worker": worker}
    finally:
        locks.WORKER.reset(token)
        beat.stop.set()
        with _running_lock:
            _running.pop(job_id, None)
        with contextlib.suppress(redis.RedisError):
            client.delete(alive_key(job_id))
        client.close()


# -- starting a worker -------------------------------------------------------------------------------


def default_queues(deck: Deck) -> list[str]:
    """The queues of every account this machine's credentials reach (checked with STS, once per account)."""
    queues: list[str] = []
    for env in deck.config.env_names:
        queue = queue_of_account(account_of(deck, env))
        if queue in queues:
            continue
        try:
            verify_account(deck, env)
        except OpsdeckError:
            continue
        queues.append(queue)
    build = deck.config.build.account
    if build and queue_of_account(build) not in queues:  # bakes: the build account's own queue
        try:
            reached = deck.tools.build().caller_identity().get("account")
        except OpsdeckError:
            reached = None
        if reached == build:
            queues.append(queue_of_account(build))
    if not queues:
        raise OpsdeckError("this machine's credentials reach none of the deck's accounts: no queue to serve")
    return queues


class Registration:
    """The worker's entry in Redis (its queues, what it runs), refreshed while it lives, gone soon after."""

    def __init__(self, client: redis.Redis, name: str, info: dict[str, Any]) -> None:
        self.client, self.name, self.info = client, name, info
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="worker-registration", daemon=True)

    def write(self) -> None:
        with _running_lock:
            jobs = list(_running.values())
        body = json.dumps({**self.info, "jobs": jobs, "seen": time.time()})
        self.client.set(worker_key(self.name), body, ex=REGISTRY_TTL)

    def run(self) -> None:
        while not self.stop.wait(REGISTRY_SECONDS):
            with contextlib.suppress(redis.RedisError):
                self.write()

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(redis.RedisError):
            self.client.delete(worker_key(self.name))


def run_worker(deck: Deck, broker: str, queues: list[str], name: str, concurrency: int) -> int:
    """Serve ``queues`` until stopped (SIGTERM or ctrl-c finish the jobs that run, then stop)."""
    from opsdeck.core.engine.celery_app import make_app  # lazy: Celery is heavy, loaded by a worker only

    check_broker(broker)
    hostname = f"{name}@{socket.gethostname()}"
    app = make_app(broker, deck.root)
    client = redis.Redis.from_url(broker, socket_connect_timeout=5.0)
    info = {
        "name": hostname,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queues": queues,
        "deck": deck.name,
        "concurrency": concurrency,
        "started": time.time(),
    }
    registration = Registration(client, hostname, info)
    registration.write()
    registration.thread.start()
    print(
        f"opsdeck worker {hostname}: serving {', '.join(queues)} for the deck {deck.name}", file=sys.stderr, flush=True
    )
    argv = [
        "worker",
        f"--hostname={hostname}",
        f"--queues={','.join(queues)}",
        f"--concurrency={concurrency}",
        "--pool=threads",
        "--loglevel=WARNING",
        "--without-gossip",
        "--without-mingle",
    ]
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    finally:
        registration.close()
    return 0
