"""Promote and roll back: change an environment's pinned image, apply it, verify it, commit it.

The order keeps git true. The pin is written, planned and shown; only a confirmed plan is applied,
and exactly that saved plan. Once every desired instance runs the new image (new group in service,
old group gone) the pin is committed, naming app, version, image, source, target and reason. If
planning or applying fails, the pin file is put back as it was, so the pin and what runs still agree.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opsdeck.adapters.aws import Image
from opsdeck.adapters.git import pin_text
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.model import ImageRef, PlanResult
from opsdeck.core.observe import planning
from opsdeck.core.release import rollout
from opsdeck.core.release.images import app_images, find_image, is_revoked
from opsdeck.core.release.ledger import pinned_history, previous_pin
from opsdeck.core.safety import audit
from opsdeck.core.safety.breakglass import BreakGlass, guard
from opsdeck.core.safety.locks import env_lock
from opsdeck.errors import OpsdeckError, RefusedError


@dataclass(frozen=True)
class Preview:
    """What a confirmation shows: the environment, its approval level, from -> to, and the plan."""

    action: str
    environment: str
    approval: str
    from_image: ImageRef
    to_image: ImageRef
    plan: PlanResult
    reason: str = ""


Confirm = Callable[[Preview], Awaitable[bool]]


async def confirmed(_: Preview) -> bool:
    """The --yes confirmation."""
    return True


@dataclass(frozen=True)
class ReleaseResult:
    action: str
    environment: str
    from_image: str
    to_image: str
    commit: str
    seconds: float
    version: str = ""
    phases: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "from_image": self.from_image,
            "to_image": self.to_image,
            "commit": self.commit,
            "seconds": round(self.seconds, 3),
        }


class NotConfirmedError(RefusedError):
    """The person (or the missing --yes) did not confirm; nothing was changed."""


async def _audit_refusals(
    deck: Deck, action: str, env: str, reason: str, work: Awaitable[ReleaseResult]
) -> ReleaseResult:
    """Run ``work``; a refusal before its own audit record opened is audited here (attempts count too)."""
    before = len(audit.read(deck))
    try:
        return await work
    except RefusedError as exc:
        if len(audit.read(deck)) == before:
            audit.append(
                deck,
                action=action,
                environment=env,
                result="refused",
                reason=reason,
                error=str(exc),
                who=audit.who(deck, env),
            )
        raise


def _ref(image: Image | None, image_id: str) -> ImageRef:
    return ImageRef(image_id, image.version if image else "", is_revoked(image))


def resolve_source(deck: Deck, src: str, images: list[Image]) -> tuple[Image, str | None]:
    """SRC is an environment (the image it pins) or an image id or version."""
    if src in deck.config.env_names:
        image_id = deck.git.pin(deck.pin_rel(src))
        image = next((i for i in images if i.id == image_id), None)
        if image is None:
            raise RefusedError(f"{src} pins {image_id}, which is not one of this deck's images")
        return image, src
    image = find_image(images, src)
    if image is None:
        known = ", ".join(deck.config.env_names)
        raise RefusedError(f"{src!r} is neither an environment ({known}) nor an image id or version of this deck")
    return image, None


def check_chain(deck: Deck, image: Image, source_env: str | None, dst: str) -> None:
    """Only an image that has run in DST's source environment may be promoted to DST."""
    wanted = deck.env(dst).promote_from
    if wanted is None:
        return
    if source_env is not None and source_env != wanted:
        raise RefusedError(f"{dst} promotes from {wanted}, not from {source_env}")
    if image.id not in pinned_history(deck, wanted):
        raise RefusedError(
            f"{image.version or image.id} ({image.id}) has not run in {wanted}, and {dst} only takes images "
            f"that have: promote it to {wanted} first"
        )


