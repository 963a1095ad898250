"""Image lifecycle on the demo deck: bake, promote through the chain, break-glass, roll back, revoke.

Every refusal also asserts that nothing changed: git head and working tree, pin files, what runs.
Runs after test_10_foundation (it moves dev and staging to a new image and leaves prod rolled back).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import opsdeck

pytestmark = pytest.mark.integration

ENVS = ("sandbox", "dev", "staging", "prod")
BREAK_GLASS = {"access_key_id": "AKIAOPSDECKTESTPROD", "secret_access_key": "prod-break-glass-secret-7f3a9c"}


def _git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def _status(deck: Path) -> dict[str, Any]:
    data = json.loads(opsdeck("status", "--json", deck=deck, check=True).stdout)
    return {e["name"]: e for e in data["environments"]}


def _pin(deck: Path, env: str) -> str:
    return json.loads((deck / "envs" / env / "image.auto.tfvars.json").read_text())["image_id"]


def fingerprint(deck: Path) -> dict[str, Any]:
    """Everything a refused operation must leave alone."""
    status = _status(deck)
    return {
        "head": _git(deck, "rev-parse", "HEAD"),
        "worktree": _git(deck, "status", "--porcelain"),
        "pins": {env: (deck / "envs" / env / "image.auto.tfvars.json").read_text() for env in ENVS},
        "running": {env: sorted(set(status[env]["instance_images"].values())) for env in ENVS},
        "counts": {env: status[env]["instances"] for env in ENVS},
    }


def _audit(deck: Path) -> list[dict[str, Any]]:
    return json.loads(opsdeck("audit", "--json", deck=deck, check=True).stdout)


def _refused(deck: Path, *args: str, match: str) -> None:
    before = fingerprint(deck)
    records = len(_audit(deck))
    result = opsdeck(*args, deck=deck)
    assert result.returncode == 1, (result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("opsdeck: ") and match in last, result.stderr
    assert "Traceback" not in result.stderr
    assert fingerprint(deck) == before
    new = _audit(deck)[records:]
    assert new and new[-1]["result"] == "refused", new


def _on_image(deck: Path, env: str, image: str) -> None:
    status = _status(deck)[env]
    assert status["image"]["id"] == image
    counts = status["instances"]
    assert counts["running"] == counts["desired"] == counts["on_pinned_image"] > 0, counts
    assert set(status["instance_images"].values()) == {image}


@pytest.fixture(scope="module")
def baked(demo_deck: Path) -> dict[str, Any]:
    result = opsdeck("bake", "--json", deck=demo_deck, check=True)
    return json.loads(result.stdout)


def test_bake_prints_the_new_image(demo_deck: Path, baked: dict[str, Any]) -> None:
    assert set(baked) >= {"id", "version", "git_sha", "seconds"}
    assert baked["version"] == "1.0.1"  # next patch after the demo's 1.0.0
    assert baked["git_sha"] == _git(demo_deck, "rev-parse", "HEAD")[:12]
    images = {i["id"]: i for i in json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)}
    image = images[baked["id"]]
    assert image["version"] == "1.0.1" and image["environments"] == []
    assert image["built_by"] and image["base"]  # tagged with who built it and which base it builds on


def test_promote_through_the_chain_with_break_glass_then_roll_back(demo_deck: Path, baked: dict[str, Any]) -> None:
    new, old = baked["id"], _pin(demo_deck, "prod")
    commits = int(_git(demo_deck, "rev-list", "--count", "HEAD"))

    out = json.loads(
        opsdeck(
            "promote", new, "dev", "--yes", "--reason", "release 1.0.1", "--json", deck=demo_deck, check=True
        ).stdout
    )
    assert out["environment"] == "dev" and out["from_image"] == old and out["to_image"] == new
    assert out["commit"] == _git(demo_deck, "rev-parse", "HEAD").strip()
    _on_image(demo_deck, "dev", new)

    opsdeck("promote", "dev", "staging", "--yes", "--reason", "soak passed", deck=demo_deck, check=True)
    _on_image(demo_deck, "staging", new)
    _on_image(demo_deck, "prod", old)

    # prod: break-glass with no other step: the demo stored prod's credentials in the keyring.
    out = json.loads(
        opsdeck(
            "promote",
            "staging",
            "prod",
            "--yes",
            "--break-glass",
            "--reason",
            "CVE-2026-1234",
            "--json",
            deck=demo_deck,
            check=True,
        ).stdout
    )
    assert out["to_image"] == new
    _on_image(demo_deck, "prod", new)
    opened = [r for r in _audit(demo_deck) if r["action"] == "break-glass" and r["result"] == "opened"]
    assert opened[-1]["credentials_from"].startswith("keyring")

    # A team's own credentials, stored in the keyring from stdin (never argv), take over.
    stored = opsdeck("secrets", "set", "prod", deck=demo_deck, input=json.dumps(BREAK_GLASS))
    assert stored.returncode == 0, stored.stderr
    rolled = opsdeck(
        "rollback", "prod", "--yes", "--break-glass", "--reason", "error rate up", "--json", deck=demo_deck, check=True
    )
    assert json.loads(rolled.stdout)["to_image"] == old
    _on_image(demo_deck, "prod", old)
    assert BREAK_GLASS["secret_access_key"] not in rolled.stdout + rolled.stderr

    log = _git(demo_deck, "log", "--format=%s", f"-{int(_git(demo_deck, 'rev-list', '--count', 'HEAD')) - commits}")
    subjects = log.strip().splitlines()
    assert len(subjects) == 4  # one commit per promote and rollback
    assert subjects[0].startswith("rollback web prod: 1.0.1 -> 1.0.0")
    assert subjects[1] == "promote web 1.0.1 to prod: CVE-2026-1234"
    assert subjects[2] == "promote web 1.0.1 to staging: soak passed"
    assert subjects[3] == "promote web 1.0.1 to dev: release 1.0.1"
    body = _git(demo_deck, "log", "-1", "--format=%B", "HEAD~1")
    for needle in (
        "app: web",
        "version: 1.0.1",
        f"image: {new}",
        "from: staging",
        "to: prod",
        "reason: CVE-2026-1234",
        "break-glass: CVE-2026-1234",
        "Opsdeck-Audit: ",
    ):
        assert needle in body, body

    history = json.loads(opsdeck("history", "prod", "--json", deck=demo_deck, check=True).stdout)
    assert [h["version"] for h in history[:3]] == ["1.0.0", "1.0.1", "1.0.0"]

    records = _audit(demo_deck)
    done = [(r["action"], r["environment"], r["result"]) for r in records if r["result"] != "started"]
    for expected in [
        ("bake", None, "ok"),
        ("promote", "dev", "ok"),
        ("promote", "staging", "ok"),
        ("promote", "prod", "ok"),
        ("rollback", "prod", "ok"),
        ("break-glass", "prod", "opened"),
    ]:
        assert expected in done
    promote_prod = next(
        r for r in records if r["action"] == "promote" and r["environment"] == "prod" and r["result"] == "ok"
    )
    assert promote_prod["reason"] == "CVE-2026-1234" and promote_prod["break_glass"] is True
    assert promote_prod["who"]["git"] and promote_prod["who"]["aws"].startswith("arn:aws:")
    assert promote_prod["from"] == old and promote_prod["to"] == new and promote_prod["seconds"] > 0
    verified = opsdeck("audit", "verify", deck=demo_deck)
    assert verified.returncode == 0 and "hash chain verified" in verified.stdout
    audit_text = (demo_deck / ".opsdeck" / "audit.jsonl").read_text()
    assert BREAK_GLASS["secret_access_key"] not in audit_text


def test_status_shows_lag_behind_the_source(demo_deck: Path, baked: dict[str, Any]) -> None:
    status = _status(demo_deck)
    assert status["staging"]["lag"]["in_sync"] is True and status["staging"]["lag"]["source"] == "dev"
    prod = status["prod"]["lag"]
    assert prod["in_sync"] is False and prod["behind"] == 1 and prod["source_image"] == baked["id"]
    assert prod["since"] is not None


def test_refused_wrong_chain(demo_deck: Path) -> None:
    _refused(demo_deck, "promote", "sandbox", "staging", "--yes", match="staging promotes from dev, not from sandbox")


def test_refused_image_that_never_ran_in_the_source(demo_deck: Path) -> None:
    fresh = json.loads(opsdeck("bake", "--json", deck=demo_deck, check=True).stdout)
    _refused(
        demo_deck,
        "promote",
        fresh["version"],
        "staging",
        "--yes",
        match=f"({fresh['id']}) has not run in dev, and staging only takes images that have",
    )


def test_refused_protected_without_break_glass(demo_deck: Path) -> None:
    _refused(demo_deck, "rollback", "prod", "--yes", match="prod is protected: rollback needs break-glass")
    _refused(demo_deck, "promote", "staging", "prod", "--yes", match="prod is protected: promote needs break-glass")


def test_refused_dirty_pin_file(demo_deck: Path) -> None:
    pin = demo_deck / "envs" / "dev" / "image.auto.tfvars.json"
    original = pin.read_text()
    pin.write_text(original.replace("\n}", "\n}\n"))
    try:
        _refused(
            demo_deck,
            "promote",
            "sandbox",
            "dev",
            "--yes",
            match="envs/dev/image.auto.tfvars.json has uncommitted changes",
        )
        assert pin.read_text() != original  # the person's edit is kept, not thrown away
    finally:
        pin.write_text(original)


def test_revoked_image_is_refused_and_flagged(demo_deck: Path) -> None:
    bad = json.loads(opsdeck("bake", "--json", deck=demo_deck, check=True).stdout)
    opsdeck("promote", bad["id"], "sandbox", "--yes", "--reason", "try it", deck=demo_deck, check=True)
    revoked = opsdeck("revoke", bad["version"], "--reason", "leaks memory", deck=demo_deck)
    assert revoked.returncode == 0, revoked.stderr
    _refused(demo_deck, "promote", "sandbox", "dev", "--yes", match="is revoked: leaks memory")
    status = _status(demo_deck)
    assert status["sandbox"]["image"] == {"id": bad["id"], "version": bad["version"], "revoked": True}
    images = {i["id"]: i for i in json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)}
    assert images[bad["id"]]["revoked"] and images[bad["id"]]["revoked_reason"] == "leaks memory"
    assert images[bad["id"]]["environments"] == ["sandbox"]
    text = opsdeck("status", deck=demo_deck, check=True).stdout
    assert "REVOKED" in next(line for line in text.splitlines() if line.startswith("sandbox"))
    # Rolling the sandbox back off the revoked image is allowed (and puts it back as it was).
    opsdeck("rollback", "sandbox", "--yes", "--reason", "revoked", deck=demo_deck, check=True)
    assert _status(demo_deck)["sandbox"]["image"]["revoked"] is False


def test_failed_apply_leaves_pin_and_environment_agreeing(demo_deck: Path, baked: dict[str, Any]) -> None:
    """Someone takes the Terraform state lock between plan and apply: apply fails, nothing is lost."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter
    from opsdeck.core.release.promote import promote
    from opsdeck.errors import LockedError

    deck = Deck.open(demo_deck)
    bucket, key = deck.state_location("prod") or ("", "")
    s3 = deck.aws().client("s3")
    before = fingerprint(demo_deck)
    records = len(_audit(demo_deck))
    opsdeck("secrets", "set", "prod", deck=demo_deck, input=json.dumps(BREAK_GLASS), check=True)
    from opsdeck.core.safety.breakglass import open_break_glass

    glass = open_break_glass(deck, "prod", "lock test")

    async def grab_lock_then_confirm(preview: Any) -> bool:
        lock = {
            "ID": "11111111-2222-3333-4444-555555555555",
            "Operation": "OperationTypeApply",
            "Who": "mallory@elsewhere",
            "Version": "1.11.4",
            "Created": "2026-11-22T09:00:00Z",
            "Path": key,
        }
        s3.put_object(Bucket=bucket, Key=f"{key}.tflock", Body=json.dumps(lock).encode())
        return True

    try:
        with pytest.raises(LockedError) as err:
            asyncio.run(
                promote(
                    deck,
                    "staging",
                    "prod",
                    Reporter("promote", "prod"),
                    reason="x",
                    confirm=grab_lock_then_confirm,
                    glass=glass,
                )
            )
    finally:
        s3.delete_object(Bucket=bucket, Key=f"{key}.tflock")
    message = str(err.value)
    assert message.startswith("promote of prod failed at apply (pin restored to ")
    assert "mallory@elsewhere" in message
    after = fingerprint(demo_deck)
    assert after == before
    last = _audit(demo_deck)[records:]
    assert last[-1]["action"] == "promote" and last[-1]["result"] == "failed"
    assert last[-1]["error"].startswith("apply: ")


def test_a_new_base_marks_older_app_images_outdated(demo_deck: Path) -> None:
    base = json.loads(opsdeck("bake", "--base", "--json", deck=demo_deck, check=True).stdout)
    assert base["layer"] == "base"
    images = json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)
    apps = [i for i in images if i["layer"] == "app"]
    assert apps and all(i["base_outdated"] for i in apps)  # built on a base that is no longer the newest
    fresh = json.loads(opsdeck("bake", "--json", deck=demo_deck, check=True).stdout)
    assert fresh["base_id"] == base["id"]
    images = {i["id"]: i for i in json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)}
    assert images[fresh["id"]]["base"] == base["id"] and images[fresh["id"]]["base_outdated"] is False
    text = opsdeck("images", deck=demo_deck, check=True).stdout
    assert "base outdated" in text
