"""A synthetic estate of 50 environments x 5 services, 200 resources per plan: render, filter, one
plan, and peak memory.

The environments are spread over four accounts and three regions, each runs the five services (its
instances are their sum), and one environment in five promotes from the one before it (so lag shows).
Nothing talks to a cloud: the deck is its opsdeck.toml, the stored snapshot and the stored plans.

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
    Lag,
    PlanResult,
    PlanSummary,
    ResourceChange,
    ServiceStatus,
)

ENVS, SERVICES, RESOURCES = 50, 5, 200
ACCOUNTS = ("111111111111", "222222222222", "333333333333", "444444444444")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
SIZE = (120, 40)  # the terminal the figures are measured at (the size this bench always used)
WIDE = (160, 40)  # wide enough for a column per service (5 services need 145 columns)


def build(root: Path) -> Path:
    services = [f"svc{s}" for s in range(SERVICES)]
    lines = [
        'name = "synthetic"',
        "",
        "[aws]",
        f'region = "{REGIONS[0]}"',
        "local = true",
        "",
        "[build]",
        f'account = "{ACCOUNTS[0]}"',
        "",
        "[conventions]",
        'pin_file = "images.auto.tfvars.json"',
        'pin_variable = "images.{service}"',
        "",
    ]
    (root / "packer").mkdir()
    for name in services:
        (root / "packer" / f"{name}.json").write_text("{}")
        lines += [f"[services.{name}]", f'recipe = "packer/{name}.json"', ""]
    envs = []
    local = root / ".opsdeck"
    (local / "plans").mkdir(parents=True)
    now = time.time()
    for n in range(ENVS):
        name = f"env-{n:02d}"
        account, region = ACCOUNTS[n % len(ACCOUNTS)], REGIONS[n % len(REGIONS)]
        protected = n % 10 == 9
        sandbox = n % 10 == 0
        source = f"env-{n - 1:02d}" if n % 5 else None
        (root / "envs" / name).mkdir(parents=True)
        pins = {s: f"ami-{n:012x}{i:05x}" for i, s in enumerate(services)}
        (root / "envs" / name / "images.auto.tfvars.json").write_text(
            json.dumps({"images": pins}, indent=2, sort_keys=True) + "\n"
        )
        lines += [
            f"[environments.{name}]",
            f'account = "{account}"',
            f'region = "{region}"',
            f"protected = {'true' if protected else 'false'}",
            f"sandbox = {'true' if sandbox else 'false'}",
            *([f'promote_from = "{source}"'] if source else []),
            "",
        ]
        rows = []
        for i, service in enumerate(services):
            behind = (n + i) % 3 if source else 0
            lag = (
                Lag(
                    source=source,
                    source_image=ImageRef(f"ami-{n - 1:012x}{i:05x}", f"1.{n - 1}.{i}"),
                    behind=behind,
                    since=now - 3600 * behind if behind else None,
                    in_sync=behind == 0,
                )
                if source
                else None
            )
            rows.append(ServiceStatus(service, ImageRef(pins[service], f"1.{n}.{i}"), InstanceCounts(3, 3, 3), lag))
        total = InstanceCounts()
        for row in rows:
            total = total + row.instances
        envs.append(
            EnvStatus(
                name=name,
                sandbox=sandbox,
                protected=protected,
                promote_from=source,
                account=account,
                region=region,
                services=tuple(rows),
                instances=total,
                plan=PlanSummary(RESOURCES // 2, RESOURCES // 4, RESOURCES // 4),
                drift="drifted" if n % 3 else "clean",
                plan_at=now,
                drift_at=now,
            )
        )
        resources = tuple(
            ResourceChange(
                f"module.{services[r * SERVICES // RESOURCES]}.aws_instance.node[{r}]",
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
        plan = PlanResult(name, PlanSummary(0, RESOURCES, 0), resources, planfile=str(planfile), pins=pins)
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


async def _one(root: Path, state: DeckState, size: tuple[int, int]) -> dict[str, float | str]:
    """One app at ``size``: start to first frame, then render, filter and one plan (CPU; render also wall)."""
    from opsdeck import wiring
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.plans.planning import stored_plan
    from opsdeck.tui.app import OpsDeckApp
    from opsdeck.tui.widgets.details import PlanPane

    t0 = time.perf_counter()
    shown: list[float] = []
    wiring.install()  # the real tools for the decks a benchmark opens
    app = OpsDeckApp(Deck.open(root), live=False, on_first_frame=lambda _, seen=shown: seen.append(time.perf_counter()))
    async with app.run_test(size=size) as pilot:
        while not shown:
            await pilot.pause(0.001)
        start = shown[0] - t0
        await pilot.pause(0.3)
        c0, w0 = time.process_time(), time.perf_counter()
        app.deck_screen.state = state  # the whole main screen, from a 50-environment snapshot
        await pilot.pause()
        render, wall = time.process_time() - c0, time.perf_counter() - w0
        keys = [key for key, _, _ in app.deck_screen.table.column_plan()]
        layout = "column per service" if any(k.startswith("svc:") for k in keys) else "one summary cell"
        c1 = time.process_time()
        app.deck_screen.table.set_filter("env-4")
        await pilot.pause()
        filtered = time.process_time() - c1
        assert app.deck_screen.table.row_count == 10, app.deck_screen.table.row_count
        c2 = time.process_time()
        app.deck_screen.query_one(PlanPane).show("env-41", stored_plan(app.deck, "env-41"))
        await pilot.pause()
        plan = time.process_time() - c2
    return {"start": start, "render": render, "wall": wall, "filter": filtered, "plan": plan, "layout": layout}


async def measure(root: Path, runs: int) -> dict[str, float | str]:
    """CPU time (this process) of each step, and wall time: the CPU figure is the deck's own work,
    the wall figure adds Textual's frame pacing and the pilot's idle waits. Measured at 120 x 40 (one
    summary cell for the five services), and the render and filter again at 160 x 40 (a column each)."""
    from opsdeck.core.observe.snapshot import load_snapshot

    state = load_snapshot(root)
    assert state is not None
    samples, wide = [], []
    for _ in range(runs):
        samples.append(await _one(root, state, SIZE))
        wide.append(await _one(root, state, WIDE))

    def ms(rows: list[dict[str, float | str]], key: str) -> float:
        return statistics.median(float(r[key]) for r in rows) * 1000

    return {
        "render_ms": ms(samples, "render"),
        "render_wall_ms": ms(samples, "wall"),
        "filter_ms": ms(samples, "filter"),
        "plan_ms": ms(samples, "plan"),
        "start_to_first_frame_ms": ms(samples, "start"),
        "size": f"{SIZE[0]}x{SIZE[1]}",
        "layout": str(samples[0]["layout"]),
        "wide_size": f"{WIDE[0]}x{WIDE[1]}",
        "wide_layout": str(wide[0]["layout"]),
        "wide_render_ms": ms(wide, "render"),
        "wide_render_wall_ms": ms(wide, "wall"),
        "wide_filter_ms": ms(wide, "filter"),
        "rss_mb": peak_rss_mb(),
        "environments": ENVS,
        "services": SERVICES,
        "resources_per_plan": RESOURCES,
        "accounts": len(ACCOUNTS),
        "regions": len(REGIONS),
    }


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    root = build(Path(tempfile.mkdtemp(prefix="opsdeck-synthetic-")))
    print(json.dumps(asyncio.run(measure(root, runs))))
