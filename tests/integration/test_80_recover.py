"""Recover staging in another region on the local cloud, then destroy the copy: the real Terraform, boto3 and
git. Staging itself is left as it was (its state serial and its instances), so later tests still pass."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import live_pins, opsdeck, state_serial

pytestmark = pytest.mark.integration

REGION = "us-west-2"
STAGING = "222222222222"


def _git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def _instances(deck: Path) -> set[str]:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.release.fleet import env_groups

    opened = Deck.open(deck)
    return {i.id for g in env_groups(opened, "staging") for i in g.instances if i.state == "running"}


def _copy_groups(deck: Path) -> list[Any]:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.sandbox.copies import copy_tools

    opened = Deck.open(deck)
    tools = copy_tools(opened, "staging", REGION)
    assert tools.cloud.caller_identity()["account"] == STAGING
    return list(tools.cloud.groups("env", "staging"))


def _image(deck: Path, region: str, image_id: str) -> Any:
    from opsdeck.core.estate.deck import Deck

    return Deck.open(deck).tools.build(region).image(image_id)


def _audit(deck: Path) -> list[dict[str, Any]]:
    return list(json.loads(opsdeck("audit", "--json", deck=deck, check=True).stdout))


def _one_line_error(result: subprocess.CompletedProcess[str], match: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsdeck: ") and match in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_recover_staging_in_another_region_then_destroy_the_copy(demo_deck: Path) -> None:
    serial, instances, pins = state_serial(demo_deck, "staging"), _instances(demo_deck), live_pins(demo_deck, "staging")
    assert instances

    done = opsdeck("recover", "staging", "--region", REGION, "--yes", "--json", deck=demo_deck, timeout=900)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["environment"], data["region"], data["account"], data["healthy"]) == ("staging", REGION, STAGING, True)
    assert data["state"]["key"] == "shop/staging/recover-us-west-2/terraform.tfstate"
    assert data["source_images"] == pins and set(data["images"]) == set(pins)
    for service, image_id in data["images"].items():
        image = _image(demo_deck, REGION, image_id)  # a copy in the region, made from staging's pin (or reused)
        assert image is not None and image.tags.get("source_image") == pins[service], service
    names = [p["name"] for p in data["phases"]]
    for phase in ("copy images", "prepare", "plan", "policy", "apply", "verify instances", "ledger"):
        assert phase in names, names
    assert data["add"] > 0 and data["seconds"] > 0
    # Healthy: every service's group in the region runs its copied image on every desired instance.
    groups = _copy_groups(demo_deck)
    by_service = {g.tags["app"]: g for g in groups}
    assert set(by_service) == set(pins)
    for service, group in by_service.items():
        running = [i for i in group.instances if i.state == "running"]
        assert len(running) == group.desired > 0 and {i.image_id for i in running} == {data["images"][service]}
    # The ledger and the audit log.
    assert _git(demo_deck, "log", "-1", "--format=%s").strip() == "recover staging in us-west-2"
    assert "recovered/staging/us-west-2.json" in _git(demo_deck, "show", "--name-only", "--format=", "HEAD")
    listed = json.loads(opsdeck("recovered", "--json", deck=demo_deck, check=True).stdout)
    assert [(c["environment"], c["region"]) for c in listed] == [("staging", REGION)]
    rows = {
        e["name"]: e for e in json.loads(opsdeck("status", "--json", deck=demo_deck, check=True).stdout)["environments"]
    }
    assert rows["staging"]["copies"] == [REGION] and rows["prod"]["copies"] == []  # beside its environment
    last = _audit(demo_deck)[-1]
    assert (last["action"], last["environment"], last["result"], last["region"]) == ("recover", "staging", "ok", REGION)
    # Staging itself is untouched.
    assert state_serial(demo_deck, "staging") == serial and _instances(demo_deck) == instances

    dry = opsdeck("recover", "staging", "--region", REGION, "--destroy", deck=demo_deck, timeout=300)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("dry run: staging@us-west-2 (account 222222222222, recorded in the ledger)")
    assert "terraform destroy  module.web.aws_autoscaling_group.this" in dry.stdout
    assert len(_copy_groups(demo_deck)) == len(groups)  # a dry run changes nothing

    gone = opsdeck(
        "recover", "staging", "--region", REGION, "--destroy", "--yes", "--json", deck=demo_deck, timeout=900
    )
    assert gone.returncode == 0, gone.stderr
    result = json.loads(gone.stdout)
    assert result["destroyed"] > 0 and result["commit"]
    assert [p["name"] for p in result["phases"] if p["name"] != "sync"][:4] == [
        "inventory",
        "prepare",
        "terraform destroy",
        "verify empty",
    ]
    assert _copy_groups(demo_deck) == []
    assert json.loads(opsdeck("recovered", "--json", deck=demo_deck, check=True).stdout) == []
    assert _git(demo_deck, "log", "-1", "--format=%s").strip() == "destroy the copy of staging in us-west-2"
    assert _audit(demo_deck)[-1]["action"] == "recover-destroy"
    assert state_serial(demo_deck, "staging") == serial and _instances(demo_deck) == instances
    assert live_pins(demo_deck, "staging") == pins
    assert _git(demo_deck, "status", "--porcelain").strip() == ""


def test_recover_bad_input_is_one_line_and_changes_nothing(demo_deck: Path) -> None:
    head = _git(demo_deck, "rev-parse", "HEAD")
    _one_line_error(
        opsdeck("recover", "staging", "--region", "us-west-9", deck=demo_deck), "unknown region 'us-west-9'"
    )
    _one_line_error(
        opsdeck("recover", "staging", "--region", "us-east-1", "--yes", deck=demo_deck),
        "staging runs in us-east-1 already",
    )
    _one_line_error(opsdeck("recover", "nope", "--region", REGION, deck=demo_deck), "nope")
    _one_line_error(
        opsdeck("recover", "staging", "--region", "eu-west-1", "--destroy", "--yes", deck=demo_deck),
        "there is no recovered copy of staging in eu-west-1",
    )
    _one_line_error(
        opsdeck("recover", "prod", "--region", "us-east-1", "--destroy", deck=demo_deck),
        "account 333333333333 is listed in aws.protected_accounts",
    )
    _one_line_error(
        opsdeck("recover", "prod", "--region", "us-east-1", "--yes", deck=demo_deck),
        "prod is protected: recover needs break-glass",
    )
    _one_line_error(opsdeck("recover", "staging", deck=demo_deck), "--region")
    _one_line_error(
        opsdeck(
            "recover", "staging", "--region", REGION, "--destroy", "--break-glass", "--reason", "x", deck=demo_deck
        ),
        "--break-glass and --reason do not apply to --destroy",
    )
    assert _git(demo_deck, "rev-parse", "HEAD") == head
    assert _git(demo_deck, "status", "--porcelain").strip() == ""
