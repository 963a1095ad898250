"""After an interrupted operation: say what it left, and release its locks once nothing still runs."""

from __future__ import annotations

import asyncio
import socket
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
    read_pins,
    with_pin,
)
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.identity import operator
from opsdeck.core.ledger.remote import check, publish
from opsdeck.core.plans import planning
from opsdeck.core.release import bluegreen
from opsdeck.core.release.execute import mark_executed
from opsdeck.core.safety import audit, locks
from opsdeck.core.safety.audit import anchor as audit_anchor
from opsdeck.core.safety.locks import LockRecord
from opsdeck.core.team.requests import load
from opsdeck.errors import LockedError, OpsdeckError, RefusedError
from opsdeck.files import write_atomic


@dataclass(frozen=True)
class Interrupted:
    """An interrupted operation and what it left in the working tree."""

    record: LockRecord
    dirty: tuple[str, ...]  # pin files with uncommitted changes
    pins_now: dict[str, str]  # service -> what the working tree pins

    @property
    def pin_dirty(self) -> bool:
        return bool(self.dirty)

    def advice(self) -> str:
        detail = self.record.detail or {}
        if not self.dirty:
            return "the pin files are as committed"
        pins = ", ".join(f"{s} {i}" for s, i in self.pins_now.items())
        return (
            f"{', '.join(self.dirty)} holds {pins} uncommitted (the {self.record.operation} was moving "
            f"{detail.get('services', '?')} to {detail.get('to', '?')}): run `opsdeck plan` to see what the "
            "cloud runs, then commit the pins or restore them with `git checkout -- <pin file>`"
        )


def inspect(deck: Deck, env: str) -> Interrupted | None:
    record, alive = locks.holder(deck, env)
    if record is None:
        return None
    if alive:
        raise LockedError(f"{env} is locked by a running operation: {record.describe()}")
    dirty = []
    for rel in pin_files(deck, env):
        try:
            if deck.tools.git.is_dirty(rel):
                dirty.append(rel)
        except OpsdeckError:
            continue
    try:
        pins_now = read_pins(deck, env)
    except OpsdeckError:
        pins_now = {}
    return Interrupted(record, tuple(dirty), pins_now)


def _close_orphans(deck: Deck, env: str, lock_id: str, running: int | None = None) -> int:
    """Close 'started' audit records of ``env`` that never got their end: they were interrupted (all but
    ``running``, the unlock's own)."""
    records = audit.read(deck)
    closed = {r.get("started") for r in records if r.get("started") is not None} | {running}
    orphans = [
        r for r in records if r.get("environment") == env and r.get("result") == "started" and r["seq"] not in closed
    ]
    for rec in orphans:
        audit.append(
            deck,
            action=rec["action"],
            environment=env,
            result="interrupted",
            started=rec["seq"],
            error=f"the process ended before the operation did (lock {lock_id})",
            who=audit.who(deck, env),
        )
    return len(orphans)