async def _change_pin(
    deck: Deck,
    env: str,
    target: Image,
    rep: Reporter,
    *,
    action: str,
    reason: str,
    message: Callable[[ImageRef, ImageRef, str], str],
    confirm: Confirm,
    glass: BreakGlass | None,
) -> ReleaseResult:
    started = time.monotonic()
    guard(deck, env, glass, action)
    if await asyncio.to_thread(deck.git.is_detached):
        raise RefusedError(
            f"the deck's git HEAD is detached; check out a branch before {action} (the commit would be lost)"
        )
    rel = deck.pin_rel(env)
    # The lock comes first: while another operation runs here, its half-written pin is its business.
    try:
        was = await asyncio.to_thread(deck.git.pin, rel)  # for the lock's record only
    except OpsdeckError:
        was = "?"
    with env_lock(deck, env, action, {"from": was, "to": target.id, "pin": rel}):
        if await asyncio.to_thread(deck.git.is_dirty, rel):
            raise RefusedError(f"{rel} has uncommitted changes; commit or discard them before {action}")
        current_id = await asyncio.to_thread(deck.git.pin, rel)
        if current_id == target.id:
            raise RefusedError(f"{env} already runs {target.version or ''} {target.id}".replace("  ", " "))
        current = await asyncio.to_thread(deck.aws(env).image, current_id)
        from_ref, to_ref = _ref(current, current_id), _ref(target, target.id)
        run = audit.AuditedRun(
            deck,
            action,
            env,
            {
                "from": current_id,
                "to": target.id,
                "version": target.version,
                "reason": reason,
                "break_glass": bool(glass),
            },
        ).open()
        pin_path = deck.root / rel
        original = pin_path.read_text(encoding="utf-8")
        step = "pin"
        applied = False
        try:
            with rep.phase("pin"):
                pin_path.write_text(pin_text(target.id), encoding="utf-8")
            step = "plan"
            plan = await planning.plan(deck, env, rep, reuse=False)
            preview = Preview(action, env, deck.env(env).confirmation, from_ref, to_ref, plan, reason)
            step = "confirm"
            if not await confirm(preview):
                raise NotConfirmedError(f"{action} of {env} was not confirmed; nothing changed")
            step = "apply"
            await rollout.apply_plan(deck, env, plan, rep)
            applied = True
            # From here the code must follow what was applied: the pin is committed even if the
            # instances are slow to come up, and that is reported as a failure to look at.
            step = "verify instances"
            unverified: OpsdeckError | None = None
            try:
                await rollout.wait_for_image(deck, env, target.id, rep)
            except OpsdeckError as exc:
                unverified = exc
            step = "commit"
            with rep.phase("commit"):
                text = message(from_ref, to_ref, reason)
                if unverified is not None:
                    text += f"\n\nunverified: {unverified}"
                text += f"\n\n{audit.TRAILER}: {run.hash}\n"
                sha = await asyncio.to_thread(deck.git.commit, [rel], text)
        except BaseException as exc:
            if not applied:
                pin_path.write_text(original, encoding="utf-8")
            planning.forget_plan(deck, env)
            run.close(audit.outcome(exc), error=f"{step}: {exc}", phases=rep.phase_list())
            if isinstance(exc, OpsdeckError) and not isinstance(exc, RefusedError):
                kept = f"applied, pin left uncommitted in {rel}" if applied else f"pin restored to {current_id}"
                wrapped = copy.copy(exc)
                wrapped.args = (f"{action} of {env} failed at {step} ({kept}): {exc}",)
                raise wrapped from exc
            raise
        planning.forget_plan(deck, env)
        if unverified is not None:
            run.close("failed", error=f"verify instances: {unverified}", phases=rep.phase_list(), commit=sha)
            raise OpsdeckError(f"{action} of {env} applied and committed ({sha[:12]}), but {unverified}")
        run.close("ok", phases=rep.phase_list(), commit=sha)
    return ReleaseResult(
        action=action,
        environment=env,
        from_image=current_id,
        to_image=target.id,
        commit=sha,
        seconds=time.monotonic() - started,
        version=target.version,
        phases=tuple(rep.phases),
    )


