"""Destroy a recovered copy: nuke-and-rebuild's safety rules, for a copy. A dry run first (what the copy's
state holds), never in an account listed in ``aws.protected_accounts`` (compared with the real account
id), audited, and only the copy's own state is destroyed: the environment's state, module and instances
are never touched. Phases: inventory, prepare, terraform destroy, verify empty, ledger."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opsdeck.core.drift.ownership import from_state
from opsdeck.core.estate.backend import Backend
from opsdeck.core.estate.deck import Deck, copy_name
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.identity import operator
from opsdeck.core.ledger.remote import publish
from opsdeck.core.plans import planning
from opsdeck.core.release import fleet
from opsdeck.core.safety.audit import anchor
from opsdeck.core.safety.confirm import NotConfirmedError
from opsdeck.core.safety.operation import audited, refuse
from opsdeck.core.sandbox.copies import (
    Pin,
    backend_config,
    check_plan_region,
    copy_tools,
    prepare,
    read_copy,
    record_rel,
    state_of_copy,
    validate,
    work_dir,
)
from opsdeck.core.sandbox.nuke import Deletions
from opsdeck.errors import OpsdeckError, RefusedError


@dataclass(frozen=True)
class CopyInventory:
    """What destroying a copy would destroy (its dry run)."""

    environment: str
    region: str
    account: str
    state: Backend
    managed: tuple[str, ...]
    recorded: bool  # the ledger has its record (else: a partial copy a failed recovery left)

    def summary(self) -> str:
        where = "recorded in the ledger" if self.recorded else "not in the ledger: left by a failed recovery"
        return (
            f"{copy_name(self.environment, self.region)} (account {self.account}, {where}): destroy "
            f"{len(self.managed)} managed resources of state s3://{self.state.bucket}/{self.state.key}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "region": self.region,
            "account": self.account,
            "state": {"bucket": self.state.bucket, "key": self.state.key, "region": self.state.region},
            "managed": list(self.managed),
            "recorded": self.recorded,
        }


@dataclass(frozen=True)
class DestroyResult:
    environment: str
    region: str
    destroyed: int
    commit: str
    phases: tuple[tuple[str, float], ...]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "region": self.region,
            "destroyed": self.destroyed,
            "commit": self.commit,
            "phases": [{"name": n, "seconds": round(s, 3)} for n, s in self.phases],
            "seconds": round(self.seconds, 3),
        }


# -- destroy -----------------------------------------------------------------------------------------


def check_copy_allowed(deck: Deck, env: str, region: str) -> str:
    """nuke-and-rebuild's account rule, for a copy: refused in an account listed in
    ``aws.protected_accounts`` (the real account, from STS); returns the account id."""
    account = copy_tools(deck, env, region).cloud.caller_identity()["account"]
    if account in deck.config.aws.protected_accounts:
        raise RefusedError(
            f"account {account} is listed in aws.protected_accounts: destroying the copy of {env} in {region} "
            "is refused there, as nuke-and-rebuild is"
        )
    return account


async def inventory(deck: Deck, env: str, region: str, rep: Reporter | None = None) -> CopyInventory:
    """The dry run of ``destroy_copy``: what the copy's state holds (refusals included)."""
    await validate(deck, env, region)
    account = await asyncio.to_thread(check_copy_allowed, deck, env, region)
    record = await asyncio.to_thread(read_copy, deck, env, region)
    state = state_of_copy(deck, env, region)  # refuses a location any environment of the deck keeps its state at
    if record is not None and record.state != state:
        raise RefusedError(
            f"{record_rel(env, region)}: its state s3://{record.state.bucket}/{record.state.key} "
            f"(region {record.state.region}) is not where the copy of {env} in {region} keeps its state "
            f"(s3://{state.bucket}/{state.key}, region {state.region}): refusing to touch it"
        )
    body = await asyncio.to_thread(deck.tools.env(env).cloud.read_object, state.bucket, state.key)
    if record is None and body is None:
        raise RefusedError(
            f"there is no recovered copy of {env} in {region} (no {record_rel(env, region)} in the ledger, "
            f"no state at s3://{state.bucket}/{state.key})"
        )
    try:
        held = from_state(env, json.loads(body) if body else None)
    except ValueError:
        raise OpsdeckError(f"s3://{state.bucket}/{state.key}: the copy's state is not JSON") from None
    return CopyInventory(env, region, account, state, held.addresses, record is not None)


