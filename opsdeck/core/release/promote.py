"""Promote and roll back: change services' pinned images in an environment, apply, verify, commit.

The order keeps git true. Images are made usable where the environment runs (a copy in its region,
launch permission for its account); the pins are written, planned and shown; only a confirmed plan
is applied, and exactly that saved plan. Once every desired instance of each moved service runs its
new image, the pins are committed in one commit naming each service's from -> to, the source, the
target and the reason. If planning or applying fails, the pin files are put back as they were, so
the pins and what runs still agree. Without --service, promote moves every service that differs, as
one release train: one plan, one apply, one commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsdeck.adapters.aws import Credentials, Image
from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import ColorPin, pin_files, read_pin, write_color_pins, write_pins
from opsdeck.core.events import Reporter
from opsdeck.core.model import ImageRef, PlanResult
from opsdeck.core.observe import planning
from opsdeck.core.observe.plans import plan_lines
from opsdeck.core.release import bluegreen, gates, rollout
from opsdeck.core.release.distribute import Distribution, make_usable
from opsdeck.core.release.images import Catalog, is_revoked, load_catalog, service_of
from opsdeck.core.release.ledger import last_release, pinned_history, previous_pin
from opsdeck.core.safety.audit import TRAILER
from opsdeck.core.safety.breakglass import BreakGlass
from opsdeck.core.safety.confirm import Confirm, NotConfirmedError, Preview, ServiceChange, confirmed
from opsdeck.core.safety.operation import audited
from opsdeck.core.team.identity import operator
from opsdeck.core.team.remote import publish
from opsdeck.core.team.requests import Request
from opsdeck.errors import LockedError, OpsdeckError, RefusedError, reworded


@dataclass(frozen=True)
class Moved:
    """One service's move in a release."""

    service: str
    from_image: str
    to_image: str
    version: str = ""
    from_version: str = ""


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
            "phases": [{"name": n, "seconds": round(s, 3)} for n, s in self.phases],
        }
        if len(self.moved) == 1:  # one service: its from -> to at the top as well
            data["from_image"], data["to_image"] = self.moved[0].from_image, self.moved[0].to_image
        if self.instant is not None or self.action == "rollback":
            data["instant"] = bool(self.instant)
        if self.traffic:
            data["traffic"] = self.traffic
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
        return text


@dataclass
class _Target:
    """Where a service is going: the original image, and the id to pin (the original or its copy)."""

    service: str
    image: Image
    pin_id: str | None = None  # None: made usable in the environment first (promote)
    extras: dict[str, str] = field(default_factory=dict)


def _ref(catalog: Catalog, image_id: str) -> ImageRef:
    image = catalog.by_id.get(image_id) or catalog.original(image_id)
    return ImageRef(image_id, image.version if image else "", is_revoked(image))


def _describe(ref: ImageRef) -> str:
    return f"{ref.version} ({ref.id})" if ref.version else ref.id


