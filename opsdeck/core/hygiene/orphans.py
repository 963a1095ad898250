"""Orphans: what the deck left behind in its accounts and regions, with its age and hourly cost.

In every account and region the deck knows (the build account in each region the deck uses, and each
environment's own), opsdeck looks for:

- ``unknown-env``: a resource tagged with an environment the deck does not have (or with one of its
  environments, in an account or region that environment does not live in); removable only with the
  deck's ownership marker (``owned``), and never when it may be an unrecorded recovered copy;
- ``state-file``: a Terraform state under the deck's key prefixes in an environment's state bucket that
  no environment and no recorded copy uses (one shaped as a copy's: listed, never removed here);
- ``recovered-copy`` and ``sandbox``: a recovered copy, or a sandbox, older than the configured age;
- ``image`` and ``snapshot``: an image of a service that no environment pins (either color of a
  blue/green pin, in the working tree or at HEAD), no recovered copy's record or open approval
  request names, and nothing runs, older than the service's newest N, its copies
  in other regions, and the EBS snapshots behind each. A base image stays while a kept image builds on it.

Each carries an hourly cost estimate from the dated price table (core/hygiene/prices.py). The clone is
brought level with the team's remote first: what the team committed counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import replace

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.hygiene.leftovers import (
    HOUR,
    KINDS,
    LEDGER_DIR,
    Orphan,
    OrphanReport,
    Place,
    RecoveredCopyLike,
    cloud_of,
    copy_state_of,
    count_by_kind,
    known_copies,
    places,
    recovered_copies,
    state_prefixes,
    sync_for_reading,
    unrecorded_copies,
    with_unrecorded,
)
from opsdeck.core.hygiene.prices import Cost, PriceTable, load_table
from opsdeck.core.hygiene.unpinned import old_images
from opsdeck.core.safety.audit_shipping import is_audit_bucket
from opsdeck.core.types.hygiene import REMOVE_ORDER, Tagged
from opsdeck.errors import OpsdeckError

__all__ = ["KINDS", "Orphan", "OrphanReport", "Place", "count_by_kind", "find_orphans", "priced"]

# -- the scan ------------------------------------------------------------------------------------


async def find_orphans(
    deck: Deck,
    rep: Reporter | None = None,
    *,
    keep_images: int | None = None,
    prices: PriceTable | None = None,
    now: float | None = None,
) -> OrphanReport:
    """Look everywhere the deck knows for what it left behind (read-only)."""
    rep = rep or Reporter("orphans")
    settings = deck.config.orphans
    keep = settings.keep_images if keep_images is None else keep_images
    if keep < 1:
        raise OpsdeckError(f"--keep-images: expected 1 or more images to keep, got {keep}")
    if prices is None:
        own = deck.root / settings.price_table if settings.price_table else None
        prices = load_table(own)
    now = time.time() if now is None else now
    notes: list[str] = []
    with rep.phase("sync"):  # copies, pins and requests not pulled yet would look like orphans
        synced = await asyncio.to_thread(sync_for_reading, deck)
    if synced:
        notes.append(synced)
    recorded, note = await asyncio.to_thread(recovered_copies, deck)
    if note:
        notes.append(note)
    copies, dropped = known_copies(deck, recorded)
    notes += dropped
    with rep.phase("accounts and regions"):
        where = await asyncio.to_thread(places, deck, copies)
        ghosts = await asyncio.to_thread(unrecorded_copies, deck, {c.state_key for c in recorded})
        where = with_unrecorded(deck, where, ghosts)
    with rep.phase("tagged resources"):
        scans = await asyncio.gather(*(asyncio.to_thread(_scan_place, deck, p) for p in where))
    tagged = dict(zip(where, scans, strict=True))
    orphans: list[Orphan] = []
    for place, (items, _) in tagged.items():
        orphans += unknown_env(deck, place, items, prices, where)
    orphans = _keep_ghost_copies(deck, orphans, [c for c in recorded if c not in copies])
    orphans += sandboxes(deck, tagged, prices, now, settings.sandbox_max_age_hours)
    orphans += old_copies(deck, copies, where, prices, now, settings.copy_max_age_hours)
    with rep.phase("state files"):
        found, skipped = await asyncio.to_thread(state_files, deck, where, prices, {c.state_key for c in recorded})
        orphans += found
        if skipped:
            notes.append(
                f"{skipped} state files outside this deck's key prefixes ({_prefix_list(deck)}) were not considered"
            )
    with rep.phase("images"):
        running = {image for _, images in tagged.values() for image in images}
        orphans += await asyncio.to_thread(old_images, deck, where, prices, keep, running, copies)
    rep.log(f"{len(orphans)} orphans in {len(where)} accounts and regions")
    return OrphanReport(
        tuple(orphans),
        prices,
        tuple(where),
        keep,
        settings.copy_max_age_hours,
        settings.sandbox_max_age_hours,
        now,
        tuple(notes),
    )


def _keep_ghost_copies(deck: Deck, orphans: list[Orphan], ghosts: list[RecoveredCopyLike]) -> list[Orphan]:
    """Resources of a recorded copy whose environment left opsdeck.toml stay: listed, never removed here."""
    tag = deck.config.conventions.env_tag
    where = {(c.env, c.region): c for c in ghosts}
    out = []
    for orphan in orphans:
        ghost = where.get((orphan.tags.get(tag, ""), orphan.region))
        if orphan.kind == "unknown-env" and ghost is not None:
            orphan = replace(
                orphan,
                removable=False,
                how=f"recovered copy {ghost.env}@{ghost.region} of an environment no longer in opsdeck.toml: destroy "
                f"it with terraform (its state is {ghost.state_key}), then delete its record in {LEDGER_DIR}/",
            )
        out.append(orphan)
    return out


def _scan_place(deck: Deck, place: Place) -> tuple[list[Tagged], set[str]]:
    hygiene = cloud_of(deck, place).hygiene()
    found = [t for t in hygiene.tagged(deck.config.conventions.env_tag) if not is_audit_bucket(deck, t.type, t.id)]
    return found, hygiene.running_images()


def priced(item: Tagged, region: str, prices: PriceTable) -> Cost:
    """What one tagged resource costs by the hour."""
    if item.type == "ec2:instance":
        if item.state in ("stopped", "stopping"):
            return prices.free(f"{item.size} stopped: no instance hours (its volumes are counted)")
        return prices.cost("instance", region, size=item.size)
    if item.type == "ec2:volume":
        return prices.cost("volume", region, size=item.size, gigabytes=item.gigabytes or 0.0)
    if item.type == "elasticloadbalancing:loadbalancer":
        return prices.cost("load_balancer", region, size=item.size or "application")
    if item.type == "ec2:natgateway":
        return prices.cost("nat_gateway", region)
    if item.type == "ec2:elastic-ip":
        return prices.cost("public_ipv4", region)
    if item.type == "s3:bucket":
        return prices.unmeasured("bucket storage is not measured by opsdeck")
    return prices.free(f"no hourly charge for {item.type}")


# What the removal knows how to delete (in its order): the same set, kept in one place.
REMOVABLE_TAGGED = frozenset(REMOVE_ORDER)


OWNER_TAG = ("managed_by", "terraform")  # what the deck's modules tag every resource with (sample_envs)


def owned(deck: Deck, item: Tagged) -> bool:
    """Whether ``item`` carries this deck's ownership marker besides the environment tag: one of the
    deck's services in the service tag, or ``managed_by = terraform`` as the deck's modules set."""
    service = item.tags.get(deck.config.conventions.service_tag)
    return service in deck.config.service_names or item.tags.get(OWNER_TAG[0]) == OWNER_TAG[1]


def unknown_env(
    deck: Deck, place: Place, items: Iterable[Tagged], prices: PriceTable, where: list[Place]
) -> list[Orphan]:
    """Resources tagged with an environment the deck does not have, or that does not live here.

    One of the deck's environments outside its home region may be a recovered copy the ledger does
    not know yet (a recovery under way, one that failed, a record not pulled): it is listed, never
    removed here. Anything else is removable only when it also carries the deck's ownership marker
    (``owned``): in a shared account an unknown environment may be another team's."""
    tag = deck.config.conventions.env_tag
    names = set(deck.config.env_names)
    homes = {env: p for p in where for env in p.envs if deck.config.region_of(env) == p.region}
    out = []
    for item in items:
        value = item.tags.get(tag, "")
        if value in place.envs:
            continue
        removable = item.type in REMOVABLE_TAGGED
        how = "" if removable else f"opsdeck does not delete {item.type} resources: delete it by hand"
        if value in names and deck.config.region_of(value) != place.region:
            home = deck.config.region_of(value)
            detail = (
                f"tagged {tag} = {value!r} in {place.region}, outside {value}'s home region {home}: "
                f"possibly a recovered copy of {value} the ledger does not record"
            )
            removable, how = False, f"opsdeck recover {value} --region {place.region} --destroy"
        else:
            home_place = homes.get(value)
            if home_place is None:
                detail = f"tagged {tag} = {value!r}, which this deck does not have"
            else:
                detail = (
                    f"tagged {tag} = {value!r}, but {value} lives in account {home_place.account} {home_place.region}"
                )
            if removable and not owned(deck, item):
                removable = False
                how = (
                    f"it carries neither {deck.config.conventions.service_tag} = one of this deck's services nor "
                    f"{OWNER_TAG[0]} = {OWNER_TAG[1]}: check who owns it, then delete it by hand"
                )
        out.append(
            Orphan(
                "unknown-env",
                place.account,
                place.region,
                item.type,
                item.id,
                detail,
                item.created,
                priced(item, place.region, prices),
                removable=removable,
                how=how,
                reached_as=place.reached_as,
                tags=dict(item.tags),
                item=item,
            )
        )
    return out


