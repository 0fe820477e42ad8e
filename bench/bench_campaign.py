#!/usr/bin/env python3
"""Wall time of a cold and a warm default campaign next to the time spent measuring.

    .venv/bin/python bench/bench_campaign.py [--state-dir DIR] [-e key=value ...]

Cold: the lab's state folder (guest image cache, SSH keys) starts empty, so the
guest image is built. Warm: the same campaign again with that state kept.
Both start from a torn-down lab. "Measuring" is the time the measurement tools
themselves ran (ping, the sender at rate, the throughput search), summed from
their .meta.json records in raw/; the rest is orchestration (lab, image, guest
boot, Ansible round trips, parsing, report). Needs root; uses the embedded lab.

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
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
MEASURING = ("ping", "trafgen", "pfsend")


def run(extra: list[str]) -> float:
    started = time.monotonic()
    done = subprocess.run([str(PLAYBOOK), "site.yml", *extra], cwd=REPO, capture_output=True,
                          text=True)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"ansible-playbook failed:\n{done.stdout[-4000:]}")
    return elapsed


def measuring_s(campaign: Path) -> float:
    total = 0.0
    for meta in (campaign / "raw").rglob("*.meta.json"):
        record = json.loads(meta.read_text())
        argv = record.get("argv") or [""]
        # the throughput search's sender (its receiver only waits for it)
        search = argv[0] == "python3" and "search" in argv
        if (argv[0] in MEASURING or search) and record.get("finished_at"):
            total += record["finished_at"] - record["started_at"]
    return total


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
    rows = []
    for label in ("cold", "warm"):
        run([*common, "--tags", "teardown"])
        wall = run([*common, "-e", f"kvmnetlab_campaign_id={label}"])
        rows.append((label, wall, measuring_s(results / label)))
    run([*common, "--tags", "teardown"])
    print("campaign  wall_s  measuring_s  orchestration_s  wall/measuring")
    for label, wall, measuring in rows:
        print(f"{label:8s}  {wall:6.1f}  {measuring:11.1f}  {wall - measuring:15.1f}  "
              f"{wall / measuring if measuring else float('nan'):14.1f}")
    cold, warm = rows[0][1], rows[1][1]
    print(f"cold/warm wall-time ratio: {cold / warm:.2f}")
    print(f"targets on a 2-core machine: cold <= 900 s ({'met' if cold <= 900 else 'MISSED'}), "
          f"warm <= 360 s ({'met' if warm <= 360 else 'MISSED'})")
    print(f"results in {results}; state in {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
