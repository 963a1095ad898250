"""The engine's cost: one plan dispatched to a worker against the same plan in-process, and a refresh of
the demo's environments on one worker, on two, and in-process (no broker), in the same run.

    python -m bench.engine [--runs N] [--deck DIR] [--env ENV]

Starts its own redis-server on a free 127.0.0.1 port and `opsdeck worker` processes, each on its own
clone of the deck's team remote, and stops them at the end. The dispatched plan includes what the
in-process one does not do: sending the job, the worker's fetch of the ledger, shipping the plan
file through the state bucket (upload, download, SHA-256 check) and storing it here. Results go to
bench/results/engine.json (the lead adds them to BENCHMARKS.md); nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import RESULTS, ROOT, ensure_demo, interleave, machine, median, timed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _git(deck: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(deck), *args], capture_output=True, text=True, check=True).stdout.strip()


class Stack:
    """redis-server and workers for the bench (stopped by ``close``)."""

    def __init__(self, deck: Path) -> None:
        self.deck = deck
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.home = Path(tempfile.mkdtemp(prefix="opsdeck-bench-engine-"))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def env(self) -> dict[str, str]:
        return {**os.environ, "OPSDECK_BROKER": self.url}

    def start_redis(self) -> None:
        self.procs["redis"] = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait(
            lambda: subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).returncode == 0
        )

    def start_worker(self, name: str) -> None:
        clone = self.home / name
        subprocess.run(["git", "clone", "-q", _git(self.deck, "remote", "get-url", "origin"), str(clone)], check=True)
        for key in ("user.name", "user.email"):
            _git(clone, "config", key, _git(self.deck, "config", key))
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - the worker's, closed with the process
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "opsdeck", "--deck", str(clone), "worker", "--name", name],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait(lambda: name in self.workers())

    def stop_worker(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        self._wait(lambda: name not in self.workers())

    def workers(self) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-m", "opsdeck", "--deck", str(self.deck), "engine", "status", "--json"],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
        ).stdout
        return [w["name"].split("@")[0] for w in json.loads(out or "{}").get("workers", [])]

    @staticmethod
    def _wait(predicate: Any, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise SystemExit("bench: the engine did not come up")
            time.sleep(0.2)

    def close(self) -> None:
        for name in [n for n in self.procs if n != "redis"] + ["redis"]:
            proc = self.procs.pop(name, None)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(self.home, ignore_errors=True)


def bench_plan(stack: Stack, env: str, runs: int) -> dict[str, Any]:
    """One plan (reuse off) in this process against the same plan sent to a worker and shipped back."""
    from opsdeck import wiring
    from opsdeck.core.engine.dispatch import Engine
    from opsdeck.core.engine.remote import plan_on_worker
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter
    from opsdeck.core.plans import planning

    wiring.install()  # the real tools for the decks a benchmark opens
    deck = Deck.open(stack.deck)
    engine = Engine(deck, stack.url)
    head = deck.tools.git.head()
    asyncio.run(planning.plan(deck, env, Reporter("plan", env), reuse=False))  # warm: init done, credentials held
    asyncio.run(plan_on_worker(engine, deck, env, Reporter("plan", env), reuse=False, head=head))

    def here() -> float:
        t0 = time.perf_counter()
        asyncio.run(planning.plan(deck, env, Reporter("plan", env), reuse=False))
        return time.perf_counter() - t0

    def there() -> float:
        t0 = time.perf_counter()
        asyncio.run(plan_on_worker(engine, deck, env, Reporter("plan", env), reuse=False, head=head))
        return time.perf_counter() - t0

    try:
        mine, theirs = interleave(runs, there, here)
    finally:
        engine.close()
    return {
        "worker_s": median(mine),
        "in_process_s": median(theirs),
        "ratio": median(mine) / median(theirs),
        "samples": {"worker": mine, "in_process": theirs},
        "runs": runs,
        "command": f"planning.plan({env}, reuse=False) here  vs  plan_on_worker({env}) (sent, planned, shipped back)",
    }


def bench_refresh(stack: Stack, runs: int) -> dict[str, Any]:
    """`opsdeck refresh --fresh` (every plan and drift check of the demo): in-process, one worker, two."""
    plain = {k: v for k, v in os.environ.items() if k != "OPSDECK_BROKER"}
    argv = [sys.executable, "-m", "opsdeck", "--deck", str(stack.deck), "refresh", "--fresh", "--json"]

    def in_process() -> float:
        return timed(argv, env=plain).wall

    def on_workers() -> float:
        return timed(argv, env=stack.env()).wall

    results: dict[str, Any] = {}
    results["in_process_s"] = median(interleave(runs, in_process)[0])
    results["two_workers_s"] = median(interleave(runs, on_workers)[0])
    stack.stop_worker("w2")
    results["one_worker_s"] = median(interleave(runs, on_workers)[0])
    results["two_vs_one"] = results["two_workers_s"] / results["one_worker_s"]
    results["runs"] = runs
    results["command"] = "opsdeck refresh --fresh --json (4 plans + 4 drift checks), OPSDECK_BROKER unset / set"
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--deck", type=Path, default=None, help="an applied demo deck (default: build one)")
    parser.add_argument("--env", default="sandbox", help="the environment the plan figure plans")
    args = parser.parse_args(argv)
    if shutil.which("redis-server") is None:
        raise SystemExit("bench: redis-server is not on PATH (scripts/bootstrap.sh installs it)")
    deck = ensure_demo(args.deck)
    stack = Stack(deck)
    try:
        stack.start_redis()
        stack.start_worker("w1")
        plan = bench_plan(stack, args.env, args.runs)
        stack.start_worker("w2")
        refresh = bench_refresh(stack, max(1, args.runs // 2))
    finally:
        stack.close()
        if args.deck is None:
            subprocess.run([sys.executable, "-m", "opsdeck", "cloud", "stop"], capture_output=True, check=False)
    result = {"machine": machine(), "engine": {"plan": plan, "refresh": refresh}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engine.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["engine"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
