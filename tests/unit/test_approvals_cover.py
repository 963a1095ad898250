"""Approvals cover what is applied and recorded: a request's whole record is signed by its requester and
by each approver, and execute checks the record against the saved plan before it applies anything.

Each test edits a filed request as someone with push access could (committed and pushed), with or
without the requester's key to sign the edit again, and checks the edit is refused by name, nothing
applied. Fake tools, real git, real SSH keys.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opsdeck.adapters import sshsig
from opsdeck.core.estate.pins import read_pin
from opsdeck.core.release.execute import execute
from opsdeck.core.release.promote import ReleaseResult
from opsdeck.core.team import approvals, covers, requests
from opsdeck.errors import RefusedError
from tests.unit.estate import git
from tests.unit.team import Team, bake_one, file_request, rep

Edit = Callable[[dict[str, Any]], None]


def edit(team: Team, request_id: str, change: Edit, *, resign: Path | None = None) -> None:
    """Change request.json in alice's clone and push it; with ``resign``, sign the edited record again
    with that key, as a requester who edits their own request would."""
    git(team.a.root, "pull", "-q")
    path = team.a.root / "requests" / request_id / "request.json"
    data = json.loads(path.read_text())
    change(data)
    if resign is not None:
        record = {k: v for k, v in data.items() if k != "filed"}
        signed = covers.digests(record)
        signature = sshsig.sign(str(resign), covers.NAMESPACE, covers.payload(request_id, "request", signed))
        data["filed"] = {"key": sshsig.fingerprint(str(resign)), "signature": signature, "covers": signed}
    path.write_text(json.dumps(data, indent=2))
    git(team.a.root, "commit", "-qam", f"edit {request_id}")
    git(team.a.root, "push", "-q")


def refused_at_execute(team: Team, request_id: str, match: str) -> None:
    staged, calls = read_pin(team.a, "staging", "web"), len(team.world.calls)
    with pytest.raises(RefusedError, match=match):
        asyncio.run(execute(team.a, request_id, rep()))
    assert read_pin(team.a, "staging", "web") == staged
    assert not [c for c in team.world.calls[calls:] if c.startswith("apply staging")]
    assert not git(team.a.root, "status", "--porcelain").strip()  # nothing left behind in the working tree


def back_to_old_pins(data: dict[str, Any]) -> None:
    """The edit of the issue: the pins that would be committed put back to what staging runs now."""
    data["pins"] = dict(data["base"])


EDITS: dict[str, Edit] = {
    "pins": back_to_old_pins,
    "services": lambda d: d["services"][0].update(to_image="ami-0feedfacefeedface"),
    "diff": lambda d: d["diff"].append("  (nothing else)"),
    "needed": lambda d: d.update(needed=0),
    "requested_by": lambda d: d.update(requested_by="Bob <bob@shop.example>"),
}


@pytest.mark.parametrize("field", list(EDITS))
def test_a_field_edited_after_filing_voids_the_request(team: Team, field: str) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    edit(team, request.id, EDITS[field])
    git(team.b.root, "pull", "-q")
    seen = requests.load(team.b, request.id)
    assert seen.status == "stale" and f"request.json was edited after it was filed ({field})" in seen.stale
    with pytest.raises(RefusedError, match=rf"is stale: request\.json was edited after it was filed \({field}\)"):
        asyncio.run(approvals.approve(team.b, request.id, rep()))
    refused_at_execute(team, request.id, rf"request {request.id} is stale .*\({field}\).*request it again")


@pytest.mark.parametrize("field", list(EDITS))
def test_a_field_edited_after_one_of_two_approvals_voids_the_approval(team: Team, field: str) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    asyncio.run(approvals.approve(team.b, request.id, rep()))
    # The requester edits the request and signs it again: bob's approval no longer covers it.
    edit(team, request.id, EDITS[field], resign=team.keys["alice"])
    seen = requests.load(team.a, request.id)
    if field == "requested_by":  # signed by alice, naming bob: not a request anyone can trust
        assert seen.status == "stale" and "names Bob <bob@shop.example> as its requester but is signed by alice" in (
            seen.stale
        )
        return
    (approval,) = seen.approvals
    assert not approval.valid and approval.problem == f"the request was edited after this approval ({field})"
    refused_at_execute(team, request.id, r"has 0 of 1 approvals; not counted: bob@shop\.example \(the request was")


def test_the_requester_cannot_approve_by_renaming_the_requester(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    for resign in (None, team.keys["alice"]):
        edit(
            team,
            request.id,
            lambda d: d.update(requested_by="Carol <carol@shop.example>", requested_key=""),
            resign=resign,
        )
        with pytest.raises(RefusedError, match=rf"request {request.id} is stale"):
            asyncio.run(approvals.approve(team.a, request.id, rep()))
    refused_at_execute(team, request.id, "is stale")


@pytest.mark.parametrize(
    ("field", "change", "says"),
    [
        ("pins", back_to_old_pins, r"pins: envs/staging/images\.auto\.tfvars\.json sets images\.web = "),
        ("services", EDITS["services"], r"services: web goes to ami-0feedfacefeedface, but its pin says"),
        ("diff", EDITS["diff"], r"diff: it has \d+ lines, the approved plan's has \d+"),
        ("pins", lambda d: d["pins"].update({"opsdeck.toml": "x"}), r"pins: it writes opsdeck\.toml, which is not"),
    ],
)
def test_a_record_that_does_not_say_what_its_plan_does_is_refused_at_execute(
    team: Team, field: str, change: Edit, says: str
) -> None:
    """The requester edits and signs again before anyone approves, so every signature is valid: only the
    check against the saved plan can see that the record does not describe it."""
    bake_one(team.a, "web")
    request = file_request(team)
    edit(team, request.id, change, resign=team.keys["alice"])
    approved = asyncio.run(approvals.approve(team.b, request.id, rep()))
    assert approved.status == "approved"
    refused_at_execute(team, request.id, rf"request {request.id} does not match its approved plan \({says}")


def test_a_request_filed_before_this_change_is_refused_with_a_way_forward(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)

    def as_filed_before(data: dict[str, Any]) -> None:
        del data["format"], data["filed"]

    edit(team, request.id, as_filed_before)
    seen = requests.load(team.a, request.id)
    assert seen.status == "stale" and "filed by an older opsdeck" in seen.stale
    refused_at_execute(team, request.id, r"filed by an older opsdeck.*plan and request it again")


def test_an_untouched_request_still_runs_exactly_its_plan(team: Team) -> None:
    bake_one(team.a, "web")
    request = file_request(team)
    assert request.filed is not None and request.filed["key"].startswith("SHA256:")
    asyncio.run(approvals.approve(team.b, request.id, rep()))
    result = asyncio.run(execute(team.a, request.id, rep()))
    assert isinstance(result, ReleaseResult) and read_pin(team.a, "staging", "web") == result.moved[0].to_image


def test_a_requester_whose_key_cannot_sign_files_nothing(team: Team) -> None:
    bake_one(team.a, "web")
    git(team.a.root, "config", "user.signingkey", str(team.keys["mallory"]))
    before = git(team.a.root, "rev-parse", "HEAD")
    with pytest.raises(
        RefusedError,
        match=r"is not in allowed_signers: you cannot request a change to staging .*who must be in allowed_signers",
    ):
        file_request(team)
    assert not (team.a.root / "requests").exists() or not list((team.a.root / "requests").iterdir())
    assert not [k for k in team.world.objects if k[1].startswith("opsdeck/requests/")]
    assert git(team.a.root, "rev-parse", "HEAD") != before  # the deploy to dev ran; the request did not
    assert not git(team.a.root, "status", "--porcelain").strip()
