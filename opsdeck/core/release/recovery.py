"""After an interrupted operation: say what it left, and release its locks once nothing still runs."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import pin_files, read_pins
from opsdeck.core.events import Reporter
from opsdeck.core.plans import planning
from opsdeck.core.release import bluegreen
from opsdeck.core.safety import audit, locks
from opsdeck.core.safety.locks import LockRecord
from opsdeck.errors import LockedError, OpsdeckError, RefusedError


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


def _close_orphans(deck: Deck, env: str, lock_id: str) -> int:
    """Close 'started' audit records of ``env`` that never got their end: they were interrupted."""
    records = audit.read(deck)
    closed = {r.get("started") for r in records if r.get("started") is not None}
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
    dirs = [deck.env_dir(env)]
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
    reconciled = None
    if deck.env(env).blue_green:
        try:
            reconciled = await bluegreen.reconcile_traffic(deck, env, rep)
        except OpsdeckError as exc:  # the lock still goes: the next plan shows what is left
            rep.log(f"could not reconcile {env}'s live colors with the cloud ({exc}); check `opsdeck status`", "error")
    cleared = await asyncio.to_thread(locks.clear_stale, deck, env)
    closed = _close_orphans(deck, env, found.record.id)
    audit.append(
        deck,
        action="unlock",
        environment=env,
        result="ok",
        interrupted=found.record.operation,
        lock_id=found.record.id,
        closed_records=closed,
        who=audit.who(deck, env),
        **({"reconciled": reconciled} if reconciled else {}),
    )
    return found if cleared else None
