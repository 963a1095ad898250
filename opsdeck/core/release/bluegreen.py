"""Blue/green releases: the idle color takes the image, passes the gates, then traffic switches to it.

A service in a blue/green environment runs two colors behind the environment's load balancer. Its
pin (core/estate/pins.ColorPin) says which color is live, the image each runs, and whether the idle
one is a warm standby. A release here is:

1. **stage**: the new image on the idle color, brought to full size (the plan adds that color's
   template and group; the live color is not touched);
2. **health gate**: every instance of the new color runs its image and is healthy in its target group,
   within the environment's ``health_timeout``;
3. **smoke gate**: the environment's smoke commands, run against the new color (its preview host on
   the environment's load balancer) with a timeout, their output on the operation's timeline;
4. **switch**: the pin's live color flips and a plan *targeted at the service's listener rules* is
   verified to change nothing else, policy-checked and applied; the cloud is then read back to confirm
   the live rule forwards to the new color. The color that was live stays warm for ``standby_minutes``.

A gate that fails leaves traffic where it was: the switch never ran. Rolling back inside the window is
step 4 alone (no instance launched, no group created), and opsdeck prepares that plan right after a
release, so an instant rollback applies a plan that is already made and checked.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import (
    Color,
    ColorPin,
    color_pin_from_text,
    pin_files,
    pin_rel,
    pin_spec,
    read_color_pin,
    with_pin,
    write_color_pins,
)
from opsdeck.core.events import Reporter
from opsdeck.core.model import PlanResult
from opsdeck.core.plans import planning
from opsdeck.core.release import fleet, gates, rollout
from opsdeck.core.types.cloud import Credentials, Rule, TargetGroup
from opsdeck.errors import OpsdeckError, RefusedError

COLOR_TAG = fleet.COLOR_TAG
TRAFFIC_TAG = "traffic"
RULE_TYPE = "aws_lb_listener_rule"


# -- pins ---------------------------------------------------------------------------------------


def color_pins(deck: Deck, env: str, services: list[str] | None = None) -> dict[str, ColorPin]:
    """Each service's blue/green pin in ``env``; a clear error for a pin that is a plain image id."""
    pins = {}
    for service in services or deck.config.service_names:
        pin = read_color_pin(deck, env, service)
        if pin is None:
            raise OpsdeckError(
                f"{env} rolls out blue-green, but {service}'s pin is a plain image id: "
                'write it as {"live": "blue", "blue": "ami-...", "green": null}'
            )
        pins[service] = pin
    return pins


def pins_in_texts(deck: Deck, env: str, texts: dict[str, str], services: list[str]) -> dict[str, ColorPin]:
    """Each service's blue/green pin as pin file texts (deck-relative path -> text) hold it."""
    pins = {}
    for service in services:
        rel = pin_rel(deck, env, service)
        pin = color_pin_from_text(texts.get(rel), pin_spec(deck.config, service), rel)
        if pin is None:
            raise OpsdeckError(f"{rel}: {service}'s pin is not a blue/green pin")
        pins[service] = pin
    return pins


# -- what the cloud says ------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceTraffic:
    """One service's load balancing as the cloud has it."""

    service: str
    target_groups: dict[str, TargetGroup]  # color -> its target group
    live: Color | None  # the color the live rule forwards to
    preview: Color | None
    endpoint: str = ""  # the load balancer's DNS name
    host: str = ""
    preview_host: str = ""


def read_traffic(deck: Deck, env: str, credentials: Credentials | None = None) -> dict[str, ServiceTraffic]:
    """Every blue/green service of ``env``: its target groups (with their targets' health) and the color
    each of its listener rules forwards to (blocking: run in a thread)."""
    conventions = deck.config.conventions
    cloud = deck.tools.env(env, credentials).cloud
    groups = cloud.target_groups(conventions.env_tag, env)
    rules = cloud.listener_rules(conventions.env_tag, env)
    by_arn = {g.arn: g for g in groups}
    found: dict[str, ServiceTraffic] = {}
    for service in deck.config.service_names:
        mine = {g.tags.get(COLOR_TAG, ""): g for g in groups if g.tags.get(conventions.service_tag) == service}
        mine.pop("", None)
        if not mine:
            continue
        live = preview = None
        host = preview_host = dns = ""
        for rule in rules:
            target = by_arn.get(rule.target_group or "")
            if target is None or target.tags.get(conventions.service_tag) != service:
                continue
            color = _color(target.tags.get(COLOR_TAG))
            dns = dns or rule.dns_name
            if _role(rule) == "live":
                live, host = color, ",".join(rule.hosts)
            else:
                preview, preview_host = color, ",".join(rule.hosts)
        found[service] = ServiceTraffic(service, mine, live, preview, dns, host, preview_host)
    return found