async def unlock(deck: Deck, env: str, rep: Reporter) -> Interrupted | None:
    """Release the lock an interrupted operation left (and Terraform's, if it left one too)."""
    found = inspect(deck, env)
    if found is None:
        return None
    record = found.record
    here = record.host == socket.gethostname()
    dirs = [deck.env_dir(env), *deck.copy_dirs(env)]  # and its copies in other regions
    if here and record.root and Path(record.root) != deck.root:  # an engine worker's own clone on this machine
        dirs.append(Path(record.root) / deck.env(env).path)
    running = [p for d in dirs for p in deck.tools.processes().processes_in(d) if "terraform" in p[1]]
    if running:
        pid, cmd = running[0]
        raise RefusedError(f"terraform is still running in {env} (pid {pid}: {cmd[:60]}); wait for it to finish")
    await planning.ensure_init(deck, env, rep)
    probe = planning.scratch_planfile(deck, env, "unlock")
    terraform = deck.tools.env(env).terraform
    try:
        # A refresh-only plan that takes the state lock: the way to find a lock Terraform left behind.
        await terraform.plan(probe, refresh_only=True, lock=True)
    except LockedError as exc:
        lock_id = str(exc).rsplit("lock id ", 1)[-1].rstrip(")")
        if record.worker and not here:  # its Terraform may still run on the worker's machine
            raise RefusedError(
                f"Terraform's state lock {lock_id} is still held in {env}, and the interrupted {record.operation} "
                f"ran on worker {record.worker}: check that no terraform runs on {record.host}, then run "
                f"`opsdeck unlock {env}` there"
            ) from None
        rep.log(f"releasing Terraform's state lock {lock_id} left in {env}", "notice")
        await terraform.force_unlock(lock_id)
    finally:
        probe.unlink(missing_ok=True)
    run = audit.AuditedRun(deck, "unlock", env, {"interrupted": record.operation, "lock_id": record.id}).open()
    reconciled: str | None = None
    try:
        if deck.env(env).blue_green:
            reconciled = await settle_colors(deck, env, rep, found, run.hash)
        elif found.dirty or _moved_pins(found.record):  # a release: others write no pins
            reconciled = await settle_pins(deck, env, rep, found, run.hash)
    except OpsdeckError as exc:  # the lock still goes: the next plan shows what is left
        rep.log(f"could not settle {env}'s pins with what the cloud runs ({exc}); check `opsdeck plan {env}`", "error")
    try:
        await _push_left(deck, rep)
    except OpsdeckError as exc:
        rep.log(f"the ledger's commits are not pushed ({exc}): the next change pushes them", "warning")
    left = _left_behind(env, found.record)
    if left:
        rep.log(left, "notice")
    cleared = await asyncio.to_thread(locks.clear_stale, deck, env)
    closed = _close_orphans(deck, env, found.record.id, run.started.get("seq"))
    notes: dict[str, Any] = {"reconciled": reconciled} if reconciled else {}
    run.close("ok", closed_records=closed, **notes)
    return found if cleared else None


def _moved_pins(record: LockRecord) -> bool:
    """Whether the interrupted operation was moving pins (a release or an approved request's execute)."""
    detail = record.detail or {}
    return bool(detail.get("to") or detail.get("request"))


def _left_behind(env: str, record: LockRecord) -> str:
    """What an interrupted operation that writes no pins may have left half done, and the command that
    finishes it ("" when there is nothing to say)."""
    region = (record.detail or {}).get("region", "REGION")
    return {
        "nuke-rebuild": f"the interrupted nuke-rebuild may have left {env} torn down part way: "
        f"`opsdeck nuke-rebuild {env}` destroys what is left and builds it again from code",
        "sandbox-expire": f"the interrupted sandbox expire may have left {env} torn down part way: "
        "`opsdeck sandbox expire --yes` finishes it",
        "recover": f"the interrupted recover may have left a partial copy of {env} in {region} (`opsdeck orphans` "
        f"lists it): `opsdeck recover {env} --region {region}` finishes it, `--destroy` removes it",
        "recover-destroy": f"the interrupted removal of the copy of {env} in {region} may be part done: "
        f"`opsdeck recover {env} --region {region} --destroy` finishes it",
    }.get(record.operation, "")


async def _push_left(deck: Deck, rep: Reporter) -> None:
    """The commits this clone has that the team's remote lacks (a release killed between its commit and
    its push): pushed, so the team's ledger has the release the cloud runs."""
    ledger = await asyncio.to_thread(check, deck, fetch=False)
    if ledger.shared and ledger.ahead:
        pushed, _ = await asyncio.to_thread(publish, deck, rep)
        if pushed:
            rep.log(f"pushed {ledger.ahead} commits {ledger.ref} did not have yet", "notice")


