"""The deck's images: each service's AMIs and the shared base layer, kept in the build account.

An image is baked in the build account's region, by `opsdeck bake` or by the team's pipeline: a
service's image is any image whose service tag names it (the deck's ``image_service_tag``); its
version is its version tag (``image_version_tag``), or its creation time when it has none. Where an
environment runs in another region it runs a copy, made by promote and tagged like its original plus
``source_image``; the catalog knows every copy by its original, so "the same image" means the same
original wherever it runs.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pins
from opsdeck.core.release.fleet import snapshot
from opsdeck.core.safety import audit
from opsdeck.core.types.cloud import Image
from opsdeck.errors import OpsdeckError, RefusedError

VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
REVOKED_TAG = "revoked"
SOURCE_TAG = "source_image"  # on a copy: the original's id
SOURCE_REGION_TAG = "source_region"


def version_key(version: str) -> tuple[int, ...]:
    match = VERSION.match(version)
    return tuple(int(p) for p in match.groups()) if match else (-1,)


def next_patch(versions: list[str], first: str = "1.0.0") -> str:
    valid = [v for v in versions if VERSION.match(v)]
    if not valid:
        return first
    major, minor, patch = version_key(max(valid, key=version_key))
    return f"{major}.{minor}.{patch + 1}"


def is_revoked(image: Image | None) -> bool:
    return bool(image and image.tags.get(REVOKED_TAG))


def layer_of(image: Image) -> str:
    return "base" if image.tags.get("role") == "base" else "app"


def service_of(image: Image) -> str | None:
    """The service an image belongs to (its service tag); None for a base image."""
    return None if layer_of(image) == "base" else (image.service or None)


def made_by(image: Image) -> str:
    """Who or what baked it, when a tag says so (opsdeck's ``built_by``, or a pipeline's ``ci``)."""
    return image.tags.get("built_by") or image.tags.get("ci", "")


def oldest_first(images: list[Image]) -> list[Image]:
    """Images of one stream, the newest last: by version when every one has a MAJOR.MINOR.PATCH
    version (two bakes in one second share a creation time), else by creation time (a pipeline's
    images may have no version, or versions that do not compare)."""
    if all(VERSION.match(i.version) for i in images):
        return sorted(images, key=lambda i: (version_key(i.version), i.created, i.id))
    return sorted(images, key=lambda i: (i.created, i.id))


def find_image(images: list[Image], ref: str) -> Image | None:
    """An image by id or by version."""
    for image in images:
        if ref in (image.id, image.version):
            return image
    return None


@dataclass(frozen=True)
class Catalog:
    """Every image of the deck in the build account, across the regions the deck uses."""

    originals: tuple[Image, ...]  # baked here, oldest first (base and service images)
    copies: dict[str, dict[str, str]] = field(default_factory=dict)  # original -> region -> copy
    by_id: dict[str, Image] = field(default_factory=dict)  # every id, copies too
    build_region: str = ""

    def canonical(self, image_id: str) -> str:
        """The original of a copy (an original is its own)."""
        image = self.by_id.get(image_id)
        source = image.tags.get(SOURCE_TAG) if image else None
        return source or image_id

    def original(self, image_id: str) -> Image | None:
        return self.by_id.get(self.canonical(image_id))

    def in_region(self, image_id: str, region: str) -> str | None:
        """The id of ``image_id``'s original (or its copy) in ``region``, if there is one."""
        original = self.canonical(image_id)
        if region == self.build_region:
            return original if original in self.by_id else None
        return self.copies.get(original, {}).get(region)

    def regions(self, image_id: str) -> list[str]:
        original = self.canonical(image_id)
        return [self.build_region, *sorted(self.copies.get(original, {}))]

    def service_images(self, service: str) -> list[Image]:
        """A service's images, oldest first (the last is the newest; see ``oldest_first``)."""
        return oldest_first([i for i in self.originals if service_of(i) == service])

    def bases(self) -> list[Image]:
        """The base images, oldest first (the last is the newest)."""
        return oldest_first([i for i in self.originals if layer_of(i) == "base"])

    def find(self, ref: str, services: list[str]) -> Image | None:
        """An image of one of ``services`` by id (a copy's id finds its original) or by version (or, for
        an image without one, the creation time it is shown by)."""
        found = self.original(ref)
        if found is not None and service_of(found) is not None:
            return found
        matches = [i for s in services for i in self.service_images(s) if i.version == ref]
        if len(matches) > 1:
            names = sorted({service_of(i) or "" for i in matches})
            if len(names) > 1:
                raise RefusedError(
                    f"version {ref} exists for several services ({', '.join(names)}): name one with --service"
                )
            ids = ", ".join(i.id for i in matches)
            raise RefusedError(f"{len(matches)} {names[0]} images are named {ref} ({ids}): name one by its id")
        return matches[0] if matches else None


