"""Recover an environment in another region, and remove such a copy again.

``recover``: copy the environment's pinned images into the region (an existing copy is reused), apply
the environment's own root module there under a state key of its own (see core/sandbox/copies.py),
wait until every service runs its pinned image on every desired instance, and commit the copy's
record to the ledger; audited, under the environment's lock (a copy is built from the environment's
pins and module, so nothing may move them meanwhile, and ``opsdeck unlock ENV`` clears an
interrupted recovery as any other operation).

``destroy_copy`` (core/sandbox/destroy_copy.py) removes such a copy again, with nuke-and-rebuild's
safety rules; the command line names it and its dry run (``inventory``) here too.

Phases, as nuke-and-rebuild's: copy images, prepare, plan, policy, apply, verify instances, ledger;
and inventory, prepare, terraform destroy, verify empty, ledger.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from opsdeck.core.estate.backend import Backend
from opsdeck.core.estate.deck import Deck, copy_name
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
from opsdeck.core.safety.audit import anchor
from opsdeck.core.safety.breakglass import BreakGlass
from opsdeck.core.safety.confirm import Confirm, NotConfirmedError, Preview, ServiceChange
from opsdeck.core.safety.operation import audited
from opsdeck.core.sandbox.copies import (
    Pin,
    RecoveredCopy,
    backend_config,
    check_plan_region,
    copy_tools,
    images_of,
    live_image,
    mapped,
    prepare,
    read_copy,
    state_of_copy,
    validate,
    write_copy,
)
from opsdeck.core.sandbox.destroy_copy import CopyInventory, destroy_copy, inventory
from opsdeck.errors import OpsdeckError

# The command line names the whole of a copy's life here: validate, recover, the dry run and destroy.
__all__ = ["CopyInventory", "RecoverResult", "destroy_copy", "inventory", "recover", "validate"]


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
    text = (
        f"{head}\n\n{images}\nstate s3://{state.bucket}/{state.key}\n\n{who.trailers()}\n{anchor(deck, audit_hash)}\n"
    )
    deck.tools.git.commit([rel], text)
    _, sha = publish(deck, rep)
    return copy, sha
