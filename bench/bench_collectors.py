#!/usr/bin/env python3
"""The collectors' own overhead: baseline RTT with every collector on vs ping alone.

    .venv/bin/python bench/bench_collectors.py [--pairs 3] [-e key=value ...]

Runs pairs of baseline-only campaigns on the embedded lab, alternating "all
collectors" and "ping only" so both see the same machine conditions, and
prints the median RTT (µs) of each and their ratio. The RTT probes run after
the counter window (see collectors/base.py), so the target is a ratio within
5 %. Needs root.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
PING_ONLY = json.dumps({"campaign_collectors": {"ping": ["sender"]}})


def campaign(results: Path, cid: str, extra: list[str]) -> float:
    cmd = [str(PLAYBOOK), "site.yml", "--skip-tags", "guests,report",
           "-e", "kvmnetlab_scenarios=baseline", "-e", f"kvmnetlab_results_dir={results}",
           "-e", f"kvmnetlab_campaign_id={cid}", *extra]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"ansible-playbook failed:\n{done.stdout[-4000:]}")
    rtt = pd.read_parquet(results / cid / "data" / "rtt.parquet")
    return float(rtt.rtt_us.dropna().median())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("-e", dest="extra", action="append", default=[])
    args = parser.parse_args()
    extra = [x for item in args.extra for x in ("-e", item)]
    results = Path(tempfile.mkdtemp(prefix="kvmnetlab-bench-collectors-"))
    subprocess.run([str(PLAYBOOK), "site.yml", "--tags", "lab"], cwd=REPO, check=True,
                   capture_output=True)
    on, off = [], []
    for pair in range(args.pairs):
        on.append(campaign(results, f"on-{pair}", extra))
        off.append(campaign(results, f"off-{pair}", [*extra, "-e", PING_ONLY]))
    print("pair  median_rtt_all_collectors_us  median_rtt_ping_only_us  ratio")
    for pair, (a, b) in enumerate(zip(on, off, strict=True)):
        print(f"{pair:4d}  {a:28.1f}  {b:23.1f}  {a / b:5.3f}")
    ratio = statistics.median(on) / statistics.median(off)
    print(f"median over pairs: all collectors {statistics.median(on):.1f} µs, "
          f"ping only {statistics.median(off):.1f} µs, ratio {ratio:.3f} "
          f"({'within' if abs(ratio - 1) <= 0.05 else 'OUTSIDE'} the 5 % target)")
    print("median RTT: the 50th percentile of every answered probe of the campaign (µs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
