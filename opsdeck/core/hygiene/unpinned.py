"""Images nothing needs: a service's images older than its newest N that no environment pins or runs,
their copies in other regions, and the EBS snapshots behind each; base images no kept image builds on.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import pin_rel, pin_spec, value_in
from opsdeck.core.hygiene.leftovers import Orphan, Place, RecoveredCopyLike, epoch
from opsdeck.core.hygiene.prices import PriceTable
from opsdeck.core.release.images import Catalog, load_catalog, service_of
from opsdeck.core.team.requests import FOLDER
from opsdeck.core.types.cloud import Image
from opsdeck.core.types.hygiene import Snapshot
from opsdeck.errors import OpsdeckError


def pinned_images(deck: Deck) -> set[str]:
    """Every image an environment pins, in the working tree or at HEAD (both colors of a blue/green pin)."""
    found: set[str] = set()
    git = deck.tools.git
    for env in deck.config.env_names:
        for service in deck.config.service_names:
            rel = pin_rel(deck, env, service)
            path = deck.root / rel
            texts = [path.read_text(encoding="utf-8") if path.is_file() else None]
            with contextlib.suppress(OpsdeckError):  # no commit yet: the working tree is all there is
                texts.append(git.text_at("HEAD", rel))
            for text in texts:
                if not text:
                    continue
                try:
                    value = value_in(json.loads(text), pin_spec(deck.config, service))
                except ValueError:
                    continue
                if isinstance(value, str):
                    found.add(value)
                elif isinstance(value, dict):
                    found.update(v for k in ("blue", "green") if isinstance(v := value.get(k), str))
    return found


_IMAGE_ID = re.compile(r"\bami-[0-9a-f]{8,17}\b")


def copy_images(copies: Iterable[RecoveredCopyLike]) -> set[str]:
    """Every image a recovered copy's record pins in its region, and what its environment pinned then."""
    found: set[str] = set()
    for copy in copies:
        for pin in [*copy.images.values(), *copy.source_images.values()]:
            if isinstance(pin, str):
                found.add(pin)
            else:  # a blue/green pin: both colors
                found.update(i for i in (getattr(pin, "blue", None), getattr(pin, "green", None)) if isinstance(i, str))
    return found


def requested_images(deck: Deck) -> set[str]:
    """Every image an open approval request names (core/team/requests.py: neither executed nor
    rejected), read from its committed record as it stands, whatever its signatures say."""
    folder = deck.root / FOLDER
    found: set[str] = set()
    if not folder.is_dir():
        return found
    for record in sorted(folder.glob("*/request.json")):
        if (record.parent / "executed.json").is_file() or (record.parent / "rejected.json").is_file():
            continue
        with contextlib.suppress(OSError):
            found.update(_IMAGE_ID.findall(record.read_text(encoding="utf-8", errors="replace")))
    return found


def held_images(deck: Deck, copies: Iterable[RecoveredCopyLike]) -> set[str]:
    """Images something in the ledger still needs: environments' pins (working tree and HEAD, both
    colors), recovered copies' records, open approval requests."""
    return pinned_images(deck) | copy_images(copies) | requested_images(deck)


def catalog_regions(deck: Deck, where: Iterable[Place]) -> list[str]:
    """The deck's regions and every region it looked in (a recovered copy's images live there)."""
    return list(dict.fromkeys([*deck.config.regions, *(p.region for p in where)]))


def old_images(
    deck: Deck,
    where: list[Place],
    prices: PriceTable,
    keep: int,
    running: set[str],
    recovered: Iterable[RecoveredCopyLike] = (),
) -> list[Orphan]:
    """Service images older than each service's newest ``keep`` that nothing pins or runs, their copies,
    and their snapshots; base images no kept image builds on, beyond the newest ``keep``."""
    catalog = load_catalog(deck, catalog_regions(deck, where))
    held = {catalog.canonical(i) for i in held_images(deck, recovered) | running}
    kept: set[str] = set()
    old: list[Image] = []
    for service in deck.config.service_names:
        images = catalog.service_images(service)
        for index, image in enumerate(images):
            if index >= len(images) - keep or image.id in held:
                kept.add(image.id)
            else:
                old.append(image)
    bases = catalog.bases()
    built_on = {catalog.by_id[i].tags.get("base_ami", "") for i in kept if i in catalog.by_id}
    for index, image in enumerate(bases):
        if index < len(bases) - keep and image.id not in held and image.id not in built_on:
            old.append(image)
    build = next(p for p in where if p.reached_as == "build" and p.region == catalog.build_region)
    out: list[Orphan] = []
    for image in old:
        copies = [(catalog.build_region, image.id), *sorted(catalog.copies.get(image.id, {}).items())]
        for region, image_id in copies:
            out += _image_orphans(deck, build.account, region, image_id, image, catalog, prices, keep)
    return out


def _image_orphans(
    deck: Deck,
    account: str,
    region: str,
    image_id: str,
    original: Image,
    catalog: Catalog,
    prices: PriceTable,
    keep: int,
) -> list[Orphan]:
    image = catalog.by_id.get(image_id, original)
    service = service_of(original) or "base"
    copy = f", copy of {original.id}" if image_id != original.id else ""
    snapshots: list[Snapshot] = deck.tools.build(region).hygiene().image_snapshots([image_id]).get(image_id, [])
    created = epoch(image.created)
    detail = (
        f"{service} {original.version or '?'} ({image.name}{copy}): older than the newest {keep}, "
        "pinned and run nowhere"
    )
    out = [
        Orphan(
            "image",
            account,
            region,
            "ec2:image",
            image_id,
            detail,
            created,
            prices.free(f"no hourly charge for the image itself; its {len(snapshots)} snapshots are counted"),
            reached_as="build",
            tags=dict(image.tags),
        )
    ]
    for snap in snapshots:
        out.append(
            Orphan(
                "snapshot",
                account,
                region,
                "ec2:snapshot",
                snap.id,
                f"snapshot of {image_id} ({snap.gigabytes:g} GB), deleted with its image",
                created,
                prices.cost("snapshot", region, gigabytes=snap.gigabytes),
                parent=image_id,
                reached_as="build",
            )
        )
    return out
