"""The registry: every operation the CLI, the deck's keys and the engine's workers run, declared once.

An entry says what the operation is called, its typed arguments, whether it changes anything (then
core takes the environment's lock and audits it, and a read-only deck refuses it), where it may run
(here only, or on a worker of its environment's account or of the build account: the queue
``opsdeck.<account>``) and the coroutines that run it (`operations.py`). `runner.run` finds an entry
here and makes the one choice between this process and a worker.

    ran = await runner.run(deck, registry.PROMOTE, PromoteArgs("dev", "staging"), rep, confirm=ask)
"""

from __future__ import annotations

from typing import Any

from opsdeck.core.engine import governance as gov
from opsdeck.core.engine import operations as ops
from opsdeck.core.engine.operation import (
    ApproveArgs,
    BakeArgs,
    DeployArgs,
    EnvArgs,
    EnvsArgs,
    ExecuteArgs,
    ExpireArgs,
    ExtendArgs,
    FreezeArgs,
    GlassArgs,
    Operation,
    PlanArgs,
    PromoteArgs,
    RefreshArgs,
    RejectArgs,
    RollbackArgs,
    UnfreezeArgs,
    Where,
)
from opsdeck.errors import ConfigError, OpsdeckError

# -- read-only -----------------------------------------------------------------------------------------

PLAN = Operation(
    "plan",
    PlanArgs,
    ops.plan_here,
    where=Where.ENV,
    job=ops.plan_job,
    on_workers=ops.plan_on_workers,
    unseen=ops.env_unseen,
    done_here="planned",
)
DRIFT = Operation(  # one environment's drift check: what a refresh sends to a worker
    "drift", EnvArgs, ops.drift_here, where=Where.ENV, job=ops.drift_job, on_workers=ops.drift_on_workers
)
DRIFT_CHECK = Operation("drift-check", EnvsArgs, ops.drift_check_here)  # every environment (or some), here
REFRESH = Operation(  # on the workers: each environment's plan and drift check as jobs of its account
    "refresh", RefreshArgs, ops.refresh_here, where=Where.ENV, on_workers=ops.refresh_on_workers
)
# Plans made ahead of promote, deploy and rollback: no pin file touched, no lock (an image it shares or
# copies is audited by the release code it shares)
PREPLAN = Operation("preplan", EnvsArgs, gov.preplan_here)

# -- changes: locked, audited, refused by a read-only deck ---------------------------------------------

BAKE = Operation(
    "bake",
    BakeArgs,
    ops.bake_here,
    mutating=True,
    where=Where.BUILD,
    job=ops.bake_job,
    on_workers=ops.bake_on_workers,
    unseen=ops.bake_unseen,
    done_here="baked",
)
PROMOTE = Operation(
    "promote",
    PromoteArgs,
    ops.promote_here,
    mutating=True,
    where=Where.ENV,
    job=ops.release_job(ops.promote_here),
    on_workers=ops.release_on_workers("promote"),
)
DEPLOY = Operation(
    "deploy",
    DeployArgs,
    ops.deploy_here,
    mutating=True,
    where=Where.ENV,
    job=ops.release_job(ops.deploy_here),
    on_workers=ops.release_on_workers("deploy"),
)
ROLLBACK = Operation(
    "rollback",
    RollbackArgs,
    ops.rollback_here,
    mutating=True,
    where=Where.ENV,
    job=ops.release_job(ops.rollback_here),
    on_workers=ops.release_on_workers("rollback"),
)
NUKE = Operation(
    "nuke",
    EnvArgs,
    ops.nuke_here,
    mutating=True,
    where=Where.ENV,
    job=ops.nuke_job,
    on_workers=ops.nuke_on_workers,
    unseen=ops.env_unseen,
    done_here="nuked and rebuilt",
)
APPROVE = Operation("approve", ApproveArgs, ops.approve_here, mutating=True)
REJECT = Operation("reject", RejectArgs, ops.reject_here, mutating=True)
EXECUTE = Operation("execute", ExecuteArgs, ops.execute_here, mutating=True)
STANDBY_EXPIRE = Operation("standby-expire", EnvArgs, ops.standby_expire_here, mutating=True)
BREAK_GLASS = Operation("break-glass", GlassArgs, ops.break_glass_here, mutating=True)  # its credentials are here
APPLY = Operation("apply", EnvArgs, ops.apply_here, mutating=True)
FREEZE = Operation("freeze", FreezeArgs, gov.freeze_here, mutating=True)  # signed with this engineer's key
UNFREEZE = Operation("unfreeze", UnfreezeArgs, gov.unfreeze_here, mutating=True)
SANDBOX_EXPIRE = Operation("sandbox-expire", ExpireArgs, gov.expire_here, mutating=True)
SANDBOX_EXTEND = Operation("sandbox-extend", ExtendArgs, gov.extend_here, mutating=True)

OPERATIONS: dict[str, Operation[Any, Any]] = {
    op.name: op
    for op in (
        PLAN,
        DRIFT,
        DRIFT_CHECK,
        REFRESH,
        PREPLAN,
        BAKE,
        PROMOTE,
        DEPLOY,
        ROLLBACK,
        NUKE,
        APPROVE,
        REJECT,
        EXECUTE,
        STANDBY_EXPIRE,
        BREAK_GLASS,
        APPLY,
        FREEZE,
        UNFREEZE,
        SANDBOX_EXPIRE,
        SANDBOX_EXTEND,
    )
}
JOBS = sorted(name for name, op in OPERATIONS.items() if op.job is not None)  # what the engine's workers run


def operation(name: str) -> Operation[Any, Any]:
    found = OPERATIONS.get(name)
    if found is None:
        raise ConfigError(f"unknown operation {name!r} (expected one of: {', '.join(sorted(OPERATIONS))})")
    return found


def job_operation(name: str, job: str = "") -> Operation[Any, Any]:
    """The operation a job names; one that is not a job here is one line (a job spec's, or a caller's)."""
    found = OPERATIONS.get(name)
    if found is None or found.job is None:
        if job:
            raise OpsdeckError(f"job {job}: unknown operation {name!r}")
        raise ConfigError(f"unknown job operation {name!r} (the engine runs: {', '.join(JOBS)})")
    return found