def sandboxes(
    deck: Deck,
    tagged: dict[Place, tuple[list[Tagged], set[str]]],
    prices: PriceTable,
    now: float,
    max_age_hours: float,
) -> list[Orphan]:
    """Sandbox environments whose oldest resource is older than ``max_age_hours``; their cost is the sum
    of what their resources cost by the hour (unknown when one of them is)."""
    tag = deck.config.conventions.env_tag
    out = []
    for env in deck.config.environments:
        if not env.sandbox:
            continue
        home = deck.config.region_of(env.name)
        for place, (items, _) in tagged.items():
            if env.name not in place.envs or place.region != home:  # its recovered copies are not the sandbox
                continue
            mine = [i for i in items if i.tags.get(tag) == env.name]
            born = [i.created for i in mine if i.created is not None]
            if not born or now - min(born) <= max_age_hours * HOUR:
                continue
            costs = [priced(i, place.region, prices) for i in mine]
            unknown = [c.basis for c in costs if c.unknown]
            total = sum(c.usd_per_hour or 0.0 for c in costs)
            cost = (
                prices.unmeasured(f"{len(unknown)} of its resources unknown: {unknown[0]}")
                if unknown
                else Cost(total, f"{len(mine)} resources of {env.name}", prices.date)
            )
            out.append(
                Orphan(
                    "sandbox",
                    place.account,
                    place.region,
                    "environment",
                    env.name,
                    f"sandbox {env.name} has run for more than {max_age_hours:g} hours ({len(mine)} resources)",
                    min(born),
                    cost,
                    removable=False,
                    how=f"rebuild it fresh (`opsdeck nuke-rebuild {env.name}`) or destroy it with terraform "
                    f"in {env.path}",
                    reached_as=place.reached_as,
                )
            )
    return out