def _color(value: str | None) -> Color | None:
    return "blue" if value == "blue" else "green" if value == "green" else None


def _role(rule: Rule) -> str:
    if rule.tags.get(TRAFFIC_TAG):
        return rule.tags[TRAFFIC_TAG]
    return "preview" if any("-preview." in h for h in rule.hosts) else "live"


# -- the switch ---------------------------------------------------------------------------------


def check_switch_plan(plan: PlanResult) -> None:
    """A switch changes where listener rules forward, and nothing else."""
    for change in plan.resources:
        if change.type != RULE_TYPE or change.actions != ("update",):
            raise RefusedError(
                f"the traffic switch of {plan.environment} would {'/'.join(change.actions)} {change.address}, "
                "not only move listener rules: nothing applied (plan and apply the environment first)"
            )


async def plan_switch(
    deck: Deck,
    env: str,
    switched: dict[str, ColorPin],
    rep: Reporter,
    *,
    credentials: Credentials | None = None,
) -> PlanResult:
    """Write the switched pins and plan the switch: the whole environment (so the policy gate sees all
    of it, as with any plan), checked to move listener rules and nothing else."""
    with rep.phase("plan switch"):
        await asyncio.to_thread(write_color_pins, deck, env, switched)
        planfile = planning.scratch_planfile(deck, env, "switch")
        plan = await planning.plan_into(deck, env, planfile, rep, credentials=credentials)
        try:
            check_switch_plan(plan)
        except RefusedError:
            planfile.unlink(missing_ok=True)
            raise
        rep.log(f"switch plan: {plan.summary.change} listener rules move, nothing else")
    return plan


async def plan_switch_ahead(
    deck: Deck,
    env: str,
    switched: dict[str, ColorPin],
    rep: Reporter,
    *,
    credentials: Credentials | None = None,
) -> PlanResult:
    """The switch planned before it may run (beside the gates): the switched pins as variable files outside
    the working tree, the plan checked to move listener rules and nothing else. It does not refresh: the
    stage's plan read the whole environment back seconds ago and its apply, under this release's lock,
    wrote what changed, so the state is the cloud (a refresh would read every resource again: the largest
    share of a blue/green promote). Only the listener rules may change, and the apply reads them back."""
    with rep.phase("plan switch"):
        folder = planning.plan_dir(deck) / f"{env}.switch-vars"
        files = switched_files(deck, env, switched, folder)
        planfile = planning.scratch_planfile(deck, env, "switch")
        try:
            plan = await planning.plan_into(
                deck, env, planfile, rep, credentials=credentials, var_files=tuple(files), refresh=False
            )
            check_switch_plan(plan)
        except BaseException:
            planfile.unlink(missing_ok=True)
            raise
        finally:
            for file in files:
                file.unlink(missing_ok=True)
        rep.log(f"switch plan: {plan.summary.change} listener rules move, nothing else")
    return plan


async def apply_switch(
    deck: Deck,
    env: str,
    switched: dict[str, ColorPin],
    plan: PlanResult,
    rep: Reporter,
    *,
    credentials: Credentials | None = None,
) -> None:
    """Apply a switch plan (after the policy gate) and read the cloud back: each service's live rule must
    forward to its new live color."""
    if plan.summary.has_changes:
        await rollout.apply_plan(deck, env, plan, rep, credentials)
    with rep.phase("verify traffic"):
        traffic = await asyncio.to_thread(read_traffic, deck, env, credentials)
        wrong = [
            f"{s} forwards to {traffic[s].live if s in traffic else 'nothing'}, not {p.live}"
            for s, p in switched.items()
            if s not in traffic or traffic[s].live != p.live
        ]
        if wrong:
            raise OpsdeckError(f"after the switch of {env}: {'; '.join(wrong)}")
        rep.log("traffic: " + ", ".join(f"{s} → {p.live} ({p.live_image})" for s, p in switched.items()))


