"""A fixed deck state for the snapshot tests: the same pixels on every run, on any machine.

A copy of sample_envs with a stored snapshot, plans and drift reports written where the deck keeps
them; the app opens it with live refresh off and a fixed clock, and renders exactly this state.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from opsdeck.core.drift.store import DriftReport
from opsdeck.core.model import (
    AttributeChange,
    DeckState,
    EnvStatus,
    ImageRef,
    InstanceCounts,
    Lag,
    PlanResult,
    PlanSummary,
    ResourceChange,
)
from tests.helpers import ROOT

NOW = 1_795_000_000.0  # the fixed clock
OLD, NEW, NEWER = "ami-0a1b2c3d4e5f60718", "ami-0b2c3d4e5f6071829", "ami-0c3d4e5f607182930"


def _env(name: str, image: ImageRef, counts: tuple[int, int, int], **kw: object) -> EnvStatus:
    return EnvStatus(name=name, image=image, instances=InstanceCounts(*counts), plan_at=NOW - 120, **kw)  # type: ignore[arg-type]


def state() -> DeckState:
    v1, v2, v3 = ImageRef(OLD, "1.4.1"), ImageRef(NEW, "1.4.2"), ImageRef(NEWER, "1.5.0", revoked=False)
    envs = (
        _env("sandbox", v3, (1, 1, 1), sandbox=True, plan=PlanSummary(), drift="clean", drift_at=NOW - 300),
        _env("dev", v3, (2, 2, 2), plan=PlanSummary(2, 1, 2), drift="clean", drift_at=NOW - 300),
        _env(
            "staging",
            v2,
            (2, 3, 2),
            promote_from="dev",
            plan=PlanSummary(0, 1, 0),
            drift="drifted",
            drift_at=NOW - 300,
            lag=Lag("dev", v3, 1, NOW - 7200),
        ),
        _env(
            "prod",
            v1,
            (3, 3, 3),
            protected=True,
            promote_from="staging",
            plan=PlanSummary(),
            drift="clean",
            drift_at=NOW - 300,
            lag=Lag("staging", v2, 1, NOW - 86400 * 2),
        ),
    )
    images = (
        {
            "id": "ami-0base0000000000001",
            "layer": "base",
            "version": "2.0.0",
            "environments": [],
            "revoked": False,
            "base_outdated": False,
        },
        {
            "id": OLD,
            "layer": "app",
            "version": "1.4.1",
            "environments": ["prod"],
            "revoked": False,
            "base_outdated": True,
        },
        {
            "id": NEW,
            "layer": "app",
            "version": "1.4.2",
            "environments": ["staging"],
            "revoked": False,
            "base_outdated": False,
        },
        {
            "id": "ami-0d4e5f60718293a4b",
            "layer": "app",
            "version": "1.4.3",
            "environments": [],
            "revoked": True,
            "base_outdated": False,
        },
        {
            "id": NEWER,
            "layer": "app",
            "version": "1.5.0",
            "environments": ["sandbox", "dev"],
            "revoked": False,
            "base_outdated": False,
        },
    )
    return DeckState(deck="web-platform", environments=envs, taken_at=NOW - 60, cloud="reachable", images=images)


def dev_plan(planfile: Path) -> PlanResult:
    lt = ResourceChange(
        "module.web.aws_launch_template.web",
        "aws_launch_template",
        ("create", "delete"),
        ("image_id",),
        (AttributeChange("image_id", NEW, NEWER, forces_replacement=False),),
        "replace_by_triggers",
    )
    asg = ResourceChange(
        "module.web.aws_autoscaling_group.web",
        "aws_autoscaling_group",
        ("create", "delete"),
        ("launch_template", "name"),
        (
            AttributeChange("name", "web-dev-lt-0123456789abcdef0", None, after_unknown=True, forces_replacement=True),
            AttributeChange(
                "launch_template", [{"id": "lt-0123456789abcdef0", "version": "1"}], None, after_unknown=True
            ),
        ),
        "replace_because_cannot_update",
    )
    rollout = ResourceChange(
        "module.web.terraform_data.rollout",
        "terraform_data",
        ("update",),
        ("input",),
        (AttributeChange("input", {"image_id": NEW}, {"image_id": NEWER}),),
    )
    return PlanResult(
        "dev",
        PlanSummary(2, 1, 2),
        (asg, lt, rollout),
        created_at=NOW - 120,
        key="fixture",
        planfile=str(planfile),
        image_id=NEWER,
    )


def staging_drift() -> DriftReport:
    return DriftReport(
        name="staging",
        status="drifted",
        managed=[
            {"address": "module.web.aws_autoscaling_group.web", "attributes": ["desired_capacity"], "action": "update"}
        ],
        unmanaged=[{"type": "ec2:instance", "id": "i-0f00dfeedbeef0001"}],
        image=[{"instance": "i-0f00dfeedbeef0001", "image_id": "ami-0ffffffffffffffff"}],
        ignored=4,
        checked_at=NOW - 300,
        seconds=5.2,
    )


def build(target: Path) -> Path:
    """The fixture deck at ``target``."""
    shutil.copytree(ROOT / "sample_envs", target, ignore=shutil.ignore_patterns(".terraform", ".opsdeck"))
    local = target / ".opsdeck"
    (local / "plans").mkdir(parents=True)
    (local / "drift").mkdir()
    (local / "snapshot.json").write_text(json.dumps(state().to_json()))
    planfile = local / "plans" / "dev.tfplan"
    planfile.write_bytes(b"fixture")
    (local / "plans" / "dev.json").write_text(json.dumps(dev_plan(planfile).to_json()))
    (local / "drift" / "staging.json").write_text(json.dumps(staging_drift().to_json()))
    for env in ("sandbox", "dev", "prod"):
        report = DriftReport(name=env, status="clean", ignored=4, checked_at=NOW - 300, seconds=4.8)
        (local / "drift" / f"{env}.json").write_text(json.dumps(report.to_json()))
    return target
