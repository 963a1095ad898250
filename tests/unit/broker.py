"""The engine's unit tests' broker and worker: a real redis-server on a free 127.0.0.1 port, and a worker
played by the test. The played worker registers itself with the worker's own Registration, takes a job
from its queue as Celery's Redis transport delivers it (a JSON message on a list named after the queue,
its body base64 JSON of the task's arguments), and answers through the worker's own Channel: so both
ends of every key and stream are the engine's code, only the choice of what the worker says is the test's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from opsdeck.core.engine.jobs import JobSpec, alive_key
from opsdeck.core.engine.packages import engine_packages
from opsdeck.core.engine.worker import Channel, Registration, execute_job
from opsdeck.core.events import Event, LogLine
from opsdeck.errors import OpsdeckError

with engine_packages():
    import redis

T = TypeVar("T")


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.01)


class RedisServer:
    """One redis-server on 127.0.0.1 with nothing saved to disk."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2.0, socket_timeout=10.0)

    def start(self) -> RedisServer:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answers() -> bool:
            with contextlib.suppress(redis.RedisError), self.client() as client:
                return bool(client.ping())
            return False

        wait_for(answers, f"redis-server on port {self.port}", timeout=10.0)
        return self

    def blocked(self) -> int:
        """How many clients wait in a blocking read (the caller following a job, in XREAD)."""
        with self.client() as client:
            return int(client.info("clients")["blocked_clients"])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    if not any(os.access(os.path.join(d, "redis-server"), os.X_OK) for d in os.environ["PATH"].split(os.pathsep)):
        pytest.fail("redis-server is not on PATH; scripts/bootstrap.sh installs it")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Taken:
    """A job as the played worker took it from its queue."""

    spec: JobSpec
    task: str  # the Celery task it was sent as (read-only or mutating)
    channel: Channel
    data: dict[str, Any]  # the spec as sent


class PlayedWorker:
    """A worker played by the test (see the module's docstring)."""

    def __init__(self, server: RedisServer, name: str, queues: list[str], deck: str = "shop") -> None:
        self.name, self.queues, self.url = name, queues, server.url
        self.client = server.client()
        info = {"name": name, "host": "test", "pid": os.getpid(), "queues": queues, "deck": deck}
        self.registration = Registration(self.client, name, {**info, "concurrency": 1, "started": time.time()})

    def register(self) -> PlayedWorker:
        self.registration.write()
        return self

    def leave(self) -> None:
        self.registration.close()

    def take(self, timeout: int = 5) -> Taken:
        found = self.client.brpop(self.queues, timeout=timeout)
        assert found is not None, f"no job reached {self.queues} within {timeout}s"
        message = json.loads(found[1])
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        spec = JobSpec.from_json(args[0])
        return Taken(spec, str(message["headers"]["task"]), Channel(self.client, spec.id, self.name), args[0])

    def run(self, job: Taken, root: Path) -> dict[str, Any]:
        """Run the job as a worker does once Celery handed it over (the worker's own execute_job), on the
        clone at ``root`` (opened by the test beforehand: worker._decks)."""
        return execute_job(job.data, worker=self.name, deck_root=root, broker=self.url, attempt=0, may_retry=False)

    def start(self, job: Taken, *, attempt: int = 0, alive_ms: int = 5000) -> None:
        """What execute_job does first: the alive key (gone after ``alive_ms`` unless refreshed), "started"."""
        self.client.set(alive_key(job.spec.id), self.name, px=alive_ms)
        job.channel.send("started", worker=self.name, host="test", pid=os.getpid(), attempt=attempt)

    def finish(self, job: Taken, result: dict[str, Any]) -> None:
        """What execute_job does last: "done", then the alive key dropped."""
        job.channel.send("done", ok=True, result=result, worker=self.name)
        self.client.delete(alive_key(job.spec.id))

    def fail(self, job: Taken, exc: OpsdeckError) -> None:
        job.channel.send(
            "done", ok=False, error=str(exc), error_type=type(exc).__name__, exit_code=exc.exit_code, worker=self.name
        )
        self.client.delete(alive_key(job.spec.id))

    def queued(self) -> int:
        """Jobs waiting in this worker's queues."""
        return sum(int(self.client.llen(queue)) for queue in self.queues)

    def close(self) -> None:
        self.leave()
        self.client.close()


async def alongside(caller: Awaitable[T], worker: Callable[[], object], timeout: float = 20.0) -> T:
    """Run the caller's side here and the played worker's side in a thread; the caller's result (or its
    error) once both ended. A worker side that fails fails the test, naming its error, and the caller
    is cancelled rather than left waiting."""
    played = asyncio.ensure_future(asyncio.to_thread(worker))
    following = asyncio.ensure_future(caller)
    try:
        async with asyncio.timeout(timeout):
            done, _ = await asyncio.wait({played, following}, return_when=asyncio.FIRST_EXCEPTION)
            if played in done:
                await played  # the worker side's failure, as it was raised
            await played
            return await following
    finally:
        following.cancel()
        with contextlib.suppress(BaseException):
            await following


class Seen:
    """A Reporter's sink that keeps every event, and lets the worker's thread wait for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def lines(self, level: str | None = None) -> list[str]:
        return [e.text for e in self.events if isinstance(e, LogLine) and (level is None or e.level == level)]

    def wait(self, predicate: Callable[[Event], bool], what: str) -> None:
        wait_for(lambda: any(predicate(e) for e in list(self.events)), what)
