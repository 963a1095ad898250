"""Start an opsdeck command with -v and SIGKILL it the moment it prints that a given phase starts."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.helpers import ROOT

STARTED = "  … "  # how the CLI's Printer starts a phase-start line: "  … OP ENV: PHASE"


@dataclass(frozen=True)
class Phase:
    """The ``nth`` start of a phase named ``name`` in an operation's -v lines (a release plans and applies
    twice in blue/green: the stage, then the switch). ``terraform``: the kill waits, after the phase
    started, until a Terraform process runs in the deck (killed during the apply, not before it began)."""

    name: str
    nth: int = 1
    terraform: bool = False

    @classmethod
    def parse(cls, text: str) -> Phase:
        text, at, _ = text.partition("@terraform")
        name, _, nth = text.partition("#")
        return cls(name, int(nth) if nth else 1, bool(at))

    def __str__(self) -> str:
        text = self.name if self.nth == 1 else f"{self.name}#{self.nth}"
        return text + ("@terraform" if self.terraform else "")

    def shown(self) -> str:
        """As the table shows it."""
        text = self.name if self.nth == 1 else f"{self.name} ({_ordinal(self.nth)})"
        return text + (", Terraform running" if self.terraform else "")


def _ordinal(n: int) -> str:
    return {2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def phase_of(line: str) -> str | None:
    """The phase a phase-start line names ("  … promote dev: plan switch" -> "plan switch"), else None."""
    if not line.startswith(STARTED):
        return None
    _label, sep, phase = line[len(STARTED) :].rstrip("\n").rpartition(": ")
    return phase if sep else None


def phases_in(lines: list[str]) -> list[Phase]:
    """Every phase start of ``lines`` in order, each numbered by how often its name came before."""
    seen: dict[str, int] = {}
    found = []
    for line in lines:
        name = phase_of(line)
        if name is not None:
            seen[name] = seen.get(name, 0) + 1
            found.append(Phase(name, seen[name]))
    return found


@dataclass
class Run:
    """One run of an operation: killed at ``target`` (or run to its end when ``target`` is None)."""

    argv: list[str]
    target: Phase | None
    killed: bool = False
    terraform: str = ""  # the Terraform process that ran when it was killed (a kill during Terraform)
    returncode: int | None = None
    stdout: str = ""
    stderr: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def reached(self) -> list[Phase]:
        return phases_in(self.stderr)

    def after_kill(self) -> str:
        """The phases that started after the wanted one before the kill landed (the kill is not instant)."""
        if self.target is None:
            return ""
        names = [str(p) for p in self.reached]
        later = names[names.index(str(self.target)) + 1 :] if str(self.target) in names else []
        return ", ".join(later)

    def tail(self, n: int = 30) -> str:
        return "".join(self.stderr[-n:]) + self.stdout[-2000:]


def run(deck: Path, args: list[str], target: Phase | None, timeout: float = 600.0) -> Run:
    """Run ``opsdeck --deck DECK ARGS -v``; with ``target``, SIGKILL it as soon as that phase starts.
    Only opsdeck is killed: the tools it started run in sessions of their own and finish."""
    argv = [sys.executable, "-m", "opsdeck", "--deck", str(deck), *args, "-v"]
    result = Run(argv, target)
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()
    out: list[str] = []
    readers = [
        threading.Thread(target=_lines, args=(proc.stderr, lines), daemon=True),
        threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else ""), daemon=True),
    ]
    for reader in readers:
        reader.start()
    seen: dict[str, int] = {}
    deadline = started + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
        except queue.Empty:
            if proc.poll() is not None and (not readers[0].is_alive() or time.monotonic() >= deadline):
                break  # ended (a child holding its stderr open is not waited for past the deadline)
            if time.monotonic() >= deadline:
                _stop(proc)
                raise AssertionError(f"{' '.join(args)} still ran after {timeout:.0f}s:\n{result.tail()}") from None
            continue
        if line is None:  # stderr closed
            break
        result.stderr.append(line)
        name = phase_of(line)
        if name is None or target is None or result.killed:
            continue
        seen[name] = seen.get(name, 0) + 1
        if name == target.name and seen[name] == target.nth:
            if target.terraform:
                result.terraform = _terraform_started(deck, proc, deadline)
            os.kill(proc.pid, signal.SIGKILL)
            result.killed = True
            # What it printed before the kill landed is still in the pipe; a child that inherited the
            # pipe (and outlives opsdeck) must not keep this waiting.
            deadline = min(deadline, time.monotonic() + 10)
    result.returncode = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    for reader in readers:
        reader.join(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    result.stdout = "".join(out)
    result.seconds = time.monotonic() - started
    return result


def _terraform_started(deck: Path, proc: subprocess.Popen[str], deadline: float) -> str:
    """Wait until Terraform runs in the deck (or opsdeck ended); the process found."""
    from tests.crash.world import terraform_running

    while proc.poll() is None and time.monotonic() < deadline:
        running = terraform_running(deck)
        if running:
            return running[0]
        time.sleep(0.01)
    return ""


def _lines(stream: IO[str] | None, into: queue.Queue[str | None]) -> None:
    if stream is not None:
        for line in stream:
            into.put(line)
    into.put(None)


def _stop(proc: subprocess.Popen[str]) -> None:
    """A run past its deadline: its stacks (SIGUSR1), then killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGUSR1)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