async def settle_pins(deck: Deck, env: str, rep: Reporter, found: Interrupted, anchor: str) -> str | None:
    """After an interrupted change, make the ledger say what the cloud runs. Terraform was left to finish
    (only opsdeck was killed), so its state holds the pins of one of: the working tree (written, then
    applied), the interrupted operation's target (applied from another clone: an engine worker's), or
    the last commit (never applied). The first whose plan changes nothing is what runs: committed (with the
    operator's trailers and this unlock's audit record) when it is not the last commit, the pin files put
    back when it is. When none plans clean (drift besides), nothing is changed, and that is said. What
    happened: "committed", "restored", or None."""
    git = deck.tools.git
    files = pin_files(deck, env)
    head = {rel: await asyncio.to_thread(git.text_at, "HEAD", rel) for rel in files}
    now = {rel: (deck.root / rel).read_text(encoding="utf-8") for rel in found.dirty}
    target = _target_texts(deck, env, found.record, head)
    if target is not None and all(head.get(rel) == text for rel, text in target.items()):
        target = None  # committed already (killed before its push): the committed pins are the candidate
    committed = {rel: text for rel in found.dirty if (text := head.get(rel)) is not None}
    candidates = [("the working tree's", now), ("its target's", target), ("the committed", committed)]
    tried: list[dict[str, str]] = []
    for label, texts in candidates:
        if texts is None or (label != "the committed" and not texts):
            continue
        if texts in tried:  # the working tree holds the target's pins: planned once
            continue
        tried.append(texts)
        if not await _plans_nothing(deck, env, rep, texts):
            continue
        if label == "the committed":
            for rel in found.dirty:
                await asyncio.to_thread(git.restore, rel)
            if found.dirty:
                rep.log(f"{env}: the interrupted {found.record.operation} was never applied; pins put back", "notice")
            return "restored" if found.dirty else None
        for rel, text in texts.items():
            write_atomic(deck.root / rel, text)
        executed = await asyncio.to_thread(_request_executed, deck, found.record)
        who = await asyncio.to_thread(operator, deck)
        pins = ", ".join(f"{s} {i}" for s, i in read_pins(deck, env).items())
        what = found.record.operation
        text = f"settle {env} after an interrupted {what}: the cloud runs these pins\n\n{pins}\n\n"
        if executed:
            text += f"request: {(found.record.detail or {}).get('request')} (executed: its pins are what runs)\n\n"
        await asyncio.to_thread(
            git.commit, [*texts, *executed], f"{text}{who.trailers()}\n{audit_anchor(deck, anchor)}\n"
        )
        await asyncio.to_thread(publish, deck, rep)
        rep.log(f"{env}: the interrupted {what} was applied; {label} pins are committed ({pins})", "notice")
        return "committed"
    rep.log(f"{env}: no pins plan clean (drift besides the interrupted change?): " + found.advice(), "warning")
    return None


async def settle_colors(deck: Deck, env: str, rep: Reporter, found: Interrupted, anchor: str) -> str | None:
    """``settle_pins`` for a blue/green environment. Traffic decides first: when a service's listener rule
    moved, the ledger takes the live colors the cloud's rules have (core/release/bluegreen.py
    reconcile_traffic). When none moved, the release was killed while it staged the idle colors: the
    committed pins are put back when they plan clean (the stage never applied); when it did apply, the
    staged pins are committed, each staged color a warm standby whose window ends now, so the standby
    expiry scales it down (the ledger says what runs, and it does not run for ever)."""
    who = await asyncio.to_thread(operator, deck)
    trailers = f"{who.trailers()}\n{audit_anchor(deck, anchor)}"
    moved = await asyncio.to_thread(bluegreen.traffic_moves, deck, env)
    if moved or not found.dirty:
        sha = await bluegreen.reconcile_traffic(deck, env, rep, trailers=trailers)
        if sha is None:
            return None
        await asyncio.to_thread(publish, deck, rep)
        return "committed"
    git = deck.tools.git
    head = {rel: await asyncio.to_thread(git.text_at, "HEAD", rel) for rel in found.dirty}
    if await _plans_nothing(deck, env, rep, {rel: text for rel, text in head.items() if text is not None}):
        for rel in found.dirty:
            await asyncio.to_thread(git.restore, rel)
        rep.log(
            f"{env}: traffic never moved and the interrupted {found.record.operation} applied nothing; pins put back",
            "notice",
        )
        return "restored"
    # Killed while it staged: the working tree holds the staged pins. Killed as its switch started (before
    # Terraform moved a rule): it holds the switched ones, so their live colors go back to the rules'.
    staged = _windows_ended(deck, env, found.dirty)
    if not await _plans_nothing(deck, env, rep, staged):
        staged = _windows_ended(deck, env, found.dirty, live=await asyncio.to_thread(_cloud_live, deck, env))
        if not await _plans_nothing(deck, env, rep, staged):
            rep.log(f"{env}: neither the committed nor the staged pins plan clean: " + found.advice(), "warning")
            return None
    for rel, text in staged.items():
        write_atomic(deck.root / rel, text)
    what = found.record.operation
    pins = "\n".join(f"{s}: {_colors(p)}" for s, p in bluegreen.color_pins(deck, env).items())
    text = f"settle {env} after an interrupted {what}: the cloud runs these pins (traffic never moved)\n\n{pins}"
    await asyncio.to_thread(git.commit, list(staged), f"{text}\n\n{trailers}\n")
    await asyncio.to_thread(publish, deck, rep)
    rep.log(f"{env}: the interrupted {what} was applied, traffic never moved; its pins are committed", "notice")
    return "committed"


