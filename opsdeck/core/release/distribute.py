"""Make an image usable where an environment runs: a copy in its region, launch permission for its account.

Images stay in the build account. An environment in another region gets a copy there (made once,
tagged like its original plus ``source_image``, found again the next time); an environment in
another account gets launch permission on the image it will run. Every step is reported, so the
operation's audit record holds what was shared and copied.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.release.images import SOURCE_REGION_TAG, SOURCE_TAG, Catalog
from opsdeck.core.types.cloud import Image
from opsdeck.errors import OpsdeckError

COPY_TIMEOUT = 1800.0  # a real copy of a large image takes minutes


@dataclass(frozen=True)
class Distribution:
    """What was done to make one image usable in one environment."""

    image: str  # the original
    region: str
    account: str | None
    usable_id: str  # the id the environment pins (the original, or its copy in the region)
    copied: bool = False
    shared: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "region": self.region,
            "account": self.account,
            "image_in_region": self.usable_id,
            "copied": self.copied,
            "shared": self.shared,
        }


def build_account(deck: Deck) -> str:
    return deck.config.build.account or deck.tools.build().caller_identity().get("account", "")


async def make_usable(
    deck: Deck, catalog: Catalog, original: Image, env: str, rep: Reporter, *, region: str | None = None
) -> Distribution:
    """The id of ``original`` usable in ``env``: copied into its region (or ``region``: a recovered
    copy's) and shared with its account."""
    region = region or deck.config.region_of(env)
    account = deck.config.env(env).account
    usable = catalog.in_region(original.id, region)
    copied = False
    if usable is None:
        usable = await _copy(deck, original, region, rep)
        copied = True
    shared = False
    owner = await asyncio.to_thread(build_account, deck)
    if account is not None and account != owner:
        cloud = deck.tools.build(region)
        allowed = await asyncio.to_thread(cloud.launch_permissions, usable)
        if account not in allowed:
            rep.progress(f"sharing {usable} with account {account}")
            await asyncio.to_thread(cloud.share_image, usable, account)
            shared = True
    return Distribution(original.id, region, account, usable, copied, shared)


async def _copy(deck: Deck, original: Image, region: str, rep: Reporter) -> str:
    source_region = deck.config.build_region
    rep.progress(f"copying {original.id} ({original.version}) from {source_region} to {region}")
    cloud = deck.tools.build(region)
    copy = await asyncio.to_thread(
        cloud.copy_image, original.id, source_region, original.name or original.id, f"copy of {original.id}"
    )
    tags = {**original.tags, SOURCE_TAG: original.id, SOURCE_REGION_TAG: source_region}
    await asyncio.to_thread(cloud.tag_image, copy, tags)
    deadline = time.monotonic() + COPY_TIMEOUT
    while True:  # AWS makes the copy "pending" for a while; the local cloud has it at once
        found = await asyncio.to_thread(cloud.image, copy)
        if found is not None and found.state in ("available", ""):
            return copy
        if found is not None and found.state in ("failed", "error", "invalid"):
            raise OpsdeckError(f"copying {original.id} to {region} failed: {copy} is {found.state}")
        if time.monotonic() > deadline:
            raise OpsdeckError(f"copying {original.id} to {region}: {copy} still not available")
        await asyncio.sleep(5.0)