async def _change_pins(
    deck: Deck,
    env: str,
    targets: list[_Target],
    catalog: Catalog,
    rep: Reporter,
    *,
    action: str,
    reason: str,
    head: Callable[[list[Moved]], str],
    details: list[str],
    confirm: Confirm,
    glass: BreakGlass | None,
    offline: bool = False,
    notes: dict[str, Any] | None = None,
) -> ReleaseResult | Request:
    from opsdeck.core.team import requests

    started = time.monotonic()
    git = deck.tools.git
    if await asyncio.to_thread(git.is_detached):
        raise RefusedError(
            f"the deck's git HEAD is detached; check out a branch before {action} (the commit would be lost)"
        )
    services = [t.service for t in targets]
    files = pin_files(deck, env, services)
    credentials = glass.credentials if glass is not None and glass.env == env else None
    fields: dict[str, Any] = {
        "services": services,
        "to": {t.service: t.image.id for t in targets},
        "version": ", ".join(t.image.version for t in targets),
        "reason": reason,
    }
    if len(targets) == 1:
        fields["to"] = targets[0].image.id
    if offline:
        fields["offline"] = True
    fields.update(notes or {})
    to_request = requests.needs_approval(deck, env, credentials is not None)
    if deck.env(env).approvals and not to_request:
        fields["approvals_bypassed"] = f"break-glass: {glass.reason if glass else ''}"
    detail = {"services": ",".join(services), "to": ",".join(t.image.id for t in targets), "pin": ",".join(files)}
    async with audited(
        deck, action, env, rep, glass=glass, fields=fields, lock_detail=detail, approved=to_request, sync=False
    ) as run:
        # Under the lock: while another operation runs here, its half-written pins are its business.
        for rel in files:
            if await asyncio.to_thread(git.is_dirty, rel):
                raise RefusedError(f"{rel} has uncommitted changes; commit or discard them before {action}")
        current = {s: read_pin(deck, env, s) for s in services}
        run.note(**{"from": current[services[0]] if len(services) == 1 else current})
        distributions: list[Distribution] = []
        if any(t.pin_id is None for t in targets):
            with rep.phase("distribute"):
                for target in targets:
                    if target.pin_id is None:
                        made = await make_usable(deck, catalog, target.image, env, rep)
                        target.pin_id = made.usable_id
                        distributions.append(made)
            shared = [d.to_json() for d in distributions if d.copied or d.shared]
            if shared:
                run.note(distributed=shared)
        moving = [t for t in targets if t.pin_id != current[t.service]]
        if not moving:
            names = ", ".join(f"{t.service} {t.image.version or t.image.id}" for t in targets)
            raise RefusedError(f"{env} already runs {names}")
        moved = [
            Moved(
                t.service,
                current[t.service],
                t.pin_id or "",
                t.image.version,
                _ref(catalog, current[t.service]).version,
            )
            for t in moving
        ]
        originals = {rel: (deck.root / rel).read_text(encoding="utf-8") for rel in files}
        bg = deck.env(env).blue_green
        before: dict[str, ColorPin] = {}
        staged: dict[str, ColorPin] = {}
        instant = False
        if bg:
            before = await asyncio.to_thread(bluegreen.color_pins, deck, env, [m.service for m in moved])
            # Back to (or on to) the warm standby's image: the switch alone.
            instant = action == "rollback" and all(  # a promote always passes the smoke checks
                before[m.service].warm() and before[m.service].idle_image == m.to_image for m in moved
            )
            staged = {m.service: before[m.service].staged(m.to_image) for m in moved}
        final: dict[str, ColorPin] = {}
        step = "pin"
        applied = False
        try:
            if instant:
                final = {s: p.switched(deck.env(env).standby_minutes) for s, p in before.items()}
                step = "plan"
                plan = await bluegreen.prepared_switch_back(deck, env, final)
                if plan is not None:
                    rep.log("rollback: the switch back prepared at the release is still valid; applying it")
                    await asyncio.to_thread(write_color_pins, deck, env, final)
                else:
                    plan = await bluegreen.plan_switch(deck, env, final, rep, credentials=credentials)
            else:
                with rep.phase("pin"):
                    if bg:
                        write_color_pins(deck, env, staged)
                    else:
                        write_pins(deck, env, {m.service: m.to_image for m in moved})
                step = "plan"
                plan = await planning.plan(deck, env, rep, reuse=False, credentials=credentials)
            step = "policy"
            verdict = await gates.policy(deck, env, plan, rep, break_glass=credentials is not None)
            if verdict is not None:
                run.note(policy=verdict.to_json())
            preview = Preview(
                action,
                env,
                deck.env(env).confirmation,
                tuple(
                    ServiceChange(m.service, _ref(catalog, m.from_image), ImageRef(m.to_image, m.version))
                    for m in moved
                ),
                plan,
                reason,
                _distribution_note(distributions)
                + (_bg_note(before, instant, deck.env(env).standby_minutes, smoke=action != "rollback") if bg else ""),
            )
            if to_request:
                # Approvals: the change stops here, as a request for this exact plan; nothing is applied.
                step = "request"
                after = {rel: (deck.root / rel).read_text(encoding="utf-8") for rel in files}
                for rel, text in originals.items():
                    (deck.root / rel).write_text(text, encoding="utf-8")
                request = await requests.create(
                    deck,
                    env,
                    action,
                    plan,
                    rep,
                    services=[
                        {
                            "name": m.service,
                            "from_image": m.from_image,
                            "to_image": m.to_image,
                            "version": m.version,
                            "from_version": m.from_version,
                        }
                        for m in moved
                    ],
                    pins=after,
                    base=originals,
                    reason=reason,
                    message=_message(head(moved), moved, catalog, details, reason, glass, distributions),
                    diff=plan_lines(plan),
                    credentials=credentials,
                )
                planning.forget_plan(deck, env)
                run.note(request=request.id, needed=request.needed)
                run.end_as("requested")
                return request
            step = "confirm"
            if not await confirm(preview):
                raise NotConfirmedError(f"{action} of {env} was not confirmed; nothing changed")
            unverified: OpsdeckError | None = None
            if bg:
                marks = ReleaseProgress("switch" if instant else "apply")
                try:
                    final = await blue_green_release(
                        deck,
                        env,
                        plan,
                        rep,
                        before=before,
                        staged=staged,
                        final=final,
                        instant=instant,
                        smoke=action != "rollback",
                        credentials=credentials,
                        originals=originals,
                        note=run.note,
                        marks=marks,
                    )
                finally:
                    step, applied = marks.step, marks.applied
            else:
                step = "apply"
                await rollout.apply_plan(deck, env, plan, rep, credentials)
                applied = True
                # From here the code must follow what was applied: the pins are committed even if the
                # instances are slow to come up, and that is reported as a failure to look at.
                step = "verify instances"
                try:
                    await rollout.wait_for_images(
                        deck, env, {m.service: m.to_image for m in moved}, rep, credentials=credentials
                    )
                except OpsdeckError as exc:
                    unverified = exc
            step = "commit"
            with rep.phase("commit"):
                text = _message(head(moved), moved, catalog, details, reason, glass, distributions)
                if final:
                    text += "\n" + _traffic_lines(final, before)
                if unverified is not None:
                    text += f"\n\nunverified: {unverified}"
                who = await asyncio.to_thread(operator, deck)
                caller = run.record.who.get("aws", "") if run.record.who else ""
                text += f"\n\n{who.trailers(caller)}\n{TRAILER}: {run.hash}\n"
                sha = await asyncio.to_thread(git.commit, files, text)
            pushed, sha = await asyncio.to_thread(publish, deck, rep)
            run.note(pushed=pushed)
        except BaseException as exc:
            if not applied:
                for rel, text in originals.items():
                    (deck.root / rel).write_text(text, encoding="utf-8")
            planning.forget_plan(deck, env)
            planning.drop_scratch(deck, env, "switch")
            if isinstance(exc, OpsdeckError) and not isinstance(exc, RefusedError):
                kept = f"applied, pins left uncommitted in {', '.join(files)}" if applied else "pins restored"
                raise reworded(exc, f"{action} of {env} failed at {step} ({kept}): {exc}") from exc
            raise
        planning.forget_plan(deck, env)
        run.note(commit=sha)
        if final:
            run.note(traffic={s: bluegreen.traffic_json(p) for s, p in final.items()}, instant=instant)
        bluegreen.forget_prepared(deck, env)
        if final and action != "rollback":  # after a rollback the next thing is a fix, not a switch back
            try:
                await bluegreen.prepare_switch_back(deck, env, list(final), rep, credentials=credentials)
            except OpsdeckError as exc:  # the release stands; a rollback will plan its switch itself
                bluegreen.forget_prepared(deck, env)
                rep.log(f"could not prepare the switch back ({exc}); a rollback will plan it", "warning")
        if unverified is not None:
            run.end_as("failed", f"verify instances: {unverified}")
    if unverified is not None:
        raise OpsdeckError(f"{action} of {env} applied and committed ({sha[:12]}), but {unverified}")
    return ReleaseResult(
        action=action,
        environment=env,
        moved=tuple(moved),
        commit=sha,
        seconds=time.monotonic() - started,
        phases=tuple(rep.phases),
        distributions=tuple(distributions),
        instant=instant if bg else None,
        traffic={s: bluegreen.traffic_json(p) for s, p in final.items()},
    )


