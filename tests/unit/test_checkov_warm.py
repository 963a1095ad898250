"""Checkov kept warm for the life of an opsdeck process: the same verdicts as the checkov command, from one
process that loaded its checks once (the real Checkov of this machine, from its own virtual environment)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from opsdeck.adapters import checkov

PLAN = Path(__file__).resolve().parents[1] / "fixtures" / "plan_show_full.json"
CHECKS = Path(__file__).resolve().parents[2] / "sample_envs" / "policy"


@pytest.fixture(scope="module")
def binary() -> str:
    named = os.environ.get("OPSDECK_CHECKOV")
    if not named:
        pytest.fail("OPSDECK_CHECKOV is unset: run the tests through `make test` (scripts/test.sh sets it)")
    return checkov.find_binary(named)


def test_a_warm_checkov_answers_as_the_command_does_from_one_process(binary: str, tmp_path: Path) -> None:
    cold = checkov.Checkov(binary)
    argv = cold.argv(PLAN, checks_dir=CHECKS)
    server = checkov.warm_server(binary)
    assert server is not None, f"{binary} is a Python script: its Python can keep Checkov warm"
    first = server.check(argv[1:])
    assert first is not None and server.proc is not None
    pid = server.proc.pid
    second = server.check(argv[1:])
    assert second is not None and server.proc.pid == pid  # the same process: its checks loaded once
    by_command = asyncio.run(checkov.run_captured(argv, cwd=tmp_path, env=checkov._env(), tool="checkov"))
    verdicts = [checkov.parse(out) for _, out, _ in (first, second, by_command)]
    found = [(v.passed, sorted((f.check_id, f.resource) for f in v.failed)) for v in verdicts]
    assert found[0] == found[1] == found[2]  # the same checks pass and fail (their order may differ)
    assert ("CKV_AWS_79", "module.web.aws_launch_template.this") in found[0][1]  # IMDSv1 left on in the fixture
    assert "CKV2_SHOP_1" in {c for c, _ in found[0][1]}  # the deck's own check, loaded once and still run


def test_a_warm_checkov_answers_each_plan_for_itself(binary: str) -> None:
    """Checkov keeps state between runs in one process: without a fresh child per plan, a plan with no
    resources was answered with the verdict of the plan checked before it."""
    cold = checkov.Checkov(binary)
    server = checkov.warm_server(binary)
    assert server is not None
    empty = PLAN.with_name("plan_pin_change.json")
    verdicts = []
    for plan in (PLAN, empty, PLAN):
        answer = server.check(cold.argv(plan, checks_dir=CHECKS)[1:])
        assert answer is not None
        verdicts.append(checkov.parse(answer[1]))
    assert verdicts[0].failed and not verdicts[1].failed and verdicts[1].passed == 0
    assert len(verdicts[2].failed) == len(verdicts[0].failed)


def test_a_warm_checkov_that_died_is_started_again(binary: str) -> None:
    server = checkov.warm_server(binary)
    assert server is not None
    argv = checkov.Checkov(binary).argv(PLAN)
    assert server.check(argv[1:]) is not None and server.proc is not None
    server.proc.kill()
    server.proc.wait()
    again = server.check(argv[1:])  # the dead one is noticed and replaced
    assert again is not None and json.loads(again[1])["check_type"] == "terraform_plan"


def test_a_checkov_that_is_not_a_python_script_runs_as_a_command(tmp_path: Path) -> None:
    native = tmp_path / "checkov"
    native.write_bytes(b"\x7fELF\x02\x01\x01")
    assert checkov.warm_server(str(native)) is None
