"""Recover an environment in another region, and remove such a copy again.

``recover``: copy the environment's pinned images into the region (an existing copy is reused), apply
the environment's own root module there under a state key of its own (see core/sandbox/copies.py),
wait until every service runs its pinned image on every desired instance, and commit the copy's
record to the ledger; audited, under the environment's lock (a copy is built from the environment's
pins and module, so nothing may move them meanwhile, and ``opsdeck unlock ENV`` clears an
interrupted recovery as any other operation).

``destroy_copy``: nuke-and-rebuild's safety rules, for a copy: a dry run first (what the copy's state
holds), never in an account listed in ``aws.protected_accounts`` (compared with the real account id),
audited, and only the copy's own state is destroyed: the environment's state, module and instances
are never touched.

Phases, as nuke-and-rebuild's: copy images, prepare, plan, policy, apply, verify instances, ledger;
and inventory, prepare, terraform destroy, verify empty, ledger.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opsdeck.core.drift.ownership import from_state
from opsdeck.core.estate import installed
from opsdeck.core.estate.backend import Backend
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.identity import operator
from opsdeck.core.ledger.remote import publish
from opsdeck.core.model import ImageRef, PlanResult, PlanSummary
from opsdeck.core.plans import planning
from opsdeck.core.plans.planning import keep_shown
from opsdeck.core.plans.shown import parse_plan
from opsdeck.core.ports.factory import EnvTools
from opsdeck.core.release import fleet, rollout
from opsdeck.core.release.distribute import Distribution, make_usable
from opsdeck.core.release.images import load_catalog
from opsdeck.core.safety.audit import TRAILER
from opsdeck.core.safety.breakglass import BreakGlass
from opsdeck.core.safety.confirm import Confirm, NotConfirmedError, Preview, ServiceChange
from opsdeck.core.safety.operation import audited, refuse
from opsdeck.core.sandbox.copies import (
    Pin,
    RecoveredCopy,
    backend_config,
    check_plan_region,
    check_target,
    copy_name,
    images_of,
    live_image,
    mapped,
    prepare,
    read_copy,
    record_rel,
    state_of_copy,
    work_dir,
    write_copy,
)
from opsdeck.errors import OpsdeckError, RefusedError


def known_regions() -> list[str]:
    return installed.outside().known_regions("ec2")


@dataclass(frozen=True)
class RecoverResult:
    """A recovery: the copy, what was copied and applied, and the phase timeline."""

    copy: RecoveredCopy
    distributions: tuple[Distribution, ...]
    summary: PlanSummary
    commit: str
    phases: tuple[tuple[str, float], ...]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            **self.copy.to_json(),
            "copied": [d.to_json() for d in self.distributions],
            "add": self.summary.add,
            "change": self.summary.change,
            "destroy": self.summary.destroy,
            "commit": self.commit,
            "phases": [{"name": n, "seconds": round(s, 3)} for n, s in self.phases],
            "seconds": round(self.seconds, 3),
        }


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


async def validate(deck: Deck, env: str, region: str) -> None:
    """Bad input, before anything runs: an unknown environment or region, or the environment's own."""
    check_target(deck, env, region, await asyncio.to_thread(known_regions))


def copy_tools(deck: Deck, env: str, region: str, glass: BreakGlass | None = None) -> EnvTools:
    credentials = glass.credentials if glass is not None and glass.env == env else None
    return deck.tools.env_copy(env, region, work_dir(deck, env, region), credentials)


# -- recover -----------------------------------------------------------------------------------------


