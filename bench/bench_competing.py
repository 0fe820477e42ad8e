#!/usr/bin/env python3
"""Wall time of one repetition against the number of competing guests and containers.

    .venv/bin/python bench/bench_competing.py [--repetitions R] [-e key=value ...]

Runs one campaign of scenarios/future-work.yml's guest and container scenarios with
N = 1, 2 and 4 (virtio_x1/x2/x4, container_x1/x2/x4), R repetitions each, in the
campaign's shuffled blocks, so every N is timed side by side in the same run on the
same lab. The throughput search is off for all of them (it runs for one flow only, so
it would time N = 1 alone). The kvmnetlab.lab.task_times callback times every task;
each repetition's records are matched to its scenario through the manifest's run order.

Prints, per scenario: N, the mean wall time of a repetition (s), the part during which
a tool was measuring (s, from the raw files' .meta.json records; the N loads and the N
flows' probes run at once and count once), the rest (overhead, s),
the round trips to hosts other than the controller, and the wall time's ratio to the
same kind's N = 1. Needs root; uses the embedded lab (brought up if it is not).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timeline  # bench/timeline.py, beside this script
from bench_campaign import run  # the same way of running site.yml with the callback

SCENARIOS = ["virtio_x1", "virtio_x2", "virtio_x4",
             "container_x1", "container_x2", "container_x4"]


def by_scenario(campaign: Path, reps: list[list[dict]]) -> dict[str, list[dict]]:
    """Each scenario's repetitions: wall (s), measuring (s) and round trips, matched to the
    timed repetitions through the manifest's order (the order they ran in)."""
    manifest = json.loads((campaign / "manifest.json").read_text())
    ran = [r for r in manifest["order"]
           if any(x["scenario"] == r["scenario"] and x["repetition"] == r["repetition"]
                  and x.get("started_at") for x in manifest["runs"])]
    if len(ran) != len(reps):
        sys.exit(f"{len(reps)} repetitions timed but {len(ran)} ran")
    out: dict[str, list[dict]] = {}
    for run_entry, records in zip(ran, reps, strict=True):
        raw = campaign / "raw" / run_entry["scenario"] / str(run_entry["repetition"])
        out.setdefault(run_entry["scenario"], []).append({
            "wall_s": timeline.wall(records), "measuring_s": timeline.measuring_wall_s(raw),
            "round_trips": sum(timeline.round_trip(r) for r in records)})
    return out


def rows(timed: dict[str, list[dict]], instances: dict[str, int]) -> list[dict]:
    """One row per scenario: means over its repetitions, and the wall's ratio to N = 1."""
    out = []
    for name, reps in timed.items():
        out.append({"scenario": name, "kind": name.split("_x")[0], "n": instances[name],
                    "repetitions": len(reps),
                    "wall_s": statistics.mean(r["wall_s"] for r in reps),
                    "measuring_s": statistics.mean(r["measuring_s"] for r in reps),
                    "round_trips": statistics.mean(r["round_trips"] for r in reps)})
    one = {r["kind"]: r["wall_s"] for r in out if r["n"] == 1}
    for r in out:
        r["overhead_s"] = r["wall_s"] - r["measuring_s"]
        r["ratio"] = r["wall_s"] / one[r["kind"]] if r["kind"] in one else float("nan")
    return sorted(out, key=lambda r: (r["kind"], r["n"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("-e", action="append", default=[], metavar="key=value",
                        help="more -e for ansible-playbook")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from kvmnetlab import campaign as scenarios_file

    defined = scenarios_file.load_scenarios(
        Path(__file__).resolve().parents[1] / "scenarios/future-work.yml")
    instances = {name: scenarios_file.instances(defined[name]) for name in SCENARIOS}
    with tempfile.TemporaryDirectory(prefix="bench-competing-") as tmp:
        results, times = Path(tmp) / "results", Path(tmp) / "times.jsonl"
        extra = {"kvmnetlab_scenario_file": "scenarios/future-work.yml",
                 "kvmnetlab_scenarios": SCENARIOS, "kvmnetlab_repetitions": args.repetitions,
                 "kvmnetlab_search": False, "kvmnetlab_results_dir": str(results),
                 "kvmnetlab_campaign_id": "bench"}
        flags = ["-e", json.dumps(extra)] + [x for e in args.e for x in ("-e", e)]
        total = run(flags, times)
        records = timeline.load(times)
        table = rows(by_scenario(results / "bench", timeline.repetitions(records)), instances)
    print(f"campaign: {total:.1f} s wall for {len(SCENARIOS)} scenarios x "
          f"{args.repetitions} repetitions (lab bring-up, campaign, report)")
    print("per repetition, mean over its repetitions (s); ratio: wall / the same kind's N=1")
    print(f"{'scenario':<14}{'N':>3}{'reps':>6}{'wall s':>9}{'measuring s':>13}"
          f"{'overhead s':>12}{'round trips':>13}{'ratio':>7}")
    for r in table:
        print(f"{r['scenario']:<14}{r['n']:>3}{r['repetitions']:>6}{r['wall_s']:>9.2f}"
              f"{r['measuring_s']:>13.2f}{r['overhead_s']:>12.2f}{r['round_trips']:>13.1f}"
              f"{r['ratio']:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
