"""Core release operations on the fake tools: bake per service, promote (one service, release trains,
across accounts and regions), rollback, the chain, revoked images, the audited-operation context."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin, read_pins
from opsdeck.core.events import Reporter
from opsdeck.core.release.bake import bake
from opsdeck.core.release.images import load_catalog, revoke
from opsdeck.core.release.promote import ReleaseResult, deploy_newest, promote, rollback
from opsdeck.core.safety import audit
from opsdeck.core.safety.breakglass import BreakGlass
from opsdeck.errors import ConfigError, RefusedError
from tests.fakes import World
from tests.unit.estate import git, make_estate


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "shop")
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


def rep() -> Reporter:
    return Reporter("test")


def bake_one(deck: Deck, service: str) -> str:
    (result,) = asyncio.run(bake(deck, rep(), services=[service]))
    return result.id


def instances(world: World, account: str, region: str, env: str, service: str) -> dict[str, str]:
    place = world.place(account, region)
    return {
        i.id: i.image_id
        for g in place.groups.values()
        if g.tags.get("env") == env and g.tags.get("app") == service
        for i in g.instances
    }


def last_records(deck: Deck, n: int = 1) -> list[dict[str, object]]:
    return audit.read(deck)[-n:]


def test_bake_gives_each_service_its_own_version_stream(estate: tuple[Deck, World]) -> None:
    deck, _world = estate
    results = asyncio.run(bake(deck, rep()))
    assert {(r.service, r.version) for r in results} == {("web", "1.0.1"), ("api", "1.0.1"), ("worker", "1.0.1")}
    (again,) = asyncio.run(bake(deck, rep(), services=["api"]))
    assert (again.service, again.version) == ("api", "1.0.2")
    catalog = load_catalog(deck)
    assert catalog.by_id[again.id].tags["app"] == "api" and catalog.by_id[again.id].tags["base_ami"]
    with pytest.raises(ConfigError, match="unknown service 'db'"):
        asyncio.run(bake(deck, rep(), services=["db"]))
    bakes = [r for r in audit.read(deck) if r["action"] == "bake" and r["result"] == "ok"]
    assert {r["service"] for r in bakes[-4:]} == {"web", "api", "worker"}


def test_promoting_one_service_changes_only_its_pin_and_its_instances(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    new = bake_one(deck, "api")
    web_before = instances(world, "111111111111", "us-east-1", "dev", "web")
    result = asyncio.run(promote(deck, new, "dev", rep(), services=["api"]))
    assert [(m.service, m.to_image) for m in result.moved] == [("api", new)]
    assert git(deck.root, "show", "--name-only", "--format=", "HEAD").split() == ["envs/dev/images.auto.tfvars.json"]
    diff = git(deck.root, "show", "--format=", "HEAD")
    assert new in diff and diff.count("\n-  ") == 1  # one line of the pin file changed
    assert set(instances(world, "111111111111", "us-east-1", "dev", "api").values()) == {new}
    assert instances(world, "111111111111", "us-east-1", "dev", "web") == web_before  # untouched
    assert world.calls[-1] == "apply dev api"
    record = last_records(deck)[0]
    assert record["action"] == "promote" and record["result"] == "ok" and record["services"] == ["api"]


def test_a_promote_without_service_moves_every_service_that_differs_as_one_train(
    estate: tuple[Deck, World],
) -> None:
    deck, world = estate
    web, api = bake_one(deck, "web"), bake_one(deck, "api")
    asyncio.run(deploy_newest(deck, "dev", rep()))
    assert read_pins(deck, "dev") == {**read_pins(deck, "staging"), "web": web, "api": api}
    applies = len([c for c in world.calls if c.startswith("apply staging")])
    result = asyncio.run(promote(deck, "dev", "staging", rep(), reason="release 42"))
    assert sorted(m.service for m in result.moved) == ["api", "web"]
    assert len([c for c in world.calls if c.startswith("apply staging")]) == applies + 1  # one plan, one apply
    subject, *body = git(deck.root, "log", "-1", "--format=%B").strip().splitlines()
    assert subject == "promote web 1.0.1, api 1.0.1 to staging: release 42"
    assert any(line.startswith("web: 1.0.0 (") and line.endswith(f"-> 1.0.1 ({web})") for line in body)
    assert any(line.startswith("api: 1.0.0 (") and line.endswith(f"-> 1.0.1 ({api})") for line in body)
    assert "from: dev" in body and "reason: release 42" in body
    assert read_pins(deck, "staging")["worker"] == read_pins(deck, "dev")["worker"]  # it did not differ
    with pytest.raises(RefusedError, match="staging already runs what dev runs"):
        asyncio.run(promote(deck, "dev", "staging", rep()))


def test_promote_to_another_account_and_region_shares_and_copies_once(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    web = bake_one(deck, "web")
    asyncio.run(promote(deck, web, "dev", rep(), services=["web"]))
    asyncio.run(promote(deck, "dev", "staging", rep(), services=["web"]))
    assert f"share {web} 222222222222" in world.calls  # staging's account may launch it
    glass = open_glass(deck, world)
    result = asyncio.run(promote(deck, "staging", "prod", rep(), services=["web"], glass=glass))
    copies = [c for c in world.calls if c.startswith(f"copy {web} us-east-1->us-west-2")]
    assert len(copies) == 1
    copy_id = copies[0].split()[-1]
    assert read_pin(deck, "prod", "web") == copy_id  # prod runs the copy in its own region
    assert f"share {copy_id} 333333333333" in world.calls
    assert set(instances(world, "333333333333", "us-west-2", "prod", "web").values()) == {copy_id}
    assert result.distributions[0].copied and result.distributions[0].usable_id == copy_id
    record = last_records(deck)[0]
    assert record["distributed"] == [d.to_json() for d in result.distributions]
    catalog = load_catalog(deck)
    assert catalog.canonical(copy_id) == web and catalog.by_id[copy_id].tags["app"] == "web"
    # Rolled back and promoted again, prod finds the copy instead of copying twice.
    asyncio.run(rollback(deck, "prod", rep(), services=["web"], glass=glass))
    asyncio.run(promote(deck, "staging", "prod", rep(), services=["web"], glass=glass))
    assert len([c for c in world.calls if c.startswith(f"copy {web} ")]) == 1
    assert read_pin(deck, "prod", "web") == copy_id


def open_glass(deck: Deck, world: World, account: str = "333333333333") -> object:
    from opsdeck.core.types.cloud import Credentials

    creds = Credentials(f"ASIAFAKE{account}", "glass-secret-never-printed", "token-never-printed")
    world.keys[creds.access_key] = account
    now = 1e12
    return BreakGlass("prod", "incident 7", 0.0, now, credentials=creds, source="test")


def test_rollback_undoes_the_last_release_or_one_service(estate: tuple[Deck, World]) -> None:
    deck, _world = estate
    before = read_pins(deck, "dev")
    web, _api = bake_one(deck, "web"), bake_one(deck, "api")
    asyncio.run(deploy_newest(deck, "dev", rep()))
    result = asyncio.run(rollback(deck, "dev", rep(), reason="errors"))
    assert sorted((m.service, m.to_image) for m in result.moved) == sorted(
        [("web", before["web"]), ("api", before["api"])]
    )
    assert read_pins(deck, "dev") == before
    assert git(deck.root, "log", "-1", "--format=%s").startswith("rollback dev: ")
    asyncio.run(deploy_newest(deck, "dev", rep()))
    result = asyncio.run(rollback(deck, "dev", rep(), services=["api"]))
    assert [(m.service, m.to_image) for m in result.moved] == [("api", before["api"])]
    assert read_pins(deck, "dev")["web"] == web
    with pytest.raises(RefusedError, match="never ran api"):
        asyncio.run(rollback(deck, "dev", rep(), to=bake_one(deck, "api")))


def test_the_chain_and_revoked_images_are_refused_and_audited(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    web = bake_one(deck, "web")
    with pytest.raises(RefusedError, match="has not run in dev, and staging only takes images that have"):
        asyncio.run(promote(deck, web, "staging", rep()))
    assert last_records(deck)[0]["result"] == "refused"
    with pytest.raises(RefusedError, match="staging promotes from dev, not from sandbox"):
        asyncio.run(promote(deck, "sandbox", "staging", rep()))
    revoke(deck, web, "CVE-2026-0001")
    with pytest.raises(RefusedError, match="revoked: CVE-2026-0001"):
        asyncio.run(promote(deck, web, "dev", rep()))


def test_an_image_of_one_service_is_never_promoted_as_another(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    web = bake_one(deck, "web")
    with pytest.raises(RefusedError, match=f"{web} is an image of web, not of api"):
        asyncio.run(promote(deck, web, "dev", rep(), services=["api"]))
    with pytest.raises(ConfigError, match="unknown service 'db'"):
        asyncio.run(promote(deck, web, "dev", rep(), services=["db"]))
    bake_one(deck, "api")  # now 1.0.1 exists for web and api
    with pytest.raises(RefusedError, match=r"version 1\.0\.1 exists for several services"):
        asyncio.run(promote(deck, "1.0.1", "dev", rep()))


def test_a_failed_apply_puts_the_pins_back_and_is_audited_as_failed(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    pins = (deck.root / "envs/dev/images.auto.tfvars.json").read_text()
    world.fail_apply.add("dev")
    web = bake_one(deck, "web")
    with pytest.raises(Exception, match="promote of dev failed at apply \\(pins restored\\)"):
        asyncio.run(promote(deck, web, "dev", rep()))
    assert (deck.root / "envs/dev/images.auto.tfvars.json").read_text() == pins
    closing = last_records(deck)[0]
    assert closing["result"] == "failed" and "fake failure" in str(closing["error"])
    asyncio.run(promote(deck, web, "dev", rep()))  # the lock was released; it works the next time


def test_protected_needs_break_glass_and_its_credentials_must_reach_the_right_account(
    estate: tuple[Deck, World],
) -> None:
    deck, world = estate
    asyncio.run(promote(deck, bake_one(deck, "worker"), "dev", rep()))
    asyncio.run(promote(deck, "dev", "staging", rep()))
    with pytest.raises(RefusedError, match="prod is protected: promote needs break-glass"):
        asyncio.run(promote(deck, "staging", "prod", rep()))
    wrong = open_glass(deck, world, account="999999999999")
    with pytest.raises(RefusedError, match=r"reach account 999999999999, but opsdeck\.toml says prod is in account"):
        asyncio.run(promote(deck, "staging", "prod", rep(), glass=wrong))  # type: ignore[arg-type]
    assert read_pin(deck, "prod", "worker") != read_pin(deck, "staging", "worker")  # nothing changed
    glass = open_glass(deck, world)
    asyncio.run(promote(deck, "staging", "prod", rep(), glass=glass))  # type: ignore[arg-type]
    text = (deck.local_dir / "audit.jsonl").read_text()
    assert "glass-secret-never-printed" not in text and "token-never-printed" not in text
    record = last_records(deck)[0]
    assert record["break_glass"] is True and record["who"]["aws"].startswith("arn:aws:sts::333333333333")


def test_a_role_that_cannot_be_assumed_is_one_line_naming_environment_account_and_role(
    estate: tuple[Deck, World],
) -> None:
    deck, world = estate
    world.unassumable.add("arn:aws:iam::222222222222:role/opsdeck-deploy")
    asyncio.run(promote(deck, bake_one(deck, "api"), "dev", rep()))
    with pytest.raises(RefusedError) as caught:
        asyncio.run(promote(deck, "dev", "staging", rep()))
    assert str(caught.value) == (
        "staging: cannot assume arn:aws:iam::222222222222:role/opsdeck-deploy in account 222222222222: AccessDenied"
    )


def test_two_promotes_of_one_environment_one_runs_the_other_names_the_holder(estate: tuple[Deck, World]) -> None:
    deck, _ = estate
    web, api = bake_one(deck, "web"), bake_one(deck, "api")

    async def both() -> list[object]:
        entered, release = asyncio.Event(), asyncio.Event()

        async def hold(_: object) -> bool:
            entered.set()
            await release.wait()
            return True

        first = asyncio.ensure_future(promote(deck, web, "dev", rep(), confirm=hold))
        await entered.wait()
        try:
            with pytest.raises(Exception, match="dev is locked: promote by"):
                await promote(deck, api, "dev", rep())
        finally:
            release.set()
        return [await first]

    (result,) = asyncio.run(both())
    assert [m.service for m in result.moved] == ["web"]  # type: ignore[attr-defined]


def test_history_names_each_service_of_each_release(estate: tuple[Deck, World]) -> None:
    from opsdeck.core.release.ledger import history

    deck, _ = estate
    web, api = bake_one(deck, "web"), bake_one(deck, "api")
    asyncio.run(deploy_newest(deck, "dev", rep()))
    releases = history(deck, "dev")
    assert sorted((c.service, c.image_id) for c in releases[0].changes) == [("api", api), ("web", web)]
    assert {c.service for c in releases[1].changes} == {"web", "api", "worker"}  # the first pins
    only_web = history(deck, "dev", ["web"])
    assert [c.image_id for r in only_web for c in r.changes] == [
        web,
        json.loads(git(deck.root, "show", f"{releases[1].commit}:envs/dev/images.auto.tfvars.json"))["images"]["web"],
    ]


def test_the_soak_counts_how_long_an_image_ran_in_the_source_and_break_glass_may_skip_it(
    estate: tuple[Deck, World],
) -> None:
    import os
    import subprocess
    import time
    from dataclasses import replace

    from opsdeck.core.types.cloud import Credentials

    deck, world = estate
    deck.config = replace(  # staging takes only images that ran in dev for 30 minutes
        deck.config,
        environments=tuple(replace(e, soak_minutes=30 if e.name == "staging" else 0) for e in deck.config.environments),
    )
    web = bake_one(deck, "web")
    asyncio.run(promote(deck, web, "dev", rep(), services=["web"]))
    with pytest.raises(RefusedError, match=r"^soak gate: web .* has run in dev for 0 min; staging wants 30 min"):
        asyncio.run(promote(deck, "dev", "staging", rep(), services=["web"]))
    assert last_records(deck)[0]["result"] == "refused"
    # dev took it 40 minutes ago (the pin's commit is what counts): staging takes it.
    then = f"{int(time.time()) - 2400} +0000"
    subprocess.run(
        ["git", "-C", str(deck.root), "commit", "-q", "--amend", "--no-edit", "--date", then],
        env={**os.environ, "GIT_COMMITTER_DATE": then},
        check=True,
    )
    result = asyncio.run(promote(deck, "dev", "staging", rep(), services=["web"]))
    assert isinstance(result, ReleaseResult) and read_pin(deck, "staging", "web") == result.moved[0].to_image
    record = last_records(deck)[0]
    assert record["soak"][0]["minutes"] >= 39 and "soak_bypassed" not in record
    assert record["policy"]["ran"] is True and record["policy"]["failed"] == []
    # A fresh image under break-glass: the soak is bypassed, and the audit says so.
    newer = bake_one(deck, "web")
    asyncio.run(promote(deck, newer, "dev", rep(), services=["web"]))
    creds = Credentials("ASIAFAKESTAGING", "staging-glass-secret-never-printed", "staging-token-never-printed")
    world.keys[creds.access_key] = "222222222222"
    glass = BreakGlass("staging", "incident 9", 0.0, 1e12, credentials=creds, source="test")
    asyncio.run(promote(deck, "dev", "staging", rep(), services=["web"], glass=glass))
    assert last_records(deck)[0]["soak_bypassed"] == f"break-glass: web {newer}"


def test_a_failed_policy_check_stops_the_release_before_anything_is_applied(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    web = bake_one(deck, "web")
    before = read_pins(deck, "dev")
    world.policy_failures.append(("CKV_AWS_79", "module.web.aws_launch_template.this"))
    applies = len([c for c in world.calls if c.startswith("apply")])
    with pytest.raises(RefusedError, match=r"^policy gate: CKV_AWS_79 fails on module\.web\.aws_launch_template"):
        asyncio.run(promote(deck, web, "dev", rep(), services=["web"]))
    assert read_pins(deck, "dev") == before
    assert len([c for c in world.calls if c.startswith("apply")]) == applies
    world.policy_failures.clear()
    world.policy_missing = True
    with pytest.raises(RefusedError, match=r"^policy gate: Checkov is not installed"):
        asyncio.run(promote(deck, web, "dev", rep(), services=["web"]))
    assert read_pins(deck, "dev") == before


def test_a_plan_is_checked_once_until_the_decks_own_checks_change(estate: tuple[Deck, World]) -> None:
    from opsdeck.core.estate.pins import write_pins
    from opsdeck.core.plans import planning
    from opsdeck.core.release import gates

    deck, world = estate
    write_pins(deck, "dev", {"web": bake_one(deck, "web")})
    plan = asyncio.run(planning.plan(deck, "dev", rep(), reuse=False))
    assert plan.summary.has_changes and plan.planfile

    def checks() -> int:
        return len([c for c in world.calls if c.startswith("policy ")])

    before = checks()
    first = asyncio.run(gates.policy(deck, "dev", plan, rep()))
    again = asyncio.run(gates.policy(deck, "dev", plan, rep()))
    assert first is again and checks() == before + 1  # the same saved plan: the kept verdict
    (deck.root / "policy" / "new_check.yaml").write_text("metadata:\n  id: CKV2_SHOP_2\n")
    asyncio.run(gates.policy(deck, "dev", plan, rep()))
    assert checks() == before + 2  # the deck's checks changed: checked again


def test_pins_are_written_whole_in_one_step(estate: tuple[Deck, World]) -> None:
    """A pin file is replaced (a new file renamed over it), written once with every service's pin: opsdeck
    killed while it writes leaves the old file or the new one. Written in place, a kill mid-write left a
    truncated file (the crash matrix's rollback at `pin`: Terraform's "JSON data ends prematurely"), and a
    file shared by services written once per service could hold half a release."""
    from opsdeck.core.estate.pins import pin_rel, write_pins

    deck, _ = estate
    rel = pin_rel(deck, "dev", "web")
    path = deck.root / rel
    before = path.stat().st_ino
    moved = {"web": "ami-0000000000000000a", "api": "ami-0000000000000000b"}
    assert write_pins(deck, "dev", moved) == [rel]  # web and api share dev's pin file: written once
    assert path.stat().st_ino != before
    assert read_pins(deck, "dev", ["web", "api"]) == moved
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