async def recover(
    deck: Deck,
    env: str,
    region: str,
    rep: Reporter,
    *,
    confirm: Confirm | None = None,
    glass: BreakGlass | None = None,
) -> RecoverResult:
    """Build (or bring up to date) a copy of ``env`` in ``region``; audited, under ``env``'s lock."""
    started = time.monotonic()
    await validate(deck, env, region)
    fields = {"region": region, "reason": glass.reason if glass else ""}
    async with audited(deck, "recover", env, rep, glass=glass, fields=fields, lock_detail={"region": region}) as run:
        result = await _recover(deck, env, region, rep, confirm, glass, run.hash, started)
        run.note(
            state_key=result.copy.state_key,
            images={s: live_image(p) for s, p in result.copy.images.items()},
            copied=[d.to_json() for d in result.distributions if d.copied],
            add=result.summary.add,
            change=result.summary.change,
            destroy=result.summary.destroy,
            commit=result.commit,
        )
    return RecoverResult(
        result.copy,
        result.distributions,
        result.summary,
        result.commit,
        tuple(rep.phases),
        time.monotonic() - started,
    )


async def _copy_images(
    deck: Deck, env: str, region: str, pins: dict[str, Pin], rep: Reporter, versions: dict[str, str]
) -> tuple[dict[str, Pin], list[Distribution]]:
    """Each pinned image made usable in ``region``; ``versions`` gets each id's version (for the preview)."""
    catalog = await asyncio.to_thread(load_catalog, deck, [deck.config.region_of(env), region])
    usable: dict[str, str] = {}
    made: list[Distribution] = []
    for service, pin in pins.items():
        for image_id in images_of(pin):
            if image_id in usable:
                continue
            original = catalog.original(image_id)
            if original is None:
                raise OpsdeckError(
                    f"{env}: {service} pins {image_id}, which is not one of the deck's images in the build "
                    f"account; it cannot be copied to {region}"
                )
            dist = await make_usable(deck, catalog, original, env, rep, region=region)
            usable[image_id] = dist.usable_id
            versions[image_id] = versions[dist.usable_id] = original.version
            made.append(dist)
            if dist.copied:
                rep.log(f"copied {original.id} to {region} as {dist.usable_id}")
    return {s: mapped(p, usable) for s, p in pins.items()}, made


async def _plan(deck: Deck, name: str, region: str, tools: EnvTools, pins: dict[str, Pin], rep: Reporter) -> PlanResult:
    planfile = planning.scratch_planfile(deck, name, "recover")
    summary: dict[str, Any] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") in ("planned_change", "change_summary"):
            rep.progress(str(event.get("@message", "")))
            if event.get("type") == "change_summary":
                summary.update(event.get("changes") or {})

    with rep.phase("plan"):
        await tools.terraform.plan(planfile, on_event=on_event)
        extra: dict[str, Any] = {
            "planfile": str(planfile),
            "pins": {s: live_image(p) for s, p in pins.items()},
            "created_at": time.time(),
        }
        if summary and not any(summary.get(k) for k in ("add", "change", "remove", "import")):
            return PlanResult(name, PlanSummary(), (), **extra)
        shown = await tools.terraform.show_json(planfile)
        check_plan_region(shown, region, name)  # before the policy gate and the apply: nothing applied else

    await asyncio.to_thread(keep_shown, deck, planfile, shown)  # what the policy gate reads
    return parse_plan(name, shown, **extra)


