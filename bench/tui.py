"""TUI benchmarks: start to first frame, UI stalls under load, and a synthetic 50 x 200 deck.

- first frame: a new process from spawn to the first frame showing the stored snapshot of the demo
  estate, against a bare Textual app (header, a table of four rows with the same columns, footer)
  doing the same; each reports the moment of its first frame itself, so teardown is not counted on
  either side.
- stall: the worst delay of the UI's event loop (a 10 ms timer) while a bake (every service) and a
  refresh of every plan run, after the live start's own status and drift load.
- synthetic: 50 environments x 5 services with 200-resource plans each: time to the first frame of
  the main screen, time to filter it, time to show one plan, and the process's peak resident memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _spawn_to_frame(argv: list[str]) -> float:
    """Seconds from spawning ``argv`` to its first frame (the child reports it; its exit is not counted)."""
    env = {**os.environ, "BENCH_SPAWNED": repr(time.time())}
    result = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    return float(result.stdout.strip().splitlines()[-1])


def first_frame(deck: Path, runs: int) -> dict[str, Any]:
    ours, bare = [], []
    for _ in range(runs):
        ours.append(_spawn_to_frame([sys.executable, "-m", "bench.frame", "opsdeck", str(deck)]))
        bare.append(_spawn_to_frame([sys.executable, "-m", "bench.frame", "bare"]))
    return {
        "opsdeck_s": statistics.median(ours),
        "bare_s": statistics.median(bare),
        "ratio": statistics.median(ours) / statistics.median(bare),
    }


async def _stall(deck: Path) -> float:
    from opsdeck import wiring
    from opsdeck.core.estate.deck import Deck
    from opsdeck.tui.app import OpsDeckApp

    wiring.install()  # the real tools for the decks a benchmark opens
    app = OpsDeckApp(Deck.open(deck), live=True)  # as a person opens it: the live state loads first
    worst = 0.0
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.deck_screen
        taken = screen.state.taken_at if screen.state else 0.0
        deadline = time.monotonic() + 120
        while (screen.state is None or screen.state.taken_at == taken) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        last = time.perf_counter()

        def beat() -> None:
            nonlocal last, worst
            now = time.perf_counter()
            worst = max(worst, now - last - 0.01)
            last = now

        app.set_interval(0.01, beat)
        screen.releases.action_bake()
        screen.environments.action_refresh()  # every environment's plan, and none is fresh: Terraform runs for each
        pane = screen.operations
        deadline = time.monotonic() + 300
        while len(pane.finished) < 2 and time.monotonic() < deadline:
            await pilot.pause(0.05)
        ends = [row.status_text for row in pane.rows.values()]
    if len(pane.finished) < 2 or any(end.startswith("✗") for end in ends):
        raise SystemExit(f"bench: the bake and the refresh under the stall timer did not both succeed: {ends}")
    return worst


def stall(deck: Path, runs: int) -> dict[str, Any]:
    samples = []
    for _ in range(max(1, runs // 2)):
        for plan in (deck / ".opsdeck" / "plans").glob("*.json"):
            plan.unlink()  # so the refresh really plans
        samples.append(asyncio.run(_stall(deck)))
    return {
        "worst_stall_ms": max(samples) * 1000,
        "median_worst_ms": statistics.median(samples) * 1000,
        "runs": len(samples),
    }


def synthetic(runs: int) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.synthetic", str(runs)], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return json.loads(result.stdout)


def measure(deck: Path, runs: int) -> dict[str, Any]:
    frame = first_frame(deck, runs)
    stalls = stall(deck, runs)
    synth = synthetic(runs)
    rows = [
        (
            "start to first frame (stored snapshot) vs bare Textual app",
            f"{frame['opsdeck_s'] * 1000:.0f} ms",
            f"{frame['bare_s'] * 1000:.0f} ms",
            f"{frame['ratio']:.2f}×",
            "≤ 1.3×",
        ),
        (
            f"worst UI stall while a bake (3 services) and a refresh (4 plans) run (worst of {stalls['runs']} runs)",
            f"{stalls['worst_stall_ms']:.0f} ms",
            "-",
            "-",
            "-",
        ),
        (
            f"50 × 5 × 200 synthetic, {synth['size']} ({synth['layout']}): render the main screen (CPU; wall)",
            f"{synth['render_ms']:.0f} ms; {synth['render_wall_ms']:.0f} ms",
            "-",
            "-",
            "< 100 ms",
        ),
        ("50 × 5 × 200 synthetic: filter (CPU)", f"{synth['filter_ms']:.0f} ms", "-", "-", "< 50 ms"),
        ("50 × 5 × 200 synthetic: show one 200-resource plan (CPU)", f"{synth['plan_ms']:.0f} ms", "-", "-", "-"),
        (
            f"50 × 5 × 200 synthetic, {synth['wide_size']} ({synth['wide_layout']}): render (CPU; wall); filter (CPU)",
            f"{synth['wide_render_ms']:.0f} ms; {synth['wide_render_wall_ms']:.0f} ms; "
            f"{synth['wide_filter_ms']:.0f} ms",
            "-",
            "-",
            "-",
        ),
        (
            "50 × 5 × 200 synthetic: app start to first frame, in process",
            f"{synth['start_to_first_frame_ms']:.0f} ms",
            "-",
            "-",
            "-",
        ),
        ("50 × 5 × 200 synthetic: peak resident memory", f"{synth['rss_mb']:.0f} MB", "-", "-", "< 150 MB"),
    ]
    return {"first_frame": frame, "stall": stalls, "synthetic": synth, "rows": rows}
