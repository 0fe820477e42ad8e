"""Benchmark: change-point detection over a nightly history of 1 000 nights, old and new.

    python bench/bench_changepoints.py                   # 1 000 nights x 10 scenarios x 5 metrics
    python bench/bench_changepoints.py --nights 2000 --scenarios 20
    python bench/bench_changepoints.py --methods whitened

Builds a synthetic catalog (analysis/history.py's columns) in a temporary folder:
every (scenario, metric) series is a level with Gaussian night-to-night noise of
3 % of it and 0 to 3 steps of 10 % to 30 % at random nights; the parameters
change once (at 70 % of the nights: a second segment, with its own level); one
night in 50 failed (an outcome row). Each night's ``context`` is the context of
the captured Quickstart campaign (tests/analysis_data/campaigns/quickstart1,
about 6 KB of JSON) with its own seed, and a commit that changes every 40
nights. The catalog is written with ``update_catalog`` (not timed).

The catalog is built in one child process; then, for each method (``student``:
the previous detector; ``whitened``: the current one), a child reads it
(``read_catalog``) and runs ``changepoints.detect`` with the default settings, as
the nightly driver does, side by side. It reports the wall-clock and CPU
time (user + system) of ``detect``, the peak of Python's allocations during
``detect`` (tracemalloc: NumPy and pandas buffers included, Arrow's not), and
its peak resident set size (``ru_maxrss`` from ``os.wait4``: interpreter,
imports, the catalog read and ``detect``). The parent stays small (a child's
``ru_maxrss`` starts at its parent's resident size when it was started), and
checks the changes found against the steps it planted.

Targets: ``detect`` in <= 10 s and <= 1 GiB. Exit status 1 when missed.
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

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 10.0
TARGET_BYTES = 1024**3
CAPTURED = REPO / "tests" / "analysis_data" / "campaigns" / "quickstart1"
# metric -> typical level (its unit: history.METRICS)
LEVELS = {"rtt_p50_us": 600.0, "rtt_p99_us": 2500.0, "ping_loss_pct": 0.5,
          "rate_loss_pct": 5.0, "ndr_pps": 1.0e6}
NOISE = 0.03
FAILED_EVERY = 50
COMMIT_EVERY = 40
PARAMETERS_CHANGE_AT = 0.7

CHILD = """
import json, sys, time, tracemalloc
from analysis import changepoints, history

def catalog_bytes(frame):
    shallow = int(frame.drop(columns="context").memory_usage(deep=True).sum())
    texts = {id(t): len(t.encode()) for t in frame["context"] if t is not None}
    return shallow + 8 * len(frame) + sum(texts.values())

catalog = history.read_catalog(sys.argv[1])
tracemalloc.start()
wall, cpu = time.perf_counter(), time.process_time()
changes = changepoints.detect(catalog, method=sys.argv[3])
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
changes.to_parquet(sys.argv[2], index=False)
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "traced_peak_bytes": peak,
                  "rows": len(catalog), "catalog_bytes": catalog_bytes(catalog),
                  "changes": int((changes["kind"] == "change").sum()),
                  "outliers": int((changes["kind"] == "outlier").sum()),
                  "alerting": int(changes["alerting"].sum())}))