def _describe(ref: ImageRef) -> str:
    return f"{ref.version} ({ref.id})" if ref.version else ref.id


async def promote(
    deck: Deck,
    src: str,
    dst: str,
    rep: Reporter,
    *,
    reason: str = "",
    confirm: Confirm = confirmed,
    glass: BreakGlass | None = None,
) -> ReleaseResult:
    """Promote the image SRC runs (or the image SRC names) to DST."""
    deck.env(dst)
    return await _audit_refusals(deck, "promote", dst, reason, _promote(deck, src, dst, rep, reason, confirm, glass))


async def _promote(
    deck: Deck, src: str, dst: str, rep: Reporter, reason: str, confirm: Confirm, glass: BreakGlass | None
) -> ReleaseResult:
    images = await asyncio.to_thread(app_images, deck)
    image, source_env = resolve_source(deck, src, images)
    if source_env == dst:
        raise RefusedError(f"cannot promote {dst} to itself")
    if is_revoked(image):
        raise RefusedError(f"{image.version} ({image.id}) is revoked: {image.tags.get('revoked')}")
    await asyncio.to_thread(check_chain, deck, image, source_env, dst)
    app = deck.config.image.app
    origin = source_env or "image"

    def message(old: ImageRef, new: ImageRef, why: str) -> str:
        head = f"promote {app} {new.version or new.id} to {dst}"
        body = [
            f"app: {app}",
            f"version: {new.version}",
            f"image: {new.id}",
            f"from: {origin}",
            f"to: {dst}",
            f"previous image: {_describe(old)}",
        ]
        if why:
            body.append(f"reason: {why}")
        if glass is not None:
            body.append(f"break-glass: {glass.reason}")
        return head + (f": {why}" if why else "") + "\n\n" + "\n".join(body)

    return await _change_pin(
        deck, dst, image, rep, action="promote", reason=reason, message=message, confirm=confirm, glass=glass
    )


async def rollback(
    deck: Deck,
    env: str,
    rep: Reporter,
    *,
    to: str | None = None,
    reason: str = "",
    confirm: Confirm = confirmed,
    glass: BreakGlass | None = None,
) -> ReleaseResult:
    """Point ``env`` back at its previous image (or at ``to``, an image it ran before)."""
    deck.env(env)
    return await _audit_refusals(deck, "rollback", env, reason, _rollback(deck, env, rep, to, reason, confirm, glass))


async def _rollback(
    deck: Deck, env: str, rep: Reporter, to: str | None, reason: str, confirm: Confirm, glass: BreakGlass | None
) -> ReleaseResult:
    images = await asyncio.to_thread(app_images, deck)
    if to is None:
        target_id = await asyncio.to_thread(previous_pin, deck, env)
        target = next((i for i in images if i.id == target_id), None)
        if target is None:
            raise RefusedError(f"{env}'s previous image {target_id} no longer exists (deregistered?)")
    else:
        found = find_image(images, to)
        if found is None:
            raise RefusedError(f"--to {to}: not an image id or version of this deck")
        target = found
        if target.id not in await asyncio.to_thread(pinned_history, deck, env):
            raise RefusedError(f"{env} never ran {to}; rollback only returns to images it ran (use promote)")
    if is_revoked(target):
        raise RefusedError(f"{target.version} ({target.id}) is revoked: {target.tags.get('revoked')}")
    app = deck.config.image.app

    def message(old: ImageRef, new: ImageRef, why: str) -> str:
        head = f"rollback {app} {env}: {old.version or old.id} -> {new.version or new.id}"
        body = [f"app: {app}", f"version: {new.version}", f"image: {new.id}", f"from: {_describe(old)}", f"to: {env}"]
        if why:
            body.append(f"reason: {why}")
        if glass is not None:
            body.append(f"break-glass: {glass.reason}")
        return head + (f" ({why})" if why else "") + "\n\n" + "\n".join(body)

    return await _change_pin(
        deck, env, target, rep, action="rollback", reason=reason, message=message, confirm=confirm, glass=glass
    )
