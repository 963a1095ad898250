"""What a person asked for, resolved: a promote, deploy or rollback as the services it moves and to which
images, checked against the deck's rules (revoked images, the promotion chain, the soak gate). Pure reads
(the image catalog is given): the release resolves it under its lock, the pre-planner ahead of time, and
both must come to the same targets for a pre-made plan to be used."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin
from opsdeck.core.events import Reporter
from opsdeck.core.release import gates
from opsdeck.core.release.images import Catalog, is_revoked
from opsdeck.core.release.results import Moved
from opsdeck.core.release.targets import Target, check_chain, resolve_promotion, resolve_rollback, soak_notes
from opsdeck.errors import RefusedError


@dataclass
class Asked:
    """One release as asked: where, what moves, and what its commit and audit record say of it."""

    action: str  # promote | deploy | rollback
    env: str
    targets: list[Target]
    details: list[str]
    reason: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def head(self, moved: list[Moved]) -> str:
        """The first line of the ledger commit."""
        if self.action == "rollback":
            what = ", ".join(
                f"{m.service} {m.from_version or m.from_image} -> {m.version or m.to_image}" for m in moved
            )
            return f"rollback {self.env}: {what}" + (f" ({self.reason})" if self.reason else "")
        what = ", ".join(f"{m.service} {m.version or m.to_image}" for m in moved)
        return f"{self.action} {what} to {self.env}" + (f": {self.reason}" if self.reason else "")

    @property
    def images(self) -> dict[str, str]:
        """Each service's target image (the original: a promote makes it usable where ``env`` runs)."""
        return {t.service: t.pin_id or t.image.id for t in self.targets}


def _not_revoked(targets: list[Target]) -> None:
    for target in targets:
        if is_revoked(target.image):
            raise RefusedError(
                f"{target.service} {target.image.version} ({target.image.id}) is revoked: "
                f"{target.image.tags.get('revoked')}"
            )


def ask_promote(
    deck: Deck,
    catalog: Catalog,
    src: str,
    dst: str,
    services: list[str] | None,
    reason: str,
    *,
    in_glass: bool,
    rep: Reporter,
) -> Asked:
    """The images SRC runs (or the image SRC names), for DST."""
    targets, source_env = resolve_promotion(deck, catalog, src, dst, services)
    _not_revoked(targets)
    check_chain(deck, catalog, targets, source_env, dst)
    soaks = gates.soak(deck, dst, {t.service: t.image.id for t in targets}, glass=in_glass, rep=rep)
    details = [f"from: {source_env or 'image'}", f"to: {dst}"]
    return Asked("promote", dst, targets, details, reason, soak_notes(soaks))


def ask_deploy(deck: Deck, catalog: Catalog, env: str, services: list[str] | None, reason: str) -> Asked:
    """Each service's newest image (not revoked), for ``env``, which takes no promotions."""
    settings = deck.env(env)
    names = deck.config.services_named(services)
    if settings.promote_from is not None:
        raise RefusedError(f"{env} takes images from {settings.promote_from} only (promote them from there)")
    targets = []
    for service in names:
        candidates = [i for i in catalog.service_images(service) if not is_revoked(i)]
        if not candidates:
            raise RefusedError(f"{service} has no image to deploy yet: bake one (`opsdeck bake --service {service}`)")
        newest = candidates[-1]
        if catalog.canonical(read_pin(deck, env, service)) != newest.id:
            targets.append(Target(service, newest))
    if not targets:
        raise RefusedError(f"{env} already runs the newest image of {', '.join(names)}")
    return Asked("deploy", env, targets, ["from: newest images", f"to: {env}"], reason)


def ask_rollback(
    deck: Deck, catalog: Catalog, env: str, services: list[str] | None, to: str | None, reason: str
) -> Asked:
    """``env``'s services back on their previous images (or on ``to``, an image it ran before)."""
    targets = resolve_rollback(deck, catalog, env, services, to)
    _not_revoked(targets)
    return Asked("rollback", env, targets, [f"to: {env}"], reason)
