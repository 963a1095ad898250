"""Removing orphans, with aws-nuke's manners: a dry run first, a confirmation, protected accounts
refused (the account the credentials really reach, asked of STS), and every deletion in the audit log.

An image goes with its snapshots (deregistered first, then each snapshot deleted), a tagged resource
with the calls nuke-and-rebuild uses (instances wait until terminated), a state file as an S3 delete
from a bucket whose versioning is Enabled (its old versions stay; another bucket is refused). The
clone is synced with the team's remote and the deck scanned again before the confirmation, and
what each deletion depends on is read again right before it (see ``remove_orphans``). Sandboxes and
recovered copies are not removed here: they are whole environments, and each says how it is removed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.hygiene.leftovers import Orphan, OrphanReport, Place, cloud_of, env_of_state, recovered_copies
from opsdeck.core.hygiene.orphans import find_orphans
from opsdeck.core.hygiene.unpinned import held_images
from opsdeck.core.ledger.remote import sync_before_change
from opsdeck.core.release.images import SOURCE_TAG
from opsdeck.core.safety.confirm import NotConfirmedError
from opsdeck.core.safety.locks import holder as lock_holder
from opsdeck.core.safety.operation import audited, refuse
from opsdeck.core.types.hygiene import REMOVE_ORDER
from opsdeck.errors import OpsdeckError, RefusedError

ATTEMPTS = 4  # a deletion that failed is tried again after the others (a group before its instances ...)


@dataclass(frozen=True)
class Removal:
    """What a removal would do: delete ``selected``; refuse those in protected accounts; skip the rest."""

    selected: tuple[Orphan, ...]
    refused: tuple[tuple[Orphan, str], ...] = ()
    skipped: tuple[tuple[Orphan, str], ...] = ()

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "delete": [o.to_json(now) for o in self.selected],
            "refused": [{**o.to_json(now), "reason": why} for o, why in self.refused],
            "skipped": [{**o.to_json(now), "reason": why} for o, why in self.skipped],
        }


@dataclass(frozen=True)
class RemovalResult:
    deleted: tuple[Orphan, ...]
    failed: tuple[tuple[Orphan, str], ...]
    refused: tuple[tuple[Orphan, str], ...]
    skipped: tuple[tuple[Orphan, str], ...]
    seconds: float

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "deleted": [o.to_json(now) for o in self.deleted],
            "failed": [{**o.to_json(now), "error": why} for o, why in self.failed],
            "refused": [{**o.to_json(now), "reason": why} for o, why in self.refused],
            "skipped": [{**o.to_json(now), "reason": why} for o, why in self.skipped],
            "seconds": round(self.seconds, 3),
        }


ConfirmRemoval = Callable[[Removal], Awaitable[bool]]


def _brief(orphan: Orphan) -> dict[str, str]:
    return {"kind": orphan.kind, "account": orphan.account, "region": orphan.region, "type": orphan.type,
            "id": orphan.id}  # fmt: skip


def plan_removal(deck: Deck, report: OrphanReport, only: list[str] | None = None) -> Removal:
    """The removal of every orphan of ``report`` (or of the ids in ``only``: an image brings its snapshots,
    a snapshot its image); an id the report does not have is a one-line error."""
    wanted = list(report.orphans)
    if only:
        missing = [i for i in only if report.find(i) is None]
        if missing:
            raise OpsdeckError(f"no orphan with id {missing[0]} (run `opsdeck orphans` to list them)")
        ids = set(only)
        ids |= {o.parent for o in report.orphans if o.id in ids and o.parent}
        ids |= {o.id for o in report.orphans if o.parent in ids}
        wanted = [o for o in report.orphans if o.id in ids]
    accounts: dict[tuple[str, str], str] = {}
    protected = set(deck.config.aws.protected_accounts)
    selected: list[Orphan] = []
    refused: list[tuple[Orphan, str]] = []
    skipped: list[tuple[Orphan, str]] = []
    versioning: dict[str, str] = {}  # bucket -> its versioning status
    for orphan in wanted:
        if not orphan.removable:
            skipped.append((orphan, orphan.how or "not removed by opsdeck"))
            continue
        key = (orphan.reached_as, orphan.region)
        if key not in accounts:  # the real account, whatever the config says
            place = Place(orphan.account, orphan.region, orphan.reached_as)
            accounts[key] = cloud_of(deck, place).caller_identity().get("account", "")
        account = accounts[key]
        if account in protected or orphan.account in protected:
            refused.append((orphan, f"account {account or orphan.account} is listed in aws.protected_accounts"))
            continue
        if orphan.kind == "state-file" and orphan.bucket:
            if orphan.bucket not in versioning:
                place = Place(orphan.account, orphan.region, orphan.reached_as)
                versioning[orphan.bucket] = cloud_of(deck, place).hygiene().versioning(orphan.bucket)
            status = versioning[orphan.bucket]
            if status != "Enabled":
                refused.append(
                    (
                        orphan,
                        f"state bucket {orphan.bucket} is not versioned ({status or 'versioning never enabled'}): "
                        "opsdeck deletes a state file only where its old versions stay",
                    )
                )
                continue
        selected.append(orphan)
    return Removal(tuple(selected), tuple(refused), tuple(skipped))


async def remove_orphans(
    deck: Deck,
    report: OrphanReport,
    rep: Reporter | None = None,
    *,
    only: list[str] | None = None,
    confirm: ConfirmRemoval | None = None,
) -> RemovalResult:
    """Delete the orphans of ``report`` (or those named), once confirmed; audited.

    The clone is synced with the team's remote first (refused when it cannot be) and the deck scanned
    again, so a recovered copy, a pin or a request committed since ``report`` keeps what it needs: what
    is no longer an orphan is skipped. After the confirmation, right before each deletion, what it
    depends on is read again (an environment's lock; an image's pins, copies, requests and instances)."""
    rep = rep or Reporter("orphans-delete")
    started = time.monotonic()
    removal = await asyncio.to_thread(plan_removal, deck, report, only)  # a wrong --only fails at once
    where = list(report.places)
    if removal.selected:
        await _sync(deck, rep)
        fresh = await find_orphans(
            deck, rep, keep_images=report.keep_images, prices=report.prices, now=report.scanned_at
        )
        removal = await asyncio.to_thread(_recheck, deck, removal, fresh)
        where = list(fresh.places)
    if not removal.selected:
        if removal.refused:
            await _audit_refused(deck, removal, rep)
        return RemovalResult((), (), removal.refused, removal.skipped, time.monotonic() - started)
    if confirm is not None and not await confirm(removal):
        raise NotConfirmedError(f"removal of {len(removal.selected)} orphans was not confirmed; nothing deleted")
    fields = {"selected": [_brief(o) for o in removal.selected]}
    async with audited(deck, "orphans-delete", None, rep, fields=fields, lock=False) as run:
        await _sync(deck, rep, attempt=False)  # the confirmation may have taken a while: the team's work counts
        with rep.phase("delete"):
            deleted, failed, late = await _delete_all(deck, removal.selected, rep, where)
        skipped = (*removal.skipped, *late)
        run.note(
            deleted=[_brief(o) for o in deleted],
            failed=[{**_brief(o), "error": why} for o, why in failed],
            refused=[{**_brief(o), "reason": why} for o, why in removal.refused],
            skipped=[{**_brief(o), "reason": why} for o, why in late],
        )
        if failed:
            run.end_as("failed", f"{len(failed)} of {len(removal.selected)} orphans could not be deleted")
    return RemovalResult(tuple(deleted), tuple(failed), removal.refused, skipped, time.monotonic() - started)


async def _sync(deck: Deck, rep: Reporter, *, attempt: bool = True) -> None:
    """The clone level with the team's remote, or a refusal (audited as an attempt unless the audited
    operation has started: its closing record says refused then)."""
    try:
        await asyncio.to_thread(sync_before_change, deck, rep)
    except RefusedError as exc:
        if attempt:
            await asyncio.to_thread(refuse, deck, "orphans-delete", None, exc)
        raise


def _key(orphan: Orphan) -> tuple[str, str, str, str]:
    return orphan.kind, orphan.account, orphan.region, orphan.id


def _recheck(deck: Deck, removal: Removal, fresh: OrphanReport) -> Removal:
    """``removal`` against a new scan: what is no longer an orphan (or no longer removable) is skipped."""
    now = {_key(o): o for o in fresh.orphans}
    selected: list[Orphan] = []
    skipped = list(removal.skipped)
    for orphan in removal.selected:
        current = now.get(_key(orphan))
        if current is None:
            skipped.append((orphan, "no longer an orphan after syncing the ledger and scanning again"))
            continue
        if not current.removable:
            skipped.append((current, current.how or "no longer removable"))
            continue
        selected.append(current)
    kept = {o.id for o, _ in skipped if o.kind == "image"}
    for orphan in [o for o in selected if o.parent in kept]:  # a snapshot stays with its image
        selected.remove(orphan)
        skipped.append((orphan, f"its image {orphan.parent} is kept"))
    return Removal(tuple(selected), removal.refused, tuple(skipped))


async def _audit_refused(deck: Deck, removal: Removal, rep: Reporter) -> None:
    reason = removal.refused[0][1]
    exc = RefusedError(f"removal of {len(removal.refused)} orphans refused: {reason}")
    await asyncio.to_thread(refuse, deck, "orphans-delete", None, exc, refused=[_brief(o) for o, _ in removal.refused])
    rep.log(str(exc), "warning")


def _order(orphan: Orphan) -> tuple[int, int]:
    """Tagged resources in dependency order, then images (each with its snapshots), then state files."""
    if orphan.kind == "unknown-env":
        return 0, REMOVE_ORDER.index(orphan.type) if orphan.type in REMOVE_ORDER else len(REMOVE_ORDER)
    return {"image": 1, "snapshot": 2, "state-file": 3}.get(orphan.kind, 4), 0


def _in_use(deck: Deck, orphan: Orphan, family: set[str], where: list[Place]) -> str:
    """Why ``orphan`` must stay after all, read again right before it is deleted ("" when it may go)."""
    if orphan.kind == "image":
        envs = list(deck.config.env_names)  # an operation under way may be pinning any image
    elif orphan.kind == "state-file" and orphan.bucket:
        env = env_of_state(deck, orphan.bucket, orphan.id)
        envs = [env] if env else []
    else:
        value = orphan.tags.get(deck.config.conventions.env_tag, "")
        envs = [value] if value in deck.config.env_names else []
    for env in envs:
        record, alive = lock_holder(deck, env)
        if record is not None:
            state = "held" if alive else "left by an interrupted operation (`opsdeck unlock` clears it)"
            return f"{env}'s lock is {state}: {record.describe()}"
    if orphan.kind != "image":
        return ""
    copies, _ = recovered_copies(deck)
    held = held_images(deck, copies)
    for place in where:
        held |= cloud_of(deck, place).hygiene().running_images()
    needed = sorted(family & held)
    if needed:
        return f"in use since the scan: {needed[0]} is pinned, recorded by a copy or a request, or running"
    return ""


def _families(orphans: tuple[Orphan, ...]) -> dict[str, set[str]]:
    """Each image orphan's original and every copy of it the selection has."""
    by_original: dict[str, set[str]] = {}
    for orphan in orphans:
        if orphan.kind == "image":
            original = orphan.tags.get(SOURCE_TAG) or orphan.id
            by_original.setdefault(original, {original}).add(orphan.id)
    return {i: family for family in by_original.values() for i in family}


