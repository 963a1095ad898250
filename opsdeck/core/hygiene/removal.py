"""Removing orphans, with aws-nuke's manners: a dry run first, a confirmation, protected accounts
refused (the account the credentials really reach, asked of STS), and every deletion in the audit log.

An image goes with its snapshots (deregistered first, then each snapshot deleted), a tagged resource
with the calls nuke-and-rebuild uses (instances wait until terminated), a state file as an S3 delete
(the state buckets are versioned: the old versions stay). Sandboxes and recovered copies are not
removed here: they are whole environments, and each says how it is removed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opsdeck.adapters.hygiene import REMOVE_ORDER
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.hygiene.leftovers import Orphan, OrphanReport, Place, cloud_of
from opsdeck.core.safety.confirm import NotConfirmedError
from opsdeck.core.safety.operation import audited
from opsdeck.errors import OpsdeckError

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
    """Delete the orphans of ``report`` (or those named), once confirmed; audited."""
    rep = rep or Reporter("orphans-delete")
    started = time.monotonic()
    removal = await asyncio.to_thread(plan_removal, deck, report, only)
    if not removal.selected:
        if removal.refused:
            await _audit_refused(deck, removal, rep)
        return RemovalResult((), (), removal.refused, removal.skipped, time.monotonic() - started)
    if confirm is not None and not await confirm(removal):
        raise NotConfirmedError(f"removal of {len(removal.selected)} orphans was not confirmed; nothing deleted")
    fields = {"selected": [_brief(o) for o in removal.selected]}
    async with audited(deck, "orphans-delete", None, rep, fields=fields, lock=False) as run:
        deleted, failed = await _delete_all(deck, removal.selected, rep)
        run.note(
            deleted=[_brief(o) for o in deleted],
            failed=[{**_brief(o), "error": why} for o, why in failed],
            refused=[{**_brief(o), "reason": why} for o, why in removal.refused],
        )
        if failed:
            run.end_as("failed", f"{len(failed)} of {len(removal.selected)} orphans could not be deleted")
    return RemovalResult(tuple(deleted), tuple(failed), removal.refused, removal.skipped, time.monotonic() - started)


async def _audit_refused(deck: Deck, removal: Removal, rep: Reporter) -> None:
    from opsdeck.core.safety.operation import refuse
    from opsdeck.errors import RefusedError

    reason = removal.refused[0][1]
    exc = RefusedError(f"removal of {len(removal.refused)} orphans refused: {reason}")
    await asyncio.to_thread(refuse, deck, "orphans-delete", None, exc, refused=[_brief(o) for o, _ in removal.refused])
    rep.log(str(exc), "warning")


def _order(orphan: Orphan) -> tuple[int, int]:
    """Tagged resources in dependency order, then images (each with its snapshots), then state files."""
    if orphan.kind == "unknown-env":
        return 0, REMOVE_ORDER.index(orphan.type) if orphan.type in REMOVE_ORDER else len(REMOVE_ORDER)
    return {"image": 1, "snapshot": 2, "state-file": 3}.get(orphan.kind, 4), 0


def _delete_one(deck: Deck, orphan: Orphan) -> None:
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


async def _delete_all(
    deck: Deck, orphans: tuple[Orphan, ...], rep: Reporter
) -> tuple[list[Orphan], list[tuple[Orphan, str]]]:
    """Delete in order, one stage at a time (each stage in parallel); failures are tried again after
    the rest went, up to ATTEMPTS times."""
    pending = sorted(orphans, key=_order)
    deleted: list[Orphan] = []
    errors: dict[str, str] = {}
    for attempt in range(ATTEMPTS):
        failed: list[Orphan] = []
        for stage in sorted({_order(o) for o in pending}):
            batch = [o for o in pending if _order(o) == stage]
            results = await asyncio.gather(
                *(asyncio.to_thread(_delete_one, deck, o) for o in batch), return_exceptions=True
            )
            for orphan, outcome in zip(batch, results, strict=True):
                if isinstance(outcome, Exception):  # recorded as failed; the rest still goes
                    failed.append(orphan)
                    errors[orphan.id] = str(outcome)
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    deleted.append(orphan)
                    rep.progress(f"deleted {orphan.type} {orphan.id}", len(deleted), len(orphans))
        if not failed:
            return deleted, []
        pending = failed
        if attempt < ATTEMPTS - 1:
            rep.log(
                f"{len(failed)} deletions failed (attempt {attempt + 1}); retrying: {errors[failed[0].id]}", "warning"
            )
            await asyncio.sleep(min(4.0, 0.5 * 2**attempt))
    return deleted, [(o, errors[o.id]) for o in pending]
