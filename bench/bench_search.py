"""Benchmark: the throughput search against a linear sweep at the same granularity.

    sudo python bench/bench_search.py                    # 60-byte frames, tbf at 2 Mbit/s
    sudo python bench/bench_search.py --frame-bytes 500 --rate-bit 8000000 --granularity 0.05

Both run on the same real link, one after the other, in one invocation: three
network namespaces (tests/collectors/shaped_link.py), the router's egress shaped by ``tbf``
to a known rate; trafgen sends, tcpdump counts. Each method is the whole search
program (collectors/agents/throughput.py) with one call on each end, exactly as
the campaign runs it, with the campaign's default trial lengths (0.3 s, one
validation of 0.5 s) and no RTT probes under load:

- ``binary``: the search (MLRsearch-like: bisection, the receive-rate hint after a
  loss, upward expansion after a pass);
- ``linear``: offered rates from the minimum upwards in steps of the granularity
  until a trial loses more than the PDR ratio, then the same validation.

For each: the trials run (search and validation), the wall time of the whole
search (s, from the sender's start record to its result), the NDR and PDR found
(frames/s) and their distance from the shaped rate (%). Then the ratios linear /
binary of trials and of wall time. Root only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.collectors.shaped_link import run_search, shaped_link  # noqa: E402


def one(method: str, args: argparse.Namespace, workdir: Path) -> dict:
    started = time.monotonic()
    result, trials, _rx = run_search(
        workdir, args.frame_bytes, method=method, min_pps=args.min_pps, max_pps=args.max_pps,
        granularity=args.granularity, trial_s=0.3, validation_s=0.5, settle_s=0.1, max_trials=500,
        load_fractions=[])
    wall = time.monotonic() - started
    tx = [json.loads(line) for line in (workdir / "tx.jsonl").read_text().splitlines()]
    searched = tx[-1]["at"] - tx[0]["at"]
    return {"method": method, "trials": len(trials), "wall_s": wall, "search_s": searched,
            "ndr": result["ndr"]["pps"], "pdr": result["pdr"]["pps"],
            "status": result["ndr"]["status"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frame-bytes", type=int, default=60)
    parser.add_argument("--rate-bit", type=int, default=2_000_000,
                        help="tbf rate of the shaped link (bit/s)")
    parser.add_argument("--granularity", type=float, default=0.1)
    parser.add_argument("--min-pps", type=float, default=200)
    parser.add_argument("--max-pps", type=float, default=40_000)
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces)")
    shaped = args.rate_bit / (8 * args.frame_bytes)
    print(f"link: tbf {args.rate_bit} bit/s, {args.frame_bytes}-byte frames -> "
          f"{shaped:.1f} frames/s; search {args.min_pps:g}..{args.max_pps:g} frames/s, "
          f"granularity {args.granularity:g}")
    rows = []
    with shaped_link() as shape, tempfile.TemporaryDirectory() as tmp:
        shape(args.rate_bit, args.frame_bytes)
        for method in ("binary", "linear"):
            workdir = Path(tmp) / method
            workdir.mkdir()
            rows.append(one(method, args, workdir))
    print(f"{'method':8} {'trials':>6} {'search s':>9} {'wall s':>7} {'NDR fr/s':>9} "
          f"{'NDR err %':>9} {'PDR fr/s':>9} status")
    for r in rows:
        err = 100 * (r["ndr"] / shaped - 1) if r["ndr"] else float("nan")
        print(f"{r['method']:8} {r['trials']:6d} {r['search_s']:9.1f} {r['wall_s']:7.1f} "
              f"{r['ndr'] or float('nan'):9.1f} {err:9.1f} {r['pdr'] or float('nan'):9.1f} "
              f"{r['status']}")
    binary, linear = rows
    print(f"linear / binary: trials x{linear['trials'] / binary['trials']:.1f}, "
          f"search time x{linear['search_s'] / binary['search_s']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
