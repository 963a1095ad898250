"""What a release moved and how it ended: the result the CLI prints and the deck shows, and the ledger
commit's message (each service's from -> to, where the images were made usable, why)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from opsdeck.core.events import Reporter
from opsdeck.core.model import ImageRef
from opsdeck.core.release.distribute import Distribution
from opsdeck.core.release.images import Catalog, is_revoked
from opsdeck.core.safety.breakglass import BreakGlass


@dataclass(frozen=True)
class Moved:
    """One service's move in a release."""

    service: str
    from_image: str
    to_image: str
    version: str = ""
    from_version: str = ""

    def record(self) -> dict[str, str]:
        """As an approval request keeps it."""
        return {
            "name": self.service,
            "from_image": self.from_image,
            "to_image": self.to_image,
            "version": self.version,
            "from_version": self.from_version,
        }


@dataclass(frozen=True)
class ReleaseResult:
    action: str
    environment: str
    moved: tuple[Moved, ...]
    commit: str
    seconds: float
    phases: tuple[tuple[str, float], ...] = ()
    distributions: tuple[Distribution, ...] = ()
    instant: bool | None = None  # blue/green: traffic moved to a warm standby, no instance launched
    traffic: dict[str, dict[str, Any]] = field(default_factory=dict)
    rollouts: dict[str, dict[str, Any]] = field(default_factory=dict)  # service -> how its image reached it
    still: tuple[str, ...] = ()  # services whose instances nothing replaced ("N of M ... old image")
    finished_at: float = field(default_factory=time.time)  # when it was done (epoch seconds)
    traffic_moved_s: float | None = None  # an instant rollback: from the confirmation to traffic moved
    # What to do once the result is reported, never while the operator waits (the switch back prepared).
    follow_up: Callable[[Reporter], Awaitable[None]] | None = field(default=None, compare=False, repr=False)

    @property
    def version(self) -> str:
        return ", ".join(m.version for m in self.moved if m.version)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "environment": self.environment,
            "services": [
                {"name": m.service, "from_image": m.from_image, "to_image": m.to_image, "version": m.version}
                for m in self.moved
            ],
            "commit": self.commit,
            "seconds": round(self.seconds, 3),
            "finished_at": round(self.finished_at, 3),
            "phases": [{"name": n, "seconds": round(s, 3)} for n, s in self.phases],
        }
        if len(self.moved) == 1:  # one service: its from -> to at the top as well
            data["from_image"], data["to_image"] = self.moved[0].from_image, self.moved[0].to_image
        if self.instant is not None or self.action == "rollback":
            data["instant"] = bool(self.instant)
        if self.traffic:
            data["traffic"] = self.traffic
        if self.traffic_moved_s is not None:
            data["traffic_moved_s"] = round(self.traffic_moved_s, 3)
        if self.rollouts:
            data["rollouts"] = self.rollouts
        if self.still:
            data["still"] = list(self.still)
        distributed = [d.to_json() for d in self.distributions if d.copied or d.shared]
        if distributed:
            data["distributed"] = distributed
        return data

    def summary(self) -> str:
        text = ", ".join(
            f"{m.service} {m.from_version or m.from_image} → {m.version or m.to_image}" for m in self.moved
        )
        if self.instant:
            text += " (instant: traffic back on the warm standby)"
        if self.still:
            text += "; " + "; ".join(self.still)
        return text


def image_ref(catalog: Catalog, image_id: str) -> ImageRef:
    image = catalog.by_id.get(image_id) or catalog.original(image_id)
    return ImageRef(image_id, image.version if image else "", is_revoked(image))


def _describe(ref: ImageRef) -> str:
    return f"{ref.version} ({ref.id})" if ref.version else ref.id


def distribution_note(distributions: list[Distribution]) -> str:
    parts = []
    for d in distributions:
        if d.copied:
            parts.append(f"{d.image} copied to {d.region} as {d.usable_id}")
        if d.shared:
            parts.append(f"{d.usable_id} shared with account {d.account}")
    return "; ".join(parts)


def release_message(
    head: str,
    moved: list[Moved],
    catalog: Catalog,
    details: list[str],
    reason: str,
    glass: BreakGlass | None,
    distributions: list[Distribution],
) -> str:
    """The ledger commit's message (the operator's trailers are added when it is committed)."""
    body = [
        f"{m.service}: {_describe(image_ref(catalog, m.from_image))} -> {_describe(ImageRef(m.to_image, m.version))}"
        for m in moved
    ]
    body += details
    if reason:
        body.append(f"reason: {reason}")
    if glass is not None:
        body.append(f"break-glass: {glass.reason}")
    note = distribution_note(distributions)
    if note:
        body.append(f"distributed: {note}")
    return head + "\n\n" + "\n".join(body)
