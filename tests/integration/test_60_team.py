"""One deck, many engineers, on the real stack: the demo deck (alice's clone) and a second clone of its
team remote (bob's), the team-wide lock beside the Terraform state on the local cloud, and approvals
signed with SSH keys made by ssh-keygen. Every refusal is one line, applies nothing, and is audited.

Runs after test_50_conventions (it moves dev, staging and prod to new images).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, demo_key, edited, finish, opsdeck, state_serial

pytestmark = pytest.mark.integration


def _git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def _json(*args: str, deck: Path) -> Any:
    result = opsdeck(*args, "--json", deck=deck, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _status(deck: Path) -> dict[str, Any]:
    return {e["name"]: e for e in _json("status", deck=deck)["environments"]}


def _image(deck: Path, env: str, service: str) -> str:
    row = _status(deck)[env]
    return str(next(s for s in row["services"] if s["name"] == service)["image"]["id"])


def _refused(result: subprocess.CompletedProcess[str], match: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("opsdeck: ") and match in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def _audit(deck: Path) -> list[dict[str, Any]]:
    return json.loads(opsdeck("audit", "--json", deck=deck, check=True).stdout)


@pytest.fixture(scope="module")
def clones(demo_deck: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """alice's clone (the demo deck) and bob's, both following the demo's team remote."""
    remote = _git(demo_deck, "remote", "get-url", "origin").strip()
    bob = tmp_path_factory.mktemp("team") / "bob"
    subprocess.run(["git", "clone", "-q", remote, str(bob)], check=True)
    for key, value in (
        ("user.name", "Bob"),
        ("user.email", "bob@shop.example"),
        ("user.signingkey", str(demo_key("bob"))),
    ):
        _git(bob, "config", key, value)
    return {"alice": demo_deck, "bob": bob, "remote": Path(remote)}


def _request(deck: Path, *args: str) -> dict[str, Any]:
    data = _json(*args, "--yes", deck=deck)
    assert "status" in data and data["status"] == "pending", data
    return dict(data)


def test_a_promote_in_one_clone_is_what_the_other_shows_and_rolls_back_from(clones: dict[str, Path]) -> None:
    alice, bob = clones["alice"], clones["bob"]
    (baked,) = _json("bake", "--service", "worker", deck=alice)
    before = _image(bob, "dev", "worker")
    _json("promote", baked["id"], "dev", "--service", "worker", "--yes", deck=alice)
    assert _image(bob, "dev", "worker") == baked["id"]  # bob's clone follows the team's ledger when it reads
    assert _git(bob, "log", "-1", "--format=%s").startswith("promote worker")
    back = _json("rollback", "dev", "--service", "worker", "--yes", deck=bob)
    assert back["services"][0]["to_image"] == before
    assert _image(alice, "dev", "worker") == before
    log = _git(clones["alice"], "log", "--format=%s", "-2")
    assert log.splitlines()[0].startswith("rollback dev: worker") and "Bob" in _git(alice, "log", "-1", "--format=%an")


