"""The gates a release passes on the demo deck: policy (Checkov on every plan before it is applied,
its built-in checks and the deck's own) and soak. Runs after test_50_conventions.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import edited, live_pins, opsdeck, state_serial

pytestmark = pytest.mark.integration

PIN = "images.auto.tfvars.json"
IMDS = ('http_tokens                 = "required"', 'http_tokens                 = "optional"')


def _git(deck: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout


def _pin(deck: Path, env: str, service: str = "web") -> str:
    return live_pins(deck, env)[service]


def _spare(deck: Path) -> str:
    """A web image neither of dev's colors runs now (baked when there is none): promoting it is a full
    release, planned and checked, not a switch to the standby."""
    images = json.loads(opsdeck("images", "--json", deck=deck, check=True).stdout)
    web = json.loads((deck / "envs" / "dev" / PIN).read_text())["images"]["web"]
    pinned = {web.get("blue"), web.get("green")} if isinstance(web, dict) else {web}
    found = [i["id"] for i in images if i["service"] == "web" and not i["revoked"] and i["id"] not in pinned]
    if found:
        return str(found[-1])
    baked = json.loads(opsdeck("bake", "--service", "web", "--json", deck=deck, check=True).stdout)
    return str(baked[0]["id"])


def _audit(deck: Path) -> list[dict[str, Any]]:
    return list(json.loads(opsdeck("audit", "--json", deck=deck, check=True).stdout))


def _stopped(deck: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a release that a gate must stop: exit 1, one line naming the gate, and nothing changed
    (pins, git, the environment's Terraform state)."""
    head, pins, serial = _git(deck, "rev-parse", "HEAD"), _pin(deck, "dev"), state_serial(deck, "dev")
    result = opsdeck(*args, deck=deck, env=env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    line = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert _git(deck, "rev-parse", "HEAD") == head and _pin(deck, "dev") == pins
    assert _git(deck, "status", "--porcelain", "--", "envs") == ""
    assert state_serial(deck, "dev") == serial  # nothing was applied
    return line


def test_a_plan_that_fails_a_builtin_check_is_not_applied(demo_deck: Path) -> None:
    target = _spare(demo_deck)
    with edited(demo_deck / "modules" / "blue_green" / "main.tf", *IMDS):  # IMDSv1 back on: CKV_AWS_79
        line = _stopped(demo_deck, "promote", target, "dev", "--service", "web", "--yes", "--reason", "imds")
    assert line.startswith("opsdeck: policy gate: CKV_AWS_79 fails on module.service[")
    assert re.search(
        r'\.aws_launch_template\.color\["(blue|green)"\] \(Ensure Instance Metadata Service Version 1 is not enabled\)',
        line,
    )
    assert line.endswith("dev's plan was not applied")
    record = _audit(demo_deck)[-1]
    assert record["action"] == "promote" and record["environment"] == "dev" and record["result"] != "ok"
    assert "CKV_AWS_79" in record["error"]


def test_the_decks_own_checks_run_too(demo_deck: Path) -> None:
    check = demo_deck / "policy" / "test_small_only.yaml"
    check.write_text(
        "metadata:\n"
        '  id: "CKV2_TEST_1"\n'
        '  name: "Launch templates here run t3.micro"\n'
        '  category: "GENERAL_SECURITY"\n'
        "definition:\n"
        "  cond_type: attribute\n"
        "  resource_types: [aws_launch_template]\n"
        "  attribute: instance_type\n"
        "  operator: equals\n"
        "  value: t3.micro\n"
    )
    try:
        line = _stopped(demo_deck, "promote", _spare(demo_deck), "dev", "--service", "web", "--yes")
    finally:
        check.unlink()
    # Checkov checks the whole planned state, not only what changes: every launch template fails it.
    assert line.startswith("opsdeck: policy gate: CKV2_TEST_1 fails on module.")
    assert re.search(
        r'\.aws_launch_template\.color\["(blue|green)"\] \(Launch templates here run t3\.micro\) \(and \d+ more\)', line
    )


def test_without_checkov_a_change_is_refused_in_one_line(demo_deck: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPSDECK_CHECKOV"}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not (Path(p) / "checkov").exists())
    line = _stopped(demo_deck, "promote", _spare(demo_deck), "dev", "--service", "web", "--yes", env=env)
    assert line.startswith("opsdeck: policy gate: Checkov is not installed: run scripts/bootstrap.sh")


def test_a_clean_plan_passes_and_the_audit_says_what_was_checked(demo_deck: Path) -> None:
    target = _spare(demo_deck)
    result = opsdeck("promote", target, "dev", "--service", "web", "--yes", "-v", "--json", deck=demo_deck)
    assert result.returncode == 0, result.stderr
    assert "policy" in [p["name"] for p in json.loads(result.stdout)["phases"]]
    record = _audit(demo_deck)[-1]
    assert record["result"] == "ok" and record["policy"]["ran"] is True
    assert record["policy"]["passed"] > 10 and record["policy"]["failed"] == []
    assert _pin(demo_deck, "dev") == target


def test_prod_takes_only_images_that_soaked_in_staging(demo_deck: Path) -> None:
    """prod's soak_minutes (30 in the sample deck): an image staging got minutes ago is refused,
    break-glass goes through and the audit says it bypassed the soak."""
    staging = json.loads((demo_deck / "envs" / "staging" / PIN).read_text())["images"]
    prod = json.loads((demo_deck / "envs" / "prod" / PIN).read_text())["images"]
    if all(_original(demo_deck, prod[s]) == staging[s] for s in staging):
        pytest.skip("staging and prod run the same images here")
    result = opsdeck("promote", "staging", "prod", "--yes", "--reason", "too soon", deck=demo_deck)
    line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and line.startswith("opsdeck: soak gate: "), result.stderr
    assert "min of soak" in line and "promote again later, or under break-glass" in line
    record = _audit(demo_deck)[-1]
    assert record["action"] == "promote" and record["environment"] == "prod" and "soak gate" in record["error"]


def _original(deck: Path, image_id: str) -> str:
    """The image a copy was made from (prod runs copies in its own region)."""
    images = json.loads(opsdeck("images", "--json", deck=deck, check=True).stdout)
    for image in images:
        if image["id"] == image_id or image_id in (image.get("copies") or {}).values():
            return str(image["id"])
    return image_id
