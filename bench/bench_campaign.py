#!/usr/bin/env python3
"""Wall time of a cold and a warm default campaign next to the time spent measuring.

    .venv/bin/python bench/bench_campaign.py [--state-dir DIR] [-e key=value ...]

Cold: from a torn-down lab and an empty state folder (guest image cache, SSH keys,
acceleration probe), so the image is built and the guest boots. Warm: the same
campaign again on the lab the cold run left up, as a user's next campaign finds it
(guests running, image and probe result cached). "Measuring" is the time the
measurement tools themselves ran (ping, the sender at rate, the throughput search),
summed from their .meta.json records in raw/; the rest is orchestration (lab, image,
guest boot, Ansible round trips, parsing, report). For each run it prints the time
per play, then per repetition: wall, measuring, overhead and round trips (module
runs on a host other than the controller), and the mean seconds per repetition
of each task and of each host (from the kvmnetlab.lab.task_times callback's JSON
lines, kept beside the results). Needs root; uses the embedded lab.

    .venv/bin/python bench/bench_campaign.py --search-cost [-e key=value ...]

What the throughput search adds to a campaign: the same campaign with
``kvmnetlab_search`` off, then on, each from a torn-down lab with the image
cache kept: the lab is built first (and the image if the cache lacks it), untimed,
so both runs find it; an image build costs the same with or without the search,
so the difference is also what the search adds to a cold run. The lab's own
state folder is used unless --state-dir is given, and is never emptied here.
Prints both wall times, their difference,
and per search: its wall time from the sender's records (s) and its trials.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timeline  # bench/timeline.py, beside this script

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def run(extra: list[str], times: Path | None = None) -> float:
    """Run site.yml; with ``times``, the task_times callback writes its JSON lines there."""
    env = dict(os.environ)
    if times is not None:
        enabled = env.get("ANSIBLE_CALLBACKS_ENABLED")
        env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join(
            filter(None, [enabled, "kvmnetlab.lab.task_times"]))
        env["KVMNETLAB_TASK_TIMES"] = str(times)
    started = time.monotonic()
    done = subprocess.run([str(PLAYBOOK), "site.yml", *extra], cwd=REPO, capture_output=True,
                          text=True, env=env)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"ansible-playbook failed:\n{done.stdout[-4000:]}")
    return elapsed


def measuring_s(campaign: Path) -> float:
    return timeline.measuring_s(campaign / "raw")


def measuring_per_repetition(campaign: Path) -> list[float]:
    """Each repetition's measuring time (s), in the order the repetitions ran."""
    manifest = json.loads((campaign / "manifest.json").read_text())
    runs = sorted(manifest["runs"], key=lambda r: r.get("started_at") or "")
    return [timeline.measuring_s(campaign / "raw" / r["scenario"] / str(r["repetition"]))
            for r in runs if r.get("started_at")]