def test_two_clones_promoting_one_environment_at_once_one_runs_the_other_names_the_holder(
    clones: dict[str, Path],
) -> None:
    alice, bob = clones["alice"], clones["bob"]
    (first,) = _json("bake", "--service", "worker", deck=alice)
    (second,) = _json("bake", "--service", "worker", deck=alice)
    head = _git(alice, "rev-parse", "HEAD").strip()
    serial = state_serial(alice, "dev")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "opsdeck",
                "--deck",
                str(deck),
                "promote",
                image,
                "dev",
                "--service",
                "worker",
                "--yes",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for deck, image in ((alice, first["id"]), (bob, second["id"]))
    ]
    results = [finish(p, 600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], results
    loser = results[[p.returncode for p in procs].index(1)][1].strip().splitlines()[-1]
    assert loser.startswith("opsdeck: dev is locked: promote by ") and "lock id" in loser, loser
    _git(alice, "pull", "-q")
    assert int(_git(alice, "rev-list", "--count", f"{head}..HEAD").strip()) == 1  # one commit in the ledger
    # One release in the Terraform state: dev is blue/green, so the idle color is staged, then switched.
    assert state_serial(alice, "dev") == serial + 2


def test_the_team_wide_lock_lets_exactly_one_of_two_clones_in_a_hundred_times(clones: dict[str, Path]) -> None:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.safety import locks
    from opsdeck.errors import LockedError

    decks = [Deck.open(clones["alice"]), Deck.open(clones["bob"])]
    for trial in range(100):
        start, tried = threading.Barrier(2), threading.Barrier(2)
        won: list[int] = []
        lost: list[str] = []

        def one(
            index: int,
            start: threading.Barrier = start,
            tried: threading.Barrier = tried,
            won: list[int] = won,
            lost: list[str] = lost,
        ) -> None:
            start.wait()
            try:
                with locks.env_lock(decks[index], "sandbox", "lock trial"):
                    won.append(index)
                    tried.wait()
            except LockedError as exc:
                lost.append(str(exc))
                tried.wait()

        threads = [threading.Thread(target=one, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1 and len(lost) == 1 and lost[0].startswith("sandbox is locked: lock trial by "), (
            trial,
            won,
            lost,
        )
    assert locks.holder(decks[1], "sandbox") == (None, False)


def test_a_change_to_prod_waits_for_two_approvals_then_applies_exactly_the_approved_plan(
    clones: dict[str, Path],
) -> None:
    alice, bob = clones["alice"], clones["bob"]
    (baked,) = _json("bake", "--service", "api", deck=alice)
    _json("promote", baked["id"], "dev", "--service", "api", "--yes", deck=alice)
    staging = _request(alice, "promote", "dev", "staging", "--service", "api", "--reason", "release 9")
    assert staging["needed"] == 1 and staging["requested_by"].startswith("Alice")
    assert _image(alice, "staging", "api") != baked["id"]  # nothing applied
    assert _status(bob)["staging"]["request"]["id"] == staging["id"]  # every clone sees it waiting
    approved = _json("approve", staging["id"], deck=bob)  # bob signs with his own key
    assert approved["status"] == "approved" and approved["approvals"][0]["by"] == "bob@shop.example"
    _json("execute", staging["id"], "--yes", deck=alice)
    assert _image(alice, "staging", "api") == baked["id"]

    too_soon = opsdeck("promote", "staging", "prod", "--service", "api", "--yes", deck=alice)
    assert too_soon.returncode == 1 and "opsdeck: soak gate: api " in too_soon.stderr  # 30 min in staging first
    with edited(alice / "opsdeck.toml", "soak_minutes = 30\n", "soak_minutes = 0\n"):
        prod = _request(alice, "promote", "staging", "prod", "--service", "api", "--reason", "release 9")
    assert prod["needed"] == 2
    serial = state_serial(alice, "prod")
    _json("approve", prod["id"], deck=bob)
    _refused(opsdeck("execute", prod["id"], "--yes", deck=alice), f"request {prod['id']} has 1 of 2 approvals")
    _json("approve", prod["id"], "--key", str(demo_key("carol")), deck=bob)
    done = _json("execute", prod["id"], "--yes", deck=alice)  # no break-glass: the approvals are the way in
    assert done["request"] == prod["id"] and state_serial(alice, "prod") == serial + 1
    row = next(s for s in _status(alice)["prod"]["services"] if s["name"] == "api")
    assert row["image"]["version"] == baked["version"]
    assert row["instances"]["running"] == row["instances"]["desired"] == row["instances"]["on_pinned_image"]
    body = _git(alice, "log", "-1", "--format=%B")
    assert f"request: {prod['id']}" in body and "approved by: bob@shop.example, carol@shop.example" in body
    record = [r for r in _audit(alice) if r.get("request") == prod["id"] and r["result"] == "ok"][-1]
    assert record["approved_by"] == ["bob@shop.example", "carol@shop.example"]
    assert record["plan_sha256"] == prod["plan_sha256"] and record["who"]["key"].startswith("SHA256:")


def test_every_way_round_an_approval_is_refused(clones: dict[str, Path], tmp_path: Path) -> None:
    alice, bob = clones["alice"], clones["bob"]
    (baked,) = _json("bake", "--service", "web", deck=alice)
    _json("promote", baked["id"], "dev", "--service", "web", "--yes", deck=alice)
    request = _request(alice, "promote", "dev", "staging", "--service", "web")
    before = _image(alice, "staging", "web")
    # Approving your own request.
    _refused(opsdeck("approve", request["id"], deck=alice), "approvals must come from someone else")
    # Its pins put back to what staging runs, in one commit by someone with push access (the edit seen
    # on the demo): nobody can approve it, and it cannot run.
    _git(bob, "pull", "-q")
    record = bob / "requests" / request["id"] / "request.json"
    data = json.loads(record.read_text())
    data["pins"] = dict(data["base"])
    record.write_text(json.dumps(data, indent=2))
    _git(bob, "commit", "-qam", "pins back (not really approved)")
    _git(bob, "push", "-q")
    _refused(opsdeck("approve", request["id"], deck=bob), "was edited after it was filed (pins)")
    _refused(opsdeck("execute", request["id"], "--yes", deck=alice), "was edited after it was filed (pins)")
    _git(bob, "revert", "--no-edit", "HEAD")
    _git(bob, "push", "-q")
    # A key that is not in allowed_signers.
    mallory = tmp_path / "mallory"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(mallory)], check=True)
    _refused(opsdeck("approve", request["id"], "--key", str(mallory), deck=bob), "is not in allowed_signers")
    # Too few approvals.
    _refused(opsdeck("execute", request["id"], "--yes", deck=alice), "has 0 of 1 approvals")
    # A forged approval in the remote: bob's signature, claiming to be carol's.
    _json("approve", request["id"], deck=bob)
    folder = bob / "requests" / request["id"] / "approvals"
    record = json.loads((folder / "bob@shop.example.json").read_text())
    record["by"] = "carol@shop.example"
    (folder / "bob@shop.example.json").unlink()
    (folder / "carol@shop.example.json").write_text(json.dumps(record))
    _git(bob, "add", "-A", str(folder))
    _git(bob, "commit", "-qm", "carol approves (not really)")
    _git(bob, "push", "-q")
    _refused(opsdeck("execute", request["id"], "--yes", deck=alice), "not counted: carol@shop.example (signed by bob")
    listed = next(r for r in _json("requests", deck=alice) if r["id"] == request["id"])
    assert listed["approvals"][0]["valid"] is False
    # The same approval copied onto another request does not verify there.
    _git(bob, "pull", "-q")
    _git(bob, "revert", "--no-edit", "HEAD")  # back to bob's own, valid approval
    _git(bob, "push", "-q")
    other = _request(alice, "promote", "dev", "staging", "--service", "web", "--reason", "second")
    _git(bob, "pull", "-q")
    target = bob / "requests" / other["id"] / "approvals"
    target.mkdir(parents=True)
    shutil.copy(bob / "requests" / request["id"] / "approvals" / "bob@shop.example.json", target)
    _git(bob, "add", "-A", str(target))
    _git(bob, "commit", "-qm", "copy an approval")
    _git(bob, "push", "-q")
    copied = next(r for r in _json("requests", deck=alice) if r["id"] == other["id"])
    assert copied["approvals"][0]["valid"] is False and copied["status"] == "pending"
    # A saved plan changed after approval.
    bucket, key = _plan_object(alice, request["id"])
    s3 = _s3_of(alice, "staging")
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=original + b"\0")
    _refused(opsdeck("execute", request["id"], "--yes", deck=alice), "is not the one approved")
    s3.put_object(Bucket=bucket, Key=key, Body=original)
    assert _image(alice, "staging", "web") == before  # nothing of it was applied
    refusals = [r for r in _audit(alice) if r["result"] == "refused" and r.get("request") == request["id"]]
    assert len(refusals) >= 4
    # Approved and intact at last, it runs.
    _json("execute", request["id"], "--yes", deck=alice)
    assert _image(alice, "staging", "web") == baked["id"]
    _refused(opsdeck("execute", other["id"], "--yes", deck=alice), "is stale")  # its pins moved on


def _plan_object(deck: Path, request_id: str) -> tuple[str, str]:
    data = json.loads((deck / "requests" / request_id / "request.json").read_text())
    return data["plan_object"][0], data["plan_object"][1]


def _s3_of(deck: Path, env: str) -> Any:
    from opsdeck.core.estate.deck import Deck

    return Deck.open(deck).tools.env(env).cloud.client("s3")  # type: ignore[attr-defined]


def test_an_unreachable_remote_refuses_changes_and_reads_go_on_offline(clones: dict[str, Path]) -> None:
    alice, remote = clones["alice"], clones["remote"]
    hidden = remote.with_name(remote.name + ".away")
    remote.rename(hidden)
    try:
        data = _json("status", deck=alice)
        assert data["ledger"]["offline"] is True and data["environments"][0]["services"]
        assert "OFFLINE" in opsdeck("status", deck=alice, check=True).stdout
        _refused(opsdeck("deploy", "dev", "--yes", deck=alice), "cannot be reached")
        refused = [r for r in _audit(alice) if r["result"] == "refused"][-1]
        assert "cannot be reached" in refused["error"]
    finally:
        hidden.rename(remote)
    assert _json("status", deck=alice)["ledger"]["offline"] is False
