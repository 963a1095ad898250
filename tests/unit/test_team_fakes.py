"""One deck, many engineers, on the fake tools with real git and real SSH keys: two clones of a bare
remote, the team-wide lock, the shared ledger, and signed approvals (every refusal one line, audited)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
from dataclasses import replace

import pytest

from opsdeck.adapters import sshsig
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin, read_pins
from opsdeck.core.ledger.remote import check
from opsdeck.core.observe.status import deck_status
from opsdeck.core.release.execute import execute
from opsdeck.core.release.promote import ReleaseResult, deploy_newest, promote, rollback
from opsdeck.core.safety import audit, locks
from opsdeck.core.safety.breakglass import BreakGlass
from opsdeck.core.team import approvals, requests
from opsdeck.core.types.cloud import Credentials
from opsdeck.errors import LockedError, RefusedError
from tests.unit.estate import git
from tests.unit.team import Team, bake_one, file_request, rep


def remote_log(team: Team) -> list[str]:
    out = subprocess.run(["git", "-C", str(team.remote), "log", "--format=%s", "main"], capture_output=True, text=True)
    return out.stdout.splitlines()


def last(deck: Deck) -> dict[str, object]:
    return audit.read(deck)[-1]


def test_a_promote_in_one_clone_is_what_the_other_shows_and_rolls_back_from(team: Team) -> None:
    before = read_pin(team.a, "dev", "web")
    web = bake_one(team.a, "web")
    result = asyncio.run(promote(team.a, web, "dev", rep(), services=["web"]))
    assert isinstance(result, ReleaseResult)
    assert remote_log(team)[0].startswith("promote web 1.0.1 to dev")  # pushed
    assert read_pin(team.b, "dev", "web") == before  # bob's clone has not fetched yet
    assert check(team.b, fetch=True).behind == 1
    state = asyncio.run(deck_status(team.b, rep()))  # reading follows the team's ledger
    assert state.ledger is not None and state.ledger["behind"] == 0
    assert state.env("dev").service("web").image.id == web  # type: ignore[union-attr]
    back = asyncio.run(rollback(team.b, "dev", rep(), services=["web"]))  # bob returns dev to the right image
    assert isinstance(back, ReleaseResult) and back.moved[0].to_image == before
    assert remote_log(team)[0].startswith("rollback dev: web 1.0.1 -> 1.0.0")
    assert read_pin(team.a, "dev", "web") == web  # alice is behind now, until she syncs


def test_a_teammates_push_to_another_environment_is_rebased_onto_never_forced(team: Team) -> None:
    web = bake_one(team.a, "web")
    asyncio.run(promote(team.b, web, "sandbox", rep(), services=["web"]))  # bob pushes first
    git(team.a.root, "fetch", "-q")  # alice saw nothing of it when she started: her push is rejected
    result = asyncio.run(promote(team.a, web, "dev", rep(), services=["web"]))
    assert isinstance(result, ReleaseResult)
    log = remote_log(team)
    assert log[0].startswith("promote web 1.0.1 to dev") and log[1].startswith("promote web 1.0.1 to sandbox")
    assert result.commit == git(team.a.root, "rev-parse", "HEAD").strip()  # the rebased commit


def test_a_diverged_or_dirty_clone_is_refused_in_one_line(team: Team) -> None:
    asyncio.run(promote(team.b, bake_one(team.b, "api"), "dev", rep(), services=["api"]))
    pin = team.a.root / "envs/sandbox/images.auto.tfvars.json"
    pin.write_text(pin.read_text() + "\n")
    with pytest.raises(RefusedError, match=r"the deck is 1 commits behind origin/main and envs/sandbox/images"):
        asyncio.run(deploy_newest(team.a, "dev", rep()))
    git(team.a.root, "checkout", "--", "envs/sandbox/images.auto.tfvars.json")
    (team.a.root / "notes.md").write_text("local work\n")
    git(team.a.root, "add", "notes.md")
    git(team.a.root, "commit", "-qm", "a local commit")
    with pytest.raises(RefusedError, match=r"the deck has diverged from origin/main \(1 commits here, 1 there\)"):
        asyncio.run(deploy_newest(team.a, "dev", rep()))
    assert last(team.a)["result"] == "refused"


def test_an_unreachable_remote_refuses_changes_but_not_reads_and_break_glass_runs_offline(team: Team) -> None:
    bake_one(team.a, "web")
    staging = file_request(team)
    asyncio.run(approvals.approve(team.b, staging.id, rep()))
    asyncio.run(execute(team.a, staging.id, rep()))  # staging now runs what prod does not
    team.remote.rename(team.remote.with_name("gone.git"))
    state = asyncio.run(deck_status(team.a, rep()))
    assert state.ledger is not None and state.ledger["offline"] and state.environments[0].services
    with pytest.raises(RefusedError, match=r"the deck's remote .* cannot be reached .*changes are refused"):
        asyncio.run(promote(team.a, bake_one(team.a, "api"), "dev", rep(), services=["api"]))
    assert last(team.a)["result"] == "refused"
    creds = Credentials("ASIAFAKEPRODGLASS", "glass-secret", "glass-token")
    team.world.keys[creds.access_key] = "333333333333"
    glass = BreakGlass("prod", "remote down, incident 9", 0.0, 1e12, credentials=creds, source="test")
    result = asyncio.run(promote(team.a, "staging", "prod", rep(), services=["web"], glass=glass))
    assert isinstance(result, ReleaseResult)
    closing = last(team.a)
    assert closing["result"] == "ok" and closing["offline"] is True and closing["pushed"] is False
    assert check(team.a, fetch=False).ahead >= 1  # committed here, to be pushed with the next change


def contend(decks: list[tuple[Deck, str]], env: str) -> tuple[list[str], list[str]]:
    """Two clones reach for ``env``'s lock at the same moment; the winner holds it until both tried."""
    start, tried = threading.Barrier(len(decks)), threading.Barrier(len(decks))
    won: list[str] = []
    lost: list[str] = []

    def one(deck: Deck, name: str) -> None:
        start.wait()
        try:
            with locks.env_lock(deck, env, f"contend by {name}"):
                won.append(name)
                tried.wait()
        except LockedError as exc:
            lost.append(str(exc))
            tried.wait()

    threads = [threading.Thread(target=one, args=pair) for pair in decks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, lost


def test_exactly_one_of_two_clones_gets_the_team_wide_lock(team: Team) -> None:
    winners = []
    for _ in range(100):
        won, lost = contend([(team.a, "a"), (team.b, "b")], "dev")
        assert len(won) == 1 and len(lost) == 1, (won, lost)
        assert lost[0].startswith("dev is locked: contend by ")
        winners += won
    assert locks.holder(team.a, "dev") == (None, False)  # each winner let go


def test_the_lock_names_its_holder_from_any_clone(team: Team) -> None:
    with locks.env_lock(team.a, "staging", "promote", {"services": "web"}):
        record, alive = locks.holder(team.b, "staging")
        assert record is not None and alive and record.where == "team"
        assert record.who == "Alice <alice@shop.example>" and record.operation == "promote"
        state = locks.status(team.b, "staging")
        assert state is not None and state["state"] == "running"
        with (
            pytest.raises(LockedError, match=r"staging is locked: promote by Alice <alice@shop\.example>, "),
            locks.env_lock(team.b, "staging", "rollback"),
        ):
            pass
    assert locks.holder(team.b, "staging") == (None, False)


def test_a_change_to_an_environment_that_needs_approvals_becomes_a_request(team: Team) -> None:
    bake_one(team.a, "web")
    before = read_pins(team.a, "staging")
    request = file_request(team)
    assert request.status == "pending" and request.needed == 1 and request.requested_by.startswith("Alice")
    assert read_pins(team.a, "staging") == before  # nothing applied, the pins as they were
    assert not [c for c in team.world.calls if c.startswith("apply staging web")]
    assert remote_log(team)[0].startswith("request promote staging (web 1.0.1): needs 1 approvals")
    bucket, key = request.plan_object
    assert team.world.objects[(bucket, key)]  # the saved plan beside the state
    record = last(team.a)
    assert record["result"] == "requested" and record["request"] == request.id


def test_approved_by_another_signer_it_runs_exactly_the_approved_plan(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    approved = asyncio.run(approvals.approve(team.b, request.id, rep()))
    assert approved.status == "approved" and approved.valid_approvers == ["bob@shop.example"]
    result = asyncio.run(execute(team.a, request.id, rep()))
    assert read_pin(team.a, "staging", "web") == result.moved[0].to_image
    assert any(c == "apply staging web" for c in team.world.calls)
    git(team.b.root, "pull", "-q")
    done = requests.load(team.b, request.id)
    assert done.status == "executed"
    body = git(team.a.root, "log", "-1", "--format=%B")
    assert f"request: {request.id}" in body and "approved by: bob@shop.example" in body
    assert "Opsdeck-Operator: Alice <alice@shop.example>" in body and "Opsdeck-Signing-Key: SHA256:" in body
    with pytest.raises(RefusedError, match=f"request {request.id} was executed already"):
        asyncio.run(execute(team.a, request.id, rep()))


def test_approving_your_own_request_is_refused(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    with pytest.raises(RefusedError, match=f"you requested {request.id}: approvals must come from someone else"):
        asyncio.run(approvals.approve(team.a, request.id, rep()))
    assert last(team.a)["result"] == "refused"


def test_a_key_not_in_allowed_signers_cannot_approve(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    with pytest.raises(RefusedError, match=r"your key SHA256:\S+ is not in allowed_signers: you cannot approve"):
        asyncio.run(approvals.approve(team.b, request.id, rep(), key=str(team.keys["mallory"])))


def _signers(team: Team, bob: str) -> None:
    """Alice's clone writes the team's allowed_signers with ``bob`` as bob's line, pushes it; bob pulls."""
    git(team.a.root, "pull", "-q", "--rebase")
    path = team.a.root / "allowed_signers"
    lines = [bob if line.startswith("bob@") else line for line in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")
    git(team.a.root, "commit", "-qm", "bob's line", "--", "allowed_signers")
    git(team.a.root, "push", "-q")
    git(team.b.root, "pull", "-q")


def test_a_key_listed_for_git_only_is_told_the_line_that_lets_it_approve(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    key = sshsig.public_key(str(team.keys["bob"]))
    _signers(team, f'bob@shop.example namespaces="git" {key}')  # as a team that signs its commits has it
    line = f'bob@shop.example namespaces="git,opsdeck-approval" {key}'
    for action, call in (
        ("approve", lambda: approvals.approve(team.b, request.id, rep())),
        ("reject", lambda: approvals.reject(team.b, request.id, "not now", rep())),
    ):
        with pytest.raises(RefusedError) as refused:
            asyncio.run(call())
        assert str(refused.value) == (
            f"your key {sshsig.fingerprint(str(team.keys['bob']))} is in allowed_signers for bob@shop.example "
            '(line 2), but only for namespaces "git", not opsdeck\'s (opsdeck-approval): you cannot '
            f"{action} until it may sign there too; add this line to allowed_signers (or opsdeck-approval to the "
            f"namespaces of line 2): {line}"
        )
        assert last(team.b)["result"] == "refused" and last(team.b)["action"] == action
    # The line it shows, written as it says, is what ssh-keygen takes: bob approves.
    _signers(team, line)
    approved = asyncio.run(approvals.approve(team.b, request.id, rep()))
    assert approved.valid_approvers == ["bob@shop.example"]
    # An approval already made, when the key loses opsdeck's namespace, says why it no longer counts.
    _signers(team, f'bob@shop.example namespaces="git" {key}')
    (found,) = requests.load(team.b, request.id).approvals
    assert not found.valid and found.problem == (
        'its key is in allowed_signers for bob@shop.example (line 2) only for namespaces "git", not opsdeck-approval'
    )


def test_forged_copied_and_too_few_approvals_do_not_count(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    asyncio.run(approvals.approve(team.b, request.id, rep()))
    git(team.a.root, "pull", "-q")
    folder = team.a.root / "requests" / request.id / "approvals"
    record = folder / "bob@shop.example.json"
    original = record.read_text()
    forged = json.loads(original)
    forged["by"] = "carol@shop.example"  # edited in the remote: claims carol, signed by bob
    (folder / "carol@shop.example.json").write_text(json.dumps(forged))
    record.unlink()
    found = requests.load(team.a, request.id)
    assert [a.valid for a in found.approvals] == [False] and found.status == "pending"
    assert "signed by bob@shop.example, not by carol@shop.example" in found.approvals[0].problem
    with pytest.raises(RefusedError, match=r"has 0 of 1 approvals; not counted: carol@shop\.example \(signed by bob"):
        asyncio.run(execute(team.a, request.id, rep()))
    # An approval copied onto another request does not verify there: it signed the other one.
    (folder / "carol@shop.example.json").unlink()
    git(team.a.root, "checkout", "--", ".")
    other = _copy_request(team, request)
    (team.a.root / "requests" / other / "approvals").mkdir(parents=True)
    shutil.copy(folder / "bob@shop.example.json", team.a.root / "requests" / other / "approvals")
    copied = requests.load(team.a, other)
    assert [a.valid for a in copied.approvals] == [False]
    assert copied.approvals[0].problem == "the signature does not match what it claims to sign"


def _copy_request(team: Team, request: requests.Request) -> str:
    other = request.id[:-2] + ("00" if not request.id.endswith("00") else "11")
    data = json.loads((team.a.root / "requests" / request.id / "request.json").read_text())
    data["id"] = other
    (team.a.root / "requests" / other).mkdir()
    (team.a.root / "requests" / other / "request.json").write_text(json.dumps(data))
    return other


def test_a_plan_changed_after_approval_is_refused(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    asyncio.run(approvals.approve(team.b, request.id, rep()))
    bucket, key = request.plan_object
    team.world.objects[(bucket, key)] = team.world.objects[(bucket, key)] + b" "  # someone swapped the plan
    with pytest.raises(RefusedError, match=r"is not the one approved .*nothing applied"):
        asyncio.run(execute(team.a, request.id, rep()))
    assert not [c for c in team.world.calls if c.startswith("apply staging web")]
    assert last(team.a)["result"] == "refused"


def test_a_request_whose_pins_or_state_moved_on_is_stale(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    asyncio.run(approvals.approve(team.b, request.id, rep()))
    # Someone applied to staging meanwhile (its state moved on):
    backend = team.a.backend("staging")
    assert backend is not None
    team.world.objects[(backend.bucket, backend.key)] += b" "
    with pytest.raises(RefusedError, match=r"is stale .*the Terraform state of staging changed"):
        asyncio.run(execute(team.a, request.id, rep()))


def test_production_waits_for_two_approvals_unless_break_glass_bypasses_it(team: Team) -> None:
    bake_one(team.a, "web")
    staging = file_request(team)
    asyncio.run(approvals.approve(team.b, staging.id, rep()))
    asyncio.run(execute(team.a, staging.id, rep()))
    with pytest.raises(RefusedError, match=r"^soak gate: web .* has run in staging for 0 min; prod wants 30 min"):
        asyncio.run(promote(team.a, "staging", "prod", rep(), services=["web"]))
    team.a.config = replace(
        team.a.config, environments=tuple(replace(e, soak_minutes=0) for e in team.a.config.environments)
    )
    prod = asyncio.run(promote(team.a, "staging", "prod", rep(), services=["web"]))
    assert isinstance(prod, requests.Request) and prod.needed == 2
    asyncio.run(approvals.approve(team.b, prod.id, rep()))
    with pytest.raises(RefusedError, match=r"has 1 of 2 approvals \(bob@shop\.example\)"):
        asyncio.run(execute(team.a, prod.id, rep()))
    asyncio.run(approvals.approve(team.b, prod.id, rep(), key=str(team.keys["carol"])))
    result = asyncio.run(execute(team.a, prod.id, rep()))  # no break-glass: the approvals are the way in
    assert isinstance(result, ReleaseResult) and read_pin(team.a, "prod", "web") == result.moved[0].to_image
    # Break-glass bypasses approvals, audited as a bypass.
    creds = Credentials("ASIAFAKEPROD2", "s2", "t2")
    team.world.keys[creds.access_key] = "333333333333"
    glass = BreakGlass("prod", "incident 12", 0.0, 1e12, credentials=creds, source="test")
    back = asyncio.run(rollback(team.a, "prod", rep(), glass=glass))
    assert isinstance(back, ReleaseResult)
    closing = last(team.a)
    assert closing["result"] == "ok" and closing["approvals_bypassed"] == "break-glass: incident 12"