def load_catalog(deck: Deck, regions: list[str] | None = None) -> Catalog:
    """Read the build account's images in every region the deck uses (in parallel)."""
    build_region = deck.config.build_region
    wanted = list(dict.fromkeys([build_region, *(regions or deck.config.regions)]))
    names = deck.config.conventions

    def read(region: str) -> list[Image]:
        images = deck.tools.build(region).images()
        return [replace(i, service_tag=names.image_service_tag, version_tag=names.image_version_tag) for i in images]

    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        found = dict(zip(wanted, pool.map(read, wanted), strict=True))
    services = set(deck.config.service_names)
    originals = tuple(
        i
        for i in found[build_region]
        if SOURCE_TAG not in i.tags and (layer_of(i) == "base" or service_of(i) in services)
    )
    by_id = {i.id: i for i in originals}
    copies: dict[str, dict[str, str]] = {}
    for region, images in found.items():
        for image in images:
            source = image.tags.get(SOURCE_TAG)
            if source and source in by_id:
                copies.setdefault(source, {})[region] = image.id
                by_id[image.id] = image
    return Catalog(originals, copies, by_id, build_region)


def describe_images(
    catalog: Catalog,
    pins: dict[str, dict[str, str]],
    running: dict[str, set[str]],
    accounts: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """The catalog's rows (base layer first, then each service's images, oldest first): which
    environments pin each image (env -> service -> image) and run it (env -> image ids), whether it is
    revoked, whether its base is outdated, and where it may run (``accounts``: original -> accounts)."""
    bases = catalog.bases()
    newest_base = bases[-1].id if bases else None
    out = []
    services = sorted({service_of(i) or "" for i in catalog.originals if layer_of(i) == "app"})
    apps = [i for s in services for i in catalog.service_images(s)]
    for image in [*bases, *apps]:
        layer = layer_of(image)
        base_id = image.tags.get("base_ami")
        ids = {image.id, *catalog.copies.get(image.id, {}).values()}
        row: dict[str, Any] = {
            "id": image.id,
            "name": image.name,
            "service": service_of(image),
            "layer": layer,
            "version": image.version,  # its version tag, or the creation time it is shown by
            "versioned": image.versioned,
            "git_sha": image.tags.get("git_sha", ""),
            "created": image.created,
            "built_by": made_by(image),
            "environments": [env for env, by_service in pins.items() if ids & set(by_service.values())],
            "running_in": sorted(env for env, running_ids in running.items() if ids & running_ids),
            "revoked": is_revoked(image),
            "revoked_reason": image.tags.get("revoked", "") or None,
            "base": base_id if layer == "app" else None,
            "base_outdated": bool(layer == "app" and base_id and newest_base and base_id != newest_base),
            "regions": catalog.regions(image.id),
            "copies": dict(catalog.copies.get(image.id, {})),
        }
        if accounts is not None:
            row["accounts"] = accounts.get(image.id, [])
        out.append(row)
    return out


def launch_accounts(deck: Deck, catalog: Catalog, owner: str) -> dict[str, list[str]]:
    """Per original image: the accounts that may launch it or one of its copies (the owner included)."""

    def one(image: Image) -> tuple[str, list[str]]:
        found = {owner, *deck.tools.build().launch_permissions(image.id)}
        for region, copy in catalog.copies.get(image.id, {}).items():
            found.update(deck.tools.build(region).launch_permissions(copy))
        return image.id, sorted(a for a in found if a)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, catalog.originals))


def catalog_rows(deck: Deck, *, with_accounts: bool = True) -> list[dict[str, Any]]:
    """`opsdeck images`: every image, where it is pinned, where it runs, where it may run."""
    catalog = load_catalog(deck)
    pins: dict[str, dict[str, str]] = {}
    running: dict[str, set[str]] = {}
    for env in deck.config.env_names:
        try:
            pins[env] = read_pins(deck, env)
        except OpsdeckError:  # a broken pin shows as no environment
            pins[env] = {}
        running[env] = set(snapshot(deck, env).images.values())
    accounts = None
    if with_accounts:
        owner = deck.config.build.account or deck.tools.build().caller_identity().get("account", "")
        accounts = launch_accounts(deck, catalog, owner)
    return describe_images(catalog, pins, running, accounts)


def revoke(deck: Deck, ref: str, reason: str) -> Image:
    """Mark an image revoked (AMI tags, on its copies too); promote and rollback refuse it from then on."""
    if not reason.strip():
        raise RefusedError("revoke needs a reason (--reason TEXT)")
    catalog = load_catalog(deck)
    image = catalog.find(ref, deck.config.service_names)
    if image is None:
        raise RefusedError(f"{ref!r} is not an image id or version of this deck")
    who = audit.who(deck)
    tags = {
        "revoked": reason.strip(),
        "revoked_by": who.get("git") or who["user"],
        "revoked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    deck.tools.build().tag_image(image.id, tags)
    for region, copy in catalog.copies.get(image.id, {}).items():
        deck.tools.build(region).tag_image(copy, tags)
    audit.append(
        deck,
        action="revoke",
        environment=None,
        result="ok",
        service=service_of(image),
        to=image.id,
        version=image.version,
        reason=reason.strip(),
        who=who,
    )
    return image
