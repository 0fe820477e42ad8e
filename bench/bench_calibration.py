"""Benchmark: the verdicts' error rates, the previous method beside the current one.

    python bench/bench_calibration.py                    # all three parts, about 10 min
    python bench/bench_calibration.py --parts within --datasets 4000 --repetitions 2 3 5 10
    python bench/bench_calibration.py --parts compare nights --history DIR

Three parts, each printing old and new side by side in one run:

- ``within``: within one campaign, the repetition method beside pooled probes
  (below);
- ``compare``: ``--compare`` across campaigns, the previous chain (repetitions as
  independent draws of the lab) beside the night as the unit: false "regressed"
  on unchanged labs at 5 and 10 repetitions, and "unchanged" / "regressed" for
  planted +10 % and +20 % changes (bench/calibration_compare.py);
- ``nights``: nightly change points, the previous detector (Student's t) beside
  the current one (whitened max-t, FDR, key-metric alerts): false alarms per
  lab-month on pure-noise histories at phi 0, 0.3 and 0.5, the alerts from one
  outlier night, and the detection of +5, +10 and +20 % steps within 5 nights
  (bench/calibration_nights.py).

Within a campaign:

Reads the campaigns captured on the embedded lab in tests/analysis_data/campaigns/
(each with a CAPTURE.md) and builds, from whole repetitions of one configuration:

- A/A datasets (two pseudo-scenarios of R repetitions each, drawn without
  replacement from one pool): the rate of "different" is the false-positive rate;
- A/B datasets (one side's RTTs multiplied by 1 + shift): at the margin (10 %)
  the rate of "equivalent" is the equivalence verdict's false-positive rate;
  above it the rate of "different" is the power;
- the campaign's own A/A control pair, resampled by whole blocks with the two
  labels swapped at random within each block (paired as the report pairs it);
- the coverage of the 95 % intervals of a typical median (t over repetitions,
  and the two-level bootstrap), against the typical median of the whole pool.

Every dataset is judged by both methods (analysis/calibration.py), so the
figures are measured side by side in one run, with their binomial standard
errors and the ratio of the two methods' false-positive rates.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis import calibration as cal  # noqa: E402
from analysis import replication, stats  # noqa: E402
from analysis.load import load_campaign  # noqa: E402
from analysis.model import rtt_by_repetition  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
import calibration_compare  # noqa: E402
import calibration_nights  # noqa: E402

PARTS = ("within", "compare", "nights")

DATA = REPO / "tests" / "analysis_data" / "campaigns"
ALPHA = 0.05


def pools() -> dict[str, list[np.ndarray]]:
    """One pool per configuration: scenarios that resolved to the same effective configuration
    on the same guest are pooled (a natural A/A), every other scenario on its own."""
    out: dict[str, list[np.ndarray]] = {}
    for folder in sorted(p for p in DATA.iterdir() if (p / "manifest.json").exists()):
        campaign = load_campaign(folder)
        by = cal.repetition_pools(campaign.rtt, campaign.scenario_order)
        frame = campaign.scenarios.loc[campaign.scenarios["scenario"].isin(list(by))]
        groups = frame.groupby(frame["effective"].where(frame["effective"] != "",
                                                        frame["scenario"]), sort=False)
        for _, group in groups:
            names = [n for n in group["scenario"] if not campaign.controls.get(n)]
            if not names:
                continue
            out[f"{campaign.campaign_id}: {'+'.join(names)}"] = [x for n in names for x in by[n]]
    return out


def control_pairs() -> list[tuple[str, list[np.ndarray], list[np.ndarray]]]:
    """(label, original's repetitions, control's), aligned by block, for each A/A control."""
    out = []
    for folder in sorted(p for p in DATA.iterdir() if (p / "manifest.json").exists()):
        campaign = load_campaign(folder)
        for control, original in campaign.controls.items():
            blocks = campaign.blocks
            reps = rtt_by_repetition(campaign.rtt, [original, control])
            common = sorted(
                (blocks[(original, r)], r, q) for r in reps[original] for q in reps[control]
                if blocks.get((original, r)) == blocks.get((control, q)))
            a = [reps[original][r] for _, r, _ in common]
            b = [reps[control][q] for _, _, q in common]
            out.append((f"{campaign.campaign_id}: {original} vs {control}", a, b))
    return out


def control_rates(a, b, r: int, datasets: int, seed: int) -> dict[str, float]:
    """Rates of 'different' on R blocks drawn from the control pair's, the two labels swapped
    at random within each block (under the A/A hypothesis the labels are exchangeable within a
    block; without the swap every subsample would inherit this campaign's own chance
    difference, and the rate would measure that, not the method)."""
    rng = np.random.default_rng(seed)
    counts = {m: 0 for m in cal.METHODS}
    margin = replication.DEFAULT_MARGIN
    for _ in range(datasets):
        idx = rng.choice(len(a), size=r, replace=False)
        swap = rng.random(r) < 0.5
        ra = [b[i] if s else a[i] for i, s in zip(idx, swap, strict=True)]
        rb = [a[i] if s else b[i] for i, s in zip(idx, swap, strict=True)]
        counts["repetition"] += cal.repetition_verdict(ra, rb, margin, ALPHA)[0]
        counts["pooled probes"] += cal.pooled_verdict(ra, rb, margin, ALPHA)[0]
    return {m: c / datasets for m, c in counts.items()}


def coverage(pool, r: int, datasets: int, seed: int, resamples: int) -> dict[str, float]:
    """Share of intervals for the typical median that cover the pool's own typical median."""
    medians = np.array([float(stats.quantile_sorted(x, 0.5)) for x in pool])
    truth = math.exp(np.log(medians).mean())
    rng = np.random.default_rng(seed)
    hit = {"t": 0, "two-level bootstrap": 0, "per-probe bootstrap": 0}
    for k in range(datasets):
        idx = rng.choice(len(pool), size=r, replace=len(pool) < r)
        by_rep = {"a": {i + 1: pool[j] for i, j in enumerate(idx)}}
        row = replication.scenario_intervals(by_rep, n_resamples=resamples, seed=k).iloc[0]
        hit["t"] += row["t_low_us"] <= truth <= row["t_high_us"]
        hit["two-level bootstrap"] += row["boot_low_us"] <= truth <= row["boot_high_us"]
        pooled = np.sort(np.concatenate([pool[j] for j in idx]))
        reps = stats.bootstrap_median(pooled, resamples, rng)
        low, high = np.quantile(reps, [0.025, 0.975])
        hit["per-probe bootstrap"] += low <= truth <= high
    return {k: v / datasets for k, v in hit.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", type=int, default=1000,
                        help="datasets per pool, R and shift (default 1000)")
    parser.add_argument("--repetitions", type=int, nargs="+", default=[2, 3, 5],
                        help="repetitions per pseudo-scenario (default 2 3 5)")
    parser.add_argument("--shifts", type=float, nargs="+",
                        default=[0.0, 0.05, 0.10, 0.20, 0.50, 1.0],
                        help="relative shifts of B (default 0 0.05 0.10 0.20 0.50 1.0)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS,
                        help="what to measure (default: all): within a campaign, --compare "
                             "across campaigns, nightly change points")
    parser.add_argument("--compare-datasets", type=int, default=200,
                        help="datasets per cell of the --compare part (default 200)")
    parser.add_argument("--months", type=int, default=12,
                        help="simulated lab-months per phi in the nightly part (default 12)")
    parser.add_argument("--trials", type=int, default=30,
                        help="planted steps per size in the nightly part (default 30)")
    parser.add_argument("--history", type=Path, default=None,
                        help="a recorded nightly history (its nights.parquet) for the nightly "
                             "part's noise levels, instead of the stored campaigns")
    args = parser.parse_args()
    t0 = time.perf_counter()
    if "within" in args.parts:
        within(args)
    if "compare" in args.parts:
        print("\n== across campaigns: --compare, the previous chain beside the new ==")
        frame = calibration_compare.measure(repetitions=(5, 10), datasets=args.compare_datasets,
                                            seed=args.seed)
        calibration_compare.print_table(
            frame, calibration_compare.stored_model(calibration_compare.stored_nights()))
    if "nights" in args.parts:
        print("\n== nightly change points: false alarms per lab-month and detection, "
              "previous method beside the new ==")
        for line in calibration_nights.report_lines(months=args.months, trials=args.trials,
                                                    history_dir=args.history, seed=args.seed,
                                                    phis=(0.0, 0.3, 0.5)):
            print(line, flush=True)
    print(f"\n(measured in {time.perf_counter() - t0:.0f} s)")
    return 0


