"""Every Terraform argv opsdeck uses, built by python-terraform without its Terraform 1.x defects.

The defects (see opsdeck/adapters/terraform.py): destroy() adds -force, plan() adds -detailed-exitcode
and an empty -var-file, apply() adds -auto-approve=false and -var-file, cmd(synchronous=False) leaks
-synchronous/-stdout/-stderr, plan('.') passes a stray directory. The second half runs each argv with
the real terraform on a configuration that needs no provider, so Terraform itself accepts it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from opsdeck.adapters.terraform import LockInfo, Terraform, write_cli_config

FORBIDDEN = ("-force", "-synchronous", "-stdout", "-stderr", "-var-file", "-detailed-exitcode", "-state=")


def _tf(tmp_path: Path) -> Terraform:
    return Terraform(tmp_path, {"PATH": os.environ["PATH"]})


def _clean(argv: list[str]) -> None:
    for arg in argv:
        assert not any(arg.startswith(bad) for bad in FORBIDDEN), argv
    assert "." not in argv[2:], argv


def test_init_argv(tmp_path: Path) -> None:
    argv = _tf(tmp_path).init_argv({"use_path_style": "true", "skip_s3_checksum": "true"}, reconfigure=True)
    assert argv == [
        "terraform",
        "init",
        "-input=false",
        "-no-color",
        "-reconfigure",
        "-backend-config=use_path_style=true",
        "-backend-config=skip_s3_checksum=true",
    ]
    _clean(argv)
    assert _tf(tmp_path).init_argv({}) == ["terraform", "init", "-input=false", "-no-color"]


def test_plan_argvs(tmp_path: Path) -> None:
    tf = _tf(tmp_path)
    out = tmp_path / "x.tfplan"
    assert tf.plan_argv(out) == ["terraform", "plan", "-input=false", "-json", "-lock=false", f"-out={out}"]
    pins = tmp_path / "pins.json"
    assert tf.plan_argv(out, var_files=(pins,)) == [
        "terraform",
        "plan",
        "-input=false",
        "-json",
        "-lock=false",
        f"-var-file={pins}",
        f"-out={out}",
    ]
    assert tf.plan_argv(out, refresh_only=True) == [
        "terraform",
        "plan",
        "-input=false",
        "-json",
        "-lock=false",
        "-refresh-only",
        f"-out={out}",
    ]
    assert tf.plan_argv(out, destroy=True) == [
        "terraform",
        "plan",
        "-input=false",
        "-json",
        "-lock=false",
        "-destroy",
        f"-out={out}",
    ]
    # The switch planned right after the stage's own apply: the state is the cloud, nothing is read back.
    assert tf.plan_argv(out, var_files=(pins,), refresh=False) == [
        "terraform",
        "plan",
        "-input=false",
        "-json",
        "-lock=false",
        "-refresh=false",
        f"-var-file={pins}",
        f"-out={out}",
    ]
    # The one plan that takes the state lock: recovery's probe for a lock Terraform left behind.
    assert tf.plan_argv(out, refresh_only=True, lock=True) == [
        "terraform",
        "plan",
        "-input=false",
        "-json",
        "-lock-timeout=0s",
        "-refresh-only",
        f"-out={out}",
    ]
    for argv in (tf.plan_argv(out), tf.plan_argv(out, refresh_only=True), tf.plan_argv(out, destroy=True)):
        _clean(argv)


def test_show_apply_destroy_unlock_validate_argvs(tmp_path: Path) -> None:
    tf = _tf(tmp_path)
    plan = tmp_path / "x.tfplan"
    assert tf.show_argv(plan) == ["terraform", "show", "-json", "-no-color", str(plan)]
    assert tf.apply_argv(plan) == ["terraform", "apply", "-input=false", "-json", "-lock-timeout=0s", str(plan)]
    assert tf.destroy_argv() == ["terraform", "destroy", "-input=false", "-json", "-auto-approve", "-lock-timeout=0s"]
    assert tf.force_unlock_argv("abc-123") == ["terraform", "force-unlock", "-force", "abc-123"]
    assert tf.validate_argv() == ["terraform", "validate", "-json", "-no-color"]
    for argv in (tf.show_argv(plan), tf.apply_argv(plan), tf.destroy_argv(), tf.validate_argv()):
        _clean(argv)


def test_binary_is_configurable(tmp_path: Path) -> None:
    tf = Terraform(tmp_path, {}, binary="/opt/tf/terraform")
    assert tf.plan_argv(tmp_path / "p")[0] == "/opt/tf/terraform"


def test_cli_config_points_at_the_mirror(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io").mkdir(parents=True)
    path = write_cli_config(mirror, tmp_path / "cache")
    text = path.read_text()
    assert f'path    = "{mirror.resolve()}"' in text
    assert 'exclude = ["registry.terraform.io/*/*"]' in text
    assert write_cli_config(mirror, tmp_path / "cache") == path  # stable name, rewritten only on change


def test_lock_info_from_diagnostic() -> None:
    detail = (
        "Error message: operation error S3: PutObject, https response error StatusCode: 412\n"
        "Lock Info:\n  ID:        5c3b6a4e-1f2d-4e8e-a8f1-7f1d0d3c9b10\n  Path:      bucket/web/dev/terraform.tfstate\n"
        "  Operation: OperationTypeApply\n  Who:       alice@host\n  Version:   1.11.4\n"
        "  Created:   2026-11-22 09:00:00 +0000 UTC\n  Info:\n"
    )
    lock = LockInfo.parse(detail)
    assert lock is not None
    assert lock.id == "5c3b6a4e-1f2d-4e8e-a8f1-7f1d0d3c9b10"
    assert lock.operation == "OperationTypeApply" and lock.who == "alice@host"
    assert LockInfo.parse("no lock here") is None


# -- the same argvs, run by the real terraform ----------------------------------------------------

CONFIG = """
terraform {
  required_version = ">= 1.5"
}
variable "image_id" {
  type    = string
  default = "ami-1"
}
resource "terraform_data" "rollout" {
  input = var.image_id
}
output "image" {
  value = terraform_data.rollout.output
}
"""


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform not on PATH")
def test_each_argv_runs_with_real_terraform(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(CONFIG)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    tf = Terraform(tmp_path, env)
    plan = tmp_path / "p.tfplan"

    async def scenario() -> None:
        await tf.init({})
        events: list[dict] = []
        await tf.plan(plan, on_event=events.append)
        assert any(e.get("type") == "change_summary" for e in events)
        shown = await tf.show_json(plan)
        assert [rc["change"]["actions"] for rc in shown["resource_changes"]] == [["create"]]
        applied: list[dict] = []
        await tf.apply(plan, on_event=applied.append)
        assert any(e.get("type") == "apply_complete" for e in applied)
        await tf.plan(plan, refresh_only=True)
        await tf.plan(plan, destroy=True)
        destroyed: list[dict] = []
        await tf.destroy(on_event=destroyed.append)
        assert any(e.get("type") == "apply_complete" for e in destroyed)
        assert (await tf.version()).startswith("1.")

    asyncio.run(scenario())
    state = json.loads((tmp_path / "terraform.tfstate").read_text())
    assert state["resources"] == []


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform not on PATH")
def test_failed_plan_is_one_line_naming_the_step(tmp_path: Path) -> None:
    from opsdeck.errors import ToolError

    (tmp_path / "main.tf").write_text('resource "terraform_data" "x" {\n  input = var.missing\n}\n')
    tf = Terraform(tmp_path, {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CHECKPOINT_DISABLE": "1"})

    async def scenario() -> None:
        await tf.init({})
        await tf.plan(tmp_path / "p.tfplan")

    with pytest.raises(ToolError) as err:
        asyncio.run(scenario())
    message = str(err.value)
    assert message.startswith(f"terraform plan in {tmp_path.name}: Reference to undeclared input variable")
    assert "\n" not in message


def test_missing_binary_is_named(tmp_path: Path) -> None:
    from opsdeck.errors import ToolMissingError

    tf = Terraform(tmp_path, {"PATH": ""}, binary="terraform-nope")
    with pytest.raises(ToolMissingError, match="terraform is not installed or not on PATH"):
        asyncio.run(tf.plan(tmp_path / "p"))
