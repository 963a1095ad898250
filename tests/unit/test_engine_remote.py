"""Refresh and releases on workers (core/engine/remote.py) against a real redis-server: the caller's
clone and a worker's clone of one team remote on the fake cloud, the worker's side run by the worker's
own execute_job (tests/unit/broker.py) or played where the test chooses what it says. A plan shipped
back becomes this deck's saved plan, a drift report is stored here, a fresh plan sends no job, code a
worker cannot see is planned here, a refresh leaves a busy environment alone and keeps one
environment's failure in its row, a release refuses a ledger the worker cannot see and is followed and
audited here (a lost worker as interrupted)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opsdeck.core.drift import store as drift_store
from opsdeck.core.engine import dispatch, registry, runner
from opsdeck.core.engine import worker as worker_side
from opsdeck.core.engine.dispatch import Engine, EngineError, WorkerLostError
from opsdeck.core.engine.operation import PlanArgs
from opsdeck.core.engine.planfiles import ShippedPlan
from opsdeck.core.engine.remote import (
    drift_on_worker,
    nuke_on_worker,
    plan_env_on_workers,
    plan_on_worker,
    refresh_on_workers,
    release_on_worker,
)
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.plans import planning
from opsdeck.core.release.bake import bake
from opsdeck.core.safety import audit, locks
from opsdeck.core.safety.confirm import confirmed
from opsdeck.errors import OpsdeckError, RefusedError
from tests.fakes import World, fake_tools
from tests.unit.broker import PlayedWorker, RedisServer, Seen, alongside, redis_server
from tests.unit.estate import git, make_estate

DEV, STAGING = "opsdeck.111111111111", "opsdeck.222222222222"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as found:
        yield found


@dataclass
class Shop:
    deck: Deck  # the caller's clone
    clone: Deck  # the worker's clone of the same remote, on the same fake cloud
    world: World
    engine: Engine
    worker: PlayedWorker

    def serve(self, jobs: int) -> list[dict[str, Any]]:
        """The worker's side: take ``jobs`` jobs and run each on the worker's clone."""
        return [self.worker.run(self.worker.take(), self.clone.root) for _ in range(jobs)]


@pytest.fixture()
def shop(tmp_path: Path, server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    with server.client() as client:
        client.flushall()
    monkeypatch.setattr(dispatch, "READ_BLOCK_MS", 50)
    world = World()
    deck, _ = make_estate(tmp_path / "caller", world)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    git(deck.root, "remote", "add", "origin", str(remote))
    git(deck.root, "push", "-q", "--set-upstream", "origin", "main")
    subprocess.run(["git", "clone", "-q", str(remote), str(tmp_path / "worker")], check=True)
    for key, value in (("user.name", "Worker"), ("user.email", "worker@shop.example")):
        git(tmp_path / "worker", "config", key, value)
    clone = Deck.open(tmp_path / "worker", tools=fake_tools(world))
    worker_side._decks[clone.root] = ((clone.root / "opsdeck.toml").stat().st_mtime_ns, clone)
    engine = Engine(deck, server.url, wait=2.0)
    played = PlayedWorker(server, "w1@box", [DEV, STAGING]).register()
    yield Shop(deck, clone, world, engine, played)
    played.close()
    engine.close()
    worker_side._decks.pop(clone.root, None)
    for each in (deck, clone):
        each.tools.git.close()  # type: ignore[attr-defined]


async def test_a_plan_on_a_worker_becomes_this_decks_saved_plan(shop: Shop) -> None:
    head = shop.deck.tools.git.head()
    plan, outcome = await alongside(
        plan_on_worker(shop.engine, shop.deck, "dev", Reporter("plan", "dev"), reuse=False, head=head),
        lambda: shop.serve(1),
    )
    assert outcome.worker == "w1@box" and outcome.spec.head == head and outcome.spec.args == {"reuse": False}
    assert planning.stored_plan(shop.deck, "dev") == plan
    assert Path(plan.planfile).read_bytes() == Path(outcome.result["plan"]["planfile"]).read_bytes()
    assert not Path(plan.planfile).is_relative_to(shop.clone.root)  # this deck's own copy
    assert plan.key == planning.inputs_key(shop.deck, "dev")  # keyed as this deck saw what the plan depends on
    shipped = ShippedPlan.from_json(outcome.result["planfile"])
    assert (shipped.bucket, shipped.key) not in shop.world.objects  # fetched, then gone from the bucket


async def test_a_drift_check_on_a_worker_is_stored_here(shop: Shop) -> None:
    report, outcome = await alongside(
        drift_on_worker(shop.engine, shop.deck, "dev", Reporter("drift", "dev")), lambda: shop.serve(1)
    )
    assert report.name == "dev" and report.status == "clean" and outcome.worker == "w1@box"
    assert drift_store.load(shop.deck, "dev") == report


@pytest.mark.parametrize(
    ("op", "result", "message"),
    [
        ("plan", {"plan": {}}, "plan of dev on w1@box: the worker's result has no plan"),
        ("drift", {"drift": {"status": "clean"}}, "drift check of dev on w1@box: the worker's result has no report"),
    ],
)
async def test_a_result_without_its_plan_or_report_is_one_line(
    shop: Shop, op: str, result: dict[str, Any], message: str
) -> None:
    def play() -> None:
        job = shop.worker.take()
        shop.worker.start(job)
        shop.worker.finish(job, result)

    call = plan_on_worker if op == "plan" else drift_on_worker
    with pytest.raises(OpsdeckError) as caught:
        await alongside(call(shop.engine, shop.deck, "dev", Reporter(op, "dev")), play)
    assert str(caught.value) == message
    assert planning.stored_plan(shop.deck, "dev") is None and drift_store.load(shop.deck, "dev") is None


async def test_a_fresh_plan_sends_no_job_and_code_a_worker_cannot_see_is_planned_here(shop: Shop) -> None:
    rep = Reporter("plan", "dev")
    plan, worker = await alongside(plan_env_on_workers(shop.deck, shop.engine, "dev", rep), lambda: shop.serve(1))
    assert worker == "w1@box"
    again, worker = await plan_env_on_workers(shop.deck, shop.engine, "dev", rep)  # no worker side at all
    assert worker is None and again == plan and shop.worker.queued() == 0

    # Whether files a worker cannot see keep it here is the runner's one choice (runner.sends).
    pins = shop.deck.root / "envs" / "dev" / "images.auto.tfvars.json"
    committed = pins.read_text()
    pins.write_text(json.dumps(json.loads(committed)) + "\n")  # the same pins, uncommitted
    seen = Seen()
    try:
        what = PlanArgs("dev", reuse=False)
        ran = await runner.run(shop.deck, registry.PLAN, what, Reporter("plan", "dev", seen), engine=shop.engine)
    finally:
        pins.write_text(committed)
    assert not ran.sent and ran.worker is None and shop.worker.queued() == 0
    assert ran.result.environment == "dev"
    assert seen.lines("notice") == ["dev has uncommitted changes a worker cannot see: planned here"]


async def test_a_refresh_on_workers_leaves_a_busy_environment_alone(shop: Shop) -> None:
    seen = Seen()
    with locks.env_lock(shop.deck, "sandbox", "promote"):  # an operation runs in sandbox meanwhile
        result = await alongside(
            refresh_on_workers(
                shop.deck,
                shop.engine,
                Reporter("refresh", None, seen),
                envs=["sandbox", "dev", "staging"],
                drift_envs=["dev", "sandbox"],
                reuse=False,
            ),
            lambda: shop.serve(3),  # plan dev, plan staging, drift dev
        )
    assert set(result.plans) == {"dev", "staging"} and set(result.drift) == {"dev"}
    assert result.workers == {"dev": "w1@box", "staging": "w1@box"} and result.errors == {}
    assert result.skipped == {"sandbox": "promote"}
    assert sorted(seen.lines("notice")) == [
        "sandbox: drift check skipped, promote is running",
        "sandbox: plan skipped, promote is running",
    ]
    assert planning.stored_plan(shop.deck, "staging") == result.plans["staging"]
    assert drift_store.load(shop.deck, "dev") == result.drift["dev"]


async def test_an_environment_that_fails_on_its_worker_is_an_error_of_its_row_only(shop: Shop) -> None:
    def play() -> None:
        for _ in range(2):
            job = shop.worker.take()
            if job.spec.env == "staging":
                shop.worker.start(job)
                shop.worker.fail(job, RefusedError("worker w1@box runs the deck at abc, the caller at def"))
            else:
                shop.worker.run(job, shop.clone.root)

    refresh = refresh_on_workers(
        shop.deck, shop.engine, Reporter("refresh"), envs=["dev", "staging"], with_drift=False, reuse=False
    )
    result = await alongside(refresh, play)
    assert result.errors == {"staging": "worker w1@box runs the deck at abc, the caller at def"}
    assert set(result.plans) == {"dev"}


async def test_an_account_no_worker_serves_fails_the_whole_refresh(shop: Shop) -> None:
    shop.engine.wait = 0.1
    with pytest.raises(EngineError, match=r"^no worker serves account 333333333333 "):
        await refresh_on_workers(shop.deck, shop.engine, Reporter("refresh"), envs=["dev", "prod"], with_drift=False)


async def test_a_release_runs_on_a_worker_and_this_clone_follows_its_commit(shop: Shop) -> None:
    (web,) = await bake(shop.deck, Reporter("bake"), services=["web"])
    args = {"src": web.id, "services": ["web"], "reason": "unit"}
    outcome = await alongside(
        release_on_worker(shop.deck, shop.engine, "promote", "dev", args, Reporter("promote", "dev"), confirmed),
        lambda: shop.serve(1),
    )
    commit = outcome.result["commit"]
    assert outcome.spec.task == "opsdeck.mutating" and len(commit) == 40
    assert shop.deck.tools.git.head() == commit == shop.clone.tools.git.head()  # pushed there, followed here
    pins = json.loads((shop.deck.root / "envs" / "dev" / "images.auto.tfvars.json").read_text())["images"]
    assert pins["web"] == web.id
    record = audit.read(shop.deck)[-1]
    assert (record["action"], record["environment"], record["result"], record["commit"]) == (
        "promote",
        "dev",
        "ok",
        commit,
    )
    assert record["engine"]["job"] == outcome.spec.id and record["engine"]["queue"] == DEV
    assert record["engine"]["worker"] == "w1@box" and record["engine"]["seconds"] > 0


async def test_a_release_refuses_a_ledger_its_worker_cannot_see(shop: Shop) -> None:
    rep = Reporter("promote", "dev")
    git(shop.deck.root, "commit", "-q", "--allow-empty", "-m", "not pushed yet")
    with pytest.raises(RefusedError, match=r"^the deck has 1 commits origin/main lacks: push them first"):
        await release_on_worker(shop.deck, shop.engine, "promote", "dev", {"src": "sandbox"}, rep)
    git(shop.deck.root, "remote", "remove", "origin")
    with pytest.raises(RefusedError, match=r"^the deck has no git remote: a worker's clone cannot share its ledger"):
        await release_on_worker(shop.deck, shop.engine, "promote", "dev", {"src": "sandbox"}, rep)
    assert shop.worker.queued() == 0


async def test_a_release_whose_worker_is_lost_is_audited_here_as_interrupted(shop: Shop) -> None:
    def play() -> None:
        job = shop.worker.take()
        shop.worker.start(job, alive_ms=200)  # and then it is gone

    release = release_on_worker(shop.deck, shop.engine, "rollback", "staging", {}, Reporter("rollback", "staging"))
    with pytest.raises(WorkerLostError) as caught:
        await alongside(release, play)
    record = audit.read(shop.deck)[-1]
    assert (record["action"], record["environment"], record["result"]) == ("rollback", "staging", "interrupted")
    assert record["error"] == str(caught.value) and set(record["engine"]) == {"job", "queue"}
    assert shop.worker.queued() == 0


@pytest.mark.parametrize("asks", [True, False])
async def test_a_nuke_on_a_worker_says_whether_to_ask_and_is_audited_here(shop: Shop, asks: bool) -> None:
    taken: list[dict[str, Any]] = []

    def play() -> None:
        job = shop.worker.take()
        taken.append(job.spec.args)
        shop.worker.start(job)
        if asks:
            shop.worker.finish(job, {"nuke": {"env": "sandbox"}})
        else:
            shop.worker.fail(job, RefusedError("sandbox is locked by alice"))

    nuke = nuke_on_worker(shop.deck, shop.engine, "sandbox", Reporter("nuke", "sandbox"), confirmed if asks else None)
    if asks:
        await alongside(nuke, play)
    else:
        with pytest.raises(RefusedError):
            await alongside(nuke, play)
    assert taken == [{"confirm": asks}]
    record = audit.read(shop.deck)[-1]
    assert (record["action"], record["result"]) == ("nuke-rebuild", "ok" if asks else "refused")
