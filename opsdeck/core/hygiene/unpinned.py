"""Images nothing needs: a service's images older than its newest N that no environment pins or runs,
their copies in other regions, and the EBS snapshots behind each; base images no kept image builds on.
"""

from __future__ import annotations

import contextlib
import json

from opsdeck.adapters.aws import Image
from opsdeck.adapters.hygiene import Snapshot
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import pin_rel, pin_spec, value_in
from opsdeck.core.hygiene.leftovers import Orphan, Place, epoch
from opsdeck.core.hygiene.prices import PriceTable
from opsdeck.core.release.images import Catalog, load_catalog, service_of
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


def old_images(deck: Deck, where: list[Place], prices: PriceTable, keep: int, running: set[str]) -> list[Orphan]:
    """Service images older than each service's newest ``keep`` that nothing pins or runs, their copies,
    and their snapshots; base images no kept image builds on, beyond the newest ``keep``."""
    catalog = load_catalog(deck)
    held = {catalog.canonical(i) for i in pinned_images(deck) | running}
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