"""


def night_name(i: int) -> str:
    import datetime as dt

    day = dt.date(2024, 1, 1) + dt.timedelta(days=i)
    return day.strftime("%Y%m%dT021500Z")


def build_catalog(nights: int, scenarios: int, seed: int):
    """The catalog and the planted steps (scenario, metric, night index, factor)."""
    import numpy as np
    import pandas as pd

    from analysis import history

    rng = np.random.default_rng(seed)
    template = json.loads(history.night_rows(CAPTURED, night="x")["context"].iloc[0])
    names = [night_name(i) for i in range(nights)]
    switch = int(nights * PARAMETERS_CHANGE_AT)
    contexts, params = [], []
    for i in range(nights):
        template["git"]["commit"] = f"{i // COMMIT_EVERY:040x}"
        template["parameters"]["ping_count"] = 200 if i < switch else 1000
        template["parameters"]["seed"] = i  # drawn afresh every night: every context differs
        contexts.append(history.canonical(template))
        params.append("p-before" if i < switch else "p-after")
    failed = np.arange(nights) % FAILED_EVERY == FAILED_EVERY - 1
    done = np.flatnonzero(~failed)
    frames, planted = [], []
    for s in range(scenarios):
        for metric, level in LEVELS.items():
            x = level * (1 + rng.normal(0, NOISE, nights))
            x[switch:] *= 1.5  # the second segment's own level: never a change
            for k in np.sort(rng.choice(np.arange(50, nights - 50), rng.integers(0, 4), False)):
                factor = float(rng.choice([-1, 1]) * rng.uniform(0.1, 0.3) + 1)
                x[k:] *= factor
                planted.append((f"s{s:02d}", metric, int(k), factor))
            frames.append(pd.DataFrame({
                "night": np.asarray(names, dtype=object)[done], "scenario": f"s{s:02d}",
                "metric": metric, "unit": history.METRICS[metric], "value": x[done],
                "sd": x[done] * NOISE, "n_reps": 3, "_i": done}))
    rows = pd.concat(frames, ignore_index=True)
    rows["started_at"] = rows["night"]
    rows["campaign_id"] = rows["night"]
    rows["outcome"] = "done"
    rows["reason"] = None
    rows["params_hash"] = np.asarray(params, dtype=object)[rows["_i"]]
    rows["lab_hash"] = "lab"
    rows["commit"] = [f"{i // COMMIT_EVERY:040x}" for i in rows["_i"]]
    # the rows of a night share its context string, as history.night_rows gives them
    rows["context"] = pd.Series(np.asarray(contexts, dtype=object)[rows["_i"]], dtype=object)
    outcome = [history.outcome_row(night=names[i], started_at=None, outcome="failed",
                                   reason="guest did not boot") for i in np.flatnonzero(failed)]
    catalog = pd.concat([history.typed(rows), *outcome], ignore_index=True)
    planted_frame = pd.DataFrame(planted, columns=["scenario", "metric", "k", "factor"])
    return catalog, planted_frame


def build(folder: Path, nights: int, scenarios: int, seed: int) -> None:
    """Child process: write the catalog and the planted steps into ``folder``."""
    from analysis import history

    built = time.perf_counter()
    catalog, planted = build_catalog(nights, scenarios, seed)
    history.update_catalog(folder, catalog)
    planted.to_json(folder / "planted.json", orient="records")
    print(json.dumps({"rows": len(catalog), "seconds": time.perf_counter() - built}))


def recall(changes, planted, nights: int) -> tuple[int, int, int]:
    """(planted steps found within one night, planted steps, other changes found).

    A planted step at a failed night's index shows at the next done night: nights are
    matched by index among all nights."""
    index = {night_name(i): i for i in range(nights)}
    found = {(r.scenario, r.metric, index[r.night]) for r in changes.itertuples()
             if r.kind == "change"}
    hit, used = 0, set()
    for r in planted.itertuples():
        near = [(r.scenario, r.metric, r.k + d) for d in (0, 1, -1, 2)]
        match = next((n for n in near if n in found and n not in used), None)
        if match is not None:
            hit += 1
            used.add(match)
    return hit, len(planted), len(found - used)


def run(args: list[str]) -> tuple[dict, os.struct_rusage | None]:
    """Run a child Python, return its JSON line and resource usage (None when it failed)."""
    child = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    _, status, usage = os.wait4(child.pid, 0)
    out = child.stdout.read()
    child.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        return {}, None
    return json.loads(out.strip().splitlines()[-1]), usage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=1000)
    parser.add_argument("--scenarios", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--methods", nargs="+", default=["student", "whitened"],
                        choices=["student", "whitened"])
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.build:
        build(args.build, args.nights, args.scenarios, args.seed)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-changepoints-") as tmp:
        built, usage = run([__file__, "--build", tmp, "--nights", str(args.nights),
                            "--scenarios", str(args.scenarios), "--seed", str(args.seed)])
        if usage is None:
            print("building the catalog failed", file=sys.stderr)
            return 1
        size = (Path(tmp) / "nights.parquet").stat().st_size
        print(f"catalog: {args.nights} nights x {args.scenarios} scenarios x {len(LEVELS)} "
              f"metrics = {built['rows']:,d} rows, {size / 2**20:.1f} MiB on disk (built in "
              f"{built['seconds']:.1f} s, not timed)")
        import pandas as pd

        planted = pd.read_json(Path(tmp) / "planted.json", orient="records")
        results = {}
        for method in args.methods:
            out = Path(tmp) / f"changes-{method}.parquet"
            figures, usage = run(["-c", CHILD, tmp, str(out), method])
            if usage is None:
                print(f"detect ({method}) failed in the child process", file=sys.stderr)
                return 1
            results[method] = (figures, usage, pd.read_parquet(out))

    met = True
    for method, (figures, usage, changes) in results.items():
        rss = usage.ru_maxrss * 1024  # kibibytes on Linux
        hit, total, other = recall(changes, planted, args.nights)
        wall, traced = figures["wall_s"], figures["traced_peak_bytes"]
        print(f"-- method {method}")
        print(f"catalog in memory: {figures['catalog_bytes'] / 2**20:.0f} MiB (pandas, "
              "contexts counted once per distinct text)")
        print(f"detect: {wall:.2f} s wall, {figures['cpu_s']:.2f} s CPU (user + system); "
              f"{figures['changes']} changes ({figures['alerting']} alerting), "
              f"{figures['outliers']} outlier nights")
        print(f"detect: peak of traced allocations {traced / 2**20:.1f} MiB; child process "
              f"peak RSS {rss / 2**20:.0f} MiB (interpreter, imports, catalog read and detect)")
        print(f"planted steps found within a night: {hit} of {total} "
              f"({100 * hit / total:.0f} %); other changes: {other}")
        time_ratio = wall / TARGET_SECONDS
        mem_ratio = rss / TARGET_BYTES
        print(f"against the targets (<= {TARGET_SECONDS:g} s, <= 1 GiB): time "
              f"{time_ratio:.2f} x target, peak RSS {mem_ratio:.2f} x target (traced "
              f"{traced / TARGET_BYTES:.3f} x)")
        met = met and time_ratio <= 1 and mem_ratio <= 1
    print("targets met" if met else "TARGET MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
