"""Benchmark: the full report build on synthetic campaigns of 10^6 and 10^7 RTT samples.

    python bench/bench_analysis.py                # 10^6 and 10^7, values at ping's 1 µs resolution
    python bench/bench_analysis.py --continuous   # values not quantised (slower bootstrap path)
    python bench/bench_analysis.py --sizes 1e5 1e6

Each size gets a results folder in a temporary directory (manifest.json,
data/rtt.parquet, data/ping_summary.parquet) with five scenarios shaped like
the seed study's: a bare-metal baseline, two slow virtio guests that are
equivalent, and two faster ELVIS-like guests that are equivalent, in blocks,
each repetition's median moved by a random drift. Building the
folder is not timed. The report is then built by ``python -m analysis`` in a
child process, timed by the wall clock (the target) and by its CPU time (user +
system, which a busy machine does not inflate); its peak resident set size is
the child's ``ru_maxrss`` from ``os.wait4`` (resource usage of that process
alone, the kernel's high-water mark, so nothing of the benchmark is counted).

Targets: 10^7 samples in <= 20 s and <= 2 GiB. Exit status 1 when missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kvmnetlab.store import Store

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 20.0
TARGET_BYTES = 2 * 1024**3

# name -> (number, virtualization, median RTT in µs, lognormal sigma)
SCENARIOS = {
    "baseline": (1, "none", 30.0, 0.25),
    "virtio": (2, "kvm", 500.0, 0.30),
    "virtio_elvis": (3, "kvm", 60.0, 0.30),
    "virtio_vpfring": (4, "kvm", 505.0, 0.30),
    "virtio_elvis_vpfring": (5, "kvm", 62.0, 0.30),
}
REPETITIONS = 3
LOSS = 0.001
DRIFT_SIGMA = 0.05  # between-repetition variation of the median (log scale), as real labs show


def build_campaign(root: Path, total: int, *, continuous: bool, seed: int = 1) -> None:
    """Write a campaign folder with ``total`` probes spread over the five scenarios."""
    (root / "data").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    per_rep = total // (len(SCENARIOS) * REPETITIONS)
    names = list(SCENARIOS)
    writer = None
    summary = []
    for code, (name, (_, _, median, sigma)) in enumerate(SCENARIOS.items()):
        for rep in range(1, REPETITIONS + 1):
            drift = rng.normal(0.0, DRIFT_SIGMA)
            rtt = rng.lognormal(np.log(median) + drift, sigma, per_rep)
            if not continuous:
                rtt = np.maximum(np.round(rtt), 1.0)  # ping prints 0.045 ms: 1 µs resolution
            answered = rng.random(per_rep) >= LOSS
            rtt[~answered] = np.nan
            table = pa.table(
                {
                    "scenario": pa.DictionaryArray.from_arrays(
                        np.full(per_rep, code, dtype=np.int32), pa.array(names)
                    ),
                    "repetition": np.full(per_rep, rep, dtype=np.int64),
                    "host": pa.array(["h1"] * per_rep),
                    "seq": np.arange(1, per_rep + 1, dtype=np.int64),
                    "timestamp_s": 1.7e9 + np.arange(per_rep) * 1e-3,
                    "answered": answered,
                    "rtt_us": rtt,
                    "duplicates": np.zeros(per_rep, dtype=np.int64),
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(root / "data" / "rtt.parquet", table.schema)
            writer.write_table(table)
            received = int(answered.sum())
            summary.append(
                {"scenario": name, "repetition": rep, "host": "h1", "transmitted": per_rep,
                 "received": received, "duplicates": 0, "errors": 0,
                 "loss_pct": 100.0 * (per_rep - received) / per_rep, "interval_s": 0.001,
                 "payload_bytes": 56}
            )
    assert writer is not None
    writer.close()
    pq.write_table(pa.Table.from_pylist(summary), root / "data" / "ping_summary.parquet")
    # a campaign as the store creates it, then its runs recorded done
    store = Store(root)
    store.create(
        root.name,
        {"repetitions": REPETITIONS, "ping_count": per_rep, "ping_interval_s": 0.001,
         "ping_payload_bytes": 56, "seed": seed},
        {name: {"number": number, "title": name, "virtualization": virt, "status": "run",
                "reason": None, "substitutions": []}
         for name, (number, virt, _, _) in SCENARIOS.items()},
        [], {"name": "synthetic", "profile": {}}, {"commit": "bench", "dirty": False})

    def done(manifest: dict) -> None:
        manifest.update(started_at="2025-11-26T00:00:00Z", finished_at="2025-11-26T01:00:00Z",
                        tool_versions={"ping": "synthetic"})
        manifest["runs"] = [
            {"scenario": name, "repetition": rep, "block": rep, "status": "done",
             "reason": None}
            for rep in range(1, REPETITIONS + 1) for name in SCENARIOS]

    store.update(done)


def run_report(root: Path) -> tuple[float, float, int, int]:
    """Build the report in a child process.

    Returns (wall seconds, CPU seconds (user + system), peak RSS bytes, exit status).
    """
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "analysis", str(root)], cwd=REPO,
                             stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss * 1024, child.returncode  # ru_maxrss: KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7],
                        help="total RTT samples per campaign (default 1e6 1e7)")
    parser.add_argument("--continuous", action="store_true",
                        help="do not round RTTs to 1 µs (exercises the m-out-of-n bootstrap)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kvmnetlab-bench-") as tmp:
        for size in (int(s) for s in args.sizes):
            root = Path(tmp) / f"bench-{size:.0e}".replace("+", "")
            t0 = time.perf_counter()
            build_campaign(root, size, continuous=args.continuous)
            built = time.perf_counter() - t0
            seconds, cpu, rss, code = run_report(root)
            if code != 0:
                print(f"report failed for {size} samples (exit {code})", file=sys.stderr)
                return 2
            rows.append((size, seconds, rss))
            mib = (root / "data" / "rtt.parquet").stat().st_size / 2**20
            print(f"{size:>12,d} samples  report {seconds:6.2f} s (CPU {cpu:6.2f} s)  "
                  f"peak RSS {rss / 2**20:7.0f} MiB"
                  f"  (folder built in {built:.1f} s, rtt.parquet {mib:.0f} MiB)", flush=True)
    if len(rows) >= 2:
        (n0, t0, r0), (n1, t1, r1) = rows[0], rows[-1]
        print(f"ratio {n1:.0e}/{n0:.0e}: time x{t1 / t0:.2f}, peak RSS x{r1 / r0:.2f}")
    size, seconds, rss = rows[-1]
    ok = seconds <= TARGET_SECONDS and rss <= TARGET_BYTES
    print(f"target for the largest size ({size:,d}): <= {TARGET_SECONDS:g} s and <= 2 GiB: "
          + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