def _delete_one(deck: Deck, orphan: Orphan, family: set[str], where: list[Place]) -> str:
    """Delete one orphan unless it is in use now; returns why it was kept ("" when deleted)."""
    why = _in_use(deck, orphan, family, where)
    if why:
        return why
    place = Place(orphan.account, orphan.region, orphan.reached_as)
    if orphan.kind == "unknown-env" and orphan.item is not None:
        cloud_of(deck, place).hygiene().remove(orphan.item)
    elif orphan.kind == "image":
        cloud_of(deck, place).hygiene().deregister(orphan.id)
    elif orphan.kind == "snapshot":
        cloud_of(deck, place).hygiene().delete_snapshot(orphan.id)
    elif orphan.kind == "state-file" and orphan.bucket:
        cloud_of(deck, place).delete_object(orphan.bucket, orphan.id)
    else:
        raise OpsdeckError(f"opsdeck does not remove {orphan.kind} {orphan.id}")
    return ""


async def _delete_all(
    deck: Deck, orphans: tuple[Orphan, ...], rep: Reporter, where: list[Place]
) -> tuple[list[Orphan], list[tuple[Orphan, str]], list[tuple[Orphan, str]]]:
    """Delete in order, one stage at a time (each stage in parallel); failures are tried again after
    the rest went, up to ATTEMPTS times. Returns (deleted, failed, kept because in use now)."""
    families = _families(orphans)
    pending = sorted(orphans, key=_order)
    deleted: list[Orphan] = []
    kept: list[tuple[Orphan, str]] = []
    errors: dict[str, str] = {}
    for attempt in range(ATTEMPTS):
        failed: list[Orphan] = []
        for stage in sorted({_order(o) for o in pending}):
            batch = []
            for orphan in (o for o in pending if _order(o) == stage):
                if orphan.parent and orphan.parent in {o.id for o, _ in kept}:
                    kept.append((orphan, f"its image {orphan.parent} is kept"))
                else:
                    batch.append(orphan)
            results = await asyncio.gather(
                *(asyncio.to_thread(_delete_one, deck, o, families.get(o.id, {o.id}), where) for o in batch),
                return_exceptions=True,
            )
            for orphan, outcome in zip(batch, results, strict=True):
                if isinstance(outcome, Exception):  # recorded as failed; the rest still goes
                    failed.append(orphan)
                    errors[orphan.id] = str(outcome)
                elif isinstance(outcome, BaseException):
                    raise outcome
                elif outcome:
                    kept.append((orphan, outcome))
                    rep.log(f"kept {orphan.type} {orphan.id}: {outcome}", "warning")
                else:
                    deleted.append(orphan)
                    rep.progress(f"deleted {orphan.type} {orphan.id}", len(deleted), len(orphans))
        if not failed:
            return deleted, [], kept
        pending = failed
        if attempt < ATTEMPTS - 1:
            rep.log(
                f"{len(failed)} deletions failed (attempt {attempt + 1}); retrying: {errors[failed[0].id]}", "warning"
            )
            await asyncio.sleep(min(4.0, 0.5 * 2**attempt))
    return deleted, [(o, errors[o.id]) for o in pending], kept
