"""One cell of the matrix: an operation killed as one of its phases starts, then every check of recovery.

The checks, in order (each failure is recorded, the cell goes on so the next cell finds the deck usable):
- status names the interruption: the lock "interrupted" with the operation (none when the phase starts
  before the lock is taken, or the operation takes none);
- `opsdeck unlock ENV --yes` recovers (tried again while Terraform still runs);
- the kill landed: opsdeck ended by SIGKILL, not on its own;
- then: no lock, a clean working tree, each service's committed pin its before or its after (never a
  half), `audit verify` passes, and (unless the operation tears the environment down, when this holds
  after the run again) `opsdeck plan ENV` changes nothing and every desired instance runs its pinned image;
- the same operation succeeds (or refuses cleanly saying it was done already), and then the same holds,
  with the pins it asked for;
- nothing exists that did not before and that nothing in the deck answers for (`opsdeck orphans` included),
  checked after unlock (before the run again can adopt or remove what the kill left) and after the run again.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.crash import kill
from tests.crash.kill import Phase
from tests.crash.operations import Operation, Prepared
from tests.crash.world import (
    Thing,
    cloud_traffic,
    dirty,
    git,
    inventory,
    live,
    pins_at,
    status,
    terraform_running,
    unaccounted,
    wait_for,
)
from tests.helpers import opsdeck


@dataclass
class Cell:
    """What one cell found."""

    operation: str
    phase: str
    lock: str = ""  # the lock status showed after the kill
    reached: str = ""  # phases that started after the wanted one before the kill landed
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)  # how long each step of the cell took

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps[name] = round(self.steps.get(name, 0.0) + time.monotonic() - started, 1)

    @property
    def recovered(self) -> bool:
        return not self.failures

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
        return ok

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "phase": self.phase,
            "recovered": self.recovered,
            "lock": self.lock,
            "reached": self.reached,
            "failures": self.failures,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
            "steps": self.steps,
        }


def run_cell(deck: Path, op: Operation, phase: Phase, after_kill: Callable[[Path], str] | None = None) -> Cell:
    """Kill ``op`` as ``phase`` starts, recover, and check (see the module's docstring). ``after_kill`` makes
    what the kill left into what a kill at a moment no phase line marks would leave (its note is kept)."""
    cell = Cell(op.name, str(phase))
    started = time.monotonic()
    with cell.step("heal"):
        healed = heal(deck)
    if healed:
        cell.notes.append("healed before: " + "; ".join(healed))
    with cell.step("prepare"):
        prepared = op.prepare(deck)
        before = pins_at(deck, op.env) if op.env else {}
    if prepared.note:
        cell.notes.append(prepared.note)
    with cell.step("inventory"):
        things = inventory(deck)
    with cell.step("run to the kill"):
        result = kill.run(deck, prepared.args, phase)
    cell.reached = result.after_kill()
    if phase.terraform:
        cell.check(bool(result.terraform), f"no Terraform ran in {phase.name} before opsdeck ended")
    if not cell.check(result.killed, f"never reached {phase} (exit {result.returncode}): {result.tail(8)}"):
        cell.seconds = time.monotonic() - started
        return cell
    # The kill is sent as the phase's line is read: an operation that had already ended (finished, or failed
    # on its own) was not killed, and what follows would check a run that was never interrupted.
    cell.check(result.returncode == -signal.SIGKILL, f"it ended before the kill landed (exit {result.returncode})")
    if after_kill is not None:
        wait_for(lambda: not terraform_running(deck), "Terraform to finish")
        cell.notes.append(after_kill(deck))
    with cell.step("status"):
        _interruption(deck, op, phase, cell)
    if op.env is not None and cell.lock.startswith("interrupted"):
        with cell.step("unlock"):
            _unlock(deck, op.env, cell)
    with cell.step("checks"):
        wait_for(lambda: not terraform_running(deck), "Terraform to finish")
        _settled(deck, op, cell, before, prepared, again=False)
    # What the kill left must be found before the run again: that run adopts a half-built copy, or deletes
    # a half-deleted orphan, and would hide what `orphans` did not find.
    with cell.step("orphans"):
        _unaccounted(deck, things, cell, "after unlock")
    with cell.step("run again"):
        _run_again(deck, op, prepared, cell)
    with cell.step("checks"):
        _settled(deck, op, cell, before, prepared, again=True)
    with cell.step("orphans"):
        _unaccounted(deck, things, cell, "after the run again")
    if op.cleanup is not None:
        with cell.step("cleanup"):
            op.cleanup(deck)
    cell.seconds = time.monotonic() - started
    return cell


def _interruption(deck: Path, op: Operation, phase: Phase, cell: Cell) -> None:
    """Right after the kill (Terraform may still run: unlock is the one that waits for it)."""
    lock = status(deck)[op.env]["lock"] if op.env else None
    cell.lock = f"{lock['state']} ({lock['operation']})" if lock else "none"
    if op.lock_expected(phase):
        cell.check(
            lock is not None and lock["state"] == "interrupted" and lock["operation"] == op.action,
            f"status does not name the interruption (lock {lock})",
        )
    else:
        cell.check(lock is None, f"a lock before the operation took one: {lock}")


def _unaccounted(deck: Path, before: set[Thing], cell: Cell, when: str) -> None:
    left = unaccounted(deck, before)
    found = ", ".join(f"{t.kind} {t.id} ({t.place})" for t in left[:5])
    cell.check(not left, f"{when}: orphaned without `orphans` finding it: {found}")


def _unlock(deck: Path, env: str, cell: Cell) -> None:
    said: list[str] = []

    def unlocked() -> bool:
        result = opsdeck("unlock", env, "--yes", deck=deck, timeout=600)
        said.append(result.stdout + result.stderr)
        return result.returncode == 0 or "terraform is still running" not in result.stderr

    wait_for(unlocked, f"unlock {env}", timeout=300, every=0.5)
    cell.check(f"released {env}'s lock" in said[-1], f"unlock did not release the lock: {said[-1][-500:]}")
    running = terraform_running(deck)
    cell.check(not running, f"unlock released the lock while Terraform still ran: {'; '.join(running)}")
    wait_for(lambda: not terraform_running(deck), "Terraform to finish")
    for line in said[-1].splitlines():
        if line.startswith("    "):  # its notices: how it settled the pins
            cell.notes.append("unlock: " + line.strip())


def _settled(deck: Path, op: Operation, cell: Cell, before: dict[str, Any], prepared: Prepared, *, again: bool) -> None:
    """The checks after unlock (``again``: after the run again, where the pins must be those asked for,
    and code and cloud are compared only for an operation that tears its environment down)."""
    when = "after the run again" if again else "after unlock"
    env = op.env
    left = dirty(deck)
    cell.check(not left, f"{when}: uncommitted changes: {', '.join(left[:4])}")
    unpushed = git(deck, "rev-list", "--count", "@{u}..HEAD").strip()
    if again or cell.lock.startswith("interrupted"):  # an operation without a lock pushes when run again
        cell.check(unpushed == "0", f"{when}: {unpushed} commits not pushed to the team's remote")
    elif unpushed != "0":
        cell.notes.append(f"{unpushed} commits not pushed until it ran again")
    verified = opsdeck("audit", "verify", deck=deck)
    cell.check(verified.returncode == 0, f"{when}: audit verify: {verified.stdout[-300:]}{verified.stderr[-300:]}")
    if env is None:
        return
    row = status(deck)[env]
    cell.check(row["lock"] is None, f"{when}: still locked ({row['lock']})")
    if not prepared.after:
        return
    committed = pins_at(deck, env)
    for service, was in before.items():
        now, wanted = live(committed[service]), prepared.after.get(service, live(was))
        if again:
            cell.check(now == wanted, f"{when}: {service} pins {now}, not {wanted} as asked")
        else:
            cell.check(now in (live(was), wanted), f"{when}: {service} pins {now}: neither before nor after (half)")
    if op.blue_green:
        traffic = cloud_traffic(deck, env)
        for service, pin in committed.items():
            cloud = traffic.get(service)
            cell.check(
                cloud == pin["live"], f"{when}: {service}'s traffic is on {cloud}, the ledger says {pin['live']}"
            )
    if again != op.rebuilds:
        if op.rebuilds:  # torn down part way: Terraform's state and the cloud agree (nothing left over)
            drift = opsdeck("drift", env, "--json", deck=deck, timeout=600)
            cell.check(drift.returncode == 0, f"{when}: drift {env} exits {drift.returncode}: {drift.stderr[-300:]}")
        return
    plan = opsdeck("plan", env, "--json", deck=deck, timeout=600)
    cell.check(plan.returncode == 0, f"{when}: plan {env} exits {plan.returncode}: {_brief(plan.stdout, plan.stderr)}")
    if again:
        row = status(deck)[env]
    for service in row["services"]:
        counts = service["instances"]
        cell.check(
            counts["running"] == counts["desired"] == counts["on_pinned_image"] > 0,
            f"{when}: {service['name']} instances {counts}",
        )


def _brief(out: str, err: str) -> str:
    try:
        data = json.loads(out)
        return f"+{data.get('add')} ~{data.get('change')} -{data.get('destroy')} " + " ".join(
            r.get("address", "") for r in data.get("resources", [])[:4]
        )
    except ValueError:
        return (err or out).strip()[-300:]


def _run_again(deck: Path, op: Operation, prepared: Prepared, cell: Cell) -> None:
    again = opsdeck(*(prepared.again or prepared.args), deck=deck, timeout=900)
    if again.returncode == 0:
        return
    said = again.stderr.strip().splitlines()[-1] if again.stderr.strip() else ""
    if any(text in said for text in prepared.done_already):
        cell.notes.append(f"run again: {said.removeprefix('opsdeck: ')}")
        return
    cell.check(False, f"run again exits {again.returncode}: {said or again.stdout[-300:]}")


def heal(deck: Path) -> list[str]:
    """Put the deck back in order after a cell that did not recover (so the next cell is its own): an
    interrupted lock released, uncommitted changes discarded. Returns what it did."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.safety import locks

    done = []
    wait_for(lambda: not terraform_running(deck), "terraform to finish")
    opened = Deck.open(deck)
    for env in opened.config.env_names:
        if locks.holder(opened, env)[0] is not None:
            opsdeck("unlock", env, "--yes", deck=deck, timeout=600)
            done.append(f"unlocked {env}")
    left = dirty(deck)
    if left:
        git(deck, "checkout", "--", ".")
        git(deck, "clean", "-fdq", "--", "envs", "requests", "freezes")
        done.append("discarded " + ", ".join(left))
    return done
