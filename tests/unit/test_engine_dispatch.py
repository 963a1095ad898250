"""The caller's side of the engine (core/engine/dispatch.py) against a real redis-server, with the worker
played in the test (tests/unit/broker.py): a job sent to its account's queue and followed, its events
labelled with the worker, a confirmation asked here and answered there, cancel (taken or still queued),
the worker's error as the same error here, waiting for a worker, the workers' registrations, and the
broker going away. A worker lost on the way: test_engine_lost.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdeck.core.engine import dispatch
from opsdeck.core.engine.dispatch import Engine, EngineError, WorkerInfo, live_workers, reason_of
from opsdeck.core.engine.jobs import KEY_TTL, JobSpec, answer_key, cancel_key, preview_to_json, worker_key
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import LogLine, Progress, Reporter
from opsdeck.core.model import ImageRef, PlanResult, PlanSummary
from opsdeck.core.safety.confirm import Preview, ServiceChange
from opsdeck.errors import CloudUnavailableError, LockedError, OpsdeckError, RefusedError, ToolError
from tests.unit.broker import PlayedWorker, RedisServer, Seen, alongside, redis_server, wait_for
from tests.unit.estate import make_estate

DEV, STAGING, PROD = "opsdeck.111111111111", "opsdeck.222222222222", "opsdeck.333333333333"
PREVIEW = Preview(
    "promote",
    "staging",
    "confirm",
    (ServiceChange("web", ImageRef("ami-0", "1.0.0"), ImageRef("ami-1", "1.0.1")),),
    PlanResult("staging", PlanSummary(2, 0, 2), (), created_at=5.0, key="k", pins={"web": "ami-1"}),
    "ship it",
)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as found:
        yield found


@pytest.fixture(scope="module")
def deck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deck]:
    found, _ = make_estate(tmp_path_factory.mktemp("dispatch") / "shop")
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


async def test_a_job_goes_to_its_accounts_queue_and_its_events_come_back_labelled(
    engine: Engine, deck: Deck, w1: PlayedWorker
) -> None:
    spec = JobSpec.new(deck, "plan", "dev", {"reuse": False}, head="abc")
    taken = []
    seen = Seen()

    def play() -> None:
        job = w1.take()
        taken.append(job)
        w1.start(job)
        there = Reporter("plan", "dev", job.channel.event)
        there.progress("planning", 1, 2)
        there.log("a note from the worker", "notice")
        w1.finish(job, {"answer": 42})

    outcome = await alongside(engine.run(spec, Reporter("plan", "dev", seen)), play)
    assert taken[0].spec == spec and taken[0].task == "opsdeck.read_only" and w1.queued() == 0
    assert (outcome.worker, outcome.result, outcome.attempts, outcome.workers) == (
        "w1@box",
        {"answer": 42},
        1,
        ("w1@box",),
    )
    assert [(e.message, e.done, e.total) for e in seen.events if isinstance(e, Progress)] == [("planning", 1, 2)]
    assert seen.lines("notice") == ["a note from the worker"]
    assert {e.worker for e in seen.events} == {"w1@box"}


@pytest.mark.parametrize("answer", [True, False])
async def test_a_confirmation_is_asked_here_and_the_answer_reaches_the_worker(
    engine: Engine, deck: Deck, w1: PlayedWorker, answer: bool
) -> None:
    asked: list[object] = []

    async def confirm(preview: object) -> bool:
        asked.append(preview)
        return answer

    def play() -> bool:
        job = w1.take()
        w1.start(job)
        job.channel.send("confirm", preview=preview_to_json(PREVIEW))
        heard = job.channel.answer(5)
        w1.finish(job, {"confirmed": heard})
        return heard

    spec = JobSpec.new(deck, "promote", "staging", {"src": "dev"})
    outcome = await alongside(engine.run(spec, Reporter("promote", "staging"), confirm), play)
    assert asked == [PREVIEW] and outcome.result == {"confirmed": answer}


async def test_a_confirmation_that_fails_here_is_a_no_there(
    engine: Engine, deck: Deck, w1: PlayedWorker, server: RedisServer
) -> None:
    from opsdeck.core.sandbox.nuke import NukePlan

    plan = NukePlan("sandbox", "111111111111", ("module.web.aws_autoscaling_group.this",), (), {"web": "ami-1"})
    jobs = []

    async def confirm(preview: object) -> bool:
        assert isinstance(preview, NukePlan) and preview.to_json() == plan.to_json()
        raise OpsdeckError("the terminal went away")

    def play() -> None:
        job = w1.take()
        jobs.append(job)
        w1.start(job)
        job.channel.send("confirm", nuke=plan.to_json())
        wait_for(lambda: w1.client.exists(answer_key(job.spec.id)), "the caller's answer")

    spec = JobSpec.new(deck, "nuke", "sandbox", {"confirm": True})
    with pytest.raises(OpsdeckError, match="the terminal went away"):
        await alongside(engine.run(spec, Reporter("nuke", "sandbox"), confirm), play)
    with server.client() as client:  # an answer no worker reads expires with the job's other keys
        assert 0 < client.ttl(answer_key(spec.id)) <= KEY_TTL
    assert jobs[0].channel.answer(5) is False


async def test_cancelling_here_cancels_the_job_on_its_worker(
    engine: Engine, deck: Deck, w1: PlayedWorker, server: RedisServer
) -> None:
    spec = JobSpec.new(deck, "promote", "staging", {"src": "dev"})
    asked = asyncio.Event()

    async def confirm(preview: object) -> bool:
        asked.set()
        await asyncio.Event().wait()  # a person reading the plan, until the caller is cancelled
        return True

    def play() -> tuple[bool, bool]:
        job = w1.take()
        w1.start(job)
        job.channel.send("confirm", preview=preview_to_json(PREVIEW))
        heard = job.channel.answer(5)
        wait_for(job.channel.cancelled, "the cancel key")
        return heard, job.channel.cancelled()

    following = asyncio.ensure_future(engine.run(spec, Reporter("promote", "staging"), confirm))
    played = asyncio.ensure_future(asyncio.to_thread(play))
    await asyncio.wait_for(asked.wait(), 10)
    following.cancel()
    with pytest.raises(asyncio.CancelledError):
        await following
    assert await asyncio.wait_for(played, 10) == (False, True)
    with server.client() as client:  # the job's keys expire with it
        assert 0 < client.ttl(cancel_key(spec.id)) <= KEY_TTL and 0 < client.ttl(answer_key(spec.id)) <= KEY_TTL


async def test_a_job_cancelled_while_still_queued_is_cancelled_when_a_worker_takes_it(
    engine: Engine, deck: Deck, w1: PlayedWorker
) -> None:
    following = asyncio.ensure_future(engine.run(JobSpec.new(deck, "plan", "dev"), Reporter("plan", "dev")))
    await asyncio.to_thread(wait_for, lambda: w1.queued() == 1, "the job in its queue")
    following.cancel()
    with pytest.raises(asyncio.CancelledError):
        await following
    job = await asyncio.to_thread(w1.take)
    assert job.channel.cancelled()  # execute_job refuses to start it


@pytest.mark.parametrize(
    "error",
    [
        LockedError("staging is locked by alice@laptop (promote, pid 7)"),
        RefusedError("staging promotes from dev, not from sandbox"),
        CloudUnavailableError("the local cloud at http://127.0.0.1:1 does not answer"),
        ToolError("apply", "Error acquiring the state lock"),
        OpsdeckError("something else"),
    ],
)
async def test_the_workers_error_is_the_same_error_here(
    engine: Engine, deck: Deck, w1: PlayedWorker, error: OpsdeckError
) -> None:
    def play() -> None:
        job = w1.take()
        w1.start(job)
        w1.fail(job, error)

    with pytest.raises(OpsdeckError) as caught:
        await alongside(engine.run(JobSpec.new(deck, "plan", "dev"), Reporter("plan", "dev")), play)
    assert type(caught.value) is type(error) and str(caught.value) == str(error)
    assert caught.value.exit_code == error.exit_code


async def test_a_job_waits_for_a_worker_of_its_own_deck_and_account_then_gives_up(
    engine: Engine, deck: Deck, server: RedisServer
) -> None:
    others = [PlayedWorker(server, "bank@box", [PROD], deck="bank"), PlayedWorker(server, "dev@box", [DEV])]
    for other in others:
        other.register()
    engine.wait = 0.2
    seen = Seen()
    try:
        with pytest.raises(EngineError) as caught:
            await engine.run(JobSpec.new(deck, "plan", "prod"), Reporter("plan", "prod", seen))
    finally:
        for other in others:
            other.close()
    assert str(caught.value) == (
        f"no worker serves account 333333333333 (queue {PROD}) after 0s: plan of prod was not run; "
        f"start one with `opsdeck worker --queue {PROD}`"
    )
    assert seen.lines("notice") == [f"waiting for a worker for account 333333333333 (queue {PROD}) to run plan of prod"]
    with server.client() as client:
        assert client.llen(PROD) == 0  # nothing was sent


async def test_a_worker_that_comes_while_a_job_waits_takes_it(engine: Engine, deck: Deck, server: RedisServer) -> None:
    late = PlayedWorker(server, "late@box", [PROD])
    seen = Seen()

    def play() -> None:
        seen.wait(lambda e: isinstance(e, LogLine) and "waiting for a worker" in e.text, "the caller to wait")
        late.register()
        job = late.take()
        late.start(job)
        late.finish(job, {})

    try:
        outcome = await alongside(engine.run(JobSpec.new(deck, "plan", "prod"), Reporter("plan", "prod", seen)), play)
    finally:
        late.close()
    assert outcome.worker == "late@box"


async def test_a_sent_job_that_no_worker_is_left_to_start_is_given_up(
    engine: Engine, deck: Deck, w1: PlayedWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "START_SECONDS", 0.2)

    def play() -> None:
        wait_for(lambda: w1.queued() == 1, "the job in its queue")
        w1.leave()  # the only worker of the account stops before it takes the job

    with pytest.raises(EngineError, match=r"^plan of dev was sent, but no worker for account 111111111111 is left"):
        await alongside(engine.run(JobSpec.new(deck, "plan", "dev"), Reporter("plan", "dev")), play)


async def test_the_broker_going_away_is_one_line_naming_it(deck: Deck, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "READ_BLOCK_MS", 50)
    with redis_server() as own:
        worker = PlayedWorker(own, "w1@box", [DEV]).register()
        engine = Engine(deck, own.url, wait=2.0)

        def play() -> None:
            job = worker.take()
            worker.start(job)
            own.stop()

        try:
            with pytest.raises(EngineError) as caught:
                await alongside(engine.run(JobSpec.new(deck, "plan", "dev"), Reporter("plan", "dev")), play)
            where = f"127.0.0.1:{own.port}"
            assert str(caught.value).startswith(f"the job broker at {where} went away during plan of dev (")
            assert "\n" not in str(caught.value)
            with pytest.raises(EngineError, match=f"^the job broker at {where} went away during plan of dev"):
                await engine.run(JobSpec.new(deck, "plan", "dev"), Reporter("plan", "dev"))
            with pytest.raises(EngineError, match=rf"^the job broker at {where} does not answer \(.+\)$"):
                engine.check()
        finally:
            worker.close()
            engine.close()


def test_live_workers_are_the_fresh_registrations_of_one_deck(
    engine: Engine, server: RedisServer, tmp_path: Path
) -> None:
    played = [
        PlayedWorker(server, "w2@b", [DEV]),
        PlayedWorker(server, "w1@a", [DEV, STAGING]),
        PlayedWorker(server, "x@c", [DEV], deck="bank"),
    ]
    for each in played:
        each.register()
    with server.client() as client:
        client.set(worker_key("broken"), "not json")
        client.set(worker_key("gone"), json.dumps({"name": "gone", "deck": "shop", "queues": [DEV]}), px=100)
        wait_for(lambda: not client.exists(worker_key("gone")), "the registration that expires")
        assert [w.name for w in live_workers(client, "shop")] == ["w1@a", "w2@b"]
        assert [w.name for w in live_workers(client)] == ["w1@a", "w2@b", "x@c"]
    assert [w.name for w in engine.serving(STAGING)] == ["w1@a"] and engine.serving(PROD) == []
    info = engine.workers()[0]
    assert WorkerInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
    for each in played:
        each.close()
    assert engine.workers() == []  # a worker that stops takes its registration with it


def test_a_redis_error_reads_as_its_last_sentence() -> None:
    assert (
        reason_of(ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")) == "Connection refused"
    )
    assert reason_of(TimeoutError()) == "TimeoutError"
