"""BENCHMARKS.md's results table, from a benchmark run's results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MARKDOWN = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}, "
        f"{m['terraform']}, {m['packer']}"
        + (
            f", opsdeck at {m['commit']}" + (" (opsdeck/ modified)" if m.get("tree") == "modified" else "")
            if m.get("commit")
            else ""
        )
        + f"; median of {results['runs']} runs each (refresh and nuke-and-rebuild: {min(results['runs'], 3)}).",
        "",
        "| figure | opsdeck | raw | ratio | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    b = results["benches"]

    def row(name: str, ours: str, raw: str, ratio: str, target: str) -> None:
        lines.append(f"| {name} | {ours} | {raw} | {ratio} | {target} |")

    if "plan" in b:
        p = b["plan"]
        row(
            "`opsdeck plan dev` vs `terraform plan`",
            f"{p['opsdeck_s']:.2f} s",
            f"{p['raw_s']:.2f} s",
            f"{p['ratio']:.3f}×",
            "≤ 1.05×",
        )
    if "refresh" in b:
        r = b["refresh"]
        row(
            "refresh all 4 (plan + drift) vs one",
            f"{r['all_s']:.2f} s",
            f"{r['one_s']:.2f} s",
            f"{r['all_over_one']:.2f}×",
            "-",
        )
        row(
            "refresh all 4: wall vs CPU time / cores",
            f"{r['all_s']:.2f} s",
            f"{r['cpu_s']:.2f} s CPU / {r['cores']}",
            f"{r['wall_over_cpu_per_core']:.3f}×",
            "≤ 1.15×",
        )
        if "wall_over_cpu_with_cloud_per_core" in r:
            row(
                "refresh all 4: wall vs CPU time / cores, the local cloud's CPU counted too",
                f"{r['all_s']:.2f} s",
                f"{r['cpu_with_cloud_s']:.2f} s CPU / {r['cores']} (cloud {r['cloud_cpu_s']:.2f} s); "
                f"machine busy {r['machine_busy'] * 100:.0f} %",
                f"{r['wall_over_cpu_with_cloud_per_core']:.3f}×",
                "-",
            )
        row("unchanged refresh, in the deck", f"{r['unchanged_in_deck_s'] * 1000:.0f} ms", "-", "-", "< 500 ms")
        row("unchanged refresh, as a new process", f"{r['unchanged_process_s'] * 1000:.0f} ms", "-", "-", "-")
    if "bake" in b:
        k = b["bake"]
        row(
            "`opsdeck bake --service web` vs `packer build`",
            f"{k['opsdeck_s']:.2f} s",
            f"{k['raw_s']:.2f} s",
            f"{k['ratio']:.2f}×",
            "-",
        )
    if "team" in b:
        t = b["team"]
        row(
            "promote with the team's remote (fetch + push) vs the same promote on a local ledger",
            f"{t['with_remote_s']:.2f} s",
            f"{t['local_ledger_s']:.2f} s",
            f"{t['ratio']:.3f}× (sync phase {t['sync_phase_s'] * 1000:.0f} ms + push phase "
            f"{t['push_phase_s'] * 1000:.0f} ms; raw fetch + push {t['raw_fetch_push_s'] * 1000:.0f} ms)",
            "-",
        )
    if "gates" in b:
        g = b["gates"]
        row(
            "promote with the policy gate (Checkov) vs the same promote with the gate off",
            f"{g['gated_s']:.2f} s",
            f"{g['ungated_s']:.2f} s",
            f"{g['ratio']:.3f}× (policy phase {g['policy_phase_s']:.2f} s vs raw checkov on the same plan "
            f"{g['raw_checkov_s']:.2f} s: {g['phase_vs_raw_checkov']:.2f}×; raw terraform plan "
            f"{g['raw_terraform_plan_s']:.2f} s)",
            "-",
        )
    if "promote" in b:
        k = b["promote"]
        row(
            "`opsdeck promote IMAGE dev --service web` vs pin edit + `terraform apply` + `git commit`",
            f"{k['opsdeck_s']:.1f} s",
            f"{k['raw_s']:.1f} s",
            f"{k['ratio']:.2f}×",
            "-",
        )
        row(
            "`opsdeck rollback dev --service web` vs pin edit + `terraform apply` + `git commit`",
            f"{k['rollback_s']:.1f} s",
            f"{k['raw_s']:.1f} s",
            f"{k['rollback_ratio']:.2f}×",
            "-",
        )
    if "blue_green" in b:
        k = b["blue_green"]
        row(
            "instant rollback (`opsdeck rollback dev --service web`, warm standby) vs raw `terraform apply` of the "
            "switch (live color flipped) + `git commit`",
            f"{k['instant_rollback_s']:.2f} s",
            f"{k['raw_switch_apply_s']:.2f} s",
            f"{k['ratio_vs_raw_switch']:.2f}×" + ("" if k["all_instant"] else " (not every run was instant)"),
            "≤ 1.1×",
        )
        row(
            "rebuild rollback (sandbox, by replacement) vs instant rollback",
            f"{k['rebuild_rollback_s']:.2f} s",
            f"{k['instant_rollback_s']:.2f} s",
            f"{k['rebuild_over_instant']:.2f}× faster",
            "≥ 3×",
        )
        gates = ", ".join(
            f"{name} {seconds:.2f} s"
            for name, seconds in k["promote_phases_s"].items()
            if name
            in ("verify instances", "health", "smoke", "plan switch", "policy", "verify traffic", "prepare switch back")
        )
        row("a blue/green promote in dev, its gate phases on their own (medians)", gates, "-", "-", "-")
        phases = {n: sec for n, sec in k["promote_phases_s"].items() if n}
        total = sum(phases.values()) or 1.0
        shares = ", ".join(f"{n} {sec / total * 100:.0f} %" for n, sec in sorted(phases.items(), key=lambda i: -i[1]))
        row("a blue/green promote in dev: each phase's share of the phases' time", shares, "-", "-", "-")
        if k.get("traffic_moved_s") is not None:
            row(
                "instant rollback: from `y` to traffic moved (the load balancer's API, read back)",
                f"{k['traffic_moved_s']:.2f} s",
                "-",
                "-",
                "≤ 1 s",
            )
            row(
                "instant rollback: traffic moved, then the pins committed and pushed",
                f"{k['traffic_moved_and_committed_s']:.2f} s",
                "-",
                "-",
                "≤ 1.5 s",
            )
    if "preplanned" in b:
        k = b["preplanned"]
        row(
            "a replace-style release on a plan made ahead (sandbox deploy/rollback, `--yes`) vs pin edit + "
            "`terraform apply -auto-approve` + `git commit`",
            f"{k['opsdeck_s']:.1f} s",
            f"{k['raw_s']:.1f} s",
            f"{k['ratio']:.2f}×" + ("" if k["all_made_ahead"] else " (not every run used its plan made ahead)"),
            "≤ 1.0×",
        )
    if "drift" in b:
        k = b["drift"]
        row(
            "`opsdeck drift dev` vs `terraform plan -refresh-only`",
            f"{k['opsdeck_s']:.2f} s",
            f"{k['raw_s']:.2f} s",
            f"{k['ratio']:.2f}×",
            "-",
        )
    if "nuke" in b:
        n = b["nuke"]
        row(
            "nuke-and-rebuild vs `terraform destroy` + `apply`",
            f"{n['opsdeck_s']:.1f} s",
            f"{n['raw_s']:.1f} s",
            f"{n['ratio']:.2f}×",
            "-",
        )
        phases = " · ".join(f"{name} {sec:.1f} s" for name, sec in n["phases_s"].items())
        row("nuke-and-rebuild by phase", phases, "-", "-", "-")
    if "demo" in results:
        d = results["demo"]
        raw = f"{b['nuke']['raw_apply_s']:.1f} s (sandbox)" if "nuke" in b else "-"
        row(
            "`opsdeck demo` from nothing (cloud, 3 accounts' roles and state buckets, base + 3 service bakes, "
            "shares and copies, 4 × init + apply) vs one raw `terraform apply`",
            f"{d['seconds']:.1f} s",
            raw,
            "-",
            "≤ 120 s",
        )
    for name in ("keys", "tui"):
        for line in b.get(name, {}).get("rows", []):
            row(*line)
    return "\n".join(lines)


def write_markdown(table: str) -> None:
    text = MARKDOWN.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"bench: {MARKDOWN} has no {START} ... {END} section")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    MARKDOWN.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")