@dataclass
class ReleaseProgress:
    """How far a blue/green release got: the step it is at, and whether anything was applied."""

    step: str
    applied: bool = False


async def blue_green_release(
    deck: Deck,
    env: str,
    plan: PlanResult,
    rep: Reporter,
    *,
    before: dict[str, ColorPin],
    staged: dict[str, ColorPin],
    final: dict[str, ColorPin],
    instant: bool,
    smoke: bool,
    credentials: Credentials | None,
    originals: dict[str, str],
    note: Callable[..., None],
    marks: ReleaseProgress,
) -> dict[str, ColorPin]:
    """After the confirmation: stage the idle colors, pass the health and smoke gates, switch traffic
    (or, instant, only the switch). A gate that fails puts the idle colors back as they were and
    leaves traffic alone. Returns the pins as switched."""
    if instant:
        marks.step = "health"
        await bluegreen.health_gate(deck, env, before, rep, credentials=credentials)  # the standby still serves
        marks.step = "switch"
        marks.applied = True  # from the first rule changed on, the pins follow the cloud
        try:
            await bluegreen.apply_switch(deck, env, final, plan, rep, credentials=credentials)
        except OpsdeckError:
            await _record_traffic(deck, env, rep)
            raise
        finally:
            Path(plan.planfile).unlink(missing_ok=True)  # a switch plan, made now or prepared: used once
        return final
    try:
        marks.step = "apply"
        if plan.summary.has_changes:
            await rollout.apply_plan(deck, env, plan, rep, credentials)
        planning.forget_plan(deck, env)
        marks.step = "health"
        await bluegreen.health_gate(deck, env, staged, rep, credentials=credentials)
        if smoke:
            marks.step = "smoke"
            ran = await bluegreen.smoke_gate(deck, env, staged, rep, credentials=credentials)
            if ran:
                note(smoke=ran)
        marks.step = "switch"
        final = {s: p.switched(deck.env(env).standby_minutes) for s, p in staged.items()}
        switch = await bluegreen.plan_switch(deck, env, final, rep, credentials=credentials)
        await gates.policy(deck, env, switch, rep, break_glass=credentials is not None)
    except BaseException as exc:
        # Nothing switched: traffic is where it was. Put the idle colors back as the ledger has them.
        if isinstance(exc, asyncio.CancelledError):
            raise
        try:
            await _put_back(deck, env, before, rep, credentials=credentials, originals=originals)
        except OpsdeckError as failed:  # the gate's refusal is what the engineer must see first
            marks.applied = True  # the pins stay as staged: what the cloud may still run
            rep.log(f"could not put the idle colors back ({failed}); plan {env} to see what runs", "error")
        raise
    marks.applied = True
    try:
        await bluegreen.apply_switch(deck, env, final, switch, rep, credentials=credentials)
    except OpsdeckError:
        await _record_traffic(deck, env, rep)
        raise
    finally:
        Path(switch.planfile).unlink(missing_ok=True)
    return final