def _colors(pin: ColorPin) -> str:
    """A blue/green pin in a line: "live blue (ami-1), green ami-2 warm until 2026-12-04T10:00:00Z"."""
    idle = f"{pin.idle} {pin.idle_image or 'empty'} {pin.standby}"
    if pin.standby == "warm" and pin.warm_until is not None:
        idle += " until " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pin.warm_until))
    return f"live {pin.live} ({pin.live_image}), {idle}"


def _windows_ended(
    deck: Deck, env: str, files: tuple[str, ...], live: dict[str, Color] | None = None
) -> dict[str, str]:
    """The working tree's pin files with each staged color (a warm standby without a window) given a
    window that ends now. With ``live`` (service -> the color its listener rule forwards to), a pin whose
    live color is another is switched back first: its other color, staged, becomes that standby."""
    now = float(int(time.time()))
    texts = {rel: (deck.root / rel).read_text(encoding="utf-8") for rel in files}
    for service in deck.config.service_names:
        rel, spec = pin_rel(deck, env, service), pin_spec(deck.config, service)
        pin = color_pin_from_text(texts[rel], spec, rel) if rel in texts else None
        if pin is None:
            continue
        color = (live or {}).get(service, pin.live)
        if color != pin.live and pin.image(color) is not None:
            pin = replace(pin, live=color, standby="warm", warm_until=now)
        elif pin.standby == "warm" and pin.warm_until is None and pin.idle_image is not None:
            pin = replace(pin, warm_until=now)
        else:
            continue
        texts[rel] = with_pin(texts[rel], spec, pin.to_json())
    return texts


def _cloud_live(deck: Deck, env: str) -> dict[str, Color]:
    """Each blue/green service's live color as its listener rule has it (blocking)."""
    return {s: t.live for s, t in bluegreen.read_traffic(deck, env).items() if t.live is not None}


def _request_executed(deck: Deck, record: LockRecord) -> list[str]:
    """An approved request whose execute was interrupted after its apply: marked executed, so running it
    again says so instead of finding it stale (its marker, to commit with its pins; none for a release)."""
    request_id = (record.detail or {}).get("request")
    if not request_id:
        return []
    return [mark_executed(deck, load(deck, str(request_id), check_stale=False), settled=record.id)]


def _target_texts(deck: Deck, env: str, record: LockRecord, head: dict[str, str | None]) -> dict[str, str] | None:
    """The pin files as the interrupted operation would have committed them (from its lock's detail: the
    images of a release, or an approved request's pins); None when the lock does not say."""
    detail = record.detail or {}
    if detail.get("request"):
        try:
            return dict(load(deck, str(detail["request"]), check_stale=False).pins) or None
        except OpsdeckError:
            return None
    services, images = str(detail.get("services", "")).split(","), str(detail.get("to", "")).split(",")
    if not detail.get("to") or len(services) != len(images):
        return None
    texts: dict[str, str] = {}
    for service, image in zip(services, images, strict=True):
        if service not in deck.config.service_names or not image.startswith("ami-"):
            return None
        rel = pin_rel(deck, env, service)
        texts[rel] = with_pin(texts.get(rel, head.get(rel)), pin_spec(deck.config, service), image)
    return texts


async def _plans_nothing(deck: Deck, env: str, rep: Reporter, texts: dict[str, str]) -> bool:
    """Whether a plan with these pin file texts (over the working tree's, as variable files written outside
    it; none: the working tree as it is) changes nothing."""
    scratch = planning.plan_dir(deck) / f"{env}.settle"
    scratch.mkdir(exist_ok=True)
    files = []
    for n, text in enumerate(texts.values()):
        files.append(scratch / f"{n}.tfvars.json")
        files[-1].write_text(text, encoding="utf-8")
    planfile = planning.scratch_planfile(deck, env, "settle")
    try:
        plan = await planning.plan_into(deck, env, planfile, rep, var_files=tuple(files))
    finally:
        planfile.unlink(missing_ok=True)
        for file in files:
            file.unlink(missing_ok=True)
    return not plan.summary.has_changes
