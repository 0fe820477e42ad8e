#!/usr/bin/env python3
"""Wall time of a cold and a warm default campaign next to the time spent measuring.

    .venv/bin/python bench/bench_campaign.py [--state-dir DIR] [-e key=value ...]

Cold: the lab's state folder (guest image cache, SSH keys) starts empty, so the
guest image is built. Warm: the same campaign again with that state kept.
Both start from a torn-down lab. "Measuring" is the time the measurement tools
themselves ran (ping, the sender at rate), summed from their .meta.json
records in raw/; the rest is orchestration (lab, image, guest boot, Ansible
round trips, parsing, report). Needs root; uses the embedded lab.
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
        if record.get("argv", [""])[0] in MEASURING and record.get("finished_at"):
            total += record["finished_at"] - record["started_at"]
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", help="lab state folder to start empty (default: a "
                        "fresh temporary folder)")
    parser.add_argument("-e", dest="extra", action="append", default=[],
                        help="extra variables for site.yml, as for ansible-playbook")
    args = parser.parse_args()
    state = Path(args.state_dir or tempfile.mkdtemp(prefix="kvmnetlab-bench-state-"))
    results = Path(tempfile.mkdtemp(prefix="kvmnetlab-bench-results-"))
    shutil.rmtree(state, ignore_errors=True)
    common = ["-e", f"kvmnetlab_state_dir={state}", "-e", f"kvmnetlab_results_dir={results}"]
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
