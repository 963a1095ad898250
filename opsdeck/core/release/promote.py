"""Promote, deploy and roll back: change services' pinned images in an environment, as one release.

Each is a short composition: resolve what moves (core/release/targets.py), then ``change_pins``,
which runs the release transaction's steps in order (core/release/transaction.py): images made usable
where the environment runs (a copy in its region, launch permission for its account), pins written,
planned and shown, the policy gate, then a request for approvals or a confirmation, the apply and the
rollout strategies (core/release/strategies.py), the verify, and one commit naming each service's
from -> to, the source, the target and the reason. Without --service, promote moves every service
that differs, as one release train: one plan, one apply, one commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import pin_files, read_pin
from opsdeck.core.events import Reporter
from opsdeck.core.model import ImageRef, PlanResult
from opsdeck.core.plans.shown import plan_lines
from opsdeck.core.release import preplan
from opsdeck.core.release.asked import Asked, ask_deploy, ask_promote, ask_rollback
from opsdeck.core.release.bluegreen import traffic_json
from opsdeck.core.release.bluegreen_rollout import BlueGreen
from opsdeck.core.release.distribute import Distribution, make_usable
from opsdeck.core.release.images import Catalog, load_catalog
from opsdeck.core.release.preplan import PrePlan
from opsdeck.core.release.results import Moved, ReleaseResult, distribution_note, image_ref, release_message
from opsdeck.core.release.targets import Target, preflight
from opsdeck.core.release.transaction import Release
from opsdeck.core.safety.breakglass import BreakGlass
from opsdeck.core.safety.confirm import Confirm, Preview, ServiceChange, confirmed
from opsdeck.core.safety.operation import Run, audited, refuse
from opsdeck.core.team import requests
from opsdeck.core.team.requests import Request
from opsdeck.errors import LockedError, OpsdeckError, RefusedError

Head = Callable[[list[Moved]], str]


async def change_pins(
    deck: Deck,
    asked: Asked,
    catalog: Catalog,
    rep: Reporter,
    *,
    confirm: Confirm,
    glass: BreakGlass | None,
    offline: bool = False,
    preplanned: PrePlan | None = None,
    confirmed_ahead: bool = False,
) -> ReleaseResult | Request:
    """One release of ``asked``, from the images to the commit (see the module's docstring). With
    ``preplanned`` (a plan made ahead), when it is still current under the lock, that plan is applied as it
    is, without planning again; ``confirmed_ahead``: its caller's confirmation showed it already."""
    env, targets, action, reason = asked.env, asked.targets, asked.action, asked.reason
    started = time.monotonic()
    services = [t.service for t in targets]
    credentials = glass.credentials if glass is not None and glass.env == env else None
    to_request = requests.needs_approval(deck, env, credentials is not None)
    fields = _fields(deck, env, targets, reason, offline, asked.notes, to_request, glass)
    files = pin_files(deck, env, services)
    detail = {"services": ",".join(services), "to": ",".join(t.image.id for t in targets), "pin": ",".join(files)}
    async with (
        audited(
            deck, action, env, rep, glass=glass, fields=fields, lock_detail=detail, approved=to_request, sync=False
        ) as run,
        Release(deck, env, rep, run, action=action, files=files, credentials=credentials) as release,
    ):
        distributions = await _distribute(deck, catalog, targets, env, rep, run)
        moved = _moving(deck, env, targets, catalog, run)
        images = {m.service: m.to_image for m in moved}
        colors = (
            await BlueGreen.moving(release, images, rollback=action == "rollback") if deck.env(env).blue_green else None
        )
        pre, plan = await _the_plan(release, asked, preplanned, colors, images)
        await release.policy(plan)
        note = colors.note() if colors is not None else _strategy_notes(release.choose(plan, list(images)))
        preview = _preview(action, deck, env, moved, catalog, plan, reason, distributions, note)
        message = release_message(asked.head(moved), moved, catalog, asked.details, reason, glass, distributions)
        if to_request:  # the change stops here, as a request for this exact plan; nothing is applied
            return await _file_request(release, plan, moved, reason, message)
        if pre is None or not confirmed_ahead:
            await release.confirm(preview, confirm)
        if colors is not None:
            await colors.roll(plan)
            message += "\n" + colors.traffic_lines()
        else:
            await release.roll(plan, images)
        sha = await release.commit(message)
        _, sha = await release.publish()
        release.finish(sha)
        if colors is not None:
            run.note(traffic={s: traffic_json(p) for s, p in colors.final.items()}, instant=colors.instant)
            if colors.traffic_moved_s is not None:
                run.note(traffic_moved_s=round(colors.traffic_moved_s, 3))
            await colors.state_in_line()
    if release.unverified is not None:
        raise OpsdeckError(f"{action} of {env} applied and committed ({sha[:12]}), but {release.unverified}")
    return _result(release, moved, sha, started, distributions, colors)


async def _the_plan(
    release: Release, asked: Asked, preplanned: PrePlan | None, colors: BlueGreen | None, images: dict[str, str]
) -> tuple[PrePlan | None, PlanResult]:
    """The plan this release applies: the one made ahead while still current, else a new one of the
    pins written now (for blue/green, the idle colors staged)."""
    pre = await _still_current(release, asked, preplanned, instant=colors is not None and colors.instant)
    if pre is not None:
        release.write_texts(pre.texts)
        return pre, pre.result()
    if colors is not None:
        return None, await colors.pin_and_plan()
    release.write_pins(images)
    return None, await release.plan()


def _result(
    release: Release,
    moved: list[Moved],
    sha: str,
    started: float,
    distributions: list[Distribution],
    colors: BlueGreen | None,
) -> ReleaseResult:
    return ReleaseResult(
        action=release.action,
        environment=release.env,
        moved=tuple(moved),
        commit=sha,
        seconds=time.monotonic() - started,
        phases=tuple(release.rep.phases),
        distributions=tuple(distributions),
        instant=colors.instant if colors is not None else None,
        traffic={s: traffic_json(p) for s, p in colors.final.items()} if colors is not None else {},
        rollouts=release.result_notes().get("rollouts", {}),
        still=tuple(release.still),
        traffic_moved_s=colors.traffic_moved_s if colors is not None else None,
        follow_up=colors.follow_up(release.action) if colors is not None else None,
    )


async def _still_current(release: Release, asked: Asked, pre: PrePlan | None, *, instant: bool) -> PrePlan | None:
    """``pre`` when it still plans exactly this release (checked under the lock), else None, said."""
    if pre is None or instant:  # an instant rollback applies its prepared switch back instead
        return None
    if await asyncio.to_thread(preplan.current, release.deck, asked) is None:
        release.rep.log(
            f"the plan of {asked.env} made ahead is no longer current (something it depends on moved): planning again",
            "notice",
        )
        return None
    made = time.strftime("%H:%M:%S", time.localtime(pre.created_at))
    release.rep.log(f"applying the plan of {asked.env} made ahead at {made}", "notice")
    return pre


def _fields(
    deck: Deck,
    env: str,
    targets: list[Target],
    reason: str,
    offline: bool,
    notes: dict[str, Any] | None,
    to_request: bool,
    glass: BreakGlass | None,
) -> dict[str, Any]:
    """The audit record's opening fields."""
    fields: dict[str, Any] = {
        "services": [t.service for t in targets],
        "to": targets[0].image.id if len(targets) == 1 else {t.service: t.image.id for t in targets},
        "version": ", ".join(t.image.version for t in targets),
        "reason": reason,
    }
    if offline:
        fields["offline"] = True
    fields.update(notes or {})
    if deck.env(env).approvals and not to_request:
        fields["approvals_bypassed"] = f"break-glass: {glass.reason if glass else ''}"
    return fields


async def _distribute(
    deck: Deck, catalog: Catalog, targets: list[Target], env: str, rep: Reporter, run: Run
) -> list[Distribution]:
    """Promoted images made usable where ``env`` runs (copied into its region, shared with its account)."""
    distributions: list[Distribution] = []
    if all(t.pin_id is not None for t in targets):
        return distributions
    with rep.phase("distribute"):
        for target in targets:
            if target.pin_id is None:
                made = await make_usable(deck, catalog, target.image, env, rep)
                target.pin_id = made.usable_id
                distributions.append(made)
    shared = [d.to_json() for d in distributions if d.copied or d.shared]
    if shared:
        run.note(distributed=shared)
    return distributions


def _moving(deck: Deck, env: str, targets: list[Target], catalog: Catalog, run: Run) -> list[Moved]:
    """The services whose pin changes, each from what it runs now; refused when none does."""
    current = {t.service: read_pin(deck, env, t.service) for t in targets}
    run.note(**{"from": current[targets[0].service] if len(targets) == 1 else current})
    moving = [t for t in targets if t.pin_id != current[t.service]]
    if not moving:
        names = ", ".join(f"{t.service} {t.image.version or t.image.id}" for t in targets)
        raise RefusedError(f"{env} already runs {names}")
    return [
        Moved(
            t.service,
            current[t.service],
            t.pin_id or "",
            t.image.version,
            image_ref(catalog, current[t.service]).version,
        )
        for t in moving
    ]


def _strategy_notes(strategies: dict[str, Any]) -> str:
    return "; ".join(n for n in (s.note() for s in strategies.values()) if n)


def _preview(
    action: str,
    deck: Deck,
    env: str,
    moved: list[Moved],
    catalog: Catalog,
    plan: PlanResult,
    reason: str,
    distributions: list[Distribution],
    note: str,
) -> Preview:
    changes = tuple(
        ServiceChange(m.service, image_ref(catalog, m.from_image), ImageRef(m.to_image, m.version)) for m in moved
    )
    notes = "; ".join(n for n in (distribution_note(distributions), note) if n)
    return Preview(action, env, deck.env(env).confirmation, changes, plan, reason, notes)


async def _file_request(release: Release, plan: PlanResult, moved: list[Moved], reason: str, message: str) -> Request:
    """Approvals: a request for this exact plan (the pins put back first; nothing is applied)."""
    with release.at("request", phase=False):
        after = {rel: (release.deck.root / rel).read_text(encoding="utf-8") for rel in release.files}
        release.restore()
        request = await requests.create(
            release.deck,
            release.env,
            release.action,
            plan,
            release.rep,
            services=[m.record() for m in moved],
            pins=after,
            base=release.originals,
            reason=reason,
            message=message,
            diff=plan_lines(plan),
            credentials=release.credentials,
        )
    release.finish("")
    release.run.note(request=request.id, needed=request.needed)
    release.run.end_as("requested")
    return request


# -- the three kinds of release ------------------------------------------------------------------


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
    preplanned: PrePlan | None = None,
) -> ReleaseResult | Request:
    """Promote the images SRC runs (or the image SRC names) to DST: one release, audited."""
    deck.env(dst)
    deck.config.services_named(services)
    in_glass = glass is not None and glass.env == dst

    def ask(catalog: Catalog) -> Asked:
        return ask_promote(deck, catalog, src, dst, services, reason, in_glass=in_glass, rep=rep)

    return await _release(
        deck, "promote", dst, ask, rep, reason=reason, confirm=confirm, glass=glass, preplanned=preplanned
    )