async def _record_traffic(deck: Deck, env: str, rep: Reporter) -> None:
    """A switch that failed part way: the ledger takes the live colors the cloud's rules have, so git
    and traffic agree even before anyone looks (best effort: unlock does the same)."""
    try:
        await bluegreen.reconcile_traffic(deck, env, rep)
    except OpsdeckError as exc:
        rep.log(f"could not record where traffic is after the failed switch ({exc})", "error")


async def _put_back(
    deck: Deck,
    env: str,
    before: dict[str, ColorPin],
    rep: Reporter,
    *,
    credentials: Credentials | None,
    originals: dict[str, str],
) -> None:
    """A gate stopped the release after the idle colors were staged: return them to what the ledger
    says (the previous standby's image, warm or cold), so pins and cloud agree again."""
    with rep.phase("put back idle"):
        for rel, text in originals.items():
            (deck.root / rel).write_text(text, encoding="utf-8")
        back = await planning.plan(deck, env, rep, reuse=False, credentials=credentials)
        if back.summary.has_changes:
            await rollout.apply_plan(deck, env, back, rep, credentials)
        planning.forget_plan(deck, env)
        await rollout.wait_for_images(deck, env, before, rep, credentials=credentials)
        rep.log(
            "the idle colors are back as they were: "
            + ", ".join(f"{s} {p.idle} {p.idle_image or 'empty'} ({p.standby})" for s, p in before.items())
        )


def _bg_note(before: dict[str, ColorPin], instant: bool, standby_minutes: float, *, smoke: bool) -> str:
    if instant:
        return "instant: " + ", ".join(
            f"traffic back to {s}'s warm {p.idle} ({p.idle_image}); no instance launched" for s, p in before.items()
        )
    gates = "the health and smoke gates" if smoke else "its targets are healthy"
    return "blue/green: " + ", ".join(
        f"{s} stages on {p.idle}, traffic switches once {gates} pass; {p.live} stays warm {standby_minutes:g} min"
        if smoke
        else f"{s} brings {p.idle} up, traffic switches once {gates}; {p.live} stays warm {standby_minutes:g} min"
        for s, p in before.items()
    )