async def destroy_copy(
    deck: Deck,
    env: str,
    region: str,
    rep: Reporter,
    *,
    confirm: Callable[[CopyInventory], Awaitable[bool]] | None = None,
) -> DestroyResult:
    """Destroy the copy of ``env`` in ``region`` and drop its record; audited, under ``env``'s lock."""
    started = time.monotonic()
    await validate(deck, env, region)
    try:
        await asyncio.to_thread(check_copy_allowed, deck, env, region)
    except RefusedError as exc:
        await asyncio.to_thread(refuse, deck, "recover-destroy", env, exc, region=region)
        raise
    async with audited(
        deck, "recover-destroy", env, rep, fields={"region": region}, lock_detail={"region": region}
    ) as run:
        with rep.phase("inventory"):
            plan = await inventory(deck, env, region, rep)
        if confirm is not None and not await confirm(plan):
            raise NotConfirmedError(f"destroying the copy of {env} in {region} was not confirmed; nothing changed")
        destroyed, sha = await _destroy(deck, env, region, plan, rep, run.hash)
        run.note(region=region, state_key=plan.state.key, destroyed=destroyed, commit=sha)
    return DestroyResult(env, region, destroyed, sha, tuple(rep.phases), time.monotonic() - started)


async def _destroy(
    deck: Deck, env: str, region: str, plan: CopyInventory, rep: Reporter, audit_hash: str
) -> tuple[int, str]:
    record = await asyncio.to_thread(read_copy, deck, env, region)
    pins: dict[str, Pin] = (
        record.images if record is not None else await asyncio.to_thread(fleet.expected_pins, deck, env)
    )
    tools = await asyncio.to_thread(copy_tools, deck, env, region)
    name = copy_name(env, region)
    with rep.phase("prepare"):
        await asyncio.to_thread(prepare, deck, env, region, pins)
        await tools.terraform.init(backend_config(deck, env, plan.state), reconfigure=True)
        # terraform destroy deletes what the state names wherever the provider points: the same names as
        # the environment's own, so the provider must be shown to run in the copy's region first.
        planfile = planning.scratch_planfile(deck, name, "recover-destroy")
        try:
            await tools.terraform.plan(planfile, destroy=True)
            check_plan_region(await tools.terraform.show_json(planfile), region, name)
        finally:
            planning.drop_scratch(deck, name, "recover-destroy")
    destroyed = Deletions(rep, len(plan.managed))
    with rep.phase("terraform destroy"):
        await tools.terraform.destroy(on_event=destroyed)
    with rep.phase("verify empty"):
        left = await asyncio.to_thread(tools.cloud.groups, deck.config.conventions.env_tag, env)
        env_cloud = deck.tools.env(env).cloud
        body = await asyncio.to_thread(env_cloud.read_object, plan.state.bucket, plan.state.key)
        held = from_state(env, json.loads(body) if body else None).addresses
        if left or held:
            names = ", ".join([*(g.name for g in left), *held][:5])
            raise OpsdeckError(f"the copy of {env} in {region} is not empty after destroy: {names}")
        await asyncio.to_thread(env_cloud.delete_object, plan.state.bucket, plan.state.key)
    sha = ""
    with rep.phase("ledger"):
        if record is not None:
            sha = await asyncio.to_thread(_drop_record, deck, env, region, plan, rep, audit_hash)
    shutil.rmtree(work_dir(deck, env, region), ignore_errors=True)
    return destroyed.count, sha


def _drop_record(deck: Deck, env: str, region: str, plan: CopyInventory, rep: Reporter, audit_hash: str) -> str:
    rel = record_rel(env, region)
    (deck.root / rel).unlink()
    who = operator(deck)
    text = (
        f"destroy the copy of {env} in {region}\n\nstate s3://{plan.state.bucket}/{plan.state.key}\n\n"
        f"{who.trailers()}\n{anchor(deck, audit_hash)}\n"
    )
    deck.tools.git.commit([rel], text)
    _, sha = publish(deck, rep)
    return sha