# -- the switch back, made ahead ----------------------------------------------------------------


def _prepared_paths(deck: Deck, env: str) -> tuple[Path, Path]:
    folder = planning.plan_dir(deck)
    return folder / f"{env}.switch-back.tfplan", folder / f"{env}.switch-back.json"


def forget_prepared(deck: Deck, env: str) -> None:
    for path in _prepared_paths(deck, env):
        path.unlink(missing_ok=True)
    planning.drop_scratch(deck, env, "switch-back")


async def prepare_switch_back(
    deck: Deck, env: str, services: list[str], rep: Reporter, *, credentials: Credentials | None = None
) -> bool:
    """After a release of ``services`` has been reported: plan and policy-check the switch of each back to
    its warm standby (what rolling that release back is), so a rollback shows its plan at once and applies
    it. The switched pins go to Terraform as variable files outside the working tree, so it takes no lock
    and touches no pin file. Valid while nothing the plan depends on moves (its inputs key). Like the switch
    it follows, it does not refresh: it runs right after the release's own switch apply wrote the state,
    and a refresh now would see no more than that apply did (drift later in the window is not seen by a
    plan made now either way; the rollback checks its target's health and reads its moves back)."""
    forget_prepared(deck, env)
    pins = await asyncio.to_thread(color_pins, deck, env, services)
    warm = {s: p for s, p in pins.items() if p.warm()}
    if not warm:
        return False
    back = {s: p.switched(deck.env(env).standby_minutes) for s, p in warm.items()}
    key = await asyncio.to_thread(planning.inputs_key, deck, env)
    planfile, meta = _prepared_paths(deck, env)
    with rep.phase("prepare switch back"):
        files = switched_files(deck, env, back, planfile.parent / f"{env}.switch-back-vars")
        tmp = planning.scratch_planfile(deck, env, "switch-back")
        try:
            plan = await planning.plan_into(
                deck, env, tmp, rep, credentials=credentials, var_files=tuple(files), refresh=False
            )
            check_switch_plan(plan)
            await gates.policy(deck, env, plan, rep, break_glass=credentials is not None)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            for file in files:
                file.unlink(missing_ok=True)
        tmp.replace(planfile)
        record = {
            "key": key,
            "created_at": time.time(),
            "pins": {s: p.live for s, p in back.items()},
            "images": {s: p.live_image for s, p in back.items()},
            "summary": {"add": plan.summary.add, "change": plan.summary.change, "destroy": plan.summary.destroy},
            "plan": plan.to_json(),
        }
        meta.write_text(json.dumps(record), encoding="utf-8")
        rep.log("rollback prepared: " + ", ".join(f"{s} → {p.live}" for s, p in back.items()))
    return True


def switched_files(deck: Deck, env: str, pins: dict[str, ColorPin], folder: Path) -> list[Path]:
    """The pin files of ``env`` as they would be with ``pins`` written, as variable files in ``folder``
    (outside the working tree): a plan of them is a plan of those pins."""
    texts: dict[str, str] = {}
    for service, pin in pins.items():
        rel = pin_rel(deck, env, service)
        current = texts.get(rel) or (deck.root / rel).read_text(encoding="utf-8")
        texts[rel] = with_pin(current, pin_spec(deck.config, service), pin.to_json())
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for n, text in enumerate(texts.values()):
        files.append(folder / f"{n}.tfvars.json")
        files[-1].write_text(text, encoding="utf-8")
    return files


