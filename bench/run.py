"""opsdeck's benchmarks: each figure is a ratio against the raw tool, measured in the same run.

    python -m bench.run [--runs N] [--only NAME ...] [--deck DIR] [--no-write]

Runs in its own OPSDECK_HOME with its own demo estate on the local cloud (built first, timed), so it
never touches yours. Every figure is the median of several runs, raw and opsdeck runs interleaved so
that a slow moment of the machine hits both. A full run's results go to bench/results/latest.json and
into the results section of BENCHMARKS.md; a run of some figures (--only) to bench/results/partial.json
only, so it never overwrites the full run's record. Nothing here is a test: no figure is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import render, write_markdown

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


# -- running and timing -----------------------------------------------------------------------------


class Timed:
    """Wall time and CPU time (this process's waited-for descendants) of one command."""

    def __init__(self, wall: float, cpu: float, rc: int, stdout: str = "") -> None:
        self.wall, self.cpu, self.rc, self.stdout = wall, cpu, rc, stdout
        self.ended = time.time()  # when the command returned (epoch), to set beside what it reports


def timed(argv: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> Timed:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in ok:
        raise SystemExit(f"bench: {' '.join(argv[:4])}... failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu, proc.returncode, proc.stdout)


def opsdeck(deck: Path, *args: str, ok: tuple[int, ...] = (0,)) -> Timed:
    return timed([sys.executable, "-m", "opsdeck", "--deck", str(deck), *args], ok=ok)


def median(values: list[float]) -> float:
    return statistics.median(values)


def interleave(runs: int, *jobs: Callable[[], float]) -> list[list[float]]:
    """Run the jobs in turn, ``runs`` times; returns each job's samples."""
    samples: list[list[float]] = [[] for _ in jobs]
    for _ in range(runs):
        for i, job in enumerate(jobs):
            samples[i].append(job())
    return samples


def tool_env(deck: Path, env: str) -> dict[str, str]:
    """The process environment opsdeck gives Terraform for ``env`` (its assumed-role credentials, its
    region, the endpoint and the provider mirror), so raw runs see exactly the same cloud and account."""
    from opsdeck import wiring
    from opsdeck.core.estate.deck import Deck

    wiring.install()  # the real tools for the decks a benchmark opens
    return dict(Deck.open(deck).tools.env(env).terraform.env)


def opsdeck_json(deck: Path, *args: str) -> Any:
    return json.loads(opsdeck(deck, *args, "--json").stdout)


# -- the benchmarks ---------------------------------------------------------------------------------


def bench_plan(deck: Path, runs: int) -> dict[str, Any]:
    """`opsdeck plan dev` (a real plan: never answered from a saved one without --cached) against raw
    `terraform plan` of the same environment."""
    env = tool_env(deck, "dev")
    envdir = deck / "envs" / "dev"
    opsdeck(deck, "plan", "dev", ok=(0, 2))  # init and warm caches once
    ours, raw = interleave(
        runs,
        lambda: opsdeck(deck, "plan", "dev", ok=(0, 2)).wall,
        lambda: timed(["terraform", "plan", "-input=false"], cwd=envdir, env=env, ok=(0, 2)).wall,
    )
    return {
        "opsdeck_s": median(ours),
        "raw_s": median(raw),
        "ratio": median(ours) / median(raw),
        "target": 1.05,
        "command": "opsdeck plan dev  vs  terraform plan -input=false (in envs/dev)",
    }


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far; 0.0 when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[int, int]:
    """(all, idle) jiffies of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values), values[3] + values[4]


def bench_refresh(deck: Path, runs: int) -> dict[str, Any]:
    """Refresh of every environment (plan + drift) against one, and against CPU time over the cores.

    The CPU time is opsdeck's and every tool it waited for (Terraform and its provider). The local
    cloud is a background process that opsdeck does not wait for, so its CPU is counted apart (read
    from /proc), and so is how busy the whole machine was (1.0: both cores busy all the time)."""
    cores = os.cpu_count() or 1
    cloud_pid = int(opsdeck_json(deck, "cloud", "status").get("pid") or 0)
    alls, ones, clouds, busy = [], [], [], []
    for _ in range(runs):
        c0, (t0, i0) = _proc_cpu(cloud_pid), _machine_busy()
        alls.append(opsdeck(deck, "refresh", "--fresh"))
        c1, (t1, i1) = _proc_cpu(cloud_pid), _machine_busy()
        clouds.append(c1 - c0)
        busy.append(1 - (i1 - i0) / max(1, t1 - t0))
        ones.append(opsdeck(deck, "refresh", "--fresh", "dev"))
    wall_all = median([t.wall for t in alls])
    cpu_all = median([t.cpu for t in alls])
    cpu_with_cloud = median([t.cpu + c for t, c in zip(alls, clouds, strict=True)])
    # Unchanged: every saved plan is still fresh; in the deck (warm) and as a fresh process.
    warm = _unchanged_in_process(deck, runs)
    cold = [opsdeck(deck, "refresh", "--no-drift").wall for _ in range(runs)]
    return {
        "all_s": wall_all,
        "one_s": median([t.wall for t in ones]),
        "all_over_one": wall_all / median([t.wall for t in ones]),
        "cpu_s": cpu_all,
        "cores": cores,
        "wall_over_cpu_per_core": wall_all / (cpu_all / cores),
        "target_wall_over_cpu_per_core": 1.15,
        "cloud_cpu_s": median(clouds),
        "cpu_with_cloud_s": cpu_with_cloud,
        "wall_over_cpu_with_cloud_per_core": wall_all / (cpu_with_cloud / cores),
        "machine_busy": median(busy),
        "unchanged_in_deck_s": median(warm),
        "unchanged_process_s": median(cold),
        "target_unchanged_s": 0.5,
        "command": "opsdeck refresh --fresh  vs  opsdeck refresh --fresh dev; opsdeck refresh --no-drift",
    }


def _unchanged_in_process(deck: Path, runs: int) -> list[float]:
    import asyncio

    from opsdeck import wiring
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter
    from opsdeck.core.observe.refresh import refresh

    wiring.install()  # the real tools for the decks a benchmark opens
    opened = Deck.open(deck)
    asyncio.run(refresh(opened, Reporter("bench"), with_drift=False))  # warm: imports, clients, plans
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        asyncio.run(refresh(opened, Reporter("bench"), with_drift=False))
        samples.append(time.perf_counter() - t0)
    return samples


def bench_bake(deck: Path, runs: int) -> dict[str, Any]:
    """`opsdeck bake --service web` against raw `packer build` of the same recipe with the same
    variables, in the environment opsdeck gives Packer (the build account's assumed role)."""
    from opsdeck import wiring
    from opsdeck.core.estate.deck import Deck

    wiring.install()  # the real tools for the decks a benchmark opens
    opened = Deck.open(deck)
    env = dict(opened.tools.packer().env)
    recipe = deck / opened.config.service("web").recipe
    endpoint = opened.tools.endpoint() or ""
    region = opened.config.build_region
    counter = iter(range(1000))

    def raw() -> float:
        n = next(counter)
        argv = [
            "packer",
            "build",
            "-machine-readable",
            "-color=false",
            "-var",
            f"region={region}",
            "-var",
            f"ec2_endpoint={endpoint}",
            "-var",
            "app=web",
            "-var",
            f"version=0.{os.getpid() % 1000}.{n}",  # below opsdeck's own versions: never the same AMI name
            "-var",
            "git_sha=bench",
            "-var",
            "built_by=bench",
            recipe.name,
        ]
        return timed(argv, cwd=recipe.parent, env=env).wall

    def ours() -> float:
        run = opsdeck(deck, "bake", "--service", "web", "--json")
        baked = json.loads(run.stdout)
        assert isinstance(baked, list) and len(baked) == 1 and baked[0]["service"] == "web", baked
        return run.wall

    mine, theirs = interleave(runs, ours, raw)
    return {
        "opsdeck_s": median(mine),
        "raw_s": median(theirs),
        "ratio": median(mine) / median(theirs),
        "command": "opsdeck bake --service web --json  vs  packer build -machine-readable packer/web.json "
        "(same variables, Packer's environment)",
    }


def bench_nuke(deck: Path, runs: int) -> dict[str, Any]:
    """Nuke-and-rebuild of the sandbox against raw `terraform destroy` then `terraform apply`."""
    env = tool_env(deck, "sandbox")
    envdir = deck / "envs" / "sandbox"

    applies: list[float] = []
    phases: list[dict[str, float]] = []

    def raw() -> float:
        destroy = timed(["terraform", "destroy", "-auto-approve", "-input=false"], cwd=envdir, env=env)
        apply = timed(["terraform", "apply", "-auto-approve", "-input=false"], cwd=envdir, env=env)
        applies.append(apply.wall)
        return destroy.wall + apply.wall

    def ours() -> float:
        run = opsdeck(deck, "nuke-rebuild", "sandbox", "--yes", "--json")
        phases.append({p["name"]: p["seconds"] for p in json.loads(run.stdout)["phases"]})
        return run.wall

    mine, theirs = interleave(runs, ours, raw)
    return {
        "raw_apply_s": median(applies),
        "phases_s": {name: median([p.get(name, 0.0) for p in phases]) for name in phases[0]},
        "opsdeck_s": median(mine),
        "raw_s": median(theirs),
        "ratio": median(mine) / median(theirs),
        "command": "opsdeck nuke-rebuild sandbox --yes  vs  terraform destroy + terraform apply (envs/sandbox)",
    }


def other_web(deck: Path) -> Callable[[], str]:
    """A function naming a web image that dev does not run now (dev flips between two of them);
    a second web image is baked first when the deck has only one."""
    pin = deck / "envs" / "dev" / "images.auto.tfvars.json"
    webs = [i["id"] for i in opsdeck_json(deck, "images") if i["service"] == "web" and not i["revoked"]]
    if len(webs) < 2:
        opsdeck(deck, "bake", "--service", "web")
        return other_web(deck)

    def other() -> str:
        current = live_image(json.loads(pin.read_text())["images"]["web"])
        return next(i for i in webs if i != current)

    return other


def live_image(pin: Any) -> str:
    """A service's pin: an image id, or (blue/green) the live color's image."""
    return str(pin[pin["live"]] if isinstance(pin, dict) else pin)


def bench_promote(deck: Path, runs: int) -> dict[str, Any]:
    """`opsdeck promote IMAGE dev --service web` against the raw change: edit dev's web pin (blue/green:
    the idle color's image, `terraform apply`, then the live color, `terraform apply` again),
    `git commit`."""
    env = tool_env(deck, "dev")
    envdir = deck / "envs" / "dev"
    pin = envdir / "images.auto.tfvars.json"
    other = other_web(deck)

    reported: list[float] = []  # from the command's start to its result, before it prepares the switch back

    def ours() -> float:
        run = opsdeck(deck, "promote", other(), "dev", "--service", "web", "--yes", "--reason", "bench", "--json")
        result = json.loads(run.stdout)
        reported.append(run.wall - (run.ended - result["finished_at"]))
        return run.wall

    def rollback() -> float:  # back to the pin before: each run flips dev's web between two images
        return opsdeck(deck, "rollback", "dev", "--service", "web", "--yes", "--reason", "bench").wall

    def raw() -> float:
        t0 = time.perf_counter()
        data = json.loads(pin.read_text())
        web = data["images"]["web"]
        apply = ["terraform", "apply", "-auto-approve", "-input=false"]
        if isinstance(web, dict):  # stage the idle color, then switch to it: what a blue/green release is
            idle = "green" if web["live"] == "blue" else "blue"
            web.update({idle: other(), "standby": "warm"})
            pin.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            timed(apply, cwd=envdir, env=env)
            web["live"] = idle
        else:
            data["images"]["web"] = other()  # only the web pin; the file keeps opsdeck's shape
        pin.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        timed(apply, cwd=envdir, env=env)
        timed(["git", "-C", str(deck), "commit", "-q", "-m", "bench: raw pin change", "--", str(pin)])
        return time.perf_counter() - t0

    mine, back, theirs = interleave(runs, ours, rollback, raw)
    return {
        "opsdeck_s": median(mine),
        "opsdeck_to_result_s": median(reported),
        "ratio_to_result": median(reported) / median(theirs),
        "rollback_s": median(back),
        "raw_s": median(theirs),
        "ratio": median(mine) / median(theirs),
        "rollback_ratio": median(back) / median(theirs),
        "command": "opsdeck promote IMAGE dev --service web --yes / opsdeck rollback dev --service web --yes  vs  "
        "edit images.web + terraform apply -auto-approve + git commit",
    }


def bench_preplanned(deck: Path, runs: int) -> dict[str, Any]:
    """A replace-style release on a plan made ahead (sandbox's web: its deploy and its rollback in turn,
    each planned ahead by `opsdeck preplan sandbox`, not timed, as the open deck plans while idle) against
    the raw change: edit the pin, `terraform apply -auto-approve` (which plans and applies), `git commit`.
    The release only applies; the raw change also plans."""
    env = tool_env(deck, "sandbox")
    envdir = deck / "envs" / "sandbox"
    pin = envdir / "images.auto.tfvars.json"
    webs = [i["id"] for i in opsdeck_json(deck, "images") if i["service"] == "web" and not i["revoked"]]
    if len(webs) < 2:
        opsdeck(deck, "bake", "--service", "web")
    ahead_used: list[bool] = []

    def ours() -> float:
        opsdeck(deck, "preplan", "sandbox")
        current = json.loads(pin.read_text())["images"]["web"]
        newest = [i["id"] for i in opsdeck_json(deck, "images") if i["service"] == "web" and not i["revoked"]][-1]
        action = "rollback" if current == newest else "deploy"
        run = opsdeck(deck, action, "sandbox", "--service", "web", "--yes", "--json")
        ahead_used.append("plan" not in [p["name"] for p in json.loads(run.stdout)["phases"]])
        return run.wall

    def raw() -> float:
        t0 = time.perf_counter()
        data = json.loads(pin.read_text())
        data["images"]["web"] = next(i for i in webs if i != data["images"]["web"])
        pin.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        timed(["terraform", "apply", "-auto-approve", "-input=false"], cwd=envdir, env=env)
        timed(["git", "-C", str(deck), "commit", "-q", "-m", "bench: raw pin change", "--", str(pin)])
        return time.perf_counter() - t0

    mine, theirs = interleave(runs, ours, raw)
    return {
        "opsdeck_s": median(mine),
        "raw_s": median(theirs),
        "ratio": median(mine) / median(theirs),
        "all_made_ahead": all(ahead_used),
        "command": "opsdeck deploy|rollback sandbox --service web --yes on a plan made ahead (opsdeck preplan "
        "sandbox first, not timed)  vs  edit images.web + terraform apply -auto-approve + git commit",
    }


def bench_team(deck: Path, runs: int) -> dict[str, Any]:
    """What the team's remote adds to a promote: `opsdeck promote IMAGE dev --service web` with the
    deck's branch tracking its remote (fetch before, push after) against the same promote with no
    upstream (a lone engineer's local ledger), interleaved; beside it, a raw `git fetch` + `git push`."""
    other = other_web(deck)
    git = ["git", "-C", str(deck)]
    branch = subprocess.run(
        [*git, "branch", "--show-current"], capture_output=True, text=True, check=True
    ).stdout.strip()

    phases: dict[str, list[float]] = {"sync": [], "push": []}

    def promote() -> float:
        run = opsdeck(deck, "promote", other(), "dev", "--service", "web", "--yes", "--reason", "bench", "--json")
        return run.wall

    def with_remote() -> float:
        run = opsdeck(deck, "promote", other(), "dev", "--service", "web", "--yes", "--reason", "bench", "--json")
        for phase in json.loads(run.stdout)["phases"]:
            if phase["name"] in phases:
                phases[phase["name"]].append(phase["seconds"])
        return run.wall

    def without_remote() -> float:
        subprocess.run([*git, "branch", "--unset-upstream"], check=True)
        try:
            return promote()
        finally:
            subprocess.run([*git, "push", "-q", "-u", "origin", branch], check=True, capture_output=True)

    def raw_git() -> float:
        t0 = time.perf_counter()
        timed([*git, "fetch", "-q", "origin", branch])
        timed([*git, "push", "-q", "origin", branch])
        return time.perf_counter() - t0

    ours, alone, plain = interleave(runs, with_remote, without_remote, raw_git)
    return {
        "with_remote_s": median(ours),
        "local_ledger_s": median(alone),
        "remote_adds_s": median(ours) - median(alone),
        "ratio": median(ours) / median(alone),
        "raw_fetch_push_s": median(plain),
        "sync_phase_s": median(phases["sync"]),
        "push_phase_s": median(phases["push"]),
        "command": "opsdeck promote IMAGE dev --service web --yes, the branch tracking the deck's remote vs not",
    }


def bench_gates(deck: Path, runs: int) -> dict[str, Any]:
    """What the policy gate adds to a promote: `opsdeck promote IMAGE dev --service web` with the deck's
    [policy] against the same promote with it off (enabled = false), interleaved; beside them, the raw
    tool: `checkov` on the same plan's JSON (what the gate runs), and raw `terraform plan` of dev."""
    from opsdeck.adapters.checkov import Checkov

    toml = deck / "opsdeck.toml"
    other = other_web(deck)
    original = toml.read_text()
    assert "[policy]\n" in original, "the bench deck has no [policy]"
    checkov = Checkov(os.environ.get("OPSDECK_CHECKOV") or "checkov")
    phases: list[float] = []
    shown: list[Path] = []

    def promote() -> Timed:
        return opsdeck(deck, "promote", other(), "dev", "--service", "web", "--yes", "--reason", "bench", "--json")

    def gated() -> float:
        run = promote()
        phases.extend(p["seconds"] for p in json.loads(run.stdout)["phases"] if p["name"] == "policy")
        newest = max((deck / ".opsdeck" / "plans" / "shown").glob("*.json"), key=lambda p: p.stat().st_mtime)
        shown.append(newest)
        return run.wall

    def ungated() -> float:
        toml.write_text(original.replace("[policy]\n", "[policy]\nenabled = false\n", 1))
        try:
            return promote().wall
        finally:
            toml.write_text(original)

    def raw_checkov() -> float:
        if not shown:
            return float("nan")
        argv = checkov.argv(shown[-1], checks_dir=deck / "policy")  # what the gate runs
        return timed(argv, ok=(0, 1)).wall

    env = tool_env(deck, "dev")
    ours, theirs, raw = interleave(runs, gated, ungated, raw_checkov)
    plan = [
        timed(["terraform", "plan", "-input=false", "-lock=false"], cwd=deck / "envs" / "dev", env=env).wall
        for _ in range(max(1, runs // 2))
    ]
    return {
        "gated_s": median(ours),
        "ungated_s": median(theirs),
        "gate_adds_s": median(ours) - median(theirs),
        "ratio": median(ours) / median(theirs),
        "policy_phase_s": median(phases),
        "raw_checkov_s": median([r for r in raw if r == r]),
        "phase_vs_raw_checkov": median(phases) / median([r for r in raw if r == r]),
        "raw_terraform_plan_s": median(plan),
        "command": "opsdeck promote IMAGE dev --service web --yes with [policy] vs enabled = false; raw checkov",
    }


def bench_blue_green(deck: Path, runs: int) -> dict[str, Any]:
    """Instant rollback in dev (blue/green, inside the standby window) against raw `terraform apply` of
    the traffic switch alone (the pin's live color flipped), and against a rebuild rollback (sandbox,
    which rolls out by replacement as every environment did before); each run starts with a promote,
    whose gate phases are kept on their own."""
    env = tool_env(deck, "dev")
    envdir = deck / "envs" / "dev"
    pin = envdir / "images.auto.tfvars.json"
    other_web(deck)  # at least two web images
    webs = [i["id"] for i in opsdeck_json(deck, "images") if i["service"] == "web" and not i["revoked"]]
    sandbox_pin = deck / "envs" / "sandbox" / "images.auto.tfvars.json"
    phases: dict[str, list[float]] = {}
    instant: list[bool] = []
    moved: list[float] = []  # an instant rollback: its confirmation to traffic moved
    committed: list[float] = []  # ... to its pins committed and pushed

    def promote() -> float:  # not compared: it makes the warm standby each rollback returns to
        fresh = opsdeck_json(deck, "bake", "--service", "web")[0]["id"]  # a new image: a full release each time
        run = opsdeck(deck, "promote", fresh, "dev", "--service", "web", "--yes", "--reason", "bench", "--json")
        for phase in json.loads(run.stdout)["phases"]:
            phases.setdefault(phase["name"], []).append(phase["seconds"])
        return run.wall

    def rollback() -> float:
        run = opsdeck(deck, "rollback", "dev", "--service", "web", "--yes", "--reason", "bench", "--json")
        result = json.loads(run.stdout)
        instant.append(bool(result["instant"]))
        if result.get("traffic_moved_s") is not None:
            moved.append(result["traffic_moved_s"])
            names = [p["name"] for p in result["phases"]]
            after = names.index("traffic moved") + 1
            done = [p["seconds"] for p in result["phases"][after:] if p["name"] in ("commit", "push")]
            committed.append(result["traffic_moved_s"] + sum(done))
        return run.wall

    def raw_switch() -> float:  # the same switch, by hand: flip the live color, apply, commit
        t0 = time.perf_counter()
        data = json.loads(pin.read_text())
        web = data["images"]["web"]
        web["live"] = "green" if web["live"] == "blue" else "blue"
        pin.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        timed(["terraform", "apply", "-auto-approve", "-input=false"], cwd=envdir, env=env)
        timed(["git", "-C", str(deck), "commit", "-q", "-m", "bench: raw switch", "--", str(pin)])
        return time.perf_counter() - t0

    def rebuild() -> float:  # today's rollback where an environment rolls out by replacement
        current = live_image(json.loads(sandbox_pin.read_text())["images"]["web"])
        target = next(i for i in webs if i != current)
        opsdeck(deck, "promote", target, "sandbox", "--service", "web", "--yes", "--reason", "bench")
        return opsdeck(deck, "rollback", "sandbox", "--service", "web", "--yes", "--reason", "bench").wall

    _, back, switch, rebuilt = interleave(runs, promote, rollback, raw_switch, rebuild)
    return {
        "instant_rollback_s": median(back),
        "raw_switch_apply_s": median(switch),
        "ratio_vs_raw_switch": median(back) / median(switch),
        "rebuild_rollback_s": median(rebuilt),
        "rebuild_over_instant": median(rebuilt) / median(back),
        "all_instant": all(instant),
        "traffic_moved_s": median(moved) if moved else None,
        "traffic_moved_and_committed_s": median(committed) if committed else None,
        "promote_phases_s": {name: median(values) for name, values in phases.items()},
        "command": "opsdeck rollback dev --service web --yes (warm standby)  vs  flip images.web.live + terraform "
        "apply -auto-approve + git commit  vs  opsdeck rollback sandbox --service web --yes (replace)",
    }


def bench_drift(deck: Path, runs: int) -> dict[str, Any]:
    """`opsdeck drift dev` against raw `terraform plan -refresh-only` of the same environment."""
    env = tool_env(deck, "dev")
    envdir = deck / "envs" / "dev"
    mine, theirs = interleave(
        runs,
        lambda: opsdeck(deck, "drift", "dev", ok=(0, 2)).wall,
        lambda: timed(["terraform", "plan", "-refresh-only", "-input=false", "-lock=false"], cwd=envdir, env=env).wall,
    )
    return {
        "opsdeck_s": median(mine),
        "raw_s": median(theirs),
        "ratio": median(mine) / median(theirs),
        "command": "opsdeck drift dev  vs  terraform plan -refresh-only (envs/dev)",
    }


def bench_keys(deck: Path, runs: int) -> dict[str, Any]:
    """`u` on dev in the deck to its confirmation on screen, planned ahead by the idle deck and not."""
    from bench import keys

    def newer_web() -> None:  # dev's deploy moves web: its newest image is not the one dev runs
        pin = json.loads((deck / "envs" / "dev" / "images.auto.tfvars.json").read_text())["images"]["web"]
        webs = [i["id"] for i in opsdeck_json(deck, "images") if i["service"] == "web" and not i["revoked"]]
        if live_image(pin) == webs[-1]:
            opsdeck(deck, "bake", "--service", "web")

    found = keys.measure(deck, runs, newer_web)
    RESULTS.mkdir(exist_ok=True)  # its own record too (a run of it alone stays only in partial.json otherwise)
    record = {"machine": machine(), "runs": runs, "benches": {"keys": found}}
    (RESULTS / "keys.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return found


def bench_tui(deck: Path, runs: int) -> dict[str, Any]:
    from bench import tui

    return tui.measure(deck, runs)


BENCHES: dict[str, Callable[[Path, int], dict[str, Any]]] = {
    "plan": bench_plan,
    "refresh": bench_refresh,
    "bake": bench_bake,
    "promote": bench_promote,
    "preplanned": bench_preplanned,
    "team": bench_team,
    "gates": bench_gates,
    "blue_green": bench_blue_green,
    "drift": bench_drift,
    "nuke": bench_nuke,
    "keys": bench_keys,
    "tui": bench_tui,
}


# -- setup and report -------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    def first(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0"
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "terraform": first(["terraform", "version"]),
        "packer": first(["packer", "version"]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": first(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "tree": "modified"
        if first(["git", "-C", str(ROOT), "status", "--porcelain", "--", "opsdeck"]) != "?"
        else "clean",
    }


def ensure_demo(deck: Path | None) -> Path:
    if deck is not None:
        return deck
    from opsdeck.core.estate.settings import load_settings

    mirror = load_settings().terraform.plugin_mirror  # the user's, before the private home hides it
    if mirror:
        os.environ["OPSDECK_TF_PLUGIN_MIRROR"] = mirror
    checkov = load_settings().checkov.binary  # the policy gate's engine, likewise
    if checkov:
        os.environ["OPSDECK_CHECKOV"] = checkov
    home = Path(tempfile.mkdtemp(prefix="opsdeck-bench-"))
    os.environ["OPSDECK_HOME"] = str(home)
    target = home / "demo"
    print(f"bench: building a demo deck in {target}", file=sys.stderr)
    built = timed([sys.executable, "-m", "opsdeck", "demo", str(target), "--no-open"])
    DEMO_BUILD["seconds"] = built.wall
    return target


DEMO_BUILD: dict[str, float] = {}  # how long the private demo deck took to build from nothing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=None)
    parser.add_argument("--deck", type=Path, default=None, help="an applied demo deck (default: build one)")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args(argv)
    for tool in ("terraform", "packer"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is not on PATH (run `make bench`)")
    deck = ensure_demo(args.deck)
    results: dict[str, Any] = {"machine": machine(), "runs": args.runs, "benches": {}}
    if DEMO_BUILD:
        results["demo"] = dict(DEMO_BUILD)
    try:
        for name in args.only or list(BENCHES):
            runs = min(args.runs, 3) if name in ("nuke", "refresh") else args.runs
            print(f"bench: {name} ({runs} runs)", file=sys.stderr)
            results["benches"][name] = BENCHES[name](deck, runs)
            print(json.dumps(results["benches"][name], indent=2), file=sys.stderr)
            RESULTS.mkdir(exist_ok=True)  # kept as it goes: a failing bench does not lose the others
            (RESULTS / "partial.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    finally:
        if args.deck is None:  # the private demo's local cloud goes with it
            subprocess.run([sys.executable, "-m", "opsdeck", "cloud", "stop"], capture_output=True, check=False)
    RESULTS.mkdir(exist_ok=True)
    if not args.only:  # a run of some figures stays in partial.json: latest.json is one full run
        (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = render(results)
    print(table)
    if not args.no_write and not args.only:
        write_markdown(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
