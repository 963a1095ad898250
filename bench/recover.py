"""`opsdeck recover staging --region us-west-2` against raw `terraform init` + `terraform apply` of the same
root module (the recovery's own work dir, copied) into a fresh state key, in the same run.

    python -m bench.recover [--runs N] [--deck DIR]

Each side builds the copy from nothing and is then destroyed (untimed) before the other runs: the two
copies would otherwise share the region's `env = staging` groups. opsdeck's figure includes what the
raw run does not do: copying (or finding) the images, the policy gate, waiting until every instance
runs its image, and the ledger commit; its phase timeline shows where the time goes. Results go to
bench/results/recover.json (the lead adds them to BENCHMARKS.md); nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.run import RESULTS, ensure_demo, interleave, machine, median, opsdeck, timed

ENV = "staging"
REGION = "us-west-2"
RAW_KEY = "shop/staging/bench-raw-us-west-2/terraform.tfstate"


def bench_recover(deck: Path, runs: int) -> dict[str, Any]:
    from opsdeck import wiring
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.sandbox.copies import copy_tools, work_dir

    wiring.install()  # the real tools for the decks a benchmark opens
    opened = Deck.open(deck)
    env = dict(copy_tools(opened, ENV, REGION).terraform.env)  # the copy's account, region, endpoint, mirror
    backend = opened.backend(ENV)
    assert backend is not None
    config = {**opened.tools.backend_config(), "key": RAW_KEY}
    raw_dir = work_dir(opened, ENV, REGION).parent / f"bench-raw@{REGION}"  # same depth: module paths hold
    phases: list[dict[str, float]] = []
    raw_applies: list[float] = []

    def ours() -> float:
        run = opsdeck(deck, "recover", ENV, "--region", REGION, "--yes", "--json")
        phases.append({p["name"]: p["seconds"] for p in json.loads(run.stdout)["phases"]})
        if not raw_dir.is_dir():  # the raw side applies the very module opsdeck prepared
            shutil.copytree(work_dir(opened, ENV, REGION), raw_dir, ignore=shutil.ignore_patterns(".terraform"))
        opsdeck(deck, "recover", ENV, "--region", REGION, "--destroy", "--yes", "--json")
        return run.wall

    def raw() -> float:
        shutil.rmtree(raw_dir / ".terraform", ignore_errors=True)
        init = [
            "terraform",
            "init",
            "-input=false",
            "-reconfigure",
            *(f"-backend-config={k}={v}" for k, v in config.items()),
        ]
        first = timed(init, cwd=raw_dir, env=env)
        apply = timed(["terraform", "apply", "-auto-approve", "-input=false"], cwd=raw_dir, env=env)
        raw_applies.append(apply.wall)
        timed(["terraform", "destroy", "-auto-approve", "-input=false"], cwd=raw_dir, env=env)
        return first.wall + apply.wall

    try:
        mine, theirs = interleave(runs, ours, raw)
    finally:
        opened.tools.env(ENV).cloud.delete_object(backend.bucket, RAW_KEY)
        shutil.rmtree(raw_dir, ignore_errors=True)
    return {
        "opsdeck_s": median(mine),
        "raw_s": median(theirs),
        "raw_apply_s": median(raw_applies),
        "ratio": median(mine) / median(theirs),
        "phases_s": {name: median([p.get(name, 0.0) for p in phases]) for name in phases[0]},
        "runs": runs,
        "command": (
            f"opsdeck recover {ENV} --region {REGION} --yes  vs  terraform init + terraform apply -auto-approve "
            "(the same work dir, a fresh state key)"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recover")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--deck", type=Path, default=None, help="an applied demo deck (default: build one)")
    args = parser.parse_args(argv)
    deck = ensure_demo(args.deck)
    try:
        result = {"machine": machine(), "recover": bench_recover(deck, args.runs)}
    finally:
        if args.deck is None:
            subprocess.run([sys.executable, "-m", "opsdeck", "cloud", "stop"], capture_output=True, check=False)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recover.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["recover"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
