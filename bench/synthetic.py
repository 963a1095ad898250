"""A synthetic deck of 50 environments x 200 resources: render, filter, one plan, and peak memory.

Prints one JSON object. Runs in its own process so that its peak resident memory is its own.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from opsdeck.core.model import (
    AttributeChange,
    DeckState,
    EnvStatus,
    ImageRef,
    InstanceCounts,
    PlanResult,
    PlanSummary,
    ResourceChange,
)

ENVS, RESOURCES = 50, 200


def build(root: Path) -> Path:
    lines = [
        'name = "synthetic"',
        "",
        "[aws]",
        'region = "us-east-1"',
        'state_bucket = "synthetic"',
        "local = true",
        "",
        "[image]",
        'app = "web"',
        'recipe = "recipe.json"',
        "",
    ]
    (root / "recipe.json").write_text("{}")
    envs = []
    local = root / ".opsdeck"
    (local / "plans").mkdir(parents=True)
    for n in range(ENVS):
        name = f"env-{n:02d}"
        (root / "envs" / name).mkdir(parents=True)
        lines += [f"[environments.{name}]", f"protected = {'true' if n % 10 == 9 else 'false'}", ""]
        image = ImageRef(f"ami-{n:017x}", f"1.{n}.0")
        envs.append(
            EnvStatus(
                name=name,
                protected=n % 10 == 9,
                image=image,
                instances=InstanceCounts(3, 3, 3),
                plan=PlanSummary(RESOURCES // 2, RESOURCES // 4, RESOURCES // 4),
                drift="drifted" if n % 3 else "clean",
                plan_at=time.time(),
            )
        )
        resources = tuple(
            ResourceChange(
                f"module.svc{r // 20}.aws_instance.node[{r}]",
                "aws_instance",
                ("update",),
                ("instance_type", "tags"),
                (
                    AttributeChange("instance_type", "t3.small", "t3.large"),
                    AttributeChange("tags", {"env": name}, {"env": name, "owner": "team"}),
                ),
            )
            for r in range(RESOURCES)
        )
        planfile = local / "plans" / f"{name}.tfplan"
        planfile.write_bytes(b"synthetic")
        plan = PlanResult(name, PlanSummary(0, RESOURCES, 0), resources, planfile=str(planfile))
        (local / "plans" / f"{name}.json").write_text(json.dumps(plan.to_json()))
    (root / "opsdeck.toml").write_text("\n".join(lines))
    state = DeckState(deck="synthetic", environments=tuple(envs), cloud="reachable")
    (local / "snapshot.json").write_text(json.dumps(state.to_json()))
    return root


def peak_rss_mb() -> float:
    """VmHWM: this process's peak resident set. (ru_maxrss would count the parent's pages at fork.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(root: Path, runs: int) -> dict[str, float]:
    """CPU time (this process) of each step, and wall time: the CPU figure is the deck's own work,
    the wall figure adds Textual's frame pacing and the pilot's idle waits."""
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.observe.planning import stored_plan
    from opsdeck.core.observe.snapshot import load_snapshot
    from opsdeck.tui.app import OpsDeckApp
    from opsdeck.tui.widgets.details import PlanPane

    starts, renders, filters, plans, walls = [], [], [], [], []
    state = load_snapshot(root)
    assert state is not None
    for _ in range(runs):
        t0 = time.perf_counter()
        shown: list[float] = []
        app = OpsDeckApp(
            Deck.open(root), live=False, on_first_frame=lambda _, seen=shown: seen.append(time.perf_counter())
        )
        async with app.run_test(size=(120, 40)) as pilot:
            while not shown:
                await pilot.pause(0.001)
            starts.append(shown[0] - t0)
            await pilot.pause(0.3)
            c0, w0 = time.process_time(), time.perf_counter()
            app.show_state(state)  # the whole main screen, from a 50-environment snapshot
            await pilot.pause()
            renders.append(time.process_time() - c0)
            walls.append(time.perf_counter() - w0)
            c1 = time.process_time()
            app.table.set_filter("env-4")
            await pilot.pause()
            filters.append(time.process_time() - c1)
            assert app.table.row_count == 10
            c2 = time.process_time()
            app.main(PlanPane).show("env-41", stored_plan(app.deck, "env-41"))
            await pilot.pause()
            plans.append(time.process_time() - c2)
    return {
        "render_ms": statistics.median(renders) * 1000,
        "render_wall_ms": statistics.median(walls) * 1000,
        "filter_ms": statistics.median(filters) * 1000,
        "plan_ms": statistics.median(plans) * 1000,
        "start_to_first_frame_ms": statistics.median(starts) * 1000,
        "rss_mb": peak_rss_mb(),
        "environments": ENVS,
        "resources_per_plan": RESOURCES,
    }


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    root = build(Path(tempfile.mkdtemp(prefix="opsdeck-synthetic-")))
    print(json.dumps(asyncio.run(measure(root, runs))))
