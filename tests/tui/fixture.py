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
    ServiceStatus,
)
from tests.helpers import ROOT

NOW = 1_795_000_000.0  # the fixed clock
OLD, NEW, NEWER = "ami-0a1b2c3d4e5f60718", "ami-0b2c3d4e5f6071829", "ami-0c3d4e5f607182930"


ACCOUNTS = {"sandbox": "111111111111", "dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
REGIONS = {"sandbox": "us-east-1", "dev": "us-east-1", "staging": "us-east-1", "prod": "us-west-2"}
API1, API2, WORKER1 = "ami-0a2b3c4d5e6f70819", "ami-0b3c4d5e6f708192a", "ami-0c4d5e6f708192a3b"


def _svc(name: str, image: ImageRef, counts: tuple[int, int, int], lag: Lag | None = None) -> ServiceStatus:
    return ServiceStatus(name, image, InstanceCounts(*counts), lag)


def _env(name: str, services: tuple[ServiceStatus, ...], **kw: object) -> EnvStatus:
    total = InstanceCounts()
    for service in services:
        total = total + service.instances
    return EnvStatus(  # type: ignore[arg-type]
        name=name,
        account=ACCOUNTS[name],
        region=REGIONS[name],
        services=services,
        instances=total,
        plan_at=NOW - 120,
        **kw,
    )


def state() -> DeckState:
    v1, v2, v3 = ImageRef(OLD, "1.4.1"), ImageRef(NEW, "1.4.2"), ImageRef(NEWER, "1.5.0", revoked=False)
    a1, a2, w1 = ImageRef(API1, "2.0.3"), ImageRef(API2, "2.1.0"), ImageRef(WORKER1, "0.9.7")
    envs = (
        _env(
            "sandbox",
            (_svc("web", v3, (1, 1, 1)), _svc("api", a2, (1, 1, 1)), _svc("worker", w1, (1, 1, 1))),
            sandbox=True,
            plan=PlanSummary(),
            drift="clean",
            drift_at=NOW - 300,
        ),
        _env(
            "dev",
            (_svc("web", v3, (2, 2, 2)), _svc("api", a2, (2, 2, 2)), _svc("worker", w1, (1, 1, 1))),
            plan=PlanSummary(2, 1, 2),
            drift="clean",
            drift_at=NOW - 300,
        ),
        _env(
            "staging",
            (
                _svc("web", v2, (2, 3, 2), Lag("dev", v3, 1, NOW - 7200)),
                _svc("api", a2, (2, 2, 2), Lag("dev", a2, 0, None, in_sync=True)),
                _svc("worker", w1, (2, 2, 2), Lag("dev", w1, 0, None, in_sync=True)),
            ),
            promote_from="dev",
            plan=PlanSummary(0, 1, 0),
            drift="drifted",
            drift_at=NOW - 300,
            lag=Lag("dev", v3, 1, NOW - 7200),
        ),
        _env(
            "prod",
            (
                _svc("web", v1, (3, 3, 3), Lag("staging", v2, 1, NOW - 86400 * 2)),
                _svc("api", a1, (3, 3, 3), Lag("staging", a2, 1, NOW - 86400)),
                _svc("worker", w1, (2, 2, 2), Lag("staging", w1, 0, None, in_sync=True)),
            ),
            protected=True,
            promote_from="staging",
            plan=PlanSummary(),
            drift="clean",
            drift_at=NOW - 300,
            lag=Lag("staging", None, 1, NOW - 86400 * 2),
        ),
    )
    base = {"layer": "base", "service": None, "revoked": False, "base_outdated": False, "environments": []}
    images = (
        {**base, "id": "ami-0base0000000000001", "version": "2.0.0"},
        *(
            {
                "id": image_id,
                "layer": "app",
                "service": service,
                "version": version,
                "environments": where,
                "revoked": revoked,
                "base_outdated": outdated,
            }
            for image_id, service, version, where, revoked, outdated in (
                (OLD, "web", "1.4.1", ["prod"], False, True),
                (NEW, "web", "1.4.2", ["staging"], False, False),
                ("ami-0d4e5f60718293a4b", "web", "1.4.3", [], True, False),
                (NEWER, "web", "1.5.0", ["sandbox", "dev"], False, False),
                (API1, "api", "2.0.3", ["prod"], False, True),
                (API2, "api", "2.1.0", ["sandbox", "dev", "staging"], False, False),
                (WORKER1, "worker", "0.9.7", ["sandbox", "dev", "staging", "prod"], False, False),
            )
        ),
    )
    return DeckState(deck="shop", environments=envs, taken_at=NOW - 60, cloud="reachable", images=images)


def dev_plan(planfile: Path) -> PlanResult:
    lt = ResourceChange(
        "module.web.aws_launch_template.this",
        "aws_launch_template",
        ("create", "delete"),
        ("image_id",),
        (AttributeChange("image_id", NEW, NEWER, forces_replacement=False),),
        "replace_by_triggers",
    )
    asg = ResourceChange(
        "module.web.aws_autoscaling_group.this",
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
        pins={"web": NEWER, "api": API2, "worker": WORKER1},
    )


def staging_drift() -> DriftReport:
    return DriftReport(
        name="staging",
        status="drifted",
        managed=[
            {"address": "module.web.aws_autoscaling_group.this", "attributes": ["desired_capacity"], "action": "update"}
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