async def prepared_switch_back(deck: Deck, env: str, wanted: dict[str, ColorPin]) -> PlanResult | None:
    """The prepared switch back, if it is still valid and switches exactly to ``wanted``."""
    planfile, meta = _prepared_paths(deck, env)
    try:
        record = json.loads(meta.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not planfile.is_file() or record.get("pins") != {s: p.live for s, p in wanted.items()}:
        return None
    if record.get("images") != {s: p.live_image for s, p in wanted.items()}:
        return None
    key = await asyncio.to_thread(planning.inputs_key, deck, env)
    if key != record.get("key"):
        forget_prepared(deck, env)
        return None
    plan = PlanResult.from_json(record["plan"])
    return PlanResult(plan.environment, plan.summary, plan.resources, plan.created_at, key, str(planfile), plan.pins)


# -- standby ------------------------------------------------------------------------------------


def expired(pins: dict[str, ColorPin], now: float | None = None) -> dict[str, ColorPin]:
    """The services whose warm standby's window has ended."""
    now = time.time() if now is None else now
    return {
        s: p
        for s, p in pins.items()
        if p.standby == "warm" and p.idle_image is not None and p.warm_until is not None and p.warm_until <= now
    }


def traffic_json(pin: ColorPin, now: float | None = None) -> dict[str, Any]:
    """What `status --json` says of a service's traffic."""
    standby = None
    if pin.standby == "warm" and pin.idle_image is not None:
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pin.warm_until)) if pin.warm_until is not None else None
        standby = {"color": pin.idle, "image": pin.idle_image, "until": until, "warm": pin.warm(now)}
    return {"live": pin.live, "standby": standby}


# -- after an interruption ----------------------------------------------------------------------


def traffic_moves(deck: Deck, env: str) -> dict[str, Color]:
    """The services whose live listener rule forwards to another color than the last commit's pin says,
    each with the color it forwards to (blocking: run in a thread)."""
    services = deck.config.service_names
    traffic = read_traffic(deck, env)
    head = {rel: deck.tools.git.text_at("HEAD", rel) for rel in pin_files(deck, env)}
    committed = pins_in_texts(deck, env, {k: v for k, v in head.items() if v is not None}, services)
    cloud_live = {s: live for s in services if s in traffic and (live := traffic[s].live) is not None}
    return {s: c for s, c in cloud_live.items() if c != committed[s].live}


async def reconcile_traffic(deck: Deck, env: str, rep: Reporter, *, trailers: str = "") -> str | None:
    """After an interrupted release in ``env`` (called by unlock): make the ledger say which color is
    live as the cloud's listener rules have it. Traffic is always on exactly one color per service (a
    rule forwards to one target group). If no service's traffic moved, the pin files go back to the
    last commit (the next plan shows what is left of the stage); if some did, the pins left in the
    working tree are committed with the cloud's live colors (``trailers`` end the commit's message).
    Returns the commit, if one was made."""
    git = deck.tools.git
    files = pin_files(deck, env)
    moved = await asyncio.to_thread(traffic_moves, deck, env)
    dirty = [rel for rel in files if await asyncio.to_thread(git.is_dirty, rel)]
    if not moved:
        for rel in dirty:
            await asyncio.to_thread(git.restore, rel)
        if dirty:
            rep.log(f"traffic in {env} never moved: pins put back to the last commit ({', '.join(dirty)})", "notice")
        return None
    current = await asyncio.to_thread(color_pins, deck, env)
    fixed = {s: replace(p, live=moved[s]) for s, p in current.items() if s in moved and p.live != moved[s]}
    if fixed:
        await asyncio.to_thread(write_color_pins, deck, env, fixed)
    head = await asyncio.to_thread(lambda: {rel: git.text_at("HEAD", rel) for rel in files})
    committed = pins_in_texts(deck, env, {k: v for k, v in head.items() if v is not None}, list(moved))
    lines = [f"{s}: live {c} (was {committed[s].live} in the ledger)" for s, c in moved.items()]
    text = f"reconcile {env} after an interrupted release: traffic as the cloud has it\n\n" + "\n".join(lines)
    sha = await asyncio.to_thread(git.commit, files, text + (f"\n\n{trailers}\n" if trailers else ""))
    rep.log(f"ledger reconciled with the cloud's traffic in {env}: " + "; ".join(lines), "notice")
    return sha