async def _recover(
    deck: Deck,
    env: str,
    region: str,
    rep: Reporter,
    confirm: Confirm | None,
    glass: BreakGlass | None,
    audit_hash: str,
    started: float,
) -> RecoverResult:
    name = copy_name(env, region)
    credentials = glass.credentials if glass is not None and glass.env == env else None
    source: dict[str, Pin] = await asyncio.to_thread(fleet.expected_pins, deck, env)
    versions: dict[str, str] = {}
    with rep.phase("copy images"):
        pins, made = await _copy_images(deck, env, region, source, rep, versions)
    state = state_of_copy(deck, env, region)
    tools = await asyncio.to_thread(copy_tools, deck, env, region, glass)
    with rep.phase("prepare"):
        await asyncio.to_thread(prepare, deck, env, region, pins)
        await tools.terraform.init(backend_config(deck, env, state), reconfigure=True)
    plan = await _plan(deck, name, region, tools, pins, rep)
    try:
        if plan.summary.has_changes:
            if confirm is not None:
                changes = tuple(
                    ServiceChange(s, _ref(live_image(source[s]), versions), _ref(live_image(p), versions))
                    for s, p in pins.items()
                )
                note = f"a copy of {env} in {region}, state s3://{state.bucket}/{state.key}"
                preview = Preview("recover", name, deck.env(env).confirmation, changes, plan, note=note)
                if not await confirm(preview):
                    raise NotConfirmedError(f"recover of {env} in {region} was not confirmed; nothing changed")
            await rollout.apply_plan(deck, env, plan, rep, credentials, terraform=tools.terraform)
        else:
            rep.log(f"the copy of {env} in {region} is up to date with {env}'s module and pins")
    finally:
        planning.drop_scratch(deck, name, "recover")
    unhealthy: OpsdeckError | None = None
    try:
        await fleet.wait_for_images(deck, env, pins, rep, credentials=credentials, cloud=tools.cloud)
    except OpsdeckError as exc:
        unhealthy = exc
    with rep.phase("ledger"):
        copy, sha = await asyncio.to_thread(
            _commit_record, deck, env, region, pins, source, state, audit_hash, unhealthy, rep
        )
    if unhealthy is not None:
        raise OpsdeckError(
            f"recover of {env} in {region} applied and recorded as unhealthy ({sha[:12]}): {unhealthy}; "
            f"recover again, or remove it with `opsdeck recover {env} --region {region} --destroy`"
        )
    return RecoverResult(copy, tuple(made), plan.summary, sha, tuple(rep.phases), time.monotonic() - started)


def _ref(image_id: str, versions: dict[str, str]) -> ImageRef:
    return ImageRef(image_id, versions.get(image_id, ""))


def _commit_record(
    deck: Deck,
    env: str,
    region: str,
    pins: dict[str, Pin],
    source: dict[str, Pin],
    state: Backend,
    audit_hash: str,
    unhealthy: OpsdeckError | None,
    rep: Reporter,
) -> tuple[RecoveredCopy, str]:
    now = float(int(time.time()))  # the record keeps whole seconds
    try:
        before = read_copy(deck, env, region)
    except OpsdeckError:
        before = None  # a damaged record is written again
    who = operator(deck)
    copy = RecoveredCopy(
        env=env,
        region=region,
        account=deck.env(env).account,
        created=before.created if before is not None else now,
        updated=now,
        images=pins,
        source_images=source,
        state=state,
        healthy=unhealthy is None,
        by=who.git or who.user,
        audit=audit_hash,
        error=str(unhealthy) if unhealthy else "",
    )
    rel = write_copy(deck, copy)
    images = ", ".join(f"{s} {live_image(p)}" for s, p in pins.items())
    head = f"recover {env} in {region}" + ("" if unhealthy is None else " (unhealthy)")
    text = f"{head}\n\n{images}\nstate s3://{state.bucket}/{state.key}\n\n{who.trailers()}\n{TRAILER}: {audit_hash}\n"
    deck.tools.git.commit([rel], text)
    _, sha = publish(deck, rep)
    return copy, sha


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
    destroyed = 0

    def on_destroy(event: dict[str, Any]) -> None:
        nonlocal destroyed
        if event.get("type") == "apply_complete" and (event.get("hook") or {}).get("action") == "delete":
            destroyed += 1
            rep.progress(str(event.get("@message", "")), destroyed, max(destroyed, len(plan.managed)))

    with rep.phase("terraform destroy"):
        await tools.terraform.destroy(on_event=on_destroy)
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
    return destroyed, sha


def _drop_record(deck: Deck, env: str, region: str, plan: CopyInventory, rep: Reporter, audit_hash: str) -> str:
    rel = record_rel(env, region)
    (deck.root / rel).unlink()
    who = operator(deck)
    text = (
        f"destroy the copy of {env} in {region}\n\nstate s3://{plan.state.bucket}/{plan.state.key}\n\n"
        f"{who.trailers()}\n{TRAILER}: {audit_hash}\n"
    )
    deck.tools.git.commit([rel], text)
    _, sha = publish(deck, rep)
    return sha
