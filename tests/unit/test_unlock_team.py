"""unlock in a team's clone, on the fake tools: an approved request whose execute was killed after its
apply is marked executed with its pins (running it again says so, not "stale"), and a release killed
between its commit and its push is pushed, so the team's ledger has what the cloud runs."""

from __future__ import annotations

import asyncio
import json

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin
from opsdeck.core.ledger.remote import check
from opsdeck.core.plans import planning
from opsdeck.core.release import recovery, rollout
from opsdeck.core.release.execute import execute, mark_executed
from opsdeck.core.safety import audit, locks
from opsdeck.core.team import approvals, requests
from opsdeck.errors import RefusedError
from tests.unit.estate import git
from tests.unit.team import Team, bake_one, file_request, rep


def _killed(deck: Deck, env: str, operation: str, detail: dict[str, str]) -> None:
    """What an operation killed under its lock leaves: its started audit record and its lock record (its
    process and host gone)."""
    audit.append(deck, action=operation, environment=env, result="started", who={"user": "ghost"})
    path = deck.local_dir / "locks" / f"{env}.lock"
    path.parent.mkdir(exist_ok=True)
    record = {"id": "lock-9", "env": env, "operation": operation, "pid": 999999, "host": "gone", "user": "ghost"}
    path.write_text(json.dumps({**record, "since": 1.0, "detail": detail}))


@pytest.mark.parametrize("marked", [False, True])
def test_an_execute_killed_after_its_apply_is_settled_as_executed(team: Team, marked: bool) -> None:
    """Killed once Terraform applied the approved plan (``marked``: after it wrote its executed marker, as
    its commit began): unlock commits the request's pins with the marker; execute then says it ran."""
    bake_one(team.a, "web")
    request = file_request(team)
    asyncio.run(approvals.approve(team.b, request.id, rep()))
    git(team.a.root, "pull", "-q")
    request = requests.load(team.a, request.id)
    for rel, text in request.pins.items():  # what execute wrote, then applied, before it was killed
        (team.a.root / rel).write_text(text)
    plan = asyncio.run(planning.plan(team.a, "staging", rep(), reuse=False))
    asyncio.run(rollout.apply_plan(team.a, "staging", plan, rep()))
    if marked:
        mark_executed(team.a, request)
    _killed(team.a, "staging", "promote", {"request": request.id, "pin": ",".join(request.pins)})

    asyncio.run(recovery.unlock(team.a, "staging", rep()))
    assert locks.status(team.a, "staging") is None
    assert git(team.a.root, "status", "--porcelain").strip() == ""
    assert read_pin(team.a, "staging", "web") == request.services[0]["to_image"]
    body = git(team.a.root, "log", "-1", "--format=%B")
    assert body.startswith("settle staging after an interrupted promote") and f"request: {request.id}" in body
    assert f"requests/{request.id}/executed.json" in git(team.a.root, "show", "--name-only", "--format=", "HEAD")
    assert check(team.a).ahead == 0  # pushed: the team's ledger has it
    assert requests.load(team.a, request.id).status == "executed"
    with pytest.raises(RefusedError, match=f"request {request.id} was executed already"):
        asyncio.run(execute(team.a, request.id, rep()))


def test_a_release_killed_between_its_commit_and_its_push_is_pushed_by_unlock(team: Team) -> None:
    image = bake_one(team.a, "web")
    git(team.a.root, "push", "-q")
    rel = "envs/sandbox/images.auto.tfvars.json"
    data = json.loads((team.a.root / rel).read_text())
    data["images"]["web"] = image
    (team.a.root / rel).write_text(json.dumps(data, indent=2) + "\n")
    plan = asyncio.run(planning.plan(team.a, "sandbox", rep(), reuse=False))
    asyncio.run(rollout.apply_plan(team.a, "sandbox", plan, rep()))
    git(team.a.root, "commit", "-qm", "promote web to sandbox", "--", rel)  # committed; the push never ran
    assert check(team.a).ahead == 1
    _killed(team.a, "sandbox", "promote", {"services": "web", "to": image, "pin": rel})

    asyncio.run(recovery.unlock(team.a, "sandbox", rep()))
    assert check(team.a).ahead == 0
    git(team.b.root, "pull", "-q")
    assert read_pin(team.b, "sandbox", "web") == image  # the teammate's clone has the release


def test_an_interrupted_nuke_is_not_settled_as_a_release_but_says_how_to_finish_it(team: Team) -> None:
    """A nuke-rebuild writes no pins: unlock plans nothing for them (before, it planned them and warned of
    drift), and says the sandbox may be torn down part way and which command builds it again."""
    from opsdeck.core.events import Event, LogLine, Reporter

    _killed(team.a, "sandbox", "nuke-rebuild", {})
    said: list[Event] = []
    calls = len(team.world.calls)
    asyncio.run(recovery.unlock(team.a, "sandbox", Reporter("unlock", "sandbox", said.append)))
    assert locks.status(team.a, "sandbox") is None
    assert [c for c in team.world.calls[calls:] if c == "plan sandbox"] == []
    lines = [e.text for e in said if isinstance(e, LogLine)]
    assert any("`opsdeck nuke-rebuild sandbox` destroys what is left" in line for line in lines), lines
    assert not any("no pins plan clean" in line for line in lines), lines


def test_unlock_waits_for_terraform_in_a_copy_of_the_environment(team: Team) -> None:
    """A recover killed while Terraform applies the copy in another region: that Terraform runs in the
    copy's own folder, and unlock refuses until it ends (before, it released the lock at once)."""
    import subprocess

    from opsdeck.core.sandbox.copies import work_dir

    folder = work_dir(team.a, "staging", "us-west-2")
    folder.mkdir(parents=True)
    _killed(team.a, "staging", "recover", {"region": "us-west-2"})
    tool = subprocess.Popen(["bash", "-c", "exec -a terraform sleep 60"], cwd=folder)
    try:
        with pytest.raises(RefusedError, match=r"terraform is still running in staging \(pid "):
            asyncio.run(recovery.unlock(team.a, "staging", rep()))
        assert locks.status(team.a, "staging") is not None
    finally:
        tool.kill()
        tool.wait()
    asyncio.run(recovery.unlock(team.a, "staging", rep()))
    assert locks.status(team.a, "staging") is None
