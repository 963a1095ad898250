"""The registry of operations on the fake tools: each operation declared once (its arguments, whether it
changes anything, where it may run), the one choice between this process and a worker, the jobs'
arguments as JSON read back and checked, and jobs dispatched through the table."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsdeck.core.engine import registry, runner
from opsdeck.core.engine.jobs import JobSpec
from opsdeck.core.engine.operation import (
    BakeArgs,
    EnvArgs,
    EnvsArgs,
    ExpireArgs,
    ExtendArgs,
    FreezeArgs,
    PlanArgs,
    PromoteArgs,
    RollbackArgs,
    UnfreezeArgs,
    Where,
    args_from_job,
    args_json,
)
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Event, LogLine, Reporter
from opsdeck.core.safety.breakglass import BreakGlass
from opsdeck.errors import ConfigError, OpsdeckError
from tests.fakes import World
from tests.unit.estate import make_estate

DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens there: a choice that reached for it would fail


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "shop")
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


def notices() -> tuple[Reporter, list[str]]:
    seen: list[str] = []

    def sink(event: Event) -> None:
        if isinstance(event, LogLine) and event.level == "notice":
            seen.append(event.text)

    return Reporter("test", None, sink), seen


def test_every_operation_is_declared_once_and_consistently() -> None:
    ops = registry.OPERATIONS
    assert len(ops) == len({id(op) for op in ops.values()})
    for name, op in ops.items():
        assert op.name == name
        if op.where is Where.HERE:
            assert op.job is None and op.on_workers is None and not op.sendable, name
        else:
            assert op.on_workers is not None and op.sendable, name
        assert (op.unseen is None) == (op.done_here == ""), name  # whatever keeps it here is said
    changes = {name for name, op in ops.items() if op.mutating}
    assert {"bake", "promote", "deploy", "rollback", "nuke", "approve", "execute", "break-glass"} <= changes
    assert {"freeze", "unfreeze", "sandbox-expire", "sandbox-extend"} <= changes  # governance: signed, audited
    assert not {"plan", "drift", "drift-check", "refresh", "preplan"} & changes  # preplan takes no lock
    assert registry.JOBS == ["bake", "deploy", "drift", "nuke", "plan", "promote", "rollback"]
    with pytest.raises(ConfigError, match="unknown operation 'promot' \\(expected one of: apply, approve"):
        registry.operation("promot")


def test_a_job_names_its_queue_and_whether_it_runs_at_most_once_from_the_registry(
    estate: tuple[Deck, World],
) -> None:
    deck, _ = estate
    for name in registry.JOBS:
        op = registry.operation(name)
        spec = JobSpec.new(deck, name, "" if op.where is Where.BUILD else "staging")
        assert spec.mutating is op.mutating
        build = deck.config.build.account or "default"
        assert spec.account == (build if op.where is Where.BUILD else "222222222222"), name
    with pytest.raises(ConfigError, match="unknown job operation 'approve' \\(the engine runs: bake, deploy"):
        JobSpec.new(deck, "approve", "staging")  # a change, but made where the signing key is


@pytest.mark.parametrize(
    "args",
    [
        PromoteArgs("dev", "staging", ["web"], "release 1.5"),
        RollbackArgs("prod", None, "1.4.1", ""),
        BakeArgs(["web", "api"], "2.0.0", False),
        PlanArgs("dev", True),
        EnvArgs("sandbox"),
    ],
)
def test_a_jobs_arguments_travel_as_json_and_read_back_the_same(args: Any) -> None:
    env = getattr(args, "env", "")
    data = args_json(args)
    assert "env" not in data  # the job names its environment
    assert args_from_job(type(args), env, data, "j1") == args


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        (PromoteArgs, {"src": "dev", "services": "web"}, "job j1: services must be a list of names"),
        (PromoteArgs, {"src": "dev", "services": ["web", 3]}, "job j1: services must be a list of names"),
        (PromoteArgs, {"src": 7}, "job j1: src must be a string"),
        (RollbackArgs, {"to": ["1.0.0"]}, "job j1: to must be a string or null"),
        (PlanArgs, {"reuse": "yes"}, "job j1: reuse must be true or false"),
    ],
)
def test_a_malformed_jobs_argument_is_one_line_naming_it(kind: Any, data: dict[str, Any], message: str) -> None:
    with pytest.raises(OpsdeckError) as caught:
        args_from_job(kind, "dev", data, "j1")
    assert str(caught.value) == message


def test_without_a_broker_everything_runs_here(estate: tuple[Deck, World], monkeypatch: pytest.MonkeyPatch) -> None:
    deck, _ = estate
    monkeypatch.delenv("OPSDECK_BROKER", raising=False)
    rep, said = notices()
    for op, args in (
        (registry.PLAN, PlanArgs("dev")),
        (registry.NUKE, EnvArgs("sandbox")),
        (registry.BAKE, BakeArgs()),
    ):
        assert not asyncio.run(runner.sends(deck, op, args, rep))
    assert said == []


def test_with_a_broker_a_clean_environment_goes_to_the_workers_and_what_may_not_stays_here(
    estate: tuple[Deck, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    deck, _ = estate
    monkeypatch.setenv("OPSDECK_BROKER", DEAD_BROKER)
    rep, said = notices()
    assert asyncio.run(runner.sends(deck, registry.PLAN, PlanArgs("dev"), rep))
    assert asyncio.run(runner.sends(deck, registry.PROMOTE, PromoteArgs("dev", "staging"), rep))
    assert asyncio.run(runner.sends(deck, registry.BAKE, BakeArgs(["web"]), rep))
    # Made here whatever the deck is set to: approvals (the signing key is here), break-glass, apply.
    assert not asyncio.run(runner.sends(deck, registry.APPROVE, registry.APPROVE.args("r1"), rep))
    assert not asyncio.run(runner.sends(deck, registry.APPLY, EnvArgs("dev"), rep))
    assert said == []


def test_break_glass_keeps_a_release_here_without_reading_the_broker(
    estate: tuple[Deck, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    deck, _ = estate
    monkeypatch.setenv("OPSDECK_BROKER", "amqp://127.0.0.1:5672")  # read, this would be an error
    glass = BreakGlass("prod", "incident 42", "alice", 0.0, 1e12)
    rep, _ = notices()
    assert not asyncio.run(runner.sends(deck, registry.ROLLBACK, RollbackArgs("prod"), rep, glass))
    with pytest.raises(ConfigError, match="is not a Redis URL"):
        asyncio.run(runner.sends(deck, registry.ROLLBACK, RollbackArgs("prod"), rep))


def test_files_a_worker_cannot_see_keep_the_operation_here_and_say_so(
    estate: tuple[Deck, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    deck, _ = estate
    monkeypatch.setenv("OPSDECK_BROKER", DEAD_BROKER)
    main = deck.root / "envs" / "dev" / "main.tf"
    main.write_text(main.read_text() + "\n# an edit not committed yet\n")
    rep, said = notices()
    assert not asyncio.run(runner.sends(deck, registry.PLAN, PlanArgs("dev"), rep))
    assert asyncio.run(runner.sends(deck, registry.PLAN, PlanArgs("staging"), rep))
    assert asyncio.run(runner.sends(deck, registry.BAKE, BakeArgs(["api"]), rep))  # a bake reads no environment
    recipe = deck.root / str(deck.config.service("api").recipe)
    recipe.write_text(recipe.read_text() + "\n")
    assert not asyncio.run(runner.sends(deck, registry.BAKE, BakeArgs(["api"]), rep))
    folder = str(recipe.parent.relative_to(deck.root))
    assert said == [
        "dev has uncommitted changes a worker cannot see: planned here",
        f"{folder} has uncommitted changes a worker cannot see: baked here",
    ]
    # And it runs here, never reaching for the broker (nothing listens at DEAD_BROKER).
    ran = asyncio.run(runner.run(deck, registry.PLAN, PlanArgs("dev"), rep))
    assert not ran.sent and ran.worker is None and ran.result.environment == "dev"


def test_a_job_runs_through_the_table_and_asks_its_caller_only_when_told(estate: tuple[Deck, World]) -> None:
    from opsdeck.core.release.bake import bake

    deck, _ = estate
    (web,) = asyncio.run(bake(deck, Reporter("bake"), services=["web"]))
    asked: list[Any] = []

    async def caller(preview: Any) -> bool:
        asked.append(preview)
        return False  # the person at the caller says no

    quiet = JobSpec.new(deck, "promote", "dev", args_json(PromoteArgs(web.id, "dev", ["web"])))
    done = asyncio.run(runner.run_job(deck, quiet, Reporter("promote", "dev"), caller))
    assert asked == [] and done["release"]["services"][0]["to_image"] == web.id
    back = JobSpec.new(deck, "rollback", "dev", {**args_json(RollbackArgs("dev", ["web"])), "confirm": True})
    with pytest.raises(OpsdeckError, match="was not confirmed; nothing changed"):
        asyncio.run(runner.run_job(deck, back, Reporter("rollback", "dev"), caller))
    assert [p.action for p in asked] == ["rollback"]
    wrong = JobSpec.from_json({**quiet.to_json(), "args": {"services": "web"}})
    with pytest.raises(OpsdeckError, match=f"^job {wrong.id}: services must be a list of names$"):
        asyncio.run(runner.run_job(deck, wrong, Reporter("promote", "dev")))


def test_governance_runs_here_through_the_table_even_with_a_broker(
    estate: tuple[Deck, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsdeck.core.release.bake import bake

    deck, _ = estate
    monkeypatch.setenv("OPSDECK_BROKER", DEAD_BROKER)  # nothing listens: a choice that reached for it would fail
    rep, said = notices()
    until = FreezeArgs(["dev"], 2e9, "close")
    for op, args in (
        (registry.FREEZE, until),
        (registry.UNFREEZE, UnfreezeArgs(["dev"])),
        (registry.SANDBOX_EXPIRE, ExpireArgs()),
        (registry.SANDBOX_EXTEND, ExtendArgs("sandbox", 2.0)),
        (registry.PREPLAN, EnvsArgs()),
    ):
        assert op.where is Where.HERE and op.job is None, op.name
        assert not asyncio.run(runner.sends(deck, op, args, rep)), op.name
    asyncio.run(bake(deck, Reporter("bake"), services=["web"]))  # sandbox's deploy now moves web
    ran = asyncio.run(runner.run(deck, registry.PREPLAN, EnvsArgs(["sandbox"]), rep))
    assert not ran.sent and [(p.env, p.action) for p in ran.result] == [("sandbox", "deploy")]
    assert asyncio.run(runner.run(deck, registry.PREPLAN, EnvsArgs(["sandbox"]), rep)).result == []  # kept
    assert said == []