def searches(campaign: Path) -> list[tuple[float, int]]:
    """(wall time s, trials) of each search: from its start record to its last trial."""
    out = []
    for path in sorted((campaign / "raw").rglob("search.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        start = [r["at"] for r in records if r["event"] == "start"]
        ends = [r["ended_at"] for r in records if r["event"] in ("trial", "load")]
        if start and ends:
            out.append((max(ends) - start[0],
                        sum(r["event"] == "trial" for r in records)))
    return out


def search_cost(common: list[str], results: Path) -> int:
    # the guest image is built (or found in the cache) before either run is timed
    run([*common, "--tags", "lab"])
    walls = {}
    for label, on in (("search-off", "false"), ("search-on", "true")):
        run([*common, "--tags", "teardown"])
        walls[label] = run([*common, "-e", f"kvmnetlab_search={on}",
                            "-e", f"kvmnetlab_campaign_id={label}"])
    run([*common, "--tags", "teardown"])
    found = searches(results / "search-on")
    print("campaign    wall_s")
    for label, wall in walls.items():
        print(f"{label:10s}  {wall:6.1f}")
    extra = walls["search-on"] - walls["search-off"]
    print(f"the search adds {extra:.1f} s ({extra / 60:.1f} min) to the campaign "
          f"(target <= 180 s: {'met' if extra <= 180 else 'MISSED'})")
    if found:
        times = sorted(t for t, _ in found)
        trials = sorted(n for _, n in found)
        print(f"{len(found)} searches: wall time per search median {times[len(times) // 2]:.1f} s "
              f"(min {times[0]:.1f}, max {times[-1]:.1f}), sum {sum(times):.1f} s; trials "
              f"per search median {trials[len(trials) // 2]} (min {trials[0]}, max "
              f"{trials[-1]}); Ansible and ingest around them "
              f"{extra - sum(times):.1f} s")
    print(f"results in {results}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", help="lab state folder to start empty (default: a "
                        "fresh temporary folder)")
    parser.add_argument("--search-cost", action="store_true",
                        help="compare the campaign with the throughput search off and on "
                        "instead of cold and warm")
    parser.add_argument("--top", type=int, default=15,
                        help="how many of the slowest tasks to list per run (default 15)")
    parser.add_argument("-e", dest="extra", action="append", default=[],
                        help="extra variables for site.yml, as for ansible-playbook")
    args = parser.parse_args()
    results = Path(tempfile.mkdtemp(prefix="kvmnetlab-bench-results-"))
    common = ["-e", f"kvmnetlab_results_dir={results}"]
    if args.search_cost:
        # the lab's own state (image cache) unless a folder is given; never emptied
        if args.state_dir:
            common += ["-e", f"kvmnetlab_state_dir={args.state_dir}"]
        for item in args.extra:
            common += ["-e", item]
        return search_cost(common, results)
    state = Path(args.state_dir or tempfile.mkdtemp(prefix="kvmnetlab-bench-state-"))
    shutil.rmtree(state, ignore_errors=True)
    common += ["-e", f"kvmnetlab_state_dir={state}"]
    for item in args.extra:
        common += ["-e", item]
    return cold_warm(common, results, state, top=args.top)


def cold_warm(common: list[str], results: Path, state: Path, top: int) -> int:
    """Cold from a torn-down lab and an empty state folder; warm on the lab it left up."""
    rows = []
    run([*common, "--tags", "teardown"])
    for label in ("cold", "warm"):
        times = results / f"{label}.task_times.jsonl"
        wall = run([*common, "-e", f"kvmnetlab_campaign_id={label}"], times)
        rows.append((label, wall, measuring_s(results / label), times))
    run([*common, "--tags", "teardown"])
    for label, wall, _, times in rows:
        report(label, wall, timeline.load(times), results / label, top)
    print()
    print("campaign  wall_s  measuring_s  orchestration_s  wall/measuring  "
          "overhead_s/rep  round_trips/rep")
    verdicts = {}
    for label, wall, measuring, times in rows:
        reps = timeline.repetitions(timeline.load(times))
        per = timeline.summary(reps, measuring_per_repetition(results / label))
        ratio = wall / measuring if measuring else float("nan")
        verdicts[label] = (wall, ratio)
        print(f"{label:8s}  {wall:6.1f}  {measuring:11.1f}  {wall - measuring:15.1f}  "
              f"{ratio:14.2f}  {per['overhead_s']:14.1f}  {per['round_trips']:15.1f}")
    cold, warm = verdicts["cold"][0], verdicts["warm"][0]
    print(f"cold/warm wall-time ratio: {cold / warm:.2f}")
    print(f"targets on a 2-core machine: cold <= 480 s ({'met' if cold <= 480 else 'MISSED'}), "
          f"warm wall/measuring <= 2.0 ({'met' if verdicts['warm'][1] <= 2.0 else 'MISSED'})")
    print(f"results in {results}; state in {state}")
    return 0


def report(label: str, wall: float, records: list[dict], campaign: Path, top: int) -> None:
    """One run's breakdown: per play, then per repetition by task and by host."""
    print(f"\n== {label}: {wall:.1f} s wall")
    print("  per play (s):")
    for play, seconds in timeline.by_play(records):
        print(f"    {seconds:7.1f}  {play}")
    reps = timeline.repetitions(records)
    per = timeline.summary(reps, measuring_per_repetition(campaign))
    print(f"  per repetition (mean of {per['repetitions']}): wall {per['wall_s']:.1f} s, "
          f"measuring {per['measuring_s']:.1f} s, overhead {per['overhead_s']:.1f} s, "
          f"round trips {per['round_trips']:.1f} (median {per['round_trips_median']}), "
          f"module runs {per['module_runs']:.1f}")
    print(f"  per repetition, by task (mean s; results), slowest {top}:")
    for task, seconds, count in timeline.by_task(reps)[:top]:
        print(f"    {seconds:6.2f}  {count:4.1f}  {task}")
    print("  per repetition, by host the work ran on (mean s; module runs):")
    for target, seconds, count in timeline.by_target(reps):
        print(f"    {seconds:6.2f}  {count:4.1f}  {target}")


if __name__ == "__main__":
    sys.exit(main())