async def deploy_newest(
    deck: Deck,
    env: str,
    rep: Reporter,
    *,
    services: list[str] | None = None,
    reason: str = "",
    confirm: Confirm = confirmed,
    glass: BreakGlass | None = None,
    preplanned: PrePlan | None = None,
) -> ReleaseResult | Request:
    """Deploy each service's newest image (not revoked) to ``env``, which takes no promotions."""
    deck.config.services_named(services)

    def ask(catalog: Catalog) -> Asked:
        return ask_deploy(deck, catalog, env, services, reason)

    def first() -> None:  # said before anything is read from the cloud
        source = deck.env(env).promote_from
        if source is not None:
            raise RefusedError(f"{env} takes images from {source} only (promote them from there)")

    return await _release(
        deck, "deploy", env, ask, rep, reason=reason, confirm=confirm, glass=glass, first=first, preplanned=preplanned
    )


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
    preplanned: PrePlan | None = None,
) -> ReleaseResult | Request:
    """Point ``env``'s services back at their previous images (or at ``to``, an image it ran before)."""
    deck.env(env)
    deck.config.services_named(services)

    def ask(catalog: Catalog) -> Asked:
        return ask_rollback(deck, catalog, env, services, to, reason)

    return await _release(
        deck, "rollback", env, ask, rep, reason=reason, confirm=confirm, glass=glass, preplanned=preplanned
    )


