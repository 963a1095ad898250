"""A refresh rollout's overhead over the refresh itself: from the local cloud's last replacement (the
refresh's EndTime, as DescribeInstanceRefreshes reports it) to opsdeck's "done" (the release's result, its
pin committed: `finished_at` in its JSON; the process's own exit after it is reported beside), for a group
rolled in place by its instance refresh (the adopt estate, tests/decks/adopt, in the community module's
shape).

    python -m bench.refresh [--runs N]

Runs in its own OPSDECK_HOME with its own local cloud, adopts the estate as a team would (opsdeck init, a
review, bake, apply), then moves web back and forth between two images in qa, one release per run. Also
reports the refresh's own length and opsdeck's phases. Results go to bench/results/refresh.json (the lead
adds them to BENCHMARKS.md); nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import RESULTS, machine, median
from tests import adopt_estate


def _start_cloud() -> str:
    from opsdeck.core.estate.settings import load_settings

    settings = load_settings()  # the user's mirror and Checkov, before the private home hides them
    if settings.terraform.plugin_mirror:
        os.environ["OPSDECK_TF_PLUGIN_MIRROR"] = settings.terraform.plugin_mirror
    if settings.checkov.binary:
        os.environ["OPSDECK_CHECKOV"] = settings.checkov.binary
    os.environ["OPSDECK_HOME"] = tempfile.mkdtemp(prefix="opsdeck-bench-refresh-")
    os.environ.setdefault("OPSDECK_LOCALCLOUD_REFRESH_SECONDS", "1")  # a batch's warm-up: a real refresh takes minutes
    out = subprocess.run([sys.executable, "-m", "opsdeck", "cloud", "start", "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"bench: the local cloud did not start: {out.stderr}")
    status = subprocess.run(
        [sys.executable, "-m", "opsdeck", "cloud", "status", "--json"], capture_output=True, text=True
    )
    return str(json.loads(status.stdout)["endpoint"])


def _release(estate: adopt_estate.Estate, image: str) -> dict[str, Any]:
    """One release of ``image`` to web in qa; its overhead over the refresh it ran."""
    asg = estate.client("autoscaling")
    started = time.time()
    done = adopt_estate.run(estate.deck, "promote", image, "qa", "--service", "web", "--yes", "--json")
    returned = time.time()
    result = json.loads(done.stdout)
    refresh = asg.describe_instance_refreshes(AutoScalingGroupName="web-qa")["InstanceRefreshes"][0]
    assert refresh["Status"] == "Successful", refresh
    ended, began = refresh["EndTime"].timestamp(), refresh["StartTime"].timestamp()
    return {
        "overhead_s": round(result["finished_at"] - ended, 3),  # the last replacement -> opsdeck's done
        "exit_s": round(returned - result["finished_at"], 3),  # then the process's own end
        "refresh_s": round(ended - began, 3),
        "release_s": round(returned - started, 3),
        "phases": result["phases"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.refresh")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    endpoint = _start_cloud()
    try:
        estate = adopt_estate.adopt(Path(os.environ["OPSDECK_HOME"]) / "adopt", endpoint)
        first = json.loads((estate.deck / "envs" / "qa" / adopt_estate.PIN).read_text())["web_ami"]
        (second,) = json.loads(adopt_estate.run(estate.deck, "bake", "--service", "web", "--json").stdout)
        runs = [_release(estate, (second["id"], first)[i % 2]) for i in range(args.runs)]
    finally:
        subprocess.run([sys.executable, "-m", "opsdeck", "cloud", "stop"], capture_output=True, check=False)
    summary = {
        "runs": runs,
        "overhead_s": median([r["overhead_s"] for r in runs]),
        "refresh_s": median([r["refresh_s"] for r in runs]),
        "release_s": median([r["release_s"] for r in runs]),
    }
    RESULTS.mkdir(exist_ok=True)
    out = {"machine": machine(), "refresh": summary}
    (RESULTS / "refresh.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