def old_copies(
    deck: Deck,
    copies: list[RecoveredCopyLike],
    where: list[Place],
    prices: PriceTable,
    now: float,
    max_age_hours: float,
) -> list[Orphan]:
    out = []
    for copy in copies:
        created = copy.created
        if now - created <= max_age_hours * HOUR:
            continue
        home = home_of(deck, where, copy.env)
        out.append(
            Orphan(
                "recovered-copy",
                copy.account or (home.account if home else ""),
                copy.region,
                "environment",
                f"{copy.env}@{copy.region}",
                f"recovered copy of {copy.env} older than {max_age_hours:g} hours (state {copy.state_key})",
                created,
                prices.unmeasured("a recovered copy's resources are priced with its environment"),
                removable=False,
                how=f"destroy it with `opsdeck recover {copy.env} --region {copy.region} --destroy`",
                reached_as=home.reached_as if home else "",
            )
        )
    return out


def home_of(deck: Deck, where: list[Place], env: str) -> Place | None:
    """The place ``env`` lives in: its own account and region (a recovered copy's place lists it too, and
    may come first: which one came first changed from run to run)."""
    if env not in deck.config.env_names:
        return None
    region = deck.config.region_of(env)
    return next((p for p in where if env in p.envs and p.region == region), None)


def state_files(deck: Deck, where: list[Place], prices: PriceTable, in_use: set[str]) -> tuple[list[Orphan], int]:
    """Terraform states under this deck's key prefixes (``state_prefixes``) in its state buckets that no
    environment and no recovered copy uses, and how many states outside those prefixes were left alone
    (other stacks', workspaces' ``env:/``). A key shaped as the state of a copy the ledger does not record
    is listed, not removable: ``recover --destroy`` removes the copy with it."""
    used: dict[str, set[str]] = {}
    reached: dict[str, str] = {}
    for env in deck.config.env_names:
        backend = deck.backend(env)
        if backend is None:
            continue
        used.setdefault(backend.bucket, set()).add(backend.key)
        reached.setdefault(backend.bucket, env)
    prefixes = state_prefixes(deck)
    out = []
    outside = 0
    for bucket, keys in used.items():
        env = reached[bucket]
        place = home_of(deck, where, env)
        if place is None:
            continue
        mine = tuple(prefixes.get(bucket, ()))
        for obj in deck.tools.env(env).cloud.hygiene().objects(bucket):
            if not obj.key.endswith(".tfstate") or obj.key in keys or obj.key in in_use:
                continue
            if not mine or not obj.key.startswith(mine):
                outside += 1
                continue
            detail, how = f"s3://{bucket}/{obj.key}: no environment of this deck uses this state", ""
            copy = copy_state_of(deck, bucket, obj.key)
            if copy is not None:  # a recovered copy's the ledger does not record: listed, never removed here
                detail = (
                    f"s3://{bucket}/{obj.key}: the state of a recovered copy of {copy[0]} in {copy[1]} the ledger "
                    f"does not record (a recover interrupted, failed or under way): `opsdeck recover {copy[0]} "
                    f"--region {copy[1]}` finishes it"
                )
                how = f"opsdeck recover {copy[0]} --region {copy[1]} --destroy"
            out.append(
                Orphan(
                    "state-file",
                    place.account,
                    place.region,
                    "s3:object",
                    obj.key,
                    detail,
                    obj.modified,
                    prices.cost("s3", place.region, gigabytes=obj.size / 1e9),
                    removable=not how,
                    how=how,
                    bucket=bucket,
                    reached_as=env,
                )
            )
    return out, outside


def _prefix_list(deck: Deck) -> str:
    found = sorted({p for prefixes in state_prefixes(deck).values() for p in prefixes})
    return ", ".join(found) or "none"
