"""Nuke and rebuild a sandbox: delete everything of it, managed or not, then recreate it from code.

Only for `sandbox = true` environments, never in an account listed in `aws.protected_accounts`, and
only the resources the ownership rules give to this environment (see core/ownership.py): what
belongs to another environment is never touched, whatever its tags say.

Phases: inventory, delete unmanaged (strays inside the environment's VPC would otherwise block
Terraform from deleting the VPC, so they go first, in dependency order, with retries), terraform
destroy, verify nothing is left, terraform apply from code, wait until instances run the pinned image.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from opsdeck.core.drift import store as drift_store
from opsdeck.core.drift.ownership import Ownership, among_peers, owner, ownerships, unmanaged
from opsdeck.core.estate import lifetimes
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pins
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.remote import publish
from opsdeck.core.plans import planning
from opsdeck.core.release import fleet, rollout
from opsdeck.core.safety.audit_shipping import is_audit_bucket
from opsdeck.core.safety.breakglass import BreakGlass
from opsdeck.core.safety.operation import audited, refuse
from opsdeck.core.types.cloud import DELETE_ORDER, CloudResource
from opsdeck.errors import OpsdeckError, RefusedError

DELETE_ATTEMPTS = 6


@dataclass(frozen=True)
class NukePlan:
    """What a nuke-and-rebuild would delete."""

    environment: str
    account: str
    managed: tuple[str, ...]
    unmanaged: tuple[CloudResource, ...]
    pins: dict[str, str]
    region: str = ""
    kept: tuple[str, ...] = ()  # "s3:bucket NAME: why": the environment's, yet never deleted

    def summary(self) -> str:
        images = ", ".join(f"{s} {i}" for s, i in self.pins.items())
        keeps = f" (keep {len(self.kept)}: Object Lock)" if self.kept else ""
        return (
            f"{self.environment} (account {self.account}, {self.region}): destroy {len(self.managed)} managed "
            f"resources and delete {len(self.unmanaged)} unmanaged{keeps}, then rebuild from code on {images}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "account": self.account,
            "region": self.region,
            "managed": list(self.managed),
            "unmanaged": [r.to_json() for r in self.unmanaged],
            "pins": self.pins,
            "kept": list(self.kept),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NukePlan:
        """A plan read back (one an engine's worker asks this deck to confirm)."""
        return cls(
            environment=str(data["environment"]),
            account=str(data["account"]),
            managed=tuple(str(a) for a in data["managed"]),
            unmanaged=tuple(CloudResource(str(r["type"]), str(r["id"])) for r in data["unmanaged"]),
            pins={str(k): str(v) for k, v in dict(data["pins"]).items()},
            region=str(data.get("region", "")),
            kept=tuple(str(k) for k in data.get("kept", [])),
        )


@dataclass(frozen=True)
class NukeResult:
    environment: str
    destroyed: int
    unmanaged_deleted: int
    created: int
    phases: tuple[tuple[str, float], ...]
    seconds: float
    deleted: tuple[dict[str, str], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "destroyed": self.destroyed,
            "unmanaged_deleted": self.unmanaged_deleted,
            "created": self.created,
            "phases": [{"name": n, "seconds": round(s, 3)} for n, s in self.phases],
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NukeResult:
        """A result read back (from an engine's worker)."""
        return cls(
            environment=str(data["environment"]),
            destroyed=int(data["destroyed"]),
            unmanaged_deleted=int(data["unmanaged_deleted"]),
            created=int(data["created"]),
            phases=tuple((str(p["name"]), float(p["seconds"])) for p in data["phases"]),
            seconds=float(data["seconds"]),
        )


def check_allowed(deck: Deck, env: str) -> str:
    """Refuse anything but a sandbox in an unprotected account; returns the account id."""
    settings = deck.env(env)
    if not settings.sandbox:
        raise RefusedError(
            f"nuke-and-rebuild is only for sandbox environments; {env} is not one (sandbox = true in opsdeck.toml)"
        )
    account = deck.tools.env(env).cloud.caller_identity()["account"]  # the real one, whatever the config says
    if account in deck.config.aws.protected_accounts:
        raise RefusedError(f"account {account} is listed in aws.protected_accounts: nuke-and-rebuild is refused there")
    return account


async def _inventory(deck: Deck, env: str, rep: Reporter) -> tuple[NukePlan, dict[str, Ownership]]:
    account = await asyncio.to_thread(check_allowed, deck, env)
    owners = among_peers(deck, env, await ownerships(deck, rep, [env]))
    tag = deck.config.conventions.env_tag
    cloud = deck.tools.env(env).cloud
    found = await asyncio.to_thread(cloud.find, env, owners[env].vpc_ids, tag)
    # The shipped audit log's bucket outlives every nuke, whatever it is tagged with.
    strays = [r for r in unmanaged(env, found, owners, tag) if not is_audit_bucket(deck, r.type, r.id)]
    locked = await asyncio.to_thread(_locked, deck, env, strays)
    pins = await asyncio.to_thread(read_pins, deck, env)
    kept = tuple(f"{kind} {ident}: {why}" for (kind, ident), why in locked.items())
    strays = [r for r in strays if (r.type, r.id) not in locked]
    plan = NukePlan(env, account, owners[env].addresses, tuple(strays), pins, deck.config.region_of(env), kept)
    return plan, owners


def _locked(deck: Deck, env: str, found: list[CloudResource]) -> dict[tuple[str, str], str]:
    """The buckets among ``found`` that Object Lock keeps (anyone's audit log or records, compliance
    mode: no one can delete them before their retention ends), each with why: a nuke leaves them and
    says so instead of failing its retries on them."""
    store = deck.tools.env(env).cloud.locked_store()
    out: dict[tuple[str, str], str] = {}
    for res in found:
        if res.type != "s3:bucket":
            continue
        try:
            lock = store.lock_retention(res.id)
        except OpsdeckError:  # gone since it was listed (the tagging API lags), or unreadable: the delete says
            continue
        if lock is not None:
            mode, days = lock
            held = f"{days} day's" if days == 1 else f"{days} days'"
            why = f"Object Lock, {mode.lower()} mode, {held} retention: opsdeck never deletes it"
            out[(res.type, res.id)] = why
    return out


async def inventory(deck: Deck, env: str, rep: Reporter | None = None) -> NukePlan:
    """The dry run: what nuke-and-rebuild of ``env`` would delete (refusals included)."""
    plan, _ = await _inventory(deck, env, rep or Reporter("nuke-rebuild", env))
    return plan


async def _delete_all(deck: Deck, env: str, resources: tuple[CloudResource, ...], rep: Reporter) -> list[CloudResource]:
    """Delete in dependency order; each type in parallel; a failure is retried after the rest went."""
    cloud = deck.tools.env(env).cloud
    pending = sorted(resources, key=lambda r: DELETE_ORDER.index(r.type) if r.type in DELETE_ORDER else 99)
    deleted: list[CloudResource] = []
    for attempt in range(DELETE_ATTEMPTS):
        failed: list[tuple[CloudResource, Exception]] = []
        for kind in [*DELETE_ORDER, *sorted({r.type for r in pending} - set(DELETE_ORDER))]:
            batch = [r for r in pending if r.type == kind]
            if not batch:
                continue
            results = await asyncio.gather(*(asyncio.to_thread(cloud.delete, r) for r in batch), return_exceptions=True)
            for res, outcome in zip(batch, results, strict=True):
                if isinstance(outcome, Exception):
                    failed.append((res, outcome))
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    deleted.append(res)
                    rep.progress(f"deleted {res.type} {res.id}", len(deleted), len(resources))
        if not failed:
            return deleted
        pending = [r for r, _ in failed]
        rep.log(f"{len(failed)} deletions failed (attempt {attempt + 1}); retrying: {failed[0][1]}", "warning")
        await asyncio.sleep(min(8.0, 0.5 * 2**attempt))
    names = ", ".join(f"{r.type} {r.id}" for r in pending)
    raise OpsdeckError(f"could not delete {names} after {DELETE_ATTEMPTS} attempts")


async def nuke_rebuild(
    deck: Deck, env: str, rep: Reporter, *, confirm: Any = None, glass: BreakGlass | None = None
) -> NukeResult:
    """Destroy everything of the sandbox ``env`` and rebuild it from code; audited, locked (``glass``:
    break-glass, which passes a freeze)."""
    started = time.monotonic()
    if not deck.env(env).sandbox:  # before anything else: not even break-glass makes this a sandbox
        exc = RefusedError(
            f"nuke-and-rebuild is only for sandbox environments; {env} is not one (sandbox = true in opsdeck.toml)"
        )
        await asyncio.to_thread(refuse, deck, "nuke-rebuild", env, exc)
        raise exc
    async with audited(deck, "nuke-rebuild", env, rep, glass=glass) as run:
        await asyncio.to_thread(check_allowed, deck, env)
        result = await _run(deck, env, rep, confirm, started)
        run.note(
            destroyed=result.destroyed,
            unmanaged_deleted=result.unmanaged_deleted,
            created=result.created,
            deleted=list(result.deleted),
        )
    return result


@dataclass
class Deletions:
    """The sink for a `terraform destroy`'s -json events: each deletion counted and reported as Terraform
    completes it, of ``managed`` (what the state held). A recovered copy's destroy counts with it too."""

    rep: Reporter
    managed: int
    count: int = 0

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("type") == "apply_complete" and (event.get("hook") or {}).get("action") == "delete":
            self.count += 1
            self.rep.progress(str(event.get("@message", "")), self.count, max(self.count, self.managed))


@dataclass(frozen=True)
class Teardown:
    """What the destroy steps did: Terraform's destroyed count and the unmanaged resources deleted."""

    plan: NukePlan
    destroyed: int
    gone: tuple[CloudResource, ...]


async def teardown(deck: Deck, env: str, rep: Reporter, confirm: Any) -> Teardown:
    """Inventory, delete unmanaged, terraform destroy, verify empty: the sandbox gone, nothing rebuilt
    (`sandbox expire` stops here; nuke-and-rebuild goes on to rebuild)."""
    with rep.phase("inventory"):
        plan, owners = await _inventory(deck, env, rep)
    if confirm is not None and not await confirm(plan):
        raise RefusedError(f"nuke-and-rebuild of {env} was not confirmed; nothing changed")
    with rep.phase("delete unmanaged"):
        gone = await _delete_all(deck, env, plan.unmanaged, rep)
    await planning.ensure_init(deck, env, rep.child())
    destroyed = Deletions(rep, len(plan.managed))
    with rep.phase("terraform destroy"):
        await deck.tools.env(env).terraform.destroy(on_event=destroyed)
    with rep.phase("verify empty"):
        left = await _leftovers(deck, env, owners)
        if left:
            names = ", ".join(f"{r.type} {r.id}" for r in left[:5])
            raise OpsdeckError(f"{env} is not empty after destroy: {names}")
    planning.forget_plan(deck, env)
    return Teardown(plan, destroyed.count, tuple(gone))


async def _run(deck: Deck, env: str, rep: Reporter, confirm: Any, started: float) -> NukeResult:
    down = await teardown(deck, env, rep, confirm)
    created = 0
    with rep.phase("terraform apply"):
        inner = rep.child()  # its plan/show/apply steps still reach the sink, inside this phase
        fresh = await planning.plan(deck, env, inner, reuse=False)
        created = fresh.summary.add
        await rollout.apply_plan(deck, env, fresh, inner, rebuilt=True)  # a new lifetime starts (if it has one)
    planning.forget_plan(deck, env)
    await fleet.wait_for_images(deck, env, down.plan.pins, rep)
    drift_store.forget(deck, env)
    if lifetimes.ttl_of(deck, env) is not None:  # the lifetime's record goes to the team's remote
        await asyncio.to_thread(publish, deck, rep)
    return NukeResult(
        environment=env,
        destroyed=down.destroyed,
        unmanaged_deleted=len(down.gone),
        created=created,
        phases=tuple(rep.phases),
        seconds=time.monotonic() - started,
        deleted=tuple(r.to_json() for r in down.gone),
    )


async def _leftovers(deck: Deck, env: str, before: dict[str, Ownership]) -> list[CloudResource]:
    """Anything the ownership rules (as they stood before the destroy) still give to ``env``."""
    tag = deck.config.conventions.env_tag
    found = await asyncio.to_thread(deck.tools.env(env).cloud.find, env, before[env].vpc_ids, tag)
    left = [
        res
        for res in found
        if owner(res, before, tag) == env
        and not (res.type == "ec2:instance" and res.state not in ("pending", "running", "stopping", "stopped"))
        and not is_audit_bucket(deck, res.type, res.id)  # kept on purpose (see _inventory)
    ]
    locked = await asyncio.to_thread(_locked, deck, env, left)
    return [res for res in left if (res.type, res.id) not in locked]
