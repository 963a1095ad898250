"""Image lifecycle on the demo estate: bake per service, promote one service and release trains through
the chain and across accounts and regions, break-glass, roll back, revoke.

Every refusal also asserts that nothing changed: git head and working tree, pin files, what runs.
Runs after test_10_foundation (it moves dev and staging to new images and leaves prod rolled back).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import NO_PROD_APPROVALS, approve_and_execute, edited, live_pins, opsdeck

pytestmark = pytest.mark.integration

ENVS = ("sandbox", "dev", "staging", "prod")
SERVICES = ("web", "api", "worker")
PIN = "images.auto.tfvars.json"
BREAK_GLASS = {"access_key_id": "AKIAOPSDECKTESTPROD", "secret_access_key": "prod-break-glass-secret-7f3a9c"}


def _git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def _status(deck: Path) -> dict[str, Any]:
    data = json.loads(opsdeck("status", "--json", deck=deck, check=True).stdout)
    return {e["name"]: e for e in data["environments"]}


def _pins(deck: Path, env: str) -> dict[str, str]:
    return live_pins(deck, env)


def fingerprint(deck: Path) -> dict[str, Any]:
    """Everything a refused operation must leave alone."""
    status = _status(deck)
    return {
        "head": _git(deck, "rev-parse", "HEAD"),
        "worktree": _git(deck, "status", "--porcelain"),
        "pins": {env: (deck / "envs" / env / PIN).read_text() for env in ENVS},
        "running": {env: sorted(status[env]["instance_images"].items()) for env in ENVS},
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
    assert any(r["result"] == "refused" for r in new), new


def _on_images(deck: Path, env: str, images: dict[str, str]) -> None:
    """Each named service of ``env`` pins its image and runs it on every desired instance."""
    row = _status(deck)[env]
    services = {s["name"]: s for s in row["services"]}
    for service, image in images.items():
        assert services[service]["image"]["id"] == image, (env, service)
        counts = services[service]["instances"]
        assert counts["running"] == counts["desired"] == counts["on_pinned_image"] > 0, (env, service, counts)


def _assume(deck: Path, role: str) -> dict[str, Any]:
    """What `aws sts assume-role` prints, from the local cloud."""
    import boto3

    endpoint = json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["endpoint"]
    sts = boto3.client(
        "sts", endpoint_url=endpoint, region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return dict(sts.assume_role(RoleArn=role, RoleSessionName="alice-break-glass"))


def _instances(deck: Path, env: str, service: str) -> set[str]:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.release.fleet import env_groups, service_groups

    opened = Deck.open(deck)
    return {i.id for g in service_groups(opened, env_groups(opened, env), service) for i in g.instances}


@pytest.fixture(scope="module")
def baked(demo_deck: Path) -> dict[str, dict[str, Any]]:
    result = opsdeck("bake", "--json", deck=demo_deck, check=True)
    return {image["service"]: image for image in json.loads(result.stdout)}


def test_bake_makes_one_image_per_service(demo_deck: Path, baked: dict[str, dict[str, Any]]) -> None:
    assert sorted(baked) == sorted(SERVICES)
    for image in baked.values():
        assert set(image) >= {"id", "service", "version", "git_sha", "seconds"}
        assert image["version"] == "1.0.1"  # next patch after the demo's 1.0.0, per service
        assert image["git_sha"] == _git(demo_deck, "rev-parse", "HEAD")[:12]
    status = _status(demo_deck)
    assert status["staging"]["lag"]["in_sync"] is True and status["staging"]["lag"]["source"] == "dev"


def test_one_service_promoted_alone_changes_only_its_pin_and_its_instances(
    demo_deck: Path, baked: dict[str, dict[str, Any]]
) -> None:
    api = json.loads(opsdeck("bake", "--service", "api", "--json", deck=demo_deck, check=True).stdout)
    assert [i["service"] for i in api] == ["api"] and api[0]["version"] == "1.0.2"
    others = {s: _instances(demo_deck, "dev", s) for s in ("web", "worker")}
    pins = _pins(demo_deck, "dev")
    out = json.loads(
        opsdeck(
            "promote", api[0]["id"], "dev", "--service", "api", "--yes", "--json", deck=demo_deck, check=True
        ).stdout
    )
    assert out["services"] == [{"name": "api", "from_image": pins["api"], "to_image": api[0]["id"], "version": "1.0.2"}]
    assert _git(demo_deck, "show", "--name-only", "--format=", "HEAD").split() == [f"envs/dev/{PIN}"]
    assert _pins(demo_deck, "dev") == {**pins, "api": api[0]["id"]}
    _on_images(demo_deck, "dev", {"api": api[0]["id"]})
    assert {s: _instances(demo_deck, "dev", s) for s in ("web", "worker")} == others  # not one instance moved
    # Put dev's api back where the rest of this module expects it.
    opsdeck("rollback", "dev", "--service", "api", "--yes", deck=demo_deck, check=True)


def test_a_release_train_through_the_chain_with_break_glass_then_back(
    demo_deck: Path, baked: dict[str, dict[str, Any]]
) -> None:
    images = json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)
    newest = {s: [i for i in images if i["service"] == s][-1] for s in SERVICES}  # api has a 1.0.2 by now
    new = {s: newest[s]["id"] for s in SERVICES}
    train = ", ".join(f"{s} {newest[s]['version']}" for s in SERVICES)
    old = {env: _pins(demo_deck, env) for env in ENVS}
    commits = int(_git(demo_deck, "rev-list", "--count", "HEAD"))

    out = json.loads(opsdeck("deploy", "dev", "--yes", "--reason", "release 1.0.1", "--json", deck=demo_deck).stdout)
    assert sorted(s["name"] for s in out["services"]) == sorted(SERVICES)
    assert out["commit"] == _git(demo_deck, "rev-parse", "HEAD").strip()
    _on_images(demo_deck, "dev", new)

    # staging takes one approval: the promote is a request until bob signs it, then it runs as approved.
    request = json.loads(
        opsdeck("promote", "dev", "staging", "--yes", "--reason", "soak passed", "--json", deck=demo_deck).stdout
    )
    assert request["status"] == "pending" and request["needed"] == 1
    _on_images(demo_deck, "staging", old["staging"])  # nothing applied yet
    approve_and_execute(demo_deck, request["id"], "bob")
    _on_images(demo_deck, "staging", new)
    _on_images(demo_deck, "prod", old["prod"])

    # prod: break-glass with no other step (the demo stored prod's credentials in the keyring); another
    # account and region: each image is copied to us-west-2 and shared with production's account.
    promoted = opsdeck(
        "promote", "staging", "prod", "--yes", "--break-glass", "--reason", "CVE-2026-1234", "--json", deck=demo_deck
    )
    assert promoted.returncode == 0, promoted.stderr
    out = json.loads(promoted.stdout)
    copies = {d["image"]: d["image_in_region"] for d in out["distributed"]}
    assert set(copies) == set(new.values()) and all(d["copied"] and d["shared"] for d in out["distributed"])
    _on_images(demo_deck, "prod", {s: copies[new[s]] for s in SERVICES})
    opened = [r for r in _audit(demo_deck) if r["action"] == "break-glass" and r["result"] == "opened"]
    assert opened[-1]["credentials_from"].startswith("keyring")

    # A team's own credentials, stored in the keyring from stdin (never argv), take over. Ones that reach
    # another account than production's are refused before anything is locked or changed.
    stored = opsdeck("secrets", "set", "prod", deck=demo_deck, input=json.dumps(BREAK_GLASS))
    assert stored.returncode == 0, stored.stderr
    _refused(
        demo_deck,
        "rollback",
        "prod",
        "--yes",
        "--break-glass",
        "--reason",
        "wrong key",
        match="the break-glass credentials reach account 123456789012, but opsdeck.toml says prod is in account",
    )
    assumed = _assume(demo_deck, "arn:aws:iam::333333333333:role/opsdeck-break-glass")  # `aws sts assume-role`
    opsdeck("secrets", "set", "prod", deck=demo_deck, input=json.dumps(assumed, default=str), check=True)
    rolled = opsdeck(
        "rollback", "prod", "--yes", "--break-glass", "--reason", "error rate up", "--json", deck=demo_deck
    )
    assert rolled.returncode == 0, rolled.stderr
    assert {s["name"]: s["to_image"] for s in json.loads(rolled.stdout)["services"]} == old["prod"]
    _on_images(demo_deck, "prod", old["prod"])
    secret = assumed["Credentials"]["SecretAccessKey"]
    assert secret not in rolled.stdout + rolled.stderr

    log = _git(demo_deck, "log", "--format=%s", f"-{int(_git(demo_deck, 'rev-list', '--count', 'HEAD')) - commits}")
    subjects = [s for s in log.strip().splitlines() if not s.startswith(("request ", "approve "))]
    assert len(subjects) == 4  # one commit per release, however many services it moved
    back = ", ".join(f"{s} {newest[s]['version']} -> 1.0.0" for s in SERVICES)
    assert subjects[0] == f"rollback prod: {back} (error rate up)"
    assert subjects[1] == f"promote {train} to prod: CVE-2026-1234"
    assert subjects[2] == f"promote {train} to staging: soak passed"
    assert subjects[3] == f"deploy {train} to dev: release 1.0.1"
    body = _git(demo_deck, "log", "-1", "--format=%B", "HEAD~1")
    lines = body.splitlines()
    for service in SERVICES:
        expected = f"-> {newest[service]['version']} ({copies[new[service]]})"
        assert any(line.startswith(f"{service}: 1.0.0 (") and line.endswith(expected) for line in lines), body
    for needle in (
        "from: staging",
        "to: prod",
        "reason: CVE-2026-1234",
        "break-glass: CVE-2026-1234",
        f"{new['web']} copied to us-west-2 as {copies[new['web']]}",
        "Opsdeck-Audit: ",
    ):
        assert needle in body, body

    history = json.loads(opsdeck("history", "prod", "--service", "web", "--json", deck=demo_deck, check=True).stdout)
    assert [h["services"][0]["version"] for h in history[:3]] == ["1.0.0", newest["web"]["version"], "1.0.0"]

    records = _audit(demo_deck)
    done = [(r["action"], r["environment"], r["result"]) for r in records if r["result"] != "started"]
    for expected in [
        ("bake", None, "ok"),
        ("deploy", "dev", "ok"),
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
    assert promote_prod["who"]["git"] and promote_prod["who"]["aws"].startswith("arn:aws:sts::333333333333:")
    assert promote_prod["to"] == new and promote_prod["seconds"] > 0
    assert {d["image"] for d in promote_prod["distributed"]} == set(new.values())
    verified = opsdeck("audit", "verify", deck=demo_deck)
    assert verified.returncode == 0 and "hash chain verified" in verified.stdout
    audit_text = (demo_deck / ".opsdeck" / "audit.jsonl").read_text()
    assert BREAK_GLASS["secret_access_key"] not in audit_text and secret not in audit_text


def test_refused_wrong_chain(demo_deck: Path) -> None:
    _refused(demo_deck, "promote", "sandbox", "staging", "--yes", match="staging promotes from dev, not from sandbox")


def test_refused_image_that_never_ran_in_the_source(demo_deck: Path) -> None:
    (fresh,) = json.loads(opsdeck("bake", "--service", "web", "--json", deck=demo_deck, check=True).stdout)
    _refused(
        demo_deck,
        "promote",
        fresh["version"],
        "staging",
        "--service",
        "web",
        "--yes",
        match=f"({fresh['id']}) has not run in dev, and staging only takes images that have",
    )


def test_refused_image_of_another_service(demo_deck: Path, baked: dict[str, dict[str, Any]]) -> None:
    web = baked["web"]["id"]
    _refused(
        demo_deck,
        "promote",
        web,
        "sandbox",
        "--service",
        "api",
        "--yes",
        match=f"{web} is an image of web, not of api",
    )


def test_refused_protected_without_break_glass(demo_deck: Path) -> None:
    # Without approvals (the sample's prod takes two), a protected environment takes break-glass only.
    with edited(demo_deck / "opsdeck.toml", *NO_PROD_APPROVALS):
        _refused(demo_deck, "rollback", "prod", "--yes", match="prod is protected: rollback needs break-glass")
        _refused(demo_deck, "promote", "staging", "prod", "--yes", match="prod is protected: promote needs break-glass")


def test_refused_dirty_pin_file(demo_deck: Path) -> None:
    pin = demo_deck / "envs" / "dev" / PIN
    original = pin.read_text()
    pin.write_text(original.replace("\n}", "\n}\n"))
    try:
        _refused(demo_deck, "deploy", "dev", "--yes", match=f"envs/dev/{PIN} has uncommitted changes")
        assert pin.read_text() != original  # the person's edit is kept, not thrown away
    finally:
        pin.write_text(original)


def test_revoked_image_is_refused_and_flagged(demo_deck: Path) -> None:
    (bad,) = json.loads(opsdeck("bake", "--service", "worker", "--json", deck=demo_deck, check=True).stdout)
    opsdeck("promote", bad["id"], "sandbox", "--yes", "--reason", "try it", deck=demo_deck, check=True)
    revoked = opsdeck("revoke", bad["id"], "--reason", "leaks memory", deck=demo_deck)
    assert revoked.returncode == 0, revoked.stderr
    _refused(demo_deck, "promote", bad["id"], "dev", "--yes", match="is revoked: leaks memory")
    worker = next(s for s in _status(demo_deck)["sandbox"]["services"] if s["name"] == "worker")
    assert worker["image"] == {"id": bad["id"], "version": bad["version"], "revoked": True}
    images = {i["id"]: i for i in json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)}
    assert images[bad["id"]]["revoked"] and images[bad["id"]]["revoked_reason"] == "leaks memory"
    assert images[bad["id"]]["environments"] == ["sandbox"]
    text = opsdeck("status", deck=demo_deck, check=True).stdout
    assert "REVOKED" in next(line for line in text.splitlines() if bad["id"] in line)
    # Rolling the sandbox back off the revoked image is allowed (and puts it back as it was).
    opsdeck("rollback", "sandbox", "--service", "worker", "--yes", "--reason", "revoked", deck=demo_deck, check=True)
    worker = next(s for s in _status(demo_deck)["sandbox"]["services"] if s["name"] == "worker")
    assert worker["image"]["revoked"] is False


def test_failed_apply_leaves_pins_and_environment_agreeing(demo_deck: Path) -> None:
    """Someone takes the Terraform state lock between plan and apply: apply fails, nothing is lost."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter
    from opsdeck.core.release.promote import promote
    from opsdeck.core.safety.breakglass import open_break_glass
    from opsdeck.errors import LockedError

    deck = Deck.open(demo_deck)
    backend = deck.backend("prod")
    assert backend is not None
    s3 = deck.tools.env("prod").cloud.client("s3")  # type: ignore[attr-defined]
    before = fingerprint(demo_deck)
    records = len(_audit(demo_deck))
    glass = open_break_glass(deck, "prod", "lock test")

    async def grab_lock_then_confirm(preview: Any) -> bool:
        lock = {
            "ID": "11111111-2222-3333-4444-555555555555",
            "Operation": "OperationTypeApply",
            "Who": "mallory@elsewhere",
            "Version": "1.11.4",
            "Created": "2026-11-22T09:00:00Z",
            "Path": backend.key,
        }
        s3.put_object(Bucket=backend.bucket, Key=f"{backend.key}.tflock", Body=json.dumps(lock).encode())
        return True

    try:
        with pytest.raises(LockedError) as err:
            asyncio.run(
                promote(
                    deck,
                    "staging",
                    "prod",
                    Reporter("promote", "prod"),
                    services=["web"],
                    reason="x",
                    confirm=grab_lock_then_confirm,
                    glass=glass,
                )
            )
    finally:
        s3.delete_object(Bucket=backend.bucket, Key=f"{backend.key}.tflock")
    message = str(err.value)
    assert message.startswith("promote of prod failed at apply (pins restored): ")
    assert "mallory@elsewhere" in message
    assert fingerprint(demo_deck) == before
    last = _audit(demo_deck)[records:]
    assert last[-1]["action"] == "promote" and last[-1]["result"] == "failed"
    assert last[-1]["error"].startswith("promote of prod failed at apply")


def test_a_new_base_marks_older_service_images_outdated(demo_deck: Path) -> None:
    (base,) = json.loads(opsdeck("bake", "--base", "--json", deck=demo_deck, check=True).stdout)
    assert base["layer"] == "base" and base["service"] is None
    images = json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)
    apps = [i for i in images if i["layer"] == "app"]
    assert apps and all(i["base_outdated"] for i in apps)  # built on a base that is no longer the newest
    (fresh,) = json.loads(opsdeck("bake", "--service", "web", "--json", deck=demo_deck, check=True).stdout)
    assert fresh["base_id"] == base["id"]
    images = {i["id"]: i for i in json.loads(opsdeck("images", "--json", deck=demo_deck, check=True).stdout)}
    assert images[fresh["id"]]["base"] == base["id"] and images[fresh["id"]]["base_outdated"] is False
    text = opsdeck("images", deck=demo_deck, check=True).stdout
    assert "base outdated" in text