async def _release(
    deck: Deck,
    action: str,
    env: str,
    ask: Callable[[Catalog], Asked],
    rep: Reporter,
    *,
    reason: str,
    confirm: Confirm,
    glass: BreakGlass | None,
    first: Callable[[], None] | None = None,
    preplanned: PrePlan | None = None,
) -> ReleaseResult | Request:
    """What refuses it before anything is locked (audited as an attempt), then the release: on a plan made
    ahead when one is current (``preplanned``: the one its caller's confirmation showed already)."""
    try:
        if first is not None:
            first()
        offline = await asyncio.to_thread(preflight, deck, env, action, glass, rep)
        catalog = await asyncio.to_thread(load_catalog, deck)
        asked = await asyncio.to_thread(ask, catalog)
    except (RefusedError, LockedError) as exc:
        await _refused(deck, action, env, reason, exc, glass)
        raise
    pre = preplanned or await asyncio.to_thread(preplan.current, deck, asked)
    return await change_pins(
        deck,
        asked,
        catalog,
        rep,
        confirm=confirm,
        glass=glass,
        offline=offline,
        preplanned=pre,
        confirmed_ahead=preplanned is not None,
    )


async def _refused(deck: Deck, action: str, env: str, reason: str, exc: OpsdeckError, glass: BreakGlass | None) -> None:
    """A release refused before it started is audited as an attempt."""
    await asyncio.to_thread(refuse, deck, action, env, exc, reason=reason)
