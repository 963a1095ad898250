"""Recover an environment in another region, and destroy the copy, on the fake tools: images copied once,
the environment's own module applied under its own state key, the ledger and the audit log, and the
environment itself never touched."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.release.gates import GateError
from opsdeck.core.safety import audit, locks
from opsdeck.core.safety.confirm import Preview
from opsdeck.core.sandbox import copies
from opsdeck.core.sandbox.destroy_copy import destroy_copy, inventory
from opsdeck.core.sandbox.recover import recover
from opsdeck.errors import ConfigError, LockedError, OpsdeckError, RefusedError
from tests.fakes import FakeTerraform, World, fake_tools, provider_config
from tests.unit.estate import make_estate

BUILD = "111111111111"
STAGING = "222222222222"
STATE = ("opsdeck-demo-tfstate-222222222222", "shop/staging/terraform.tfstate")
COPY_STATE = ("opsdeck-demo-tfstate-222222222222", "shop/staging/recover-us-west-2/terraform.tfstate")


@pytest.fixture()
def estate(tmp_path: Path) -> Iterator[tuple[Deck, World]]:
    deck, world = make_estate(tmp_path / "shop")
    yield deck, world
    deck.tools.git.close()  # type: ignore[attr-defined]


def rep() -> Reporter:
    return Reporter("test")


def git(deck: Deck, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck.root), *args], capture_output=True, text=True, check=True).stdout


def groups(world: World, account: str, region: str, env: str) -> dict[str, tuple[str, ...]]:
    """Group name -> the images its instances run."""
    place = world.place(account, region)
    return {n: tuple(i.image_id for i in g.instances) for n, g in place.groups.items() if g.tags["env"] == env}


def test_recover_builds_a_healthy_copy_on_copied_images_and_leaves_the_environment_alone(
    estate: tuple[Deck, World],
) -> None:
    deck, world = estate
    staging_state = world.objects[STATE]
    staging_groups = groups(world, STAGING, "us-east-1", "staging")
    pins = json.loads((deck.root / "envs/staging/images.auto.tfvars.json").read_text())["images"]

    result = asyncio.run(recover(deck, "staging", "us-west-2", rep()))

    copied = {d.image: d.usable_id for d in result.distributions}
    # prod runs in us-west-2 on copies of the same images: they are reused, and shared with staging's account
    assert set(copied) == set(pins.values()) and all(not d.copied and d.shared for d in result.distributions)
    built = world.place(BUILD, "us-west-2").images
    assert all(copy in built for copy in copied.values())  # copies live in the build account, in us-west-2
    assert all(STAGING in world.place(BUILD, "us-west-2").permissions[c] for c in copied.values())
    there = groups(world, STAGING, "us-west-2", "staging")
    assert len(there) == 3
    assert sorted(img for imgs in there.values() for img in set(imgs)) == sorted(copied[pins[s]] for s in pins)
    assert world.objects[STATE] == staging_state  # staging's own state is untouched
    assert groups(world, STAGING, "us-east-1", "staging") == staging_groups
    assert COPY_STATE in world.objects
    # The ledger: one commit with the copy's record, naming the operator and the audit record.
    assert git(deck, "log", "-1", "--format=%s").strip() == "recover staging in us-west-2"
    body = git(deck, "log", "-1", "--format=%B")
    assert "Opsdeck-Operator: Unit Tester" in body and f"Opsdeck-Audit: {result.copy.audit}" in body
    assert git(deck, "status", "--porcelain").strip() == ""
    [copy] = copies.recovered_copies(deck)
    assert (copy.env, copy.region, copy.account, copy.state_key) == ("staging", "us-west-2", STAGING, COPY_STATE[1])
    assert copy.images == {s: copied[i] for s, i in pins.items()} and copy.source_images == pins and copy.healthy
    data = result.to_json()
    assert data["environment"] == "staging" and data["region"] == "us-west-2" and data["created"].endswith("Z")
    names = [p["name"] for p in data["phases"]]
    for phase in ("copy images", "prepare", "plan", "apply", "verify instances", "ledger"):
        assert phase in names
    last = audit.read(deck)[-1]
    assert (last["action"], last["environment"], last["result"]) == ("recover", "staging", "ok")
    assert last["region"] == "us-west-2" and last["state_key"] == COPY_STATE[1]
    # The work dir is the environment's module pointed at the region, its modules found where they are.
    work = deck.root / ".opsdeck/recover/staging@us-west-2"
    assert 'region = "us-west-2"' in (work / copies.OVERRIDE_FILE).read_text()
    main = (work / "main.tf").read_text()
    assert 'source = "../../../modules/network"' in main and (work / "../../../modules/network").resolve().is_dir()
    assert json.loads((work / "images.auto.tfvars.json").read_text())["images"] == copy.images


def test_a_region_without_copies_gets_one_copy_of_each_image(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    calls = len(world.calls)
    result = asyncio.run(recover(deck, "staging", "eu-west-1", rep()))
    made = [c for c in world.calls[calls:] if c.startswith("copy ")]
    assert len(made) == 3 and all("us-east-1->eu-west-1" in c for c in made)
    assert all(d.copied and d.shared and d.region == "eu-west-1" for d in result.distributions)
    assert len(groups(world, STAGING, "eu-west-1", "staging")) == 3
    assert result.copy.state_key == "shop/staging/recover-eu-west-1/terraform.tfstate"


def test_recover_again_reuses_the_copies_and_keeps_the_creation_time(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    first = asyncio.run(recover(deck, "staging", "us-west-2", rep()))
    calls = len(world.calls)
    second = asyncio.run(recover(deck, "staging", "us-west-2", rep()))
    new = world.calls[calls:]
    assert not [c for c in new if c.startswith(("copy ", "apply "))], new
    assert not any(d.copied for d in second.distributions) and not second.summary.has_changes
    assert second.copy.created == first.copy.created and second.copy.images == first.copy.images
    assert len(copies.recovered_copies(deck)) == 1


def test_bad_input_is_one_clear_error_and_changes_nothing(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    head = git(deck, "rev-parse", "HEAD")
    with pytest.raises(OpsdeckError, match=r"unknown region 'us-west-9': not an AWS region \(for example us-"):
        asyncio.run(recover(deck, "staging", "us-west-9", rep()))
    with pytest.raises(RefusedError, match="staging runs in us-east-1 already: recover it into another region"):
        asyncio.run(recover(deck, "staging", "us-east-1", rep()))
    with pytest.raises(ConfigError, match="nope"):
        asyncio.run(recover(deck, "nope", "us-west-2", rep()))
    with pytest.raises(RefusedError, match="there is no recovered copy of staging in us-west-2"):
        asyncio.run(destroy_copy(deck, "staging", "us-west-2", rep()))
    assert git(deck, "rev-parse", "HEAD") == head
    assert not world.place(STAGING, "us-west-2").groups


def test_destroy_removes_the_copy_its_state_and_record_and_leaves_the_environment(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    asyncio.run(recover(deck, "staging", "us-west-2", rep()))
    staging_state = world.objects[STATE]
    staging_groups = groups(world, STAGING, "us-east-1", "staging")

    plan = asyncio.run(inventory(deck, "staging", "us-west-2"))
    assert plan.recorded and plan.account == STAGING and plan.state.key == COPY_STATE[1]
    assert sum("aws_autoscaling_group" in a for a in plan.managed) == 3
    assert len(groups(world, STAGING, "us-west-2", "staging")) == 3  # the dry run changed nothing

    seen: list[str] = []

    async def no(p: copies.RecoveredCopy | object) -> bool:
        seen.append("asked")
        return False

    with pytest.raises(RefusedError, match="was not confirmed"):
        asyncio.run(destroy_copy(deck, "staging", "us-west-2", rep(), confirm=no))
    assert seen and len(groups(world, STAGING, "us-west-2", "staging")) == 3

    result = asyncio.run(destroy_copy(deck, "staging", "us-west-2", rep()))
    assert result.destroyed == 3
    assert groups(world, STAGING, "us-west-2", "staging") == {}
    assert COPY_STATE not in world.objects
    assert world.objects[STATE] == staging_state and groups(world, STAGING, "us-east-1", "staging") == staging_groups
    assert copies.recovered_copies(deck) == []
    assert git(deck, "log", "-1", "--format=%s").strip() == "destroy the copy of staging in us-west-2"
    assert not (deck.root / "recovered/staging/us-west-2.json").exists()
    assert not (deck.root / ".opsdeck/recover/staging@us-west-2").exists()
    names = [p["name"] for p in result.to_json()["phases"]]
    assert [n for n in names if n != "sync"][:4] == ["inventory", "prepare", "terraform destroy", "verify empty"]
    last = audit.read(deck)[-1]
    assert (last["action"], last["result"], last["destroyed"]) == ("recover-destroy", "ok", 3)
    with pytest.raises(RefusedError, match="there is no recovered copy"):
        asyncio.run(inventory(deck, "staging", "us-west-2"))


def test_destroy_finds_a_partial_copy_a_failed_recovery_left(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    world.policy_failures.append(("CKV_AWS_79", "module.web.aws_launch_template.this"))
    with pytest.raises(GateError, match="policy gate"):
        asyncio.run(recover(deck, "staging", "eu-west-1", rep()))
    assert not world.place(STAGING, "eu-west-1").groups and copies.recovered_copies(deck) == []
    assert audit.read(deck)[-1]["result"] == "refused"
    world.policy_failures.clear()
    world.objects[COPY_STATE] = json.dumps({"serial": 3, "pins": {}, "vpc": "vpc-0left", "resources": []}).encode()
    plan = asyncio.run(inventory(deck, "staging", "us-west-2"))
    assert not plan.recorded and "failed recovery" in plan.summary()
    asyncio.run(destroy_copy(deck, "staging", "us-west-2", rep()))
    assert COPY_STATE not in world.objects


def test_destroy_is_refused_in_a_protected_account_and_audited(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    asyncio.run(recover(deck, "staging", "us-west-2", rep()))
    toml = deck.root / "opsdeck.toml"
    toml.write_text(
        toml.read_text().replace('protected_accounts = ["333333333333"]', f'protected_accounts = ["{STAGING}"]')
    )
    again = Deck.open(deck.root, tools=fake_tools(world))
    try:
        with pytest.raises(RefusedError, match=rf"account {STAGING} is listed in aws\.protected_accounts"):
            asyncio.run(destroy_copy(again, "staging", "us-west-2", rep()))
        with pytest.raises(RefusedError, match="as nuke-and-rebuild is"):
            asyncio.run(inventory(again, "staging", "us-west-2"))
    finally:
        again.tools.git.close()  # type: ignore[attr-defined]
    assert len(groups(world, STAGING, "us-west-2", "staging")) == 3
    last = audit.read(deck)[-1]
    assert (last["action"], last["result"], last["region"]) == ("recover-destroy", "refused", "us-west-2")


def test_a_protected_environment_needs_break_glass_and_a_busy_one_waits(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    with pytest.raises(RefusedError, match="prod is protected: recover needs break-glass"):
        asyncio.run(recover(deck, "prod", "us-east-1", rep()))
    with locks.env_lock(deck, "staging", "promote"), pytest.raises(LockedError, match="staging is locked"):
        asyncio.run(recover(deck, "staging", "us-west-2", rep()))
    assert not world.place(STAGING, "us-west-2").groups


def test_a_pin_the_build_account_does_not_have_cannot_be_copied(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    pins = deck.root / "envs/staging/images.auto.tfvars.json"
    data = json.loads(pins.read_text())
    data["images"]["web"] = "ami-0000000000000dead"
    pins.write_text(json.dumps(data))
    with pytest.raises(OpsdeckError, match="web pins ami-0000000000000dead, which is not one of the deck's images"):
        asyncio.run(recover(deck, "staging", "us-west-2", rep()))
    assert not world.place(STAGING, "us-west-2").groups


def test_a_damaged_record_is_a_clear_error_and_left_out_of_the_list(estate: tuple[Deck, World]) -> None:
    deck, _world = estate
    path = deck.root / copies.record_rel("staging", "eu-west-1")
    path.parent.mkdir(parents=True)
    path.write_text('{"environment": "staging"}')
    with pytest.raises(OpsdeckError, match=r"recovered/staging/eu-west-1\.json: not a recovered-copy record"):
        copies.read_copy(deck, "staging", "eu-west-1")
    assert copies.recovered_copies(deck) == []


def test_a_recovery_not_confirmed_applies_nothing_and_records_nothing(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    shown: list[Preview] = []

    async def no(preview: Preview) -> bool:
        shown.append(preview)
        return False

    with pytest.raises(RefusedError, match="recover of staging in eu-west-1 was not confirmed; nothing changed"):
        asyncio.run(recover(deck, "staging", "eu-west-1", rep(), confirm=no))
    [preview] = shown
    assert preview.environment == "staging@eu-west-1" and preview.approval == "confirm"
    assert [(c.service, c.from_image.version, c.to_image.version) for c in preview.changes] == [
        (s, "1.0.0", "1.0.0") for s in ("web", "api", "worker")
    ]
    assert all(c.to_image.id != c.from_image.id for c in preview.changes)  # the copies in eu-west-1
    assert preview.plan.summary.add > 0 and "state s3://opsdeck-demo-tfstate-222222222222/" in preview.note
    assert not world.place(STAGING, "eu-west-1").groups and copies.recovered_copies(deck) == []
    assert audit.read(deck)[-1]["result"] == "refused"


# -- the copy's region: the provider is moved, and the plan must show it -----------------------------


def _commit_all(deck: Deck, message: str) -> None:
    git(deck, "add", "-A", "envs", "modules")
    git(deck, "commit", "-qm", message)


def test_a_provider_block_with_nested_blocks_is_still_moved_to_the_region(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    main = deck.root / "envs/staging/main.tf"
    text = main.read_text()
    nested = (
        'provider "aws" {\n  region = "us-east-1" # the home region {\n  default_tags {\n'
        '    tags = { team = "shop", note = "}{" }\n  }\n  assume_role {\n'
        '    role_arn = "arn:aws:iam::222222222222:role/deploy"\n  }\n}\n'
    )
    assert 'provider "aws" {\n  region = "us-east-1"\n}\n' in text
    main.write_text(text.replace('provider "aws" {\n  region = "us-east-1"\n}\n', nested))
    _commit_all(deck, "staging: default tags")

    result = asyncio.run(recover(deck, "staging", "us-west-2", rep()))

    work = deck.root / ".opsdeck/recover/staging@us-west-2"
    assert "default_tags" in (work / "main.tf").read_text()  # the module's own block, as it is
    # What Terraform makes of the module and the override: the default provider runs in the copy's region.
    assert provider_config(work)["aws"]["expressions"]["region"] == {"constant_value": "us-west-2"}
    assert result.copy.healthy and len(groups(world, STAGING, "us-west-2", "staging")) == 3


def test_a_module_without_a_provider_block_gets_one_in_the_region(estate: tuple[Deck, World]) -> None:
    deck, world = estate
    main = deck.root / "envs/staging/main.tf"
    main.write_text(main.read_text().replace('provider "aws" {\n  region = "us-east-1"\n}\n', ""))
    _commit_all(deck, "staging: the region from the environment")
    asyncio.run(recover(deck, "staging", "us-west-2", rep()))
    work = deck.root / ".opsdeck/recover/staging@us-west-2"
    assert provider_config(work)["aws"]["expressions"]["region"] == {"constant_value": "us-west-2"}
    assert len(groups(world, STAGING, "us-west-2", "staging")) == 3


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {
                "modules/legacy/main.tf": 'provider "aws" {\n  region = "us-east-1"\n}\n',
                "envs/staging/legacy.tf": 'module "legacy" {\n  source = "../../modules/legacy"\n}\n',
            },
            "staging@us-west-2: module.legacy configures its own aws provider with 'us-east-1' for region, "
            "which recover cannot move to 'us-west-2': nothing applied",
        ),
        (
            {"envs/staging/zzzz_override.tf": 'provider "aws" {\n  region = "us-east-1"\n}\n'},
            "staging@us-west-2: the plan's default aws provider has 'us-east-1' for region, not 'us-west-2': "
            "nothing applied",
        ),
    ],
    ids=["a-module-with-its-own-provider", "an-override-after-opsdecks"],
)
def test_a_region_the_copy_cannot_be_moved_to_is_refused_before_anything_is_applied(
    estate: tuple[Deck, World], files: dict[str, str], message: str
) -> None:
    deck, world = estate
    for rel, text in files.items():
        (deck.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (deck.root / rel).write_text(text)
    _commit_all(deck, "staging: a provider of its own")
    head = git(deck, "rev-parse", "HEAD")
    calls = len(world.calls)
    with pytest.raises(RefusedError, match=re.escape(message)):
        asyncio.run(recover(deck, "staging", "us-west-2", rep()))
    assert not [c for c in world.calls[calls:] if c.startswith("apply ")]
    assert not world.place(STAGING, "us-west-2").groups and COPY_STATE not in world.objects
    assert git(deck, "rev-parse", "HEAD") == head and copies.recovered_copies(deck) == []
    last = audit.read(deck)[-1]
    assert (last["action"], last["result"]) == ("recover", "refused")


def test_the_plan_region_check_reads_terraforms_configuration() -> None:
    def shown(**configs: object) -> dict[str, object]:
        return {"configuration": {"provider_config": configs}}

    def aws(region: object = None, **more: object) -> dict[str, object]:
        expressions = {} if region is None else {"region": region}
        return {"name": "aws", "expressions": expressions, **more}

    ok = {"constant_value": "us-west-2"}
    copies.check_plan_region(shown(aws=aws(ok)), "us-west-2", "staging@us-west-2")
    copies.check_plan_region(  # an aliased provider may point anywhere; a module's may take the copy's region
        shown(
            aws=aws(ok),
            **{"aws.east": aws({"constant_value": "us-east-1"}, alias="east")},
            **{"module.x:aws": aws(None, module_address="module.x")},
        ),
        "us-west-2",
        "staging@us-west-2",
    )
    for bad, words in [
        (shown(), "no default aws provider for region"),
        (shown(aws=aws()), "no region (the environment variables' region) for region"),
        (shown(aws=aws({"references": ["var.region"]})), "an expression (var.region) for region"),
        (shown(aws=aws(ok), **{"module.y:aws": aws({"references": ["var.r"]}, module_address="module.y")}), "module.y"),
    ]:
        with pytest.raises(RefusedError, match=re.escape(words)):
            copies.check_plan_region(bad, "us-west-2", "staging@us-west-2")


# -- destroy: only the copy's own state --------------------------------------------------------------


def _tamper(deck: Deck, bucket: str, key: str, region: str | None = "us-east-1") -> None:
    path = deck.root / copies.record_rel("staging", "us-west-2")
    data = json.loads(path.read_text())
    data["state"] = {"bucket": bucket, "key": key, "region": region}
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "where",
    [
        (STATE[0], "shop/staging/elsewhere.tfstate", "us-east-1"),  # another key in the same bucket
        (*STATE, "us-east-1"),  # staging's own
        ("opsdeck-demo-tfstate-333333333333", "shop/prod/terraform.tfstate", "us-west-2"),  # prod's
        (*COPY_STATE, "eu-west-1"),  # the right key, in another region
    ],
    ids=["another-key", "the-environments-own", "another-environments", "another-region"],
)
def test_destroy_refuses_a_record_whose_state_is_not_the_copys(
    estate: tuple[Deck, World], where: tuple[str, str, str]
) -> None:
    deck, world = estate
    asyncio.run(recover(deck, "staging", "us-west-2", rep()))
    before = dict(world.objects)
    _tamper(deck, *where)
    for run in (inventory(deck, "staging", "us-west-2"), destroy_copy(deck, "staging", "us-west-2", rep())):
        with pytest.raises(RefusedError, match="is not where the copy of staging in us-west-2 keeps its state"):
            asyncio.run(run)
    assert world.objects == before and len(groups(world, STAGING, "us-west-2", "staging")) == 3
    assert len(groups(world, STAGING, "us-east-1", "staging")) == 3


def test_a_copy_state_that_is_an_environments_own_is_refused(estate: tuple[Deck, World]) -> None:
    """A deck whose sandbox keeps its state where staging's copy in us-west-2 would: neither recover nor
    destroy touches it."""
    deck, world = estate
    init = deck.root / "envs/sandbox/.terraform/terraform.tfstate"
    init.write_text(json.dumps({"backend": {"config": {"bucket": COPY_STATE[0], "key": COPY_STATE[1]}}}))
    world.objects[COPY_STATE] = json.dumps({"serial": 1, "pins": {}, "vpc": None, "resources": []}).encode()
    before = dict(world.objects)
    message = f"state s3://{COPY_STATE[0]}/{COPY_STATE[1]} is sandbox's own: refusing to touch it as a copy's"
    for run in (
        recover(deck, "staging", "us-west-2", rep()),
        inventory(deck, "staging", "us-west-2"),
        destroy_copy(deck, "staging", "us-west-2", rep()),
    ):
        with pytest.raises(RefusedError, match=re.escape(message)):
            asyncio.run(run)
    assert world.objects == before and not world.place(STAGING, "us-west-2").groups


def test_the_copys_terraform_gets_the_whole_state_location(
    estate: tuple[Deck, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    deck, _world = estate
    seen: list[dict[str, str]] = []
    original = FakeTerraform.init

    async def init(self: FakeTerraform, backend_config: Mapping[str, str], *, reconfigure: bool = False) -> None:
        seen.append(dict(backend_config))
        await original(self, backend_config, reconfigure=reconfigure)

    monkeypatch.setattr(FakeTerraform, "init", init)
    asyncio.run(recover(deck, "staging", "us-west-2", rep()))
    asyncio.run(destroy_copy(deck, "staging", "us-west-2", rep()))
    where = {"bucket": COPY_STATE[0], "key": COPY_STATE[1], "region": "us-east-1"}
    assert len(seen) == 2 and all(dict(c, **where) == c for c in seen), seen


# -- the pins: the deck's own readers ----------------------------------------------------------------


def test_a_color_pin_in_an_environment_that_is_not_blue_green_is_read_as_its_live_image(
    estate: tuple[Deck, World],
) -> None:
    deck, _world = estate
    path = deck.root / "envs/staging/images.auto.tfvars.json"
    data = json.loads(path.read_text())
    web = data["images"]["web"]
    data["images"]["web"] = {"live": "blue", "blue": web, "green": None, "standby": "cold"}
    path.write_text(json.dumps(data))
    assert not deck.env("staging").blue_green
    result = asyncio.run(recover(deck, "staging", "eu-west-1", rep()))
    assert result.copy.source_images["web"] == web  # an image id, as every other command reads it
    assert isinstance(result.copy.images["web"], str) and result.copy.images["web"] != web


# -- the command -------------------------------------------------------------------------------------


def test_cli_refuses_break_glass_with_destroy(capfd: pytest.CaptureFixture[str]) -> None:
    from opsdeck.cli import main

    for extra in (["--break-glass", "--reason", "outage"], ["--reason", "outage"]):
        assert main(["recover", "staging", "--region", "us-west-2", "--destroy", *extra]) == 1
        err = capfd.readouterr().err.strip().splitlines()
        assert err == [
            "opsdeck: --break-glass and --reason do not apply to --destroy: a copy is destroyed with the "
            "environment's own credentials (and never in a protected account); drop them"
        ]


class _Terminal:
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer", ["staging@us-west-2", "no"])
def test_cli_destroy_asks_with_the_inventory_taken_under_the_lock(
    estate: tuple[Deck, World], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], answer: str
) -> None:
    from opsdeck.cli import main
    from opsdeck.commands import recover as command

    deck, world = estate
    asyncio.run(recover(deck, "staging", "us-west-2", rep()))
    # A resource recorded after any earlier look: what is asked about is what the state holds now.
    state = json.loads(world.objects[COPY_STATE])
    state["resources"].append(
        {"mode": "managed", "type": "aws_s3_bucket", "name": "late", "instances": [{"attributes": {"id": "late"}}]}
    )
    world.objects[COPY_STATE] = json.dumps(state).encode()
    asked: list[tuple[str, object]] = []

    def typed(prompt: str) -> str:
        held, alive = locks.holder(deck, "staging")
        asked.append((prompt, held.operation if held is not None and alive else None))
        return answer

    monkeypatch.setattr(command, "open_deck", lambda args: deck)
    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("builtins.input", typed)
    code = main(["recover", "staging", "--region", "us-west-2", "--destroy"])
    out = capfd.readouterr()
    assert asked == [("Type staging@us-west-2 to destroy it (anything else: nothing happens): ", "recover-destroy")]
    assert "staging@us-west-2 (account 222222222222, recorded in the ledger): destroy 5 managed" in out.err
    assert "terraform destroy  aws_s3_bucket.late" in out.err
    if answer == "no":
        assert code == 1 and "was not confirmed; nothing changed" in out.err.strip().splitlines()[-1]
        assert len(groups(world, STAGING, "us-west-2", "staging")) == 3 and copies.recovered_copies(deck)
    else:
        assert code == 0 and out.out.startswith("destroyed the copy of staging in us-west-2: 3 resources")
        assert not world.place(STAGING, "us-west-2").groups and copies.recovered_copies(deck) == []