def _traffic_lines(final: dict[str, ColorPin], before: dict[str, ColorPin]) -> str:
    lines = []
    for service, pin in final.items():
        was = before.get(service)
        line = f"traffic: {service} {was.live if was else '?'} -> {pin.live}"
        if pin.standby == "warm" and pin.warm_until is not None:
            until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pin.warm_until))
            line += f"; standby {pin.idle} ({pin.idle_image}) warm until {until}"
        lines.append(line)
    return "\n".join(lines)


def _distribution_note(distributions: list[Distribution]) -> str:
    parts = []
    for d in distributions:
        if d.copied:
            parts.append(f"{d.image} copied to {d.region} as {d.usable_id}")
        if d.shared:
            parts.append(f"{d.usable_id} shared with account {d.account}")
    return "; ".join(parts)


def _message(
    head: str,
    moved: list[Moved],
    catalog: Catalog,
    details: list[str],
    reason: str,
    glass: BreakGlass | None,
    distributions: list[Distribution],
) -> str:
    body = [
        f"{m.service}: {_describe(_ref(catalog, m.from_image))} -> {_describe(ImageRef(m.to_image, m.version))}"
        for m in moved
    ]
    body += details
    if reason:
        body.append(f"reason: {reason}")
    if glass is not None:
        body.append(f"break-glass: {glass.reason}")
    note = _distribution_note(distributions)
    if note:
        body.append(f"distributed: {note}")
    return head + "\n\n" + "\n".join(body)


def preflight(deck: Deck, env: str, action: str, glass: BreakGlass | None, rep: Reporter) -> bool:
    """What refuses a release before anything is read from the cloud: a protected environment without
    break-glass, a detached HEAD, an operation running in (or interrupted in) ``env``, uncommitted
    changes to its pin files. Checked again under the lock; here so the first refusal names the real
    reason."""
    from opsdeck.core.safety import locks
    from opsdeck.core.safety.breakglass import guard
    from opsdeck.core.team.remote import sync_before_change

    guard(deck, env, glass, action, approved=deck.env(env).approvals > 0)  # approvals: it becomes a request
    ledger = sync_before_change(deck, rep, offline_ok=glass is not None and glass.env == env)
    git = deck.tools.git
    if git.is_detached():
        raise RefusedError(
            f"the deck's git HEAD is detached; check out a branch before {action} (the commit would be lost)"
        )
    record, alive = locks.holder(deck, env)
    if record is not None and alive:
        raise LockedError(f"{env} is locked: {record.describe()}")
    if record is not None:
        raise LockedError(
            f"{env} has an interrupted operation: {record.describe()}; "
            f"check the environment, then release it with `opsdeck unlock {env}`"
        )
    for rel in pin_files(deck, env):
        if git.is_dirty(rel):
            raise RefusedError(f"{rel} has uncommitted changes; commit or discard them before {action}")
    return ledger.offline


# -- promote ------------------------------------------------------------------------------------


def resolve_promotion(
    deck: Deck, catalog: Catalog, src: str, dst: str, services: list[str] | None
) -> tuple[list[_Target], str | None]:
    """What a promote moves: each service's image from SRC (an environment: every service that
    differs, or those named; an image id or version: that image's service)."""
    names = deck.config.services_named(services)
    if src in deck.config.env_names:
        if src == dst:
            raise RefusedError(f"cannot promote {dst} to itself")
        wanted = deck.env(dst).promote_from
        if wanted is not None and src != wanted:
            raise RefusedError(f"{dst} promotes from {wanted}, not from {src}")
        targets = []
        for service in names:
            pin = read_pin(deck, src, service)
            image = catalog.original(pin)
            if image is None or service_of(image) != service:
                raise RefusedError(f"{src} pins {pin} for {service}, which is not one of {service}'s images")
            if catalog.canonical(read_pin(deck, dst, service)) != image.id:
                targets.append(_Target(service, image))
        if not targets:
            which = ", ".join(names)
            raise RefusedError(f"{dst} already runs what {src} runs ({which}): nothing to promote")
        return targets, src
    image = catalog.find(src, names) or (catalog.find(src, deck.config.service_names) if services else None)
    if image is None:
        known = ", ".join(deck.config.env_names)
        raise RefusedError(f"{src!r} is neither an environment ({known}) nor an image id or version of this deck")
    own = service_of(image)
    if own is None or own not in names:
        raise RefusedError(
            f"{src} is an image of {own or 'the base layer'}, not of {', '.join(names)}: "
            "an image is only ever promoted as its own service's"
        )
    return [_Target(own, image)], None