def within(args: argparse.Namespace) -> None:
    """Within one campaign: the repetition method beside pooled probes."""

    found = pools()
    print("pools (whole repetitions of one configuration):")
    for name, pool in found.items():
        print(f"  {name}: {len(pool)} repetitions, {sum(x.size for x in pool):,} probes")
    usable = {k: v for k, v in found.items() if len(v) >= 2 * min(args.repetitions)}
    res = cal.calibrate(usable, repetitions=args.repetitions, shifts=args.shifts,
                        datasets=args.datasets, alpha=ALPHA, seed=args.seed)
    res = res.loc[~res["with_replacement"]]

    def pooled_rate(frame: pd.DataFrame, column: str) -> tuple[float, int]:
        n = int(frame["datasets"].sum())
        return float((frame[column] * frame["datasets"]).sum() / max(n, 1)), n

    print(f"\nrates at alpha = {ALPHA}, margin ±10 %, over all pools without replacement "
          "(± one binomial standard error):")
    header = (f"{'method':<14} {'R':>3} {'A/A: different':>18} {'A/A: equivalent':>16} "
              f"{'equiv. at +10 %':>16}" + "".join(f"{f'diff +{s:.0%}':>11}"
                                                  for s in args.shifts if s > 0))
    print(header)
    ratios = []
    for r in args.repetitions:
        fprs = {}
        for method in cal.METHODS:
            sel = res.loc[(res["method"] == method) & (res["repetitions"] == r)]
            if sel.empty:
                continue
            fpr, n = pooled_rate(sel.loc[sel["shift"] == 0.0], "rate_different")
            eq_aa, _ = pooled_rate(sel.loc[sel["shift"] == 0.0], "rate_equivalent")
            eq_m, _ = pooled_rate(sel.loc[np.isclose(sel["shift"], 0.10)], "rate_equivalent")
            power = [pooled_rate(sel.loc[np.isclose(sel["shift"], s)], "rate_different")[0]
                     for s in args.shifts if s > 0]
            fprs[method] = fpr
            print(f"{method:<14} {r:>3} {fpr:>9.3f} ± {cal.binomial_se(fpr, n):.3f}   "
                  f"{eq_aa:>16.3f} {eq_m:>16.3f}" + "".join(f"{p:>11.3f}" for p in power))
        if len(fprs) == 2:
            ratios.append((r, fprs["pooled probes"], fprs["repetition"]))
    print("\nfalse-positive rate, pooled probes / repetition method:")
    for r, pooled, rep in ratios:
        ratio = f"x{pooled / rep:.1f}" if rep > 0 else "repetition method made none"
        print(f"  R = {r}: {pooled:.3f} / {rep:.3f}  ({ratio})")
    print("  (the pooled TOST's margin is 10 % of the average of the two means, so a 10 % shift "
          "is just inside it: its 'equiv. at +10 %' is not a false-positive rate)")

    print("\nper pool, R = 3, A/A false-positive rate (repetition | pooled probes):")
    for name in usable:
        sel = res.loc[(res["pool"] == name) & (res["repetitions"] == 3) & (res["shift"] == 0.0)]
        if not sel.empty:
            v = sel.set_index("method")["rate_different"]
            print(f"  {name}: {v['repetition']:.3f} | {v['pooled probes']:.3f}")

    for label, a, b in control_pairs():
        print(f"\nA/A control, resampled by whole blocks, labels swapped at random within each "
              f"({label}, {len(a)} blocks):")
        for r in (x for x in args.repetitions if x <= len(a)):
            rates = control_rates(a, b, r, args.datasets, args.seed)
            print(f"  R = {r}: different, repetition {rates['repetition']:.3f} | pooled probes "
                  f"{rates['pooled probes']:.3f}")

    print("\ncoverage of 95 % intervals for the typical median (truth: the pool's own):")
    for name, pool in usable.items():
        for r in (x for x in (3, 5) if 2 * x <= len(pool)):
            cov = coverage(pool, r, min(args.datasets, 300), args.seed, 400)
            print(f"  {name}, R = {r}: " + ", ".join(f"{k} {v:.2f}" for k, v in cov.items()))


if __name__ == "__main__":
    sys.exit(main())
