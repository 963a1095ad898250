"""A worker that goes away, as the caller's side of the engine (core/engine/dispatch.py) sees it, against
a real redis-server with the worker played in the test (tests/unit/broker.py): a change is run at most
once, a read is sent again (and given up after its resends), the stream is read once more before a
worker counts as lost, and a job Celery retries is followed to its next attempt."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opsdeck.core.engine import dispatch
from opsdeck.core.engine.dispatch import Engine, EngineError, WorkerLostError
from opsdeck.core.engine.jobs import JobSpec, alive_key
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import LogLine, Reporter
from tests.unit.broker import PlayedWorker, RedisServer, Seen, alongside, redis_server, wait_for
from tests.unit.estate import make_estate

DEV, STAGING = "opsdeck.111111111111", "opsdeck.222222222222"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as found:
        yield found


@pytest.fixture(scope="module")
def deck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deck]:
    found, _ = make_estate(tmp_path_factory.mktemp("lost") / "shop")
    yield found
    found.tools.git.close()  # type: ignore[attr-defined]


@pytest.fixture()
def engine(deck: Deck, server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    with server.client() as client:
        client.flushall()
    monkeypatch.setattr(dispatch, "READ_BLOCK_MS", 50)  # a lost worker is noticed after two empty reads
    made = Engine(deck, server.url, wait=2.0)
    yield made
    made.close()


@pytest.fixture()
def w1(server: RedisServer) -> Iterator[PlayedWorker]:
    played = PlayedWorker(server, "w1@box", [DEV, STAGING]).register()
    yield played
    played.close()


def _reads(server: RedisServer) -> int:
    """How many stream reads the broker has answered (the caller's XREADs)."""
    with server.client() as client:
        return int(client.info("commandstats").get("cmdstat_xread", {}).get("calls", 0))


@pytest.mark.parametrize(
    ("op", "env", "args", "left"),
    [
        ("promote", "staging", {"src": "dev"}, "staging is left as the worker left it: check it with `opsdeck status`, "
         "then release it with `opsdeck unlock staging`"),
        ("bake", "", {"services": ["web"]}, "Packer's builder instance or a half-made image may be left in the build "
         "account: `opsdeck orphans` finds them"),
    ],
)  # fmt: skip
async def test_a_change_whose_worker_is_lost_is_never_sent_again(
    engine: Engine, deck: Deck, w1: PlayedWorker, op: str, env: str, args: dict[str, object], left: str
) -> None:
    spec = JobSpec.new(deck, op, env, args)

    def play() -> None:
        job = w1.take()
        assert job.task == "opsdeck.mutating"
        w1.start(job, alive_ms=200)  # then nothing: the key expires as a dead worker's does

    with pytest.raises(WorkerLostError) as caught:
        await alongside(engine.run(spec, Reporter(op, env)), play)
    assert str(caught.value) == (
        f"worker w1@box was lost during {spec.label()} (job {spec.id[:12]}): nothing runs it again; {left}"
    )
    assert w1.queued() == 0


async def test_a_read_whose_worker_is_lost_is_sent_again_to_any_worker_of_its_queue(
    engine: Engine, deck: Deck, w1: PlayedWorker, server: RedisServer
) -> None:
    w2 = PlayedWorker(server, "w2@box", [DEV]).register()
    spec = JobSpec.new(deck, "drift", "dev", {}, head="abc")
    seen = Seen()

    def play() -> tuple[JobSpec, JobSpec]:
        first = w1.take()
        w1.start(first, alive_ms=200)
        second = w2.take()
        w2.start(second)
        w2.finish(second, {"drift": "none"})
        return first.spec, second.spec

    try:
        outcome = await alongside(engine.run(spec, Reporter("drift", "dev", seen)), play)
    finally:
        w2.close()
    assert (outcome.worker, outcome.attempts, outcome.workers) == ("w2@box", 2, ("w1@box", "w2@box"))
    assert outcome.spec == spec and outcome.result == {"drift": "none"}
    assert seen.lines("warning") == ["worker w1@box was lost during drift of dev: sending it again"]


async def test_a_read_that_loses_its_worker_time_after_time_gives_up(
    engine: Engine, deck: Deck, w1: PlayedWorker
) -> None:
    def play() -> list[str]:
        ids = []
        for _ in range(dispatch.READ_ONLY_RESENDS + 1):
            job = w1.take()
            w1.start(job, alive_ms=100)
            ids.append(job.spec.id)
        return ids

    with pytest.raises(EngineError, match=r"^plan of dev lost its worker 3 times \(last w1@box\); giving up$"):
        await alongside(engine.run(JobSpec.new(deck, "plan", "dev"), Reporter("plan", "dev")), play)
    assert w1.queued() == 0


async def test_the_stream_is_read_once_more_before_a_worker_counts_as_lost(
    engine: Engine, deck: Deck, w1: PlayedWorker, server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker drops its alive key right after its "done": a caller that found the key gone between
    two reads must read once more, and finds the "done" there. Each step waits for the caller to have
    read what came before (its sink saw it) and to wait in its next read (the broker counts it)."""
    monkeypatch.setattr(dispatch, "READ_BLOCK_MS", 10_000)  # nothing but the worker's news wakes the caller
    seen = Seen()

    def said(text: str) -> None:
        seen.wait(lambda e: isinstance(e, LogLine) and e.text == text, f"the caller to read {text!r}")
        wait_for(lambda: server.blocked() == 1, f"the caller to wait in its next read after {text!r}")

    def play() -> None:
        job = w1.take()
        w1.start(job)
        there = Reporter("promote", "staging", job.channel.event)
        there.log("one")
        said("one")  # read with the alive key present
        w1.client.delete(alive_key(job.spec.id))
        there.log("two")
        said("two")  # read, then the key found gone once
        w1.finish(job, {"commit": "abc"})

    spec = JobSpec.new(deck, "promote", "staging", {"src": "dev"})
    outcome = await alongside(engine.run(spec, Reporter("promote", "staging", seen)), play)
    assert outcome.result == {"commit": "abc"} and outcome.attempts == 1


async def test_a_job_celery_retries_is_followed_to_its_next_attempt(
    engine: Engine, deck: Deck, w1: PlayedWorker, server: RedisServer
) -> None:
    seen = Seen()

    def play() -> None:
        job = w1.take()
        w1.start(job)
        job.channel.send("retrying", error="the local cloud does not answer", worker="w1@box")
        w1.client.delete(alive_key(job.spec.id))  # back in its queue: no worker holds it, none is lost
        seen.wait(lambda e: isinstance(e, LogLine) and "retrying" in e.text, "the caller to read the retry")
        reads = _reads(server)
        wait_for(lambda: _reads(server) >= reads + 3, "three more reads without an alive key")
        w1.start(job, attempt=1)
        w1.finish(job, {"answer": 1})

    outcome = await alongside(engine.run(JobSpec.new(deck, "plan", "dev"), Reporter("plan", "dev", seen)), play)
    assert (outcome.attempts, outcome.workers, outcome.result) == (1, ("w1@box", "w1@box"), {"answer": 1})
    assert seen.lines() == [
        "plan of dev failed on w1@box (the local cloud does not answer): retrying",
        "plan of dev: attempt 2 on w1@box",
    ]