def check_chain(deck: Deck, catalog: Catalog, targets: list[_Target], source_env: str | None, dst: str) -> None:
    """Only an image that has run in DST's source environment may be promoted to DST."""
    wanted = deck.env(dst).promote_from
    if wanted is None:
        return
    if source_env is not None and source_env != wanted:
        raise RefusedError(f"{dst} promotes from {wanted}, not from {source_env}")
    for target in targets:
        ran = {catalog.canonical(i) for i in pinned_history(deck, wanted, target.service)}
        if target.image.id not in ran:
            raise RefusedError(
                f"{target.service} {target.image.version or target.image.id} ({target.image.id}) has not run in "
                f"{wanted}, and {dst} only takes images that have: promote it to {wanted} first"
            )


async def promote(
    deck: Deck,
    src: str,
    dst: str,
    rep: Reporter,
    *,
    services: list[str] | None = None,
    reason: str = "",
    confirm: Confirm = confirmed,
    glass: BreakGlass | None = None,
) -> ReleaseResult | Request:
    """Promote the images SRC runs (or the image SRC names) to DST: one release, audited."""
    deck.env(dst)
    deck.config.services_named(services)
    try:
        offline = await asyncio.to_thread(preflight, deck, dst, "promote", glass, rep)
        catalog = await asyncio.to_thread(load_catalog, deck)
        targets, source_env = await asyncio.to_thread(resolve_promotion, deck, catalog, src, dst, services)
        for target in targets:
            if is_revoked(target.image):
                raise RefusedError(
                    f"{target.service} {target.image.version} ({target.image.id}) is revoked: "
                    f"{target.image.tags.get('revoked')}"
                )
        await asyncio.to_thread(check_chain, deck, catalog, targets, source_env, dst)
        in_glass = glass is not None and glass.env == dst
        soaks = await asyncio.to_thread(
            gates.soak, deck, dst, {t.service: t.image.id for t in targets}, glass=in_glass, rep=rep
        )
    except (RefusedError, LockedError) as exc:
        await _refused(deck, "promote", dst, reason, exc, glass)
        raise
    origin = source_env or "image"

    def head(moved: list[Moved]) -> str:
        what = ", ".join(f"{m.service} {m.version or m.to_image}" for m in moved)
        return f"promote {what} to {dst}" + (f": {reason}" if reason else "")

    return await _change_pins(
        deck,
        dst,
        targets,
        catalog,
        rep,
        action="promote",
        reason=reason,
        head=head,
        details=[f"from: {origin}", f"to: {dst}"],
        confirm=confirm,
        glass=glass,
        offline=offline,
        notes=_soak_notes(soaks),
    )


def _soak_notes(soaks: list[gates.Soak]) -> dict[str, Any]:
    if not soaks:
        return {}
    notes: dict[str, Any] = {
        "soak": [
            {"service": s.service, "image": s.image, "minutes": round(s.minutes_live, 1), "needed": s.minutes_needed}
            for s in soaks
        ]
    }
    short = [s for s in soaks if not s.ok]
    if short:
        notes["soak_bypassed"] = "break-glass: " + ", ".join(f"{s.service} {s.image}" for s in short)
    return notes


