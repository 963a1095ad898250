"""The engine's pure parts on the fake tools: job specs, events and confirmations as JSON, the broker
settings, the job bodies (plan shipped through the state bucket and checked by SHA-256, a promote's
result), and locks that name the worker that took them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsdeck.core.engine import jobs
from opsdeck.core.engine.jobs import JobSpec, event_from_json, event_to_json, preview_from_json, preview_to_json
from opsdeck.core.engine.planfiles import ShippedPlan, store_shipped
from opsdeck.core.engine.runner import run_job
from opsdeck.core.engine.settings import broker_url, wait_seconds
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Event, LogLine, OpFinished, PhaseFinished, PhaseStarted, Progress, Reporter
from opsdeck.core.model import ImageRef, PlanResult, PlanSummary
from opsdeck.core.plans import planning
from opsdeck.core.safety import locks
from opsdeck.core.safety.confirm import Preview, ServiceChange
from opsdeck.errors import ConfigError, LockedError, OpsdeckError
from tests.fakes import World
from tests.unit.estate import make_estate


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "shop")
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


def test_a_job_goes_to_its_environments_account_queue_and_reads_back(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    spec = JobSpec.new(deck, "promote", "staging", {"src": "dev", "services": ["web"]}, head="abc")
    assert spec.queue == "opsdeck.222222222222" and spec.account == "222222222222"
    assert spec.mutating and spec.task == jobs.MUTATING_TASK
    plan = JobSpec.new(deck, "plan", "dev")
    assert plan.queue == "opsdeck.111111111111" and not plan.mutating and plan.task == jobs.READ_ONLY_TASK
    assert JobSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert JobSpec.new(deck, "plan", "prod").queue == "opsdeck.333333333333"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "a job spec is a JSON object, not list"),
        ({"id": "j1", "op": "plan"}, "job spec without env, account, deck, head"),
        (
            {"id": "j1", "op": "destroy", "env": "a", "account": "1", "deck": "d", "head": ""},
            "unknown operation 'destroy'",
        ),
        ({"id": "j1", "op": "plan", "env": "a", "account": "1", "deck": "d", "head": "", "args": [1]}, "args must"),
    ],
)
def test_a_malformed_job_spec_is_one_line(data: Any, message: str) -> None:
    with pytest.raises(OpsdeckError, match=message.replace("(", r"\(").replace(")", r"\)")):
        JobSpec.from_json(data)


def test_an_unknown_operation_or_environment_is_refused_before_anything_is_sent(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    with pytest.raises(ConfigError, match="unknown job operation 'destroy'"):
        JobSpec.new(deck, "destroy", "dev")
    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        JobSpec.new(deck, "plan", "qa")


def test_a_bake_goes_to_the_build_accounts_queue_and_runs_at_most_once(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    spec = JobSpec.new(deck, "bake", "", {"services": ["web", "api"]})
    assert spec.env == "" and spec.account == deck.config.build.account and spec.queue == f"opsdeck.{spec.account}"
    assert spec.mutating and spec.task == "opsdeck.mutating"
    assert spec.label() == "bake of web, api"
    assert JobSpec.new(deck, "bake", "", {"base": True}).label() == "bake of the base layer"
    assert JobSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    "event",
    [
        PhaseStarted("plan", "dev", "init"),
        PhaseFinished("plan", "dev", "plan", 2.5, ok=False, error="boom"),
        Progress("plan", "dev", "plan", "refreshed 3 resources", 3, 9),
        LogLine("promote", "staging", "fast-forwarded 1 commits", "notice"),
        OpFinished("plan", "dev", True, 3.0),
    ],
)
def test_events_travel_as_json_and_come_back_labelled_with_their_worker(event: Event) -> None:
    back = event_from_json(json.loads(json.dumps(event_to_json(event))), "w1@host")
    assert back is not None and type(back) is type(event)
    assert back.worker == "w1@host" and back.op == event.op and back.env == event.env
    assert {k: v for k, v in vars(back).items() if k != "worker"} == {
        k: v for k, v in vars(event).items() if k != "worker"
    }


def test_an_unknown_event_kind_is_dropped_not_fatal() -> None:
    assert event_from_json({"type": "Teleported", "op": "plan", "env": "dev"}, "w1") is None
    assert event_from_json({"type": "LogLine", "op": "plan"}, "w1") is None  # a field missing


def test_the_printer_names_the_worker(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from opsdeck.commands import Printer

    Printer(stream=sys.stdout)(PhaseFinished("plan", "dev", "plan", 1.0, worker="w2@box"))
    assert "plan dev on w2@box: plan (1.0s)" in capsys.readouterr().out


def test_a_confirmation_travels_with_its_plan() -> None:
    plan = PlanResult("dev", PlanSummary(2, 1, 2), (), created_at=5.0, key="k", pins={"web": "ami-1"})
    preview = Preview(
        "promote",
        "dev",
        "confirm",
        (ServiceChange("web", ImageRef("ami-0", "1.0.0"), ImageRef("ami-1", "1.0.1")),),
        plan,
        "ship it",
        "copied to us-west-2",
    )
    back = preview_from_json(json.loads(json.dumps(preview_to_json(preview))))
    assert back == preview


def test_the_broker_comes_from_the_environment_then_the_deck(
    estate: tuple[Deck, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    deck, _ = estate
    monkeypatch.delenv("OPSDECK_BROKER", raising=False)
    monkeypatch.delenv("OPSDECK_ENGINE_WAIT", raising=False)
    assert broker_url(deck) == ""  # no broker: everything runs in this process, as before
    assert wait_seconds(deck) == 60.0
    monkeypatch.setenv("OPSDECK_BROKER", "redis://127.0.0.1:6390/0")
    assert broker_url(deck) == "redis://127.0.0.1:6390/0"
    monkeypatch.setenv("OPSDECK_BROKER", "amqp://127.0.0.1:5672")
    with pytest.raises(ConfigError, match="is not a Redis URL"):
        broker_url(deck)
    monkeypatch.setenv("OPSDECK_ENGINE_WAIT", "soon")
    with pytest.raises(ConfigError, match="OPSDECK_ENGINE_WAIT='soon' is not a number"):
        wait_seconds(deck)
    monkeypatch.setenv("OPSDECK_ENGINE_WAIT", "2.5")
    assert wait_seconds(deck) == 2.5


def test_the_engine_table_of_opsdeck_toml_is_read_and_checked(tmp_path: Path) -> None:
    from opsdeck.core.estate.config import load_config

    deck, _ = make_estate(tmp_path / "shop")
    toml = deck.root / "opsdeck.toml"
    toml.write_text(toml.read_text() + '\n[engine]\nbroker = "redis://127.0.0.1:6391/2"\nwait_seconds = 5\n')
    config = load_config(deck.root)
    assert config.engine.broker == "redis://127.0.0.1:6391/2" and config.engine.wait_seconds == 5
    toml.write_text(toml.read_text().replace("wait_seconds = 5", 'wait_seconds = "soon"'))
    with pytest.raises(ConfigError, match=r"engine\.wait_seconds"):
        load_config(deck.root)


def test_a_plan_job_ships_its_plan_through_the_state_bucket_checked_by_sha256(
    estate: tuple[Deck, World], tmp_path: Path
) -> None:
    deck, world = estate
    spec = JobSpec.new(deck, "plan", "dev", {"reuse": False})
    result = asyncio.run(run_job(deck, spec, Reporter("plan", "dev")))
    shipped = ShippedPlan.from_json(result["planfile"])
    assert shipped.bucket == "opsdeck-demo-tfstate-111111111111"
    assert shipped.key.endswith(f"/dev/{shipped.sha256}.tfplan") and ".opsdeck-plans/" in shipped.key
    body = world.objects[(shipped.bucket, shipped.key)]
    assert body == Path(result["plan"]["planfile"]).read_bytes()
    # The caller stores it as its own saved plan, keyed as it saw the inputs when it sent the job.
    planning.forget_plan(deck, "dev")
    stored = store_shipped(deck, "dev", result["plan"], shipped, key="caller-key")
    assert Path(stored.planfile).read_bytes() == body and stored.key == "caller-key"
    assert planning.stored_plan(deck, "dev") == stored
    assert (shipped.bucket, shipped.key) not in world.objects  # fetched: no longer needed in the bucket


def test_a_shipped_plan_that_changed_on_the_way_is_refused(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    result = asyncio.run(run_job(deck, JobSpec.new(deck, "plan", "dev", {"reuse": False}), Reporter("plan")))
    shipped = ShippedPlan.from_json(result["planfile"])
    world.objects[(shipped.bucket, shipped.key)] += b"tampered"
    planning.forget_plan(deck, "dev")
    with pytest.raises(OpsdeckError, match="does not match its SHA-256") as caught:
        store_shipped(deck, "dev", result["plan"], shipped, key="k")
    assert "\n" not in str(caught.value)
    assert planning.stored_plan(deck, "dev") is None  # nothing half-stored
    del world.objects[(shipped.bucket, shipped.key)]
    with pytest.raises(OpsdeckError, match="the saved plan of dev is gone from s3://"):
        store_shipped(deck, "dev", result["plan"], shipped, key="k")
    with pytest.raises(OpsdeckError, match="needs bucket, key, sha256 and size"):
        ShippedPlan.from_json({"bucket": "b"})


def test_a_promote_job_returns_its_release_and_its_lock_names_the_worker(estate: tuple[Deck, World]) -> None:
    from opsdeck.core.release.bake import bake

    deck, _ = estate
    (web,) = asyncio.run(bake(deck, Reporter("bake"), services=["web"]))
    seen: list[locks.LockRecord] = []
    original = locks.env_lock

    def spy(*args: Any, **kwargs: Any) -> Any:
        manager = original(*args, **kwargs)

        class Wrapped:
            def __enter__(self) -> locks.LockRecord:
                record = manager.__enter__()
                seen.append(record)
                return record

            def __exit__(self, *exc: Any) -> Any:
                return manager.__exit__(*exc)

        return Wrapped()

    spec = JobSpec.new(deck, "promote", "dev", {"src": web.id, "services": ["web"], "reason": "unit"})
    token = locks.WORKER.set("w1@box")
    try:
        import opsdeck.core.safety.operation as operation

        operation.env_lock = spy  # type: ignore[assignment]
        result = asyncio.run(run_job(deck, spec, Reporter("promote", "dev")))
    finally:
        operation.env_lock = original  # type: ignore[assignment]
        locks.WORKER.reset(token)
    assert result["release"]["services"][0]["to_image"] == web.id and len(result["commit"]) == 40
    assert "web" in result["summary"]
    assert seen and seen[0].worker == "w1@box" and "on worker w1@box" in seen[0].describe()


def _plant(deck: Deck, env: str, worker: str, *, team: bool) -> None:
    record = locks.LockRecord("lock-9", env, "promote", 999999, "gone", "ghost", 1.0, worker=worker)
    path = deck.local_dir / "locks" / f"{env}.lock"
    path.parent.mkdir(exist_ok=True)
    path.write_text(record.to_json())
    if team:
        location = locks._location(deck, env)
        assert location is not None
        deck.tools.env(env).cloud.put_object(*location, record.to_json().encode())


def test_a_dead_workers_lock_is_an_interrupted_operation_naming_the_worker(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    _plant(deck, "dev", "w1@box", team=True)
    status = locks.status(deck, "dev")
    assert status is not None and status["state"] == "interrupted" and status["worker"] == "w1@box"
    with (
        pytest.raises(LockedError, match=r"interrupted operation: promote by ghost@gone on worker w1@box"),
        locks.env_lock(deck, "dev", "rollback"),
    ):
        pass


def test_a_workers_stale_record_released_elsewhere_does_not_block_its_clone(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    _plant(deck, "dev", "w1@box", team=False)  # `opsdeck unlock` on another machine removed the team-wide twin
    assert locks.holder(deck, "dev") == (None, False)
    with locks.env_lock(deck, "dev", "promote") as record:
        assert record.operation == "promote" and record.worker == ""
    # Without a worker the local record alone still counts (as before the engine).
    _plant(deck, "dev", "", team=False)
    record, alive = locks.holder(deck, "dev")
    assert record is not None and not alive


def test_a_worker_runs_only_its_decks_jobs_on_the_callers_ledger(estate: tuple[Deck, World]) -> None:
    from opsdeck.core.engine import worker

    deck, _ = estate
    head = deck.tools.git.head()
    worker._decks[deck.root] = ((deck.root / "opsdeck.toml").stat().st_mtime_ns, deck)
    try:
        assert worker.open_for_job(deck.root, JobSpec.new(deck, "plan", "dev", head=head), "w1@box") is deck
        other = JobSpec.from_json({**JobSpec.new(deck, "plan", "dev", head=head).to_json(), "deck": "bank"})
        with pytest.raises(OpsdeckError, match="worker w1@box serves the deck 'shop', not 'bank'"):
            worker.open_for_job(deck.root, other, "w1@box")
        unknown = JobSpec.new(deck, "plan", "dev", head="0" * 40)
        with pytest.raises(OpsdeckError, match="worker w1@box does not have the caller's commit 000000000000: push"):
            worker.open_for_job(deck.root, unknown, "w1@box")
        pins = deck.root / "envs" / "dev" / "images.auto.tfvars.json"
        pins.write_text(pins.read_text().replace("ami-", "ami-9", 1))
        with pytest.raises(OpsdeckError, match=r"clone has uncommitted changes in envs/dev .* commit or discard"):
            worker.open_for_job(deck.root, JobSpec.new(deck, "plan", "dev", head=head), "w1@box")
    finally:
        worker._decks.pop(deck.root, None)


def test_without_a_broker_the_runner_is_the_in_process_code_path(
    estate: tuple[Deck, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import PromoteArgs, RefreshArgs
    from opsdeck.core.release.bake import bake
    from opsdeck.core.release.promote import ReleaseResult

    deck, _ = estate
    monkeypatch.delenv("OPSDECK_BROKER", raising=False)
    refresh = RefreshArgs(with_drift=False, envs=["dev"])
    assert not asyncio.run(runner.sends(deck, registry.REFRESH, refresh, Reporter("refresh")))
    refreshed = asyncio.run(runner.run(deck, registry.REFRESH, refresh, Reporter("refresh")))
    assert not refreshed.sent and refreshed.worker is None
    assert set(refreshed.result.plans) == {"dev"} and refreshed.result.workers == {}
    (web,) = asyncio.run(bake(deck, Reporter("bake"), services=["web"]))
    what = PromoteArgs(web.id, "dev", ["web"])
    done = asyncio.run(runner.run(deck, registry.PROMOTE, what, Reporter("promote", "dev")))
    assert isinstance(done.result, ReleaseResult) and done.result.moved[0].to_image == web.id


def test_a_nuke_plan_and_result_travel_as_json() -> None:
    from opsdeck.core.sandbox.nuke import NukePlan, NukeResult
    from opsdeck.core.types.cloud import CloudResource

    plan = NukePlan("sandbox", "111111111111", ("module.web.aws_autoscaling_group.this",),
                    (CloudResource("ec2:instance", "i-stray"),), {"web": "ami-1"}, "us-east-1")  # fmt: skip
    back = NukePlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert back.to_json() == plan.to_json() and back.summary() == plan.summary()
    result = NukeResult("sandbox", 5, 1, 5, (("inventory", 1.25), ("apply", 10.5)), 20.0)
    assert NukeResult.from_json(json.loads(json.dumps(result.to_json()))) == result
