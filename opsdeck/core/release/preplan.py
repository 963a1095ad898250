"""Pre-made plans: what a change key would apply, planned while the deck is idle, so the key opens its
confirmation (or files its request) at once and `y` applies exactly that plan.

For an environment's next promotion, its deploy (where it takes one) and its rollback, the pre-planner
resolves what would move (core/release/asked.py: the very resolution a release makes), plans it with the
pins as the release would write them (variable files outside the working tree: no pin file is touched, no
lock is taken), runs the policy gate on it and keeps it with its inputs: the environment's files (its pin
files among them) and modules, its state's ETag, and the images it moves. It is used only while all of
them are as they were, and made again only when one changed: an idle, unchanged deck runs no Terraform
for it. A promotion into another account or region may need its images shared or copied first: done as
promote does it (idempotent), and audited.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import pin_rel, pin_spec, read_pin, with_pin
from opsdeck.core.events import Reporter
from opsdeck.core.model import ImageRef, PlanResult
from opsdeck.core.plans import planning
from opsdeck.core.release import bluegreen, gates, strategies
from opsdeck.core.release.asked import Asked, ask_deploy, ask_promote, ask_rollback
from opsdeck.core.release.distribute import make_usable
from opsdeck.core.release.facts import read_facts
from opsdeck.core.release.images import Catalog, load_catalog
from opsdeck.core.release.results import image_ref
from opsdeck.core.safety import audit
from opsdeck.core.safety.confirm import Preview, ServiceChange
from opsdeck.core.team.requests import needs_approval
from opsdeck.errors import OpsdeckError, RefusedError


@dataclass
class PrePlan:
    """A pre-made plan and what it depends on."""

    action: str
    env: str
    inputs: str  # the digest of everything it depends on (see ``inputs``)
    originals: dict[str, str]  # service -> the image asked for
    usable: dict[str, str]  # service -> the id pinned (a copy in the environment's region)
    texts: dict[str, str]  # the pin files as the release writes them
    plan: dict[str, Any]  # PlanResult.to_json(); its planfile beside this record
    note: str = ""  # what the confirmation says of how the images reach the instances
    refused: str = ""  # the policy gate's refusal, said at once instead of a confirmation
    created_at: float = field(default_factory=time.time)

    def result(self) -> PlanResult:
        return PlanResult.from_json(self.plan)


def folder(deck: Deck) -> Path:
    path = deck.local_dir / "preplans"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _record(deck: Deck, env: str, action: str) -> Path:
    return folder(deck) / f"{env}.{action}.json"


def inputs(deck: Deck, env: str, originals: dict[str, str], usable: dict[str, str]) -> str:
    """What a plan of ``env`` with these images depends on: its files and modules and its state's ETag
    (planning.inputs_key), and the images."""
    key = planning.inputs_key(deck, env)
    return hashlib.sha256(json.dumps([key, originals, usable], sort_keys=True).encode()).hexdigest()


def stored(deck: Deck, env: str, action: str) -> PrePlan | None:
    try:
        pre = PrePlan(**json.loads(_record(deck, env, action).read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return pre if Path(pre.result().planfile).is_file() else None


def current(deck: Deck, asked: Asked) -> PrePlan | None:
    """The pre-made plan of exactly this release, if nothing it depends on moved since (blocking)."""
    return stored(deck, asked.env, asked.action) if _fresh(deck, asked) else None


def forget(deck: Deck, env: str) -> None:
    """Drop every pre-made plan of ``env`` (a release applied one, or the environment changed)."""
    for path in folder(deck).glob(f"{env}.*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def texts_for(deck: Deck, env: str, images: dict[str, Any]) -> dict[str, str]:
    """The pin files of ``env`` with ``images`` written (an image id, or a blue/green pin's JSON)."""
    texts: dict[str, str] = {}
    for service, value in images.items():
        rel = pin_rel(deck, env, service)
        now = texts.get(rel) or ((deck.root / rel).read_text(encoding="utf-8") if (deck.root / rel).is_file() else None)
        texts[rel] = with_pin(now, pin_spec(deck.config, service), value)
    return texts


async def make(deck: Deck, asked: Asked, catalog: Catalog, rep: Reporter) -> PrePlan | None:
    """Plan ``asked`` ahead and keep it (None when it moves nothing now: the key will say so itself)."""
    env = asked.env
    originals = {t.service: t.image.id for t in asked.targets}
    usable = await _usable(deck, asked, catalog, rep)
    moving = {s: i for s, i in usable.items() if await asyncio.to_thread(read_pin, deck, env, s) != i}
    if not moving:
        return None
    if deck.env(env).blue_green:
        pins = await asyncio.to_thread(bluegreen.color_pins, deck, env, list(moving))
        values: dict[str, Any] = {s: pins[s].staged(i).to_json() for s, i in moving.items()}
    else:
        values = dict(moving)
    texts = texts_for(deck, env, values)
    key = await asyncio.to_thread(inputs, deck, env, originals, usable)
    plan, refused = await _plan(deck, env, asked.action, texts, rep)
    note = _note(deck, env, plan, list(moving))
    pre = PrePlan(asked.action, env, key, originals, usable, texts, plan.to_json(), note, refused)
    _record(deck, env, asked.action).write_text(json.dumps(asdict(pre)), encoding="utf-8")
    return pre


async def _usable(deck: Deck, asked: Asked, catalog: Catalog, rep: Reporter) -> dict[str, str]:
    """Each target's id where ``asked.env`` runs: a promotion's images copied and shared as promote does
    (idempotent), audited."""
    found = {}
    for target in asked.targets:
        if target.pin_id is not None:
            found[target.service] = target.pin_id
            continue
        made = await make_usable(deck, catalog, target.image, asked.env, rep)
        found[target.service] = made.usable_id
        if made.copied or made.shared:
            who = await asyncio.to_thread(audit.who, deck, asked.env)
            audit.append(deck, action="distribute", environment=asked.env, result="ok", who=who, **made.to_json())
    return found


async def _plan(deck: Deck, env: str, action: str, texts: dict[str, str], rep: Reporter) -> tuple[PlanResult, str]:
    """The plan of ``texts`` (kept beside the record) and the policy gate's refusal, if any."""
    vars_dir = folder(deck) / f"{env}.{action}.vars"
    vars_dir.mkdir(exist_ok=True)
    files = []
    for n, text in enumerate(texts.values()):
        files.append(vars_dir / f"{n}.tfvars.json")
        files[-1].write_text(text, encoding="utf-8")
    planfile = folder(deck) / f"{env}.{action}.tfplan"
    scratch = planning.scratch_planfile(deck, env, "preplan")
    try:
        plan = await planning.plan_into(deck, env, scratch, rep, var_files=tuple(files))
        scratch.replace(planfile)
    finally:
        scratch.unlink(missing_ok=True)
        for file in files:
            file.unlink(missing_ok=True)
    plan = PlanResult(plan.environment, plan.summary, plan.resources, plan.created_at, "", str(planfile), plan.pins)
    try:
        await gates.policy(deck, env, plan, rep)
    except OpsdeckError as exc:
        return plan, str(exc)
    return plan, ""


def _note(deck: Deck, env: str, plan: PlanResult, services: list[str]) -> str:
    """How the images would reach the instances of ``services``, as the confirmation says it."""
    if deck.env(env).blue_green:
        return ""
    facts = read_facts(
        planning.shown_of(deck, plan) or {}, deck.config.conventions.service_tag, deck.config.service_names
    )
    where = strategies.Where(env, deck.env(env), deck.tools.env(env).cloud, Reporter("preplan", env))
    chosen = strategies.for_plan(where, services, facts)
    return "; ".join(n for n in (s.note() for s in chosen.values()) if n)


def _asks(deck: Deck, env: str, catalog: Catalog, rep: Reporter) -> list[Asked]:
    """What the deck's change keys would release into ``env`` now, for every service (p: its promotion from
    its source, u: its deploy where it takes one, r: its rollback); what would be refused has no plan."""

    settings = deck.env(env)
    asks: list[Any] = []
    if settings.promote_from is not None:
        asks.append(
            lambda: ask_promote(deck, catalog, settings.promote_from or "", env, None, "", in_glass=False, rep=rep)
        )
    else:
        asks.append(lambda: ask_deploy(deck, catalog, env, None, ""))
    if not settings.blue_green:  # a blue/green rollback is its switch back, prepared after each release
        asks.append(lambda: ask_rollback(deck, catalog, env, None, None, ""))
    found = []
    for ask in asks:
        try:
            found.append(ask())
        except (RefusedError, OpsdeckError):
            continue
    return found


async def ahead(deck: Deck, rep: Reporter, *, envs: list[str] | None = None, busy: Any = None) -> list[PrePlan]:
    """Make the plans the change keys would need that are missing or no longer current, one environment
    at a time; stop as soon as ``busy()`` says an operation runs. The plans made."""

    catalog = await asyncio.to_thread(load_catalog, deck)
    made: list[PrePlan] = []
    for env in envs or deck.config.env_names:
        for asked in await asyncio.to_thread(_asks, deck, env, catalog, rep):
            if busy is not None and busy():
                return made
            if await asyncio.to_thread(_fresh, deck, asked):
                continue
            pre = await make(deck, asked, catalog, rep.child(env=env))
            if pre is not None:
                made.append(pre)
    return made


def _fresh(deck: Deck, asked: Asked) -> bool:
    """A plan of exactly this release is kept, and nothing it depends on moved (no Terraform run)."""
    pre = stored(deck, asked.env, asked.action)
    if pre is None or pre.originals != {t.service: t.image.id for t in asked.targets}:
        return False
    return inputs(deck, asked.env, pre.originals, pre.usable) == pre.inputs


@dataclass
class Ready:
    """What a change key shows at once from a current pre-made plan: its confirmation, or its refusal."""

    pre: PrePlan
    preview: Preview
    request: bool  # the environment takes approvals: the key files a request for this plan


def ready_for(
    deck: Deck,
    action: str,
    env: str,
    *,
    src: str = "",
    services: list[str] | None = None,
    reason: str = "",
    in_glass: bool = False,
) -> Ready | None:
    """The current pre-made plan of exactly what a key asks (``action`` into ``env``; a promote from
    ``src``), with the confirmation it opens; None when there is none, or the release would be refused
    (the key then runs as without one, and says why). Blocking: a catalog read, no Terraform."""

    if not _record(deck, env, action).is_file():
        return None  # nothing kept: no catalog read
    catalog = load_catalog(deck)
    try:
        if action == "promote":
            asked = ask_promote(deck, catalog, src, env, services, reason, in_glass=in_glass, rep=Reporter(action, env))
        elif action == "deploy":
            asked = ask_deploy(deck, catalog, env, services, reason)
        else:
            asked = ask_rollback(deck, catalog, env, services, None, reason)
    except OpsdeckError:
        return None
    pre = current(deck, asked)
    if pre is None:
        return None
    versions = {t.service: t.image.version for t in asked.targets}
    changes = []
    for service, usable in pre.usable.items():
        now = read_pin(deck, env, service)
        if now != usable:
            changes.append(ServiceChange(service, image_ref(catalog, now), ImageRef(usable, versions[service])))
    preview = Preview(action, env, deck.env(env).confirmation, tuple(changes), pre.result(), reason, pre.note)
    return Ready(pre, preview, needs_approval(deck, env, in_glass))


def ready_keys(deck: Deck) -> dict[str, list[str]]:
    """Environment -> the actions whose pre-made plan is current (blocking: a catalog read, no Terraform)."""

    catalog = load_catalog(deck)
    found: dict[str, list[str]] = {}
    for env in deck.config.env_names:
        for asked in _asks(deck, env, catalog, Reporter("preplan", env)):
            pre = stored(deck, env, asked.action) if _fresh(deck, asked) else None
            if pre is not None and not pre.refused:
                found.setdefault(env, []).append(asked.action)
    return found