async def deploy_newest(
    deck: Deck,
    env: str,
    rep: Reporter,
    *,
    services: list[str] | None = None,
    reason: str = "",
    confirm: Confirm = confirmed,
    glass: BreakGlass | None = None,
) -> ReleaseResult | Request:
    """Deploy each service's newest image (not revoked) to ``env``, which takes no promotions."""
    settings = deck.env(env)
    names = deck.config.services_named(services)
    try:
        if settings.promote_from is not None:
            raise RefusedError(f"{env} takes images from {settings.promote_from} only (promote them from there)")
        offline = await asyncio.to_thread(preflight, deck, env, "deploy", glass, rep)
        catalog = await asyncio.to_thread(load_catalog, deck)
        targets = []
        for service in names:
            candidates = [i for i in catalog.service_images(service) if not is_revoked(i)]
            if not candidates:
                raise RefusedError(
                    f"{service} has no image to deploy yet: bake one (`opsdeck bake --service {service}`)"
                )
            newest = candidates[-1]
            if catalog.canonical(await asyncio.to_thread(read_pin, deck, env, service)) != newest.id:
                targets.append(_Target(service, newest))
        if not targets:
            raise RefusedError(f"{env} already runs the newest image of {', '.join(names)}")
    except (RefusedError, LockedError) as exc:
        await _refused(deck, "deploy", env, reason, exc, glass)
        raise

    def head(moved: list[Moved]) -> str:
        what = ", ".join(f"{m.service} {m.version or m.to_image}" for m in moved)
        return f"deploy {what} to {env}" + (f": {reason}" if reason else "")

    return await _change_pins(
        deck,
        env,
        targets,
        catalog,
        rep,
        action="deploy",
        reason=reason,
        head=head,
        details=["from: newest images", f"to: {env}"],
        confirm=confirm,
        glass=glass,
        offline=offline,
    )


async def _refused(deck: Deck, action: str, env: str, reason: str, exc: OpsdeckError, glass: BreakGlass | None) -> None:
    """A release refused before it started is audited as an attempt."""
    from opsdeck.core.safety.operation import refuse

    await asyncio.to_thread(refuse, deck, action, env, exc, reason=reason)


# -- rollback -----------------------------------------------------------------------------------


def resolve_rollback(
    deck: Deck, catalog: Catalog, env: str, services: list[str] | None, to: str | None
) -> list[_Target]:
    """What a rollback returns to: the services of the last release (or those named) to their previous
    images, or one service to an image it ran before (``to``)."""
    names = deck.config.services_named(services)
    if to is not None:
        image = catalog.find(to, names)
        if image is None:
            raise RefusedError(f"--to {to}: not an image id or version of {', '.join(names)}")
        service = service_of(image)
        assert service is not None
        ran = pinned_history(deck, env, service)
        found = next((i for i in ran if catalog.canonical(i) == image.id), None)
        if found is None:
            raise RefusedError(f"{env} never ran {service} {to}; rollback only returns to images it ran (use promote)")
        return [_Target(service, image, found)]
    wanted: dict[str, str] = (
        {s: previous_pin(deck, env, s) for s in names} if services else last_release(deck, env, names)
    )
    targets = []
    for service, image_id in wanted.items():
        original = catalog.original(image_id)
        if original is None:
            raise RefusedError(f"{env}'s previous {service} image {image_id} no longer exists (deregistered?)")
        targets.append(_Target(service, original, image_id))
    return targets


async def rollback(
    deck: Deck,
    env: str,
    rep: Reporter,
    *,
    services: list[str] | None = None,
    to: str | None = None,
    reason: str = "",
    confirm: Confirm = confirmed,
    glass: BreakGlass | None = None,
) -> ReleaseResult | Request:
    """Point ``env``'s services back at their previous images (or at ``to``, an image it ran before)."""
    deck.env(env)
    deck.config.services_named(services)
    try:
        offline = await asyncio.to_thread(preflight, deck, env, "rollback", glass, rep)
        catalog = await asyncio.to_thread(load_catalog, deck)
        targets = await asyncio.to_thread(resolve_rollback, deck, catalog, env, services, to)
        for target in targets:
            if is_revoked(target.image):
                raise RefusedError(
                    f"{target.service} {target.image.version} ({target.image.id}) is revoked: "
                    f"{target.image.tags.get('revoked')}"
                )
    except (RefusedError, LockedError) as exc:
        await _refused(deck, "rollback", env, reason, exc, glass)
        raise

    def head(moved: list[Moved]) -> str:
        what = ", ".join(f"{m.service} {m.from_version or m.from_image} -> {m.version or m.to_image}" for m in moved)
        return f"rollback {env}: {what}" + (f" ({reason})" if reason else "")

    return await _change_pins(
        deck,
        env,
        targets,
        catalog,
        rep,
        action="rollback",
        reason=reason,
        head=head,
        details=[f"to: {env}"],
        confirm=confirm,
        glass=glass,
        offline=offline,
    )
