"""Calibration of nightly change points: false alarms per month per lab, and step detection.

Functions for bench/bench_calibration.py (:func:`report_lines` gives the lines below, old
and new chain side by side; :func:`false_alarms`, :func:`detection` the figures), and a
small command line of its own:

    python bench/calibration_nights.py                  # the defaults: a few minutes
    python bench/calibration_nights.py --months 40 --trials 80     # tighter figures
    python bench/calibration_nights.py --history tests/analysis_data/history/aa-embedded

What is simulated. A *lab* is the series its dashboard has: one per (scenario, metric)
of a real night (:func:`lab_series`: analysis.history.night_rows of the stored campaign
with the most series, 47 for tests/analysis_data/campaigns/quickstart1; or of the last
night of a recorded history, :func:`load_history`). Each series keeps its level and gets
pure noise: a night's value is level * (1 + e_t), e an AR(1) sequence (coefficient phi,
stationary from the first night) with the series' relative night-to-night sd
(:func:`noise_levels`: the sd of a night's mean over its repetitions, sd / sqrt(n_reps),
combined with the spread of the metric between the stored campaigns beyond that; from a
recorded history, the sd of each series' night values). Series without spread (losses of
0 %) stay constant. :func:`observed_phi` gives a recorded history's own AR(1)
coefficient, as the detector estimates it.

False alarms (:func:`false_alarms`): a history of ``warmup`` nights, then a month of
``MONTH_NIGHTS`` (30) nights, one a day; after each night the whole history goes through
the detector (:func:`analysis.changepoints.changes_of`, what ``detect`` runs for one lab)
and, as nightly/publish.py does, an alerting change whose (scenario, metric, night) was not
reported before (nor within ``nightly.publish.SAME_CHANGE_DAYS`` nights of one) is a new
alarm, counted when it is a regression (a REGRESSION line, exit 1; the changes of the
warm-up are taken as reported). The figure is new alarms per lab-month, with its
standard error (the sd of the per-month counts / sqrt(months)).

Detection (:func:`detection`): the same lab, one key series (RTT p50 of the first scenario)
at ``noise`` relative sd, a step of +5/+10/+20 % after ``warmup`` nights; the detector runs
after each night from the step on, and the step is *found* at the first night an alerting
change of that series lies within ``TOLERANCE_NIGHTS`` of it. Reported: the fraction found
within 5 nights (the step's night counts as the first), with its binomial standard error,
and the median delay in nights (over the trials; "> N" when more than half were not found
within the ``horizon``).

Outlier nights (:func:`outlier_alarms`): one night at 1.5 times the level among the last
three of 40 (no change otherwise): the share of such series that alert.

Old and new chain: ``method`` "student" is the previous detector (Student's t at p 0.001,
every change alerts), "whitened" the current one (analysis/changepoints.py).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from analysis import changepoints, history  # noqa: E402
from nightly.publish import SAME_CHANGE_DAYS  # noqa: E402

CAMPAIGNS = REPO / "tests" / "analysis_data" / "campaigns"
STORED = ("calib10", "quickstart1", "small2")
MONTH_NIGHTS = 30
TOLERANCE_NIGHTS = 2
PHIS = (0.0, 0.3, 0.5, 0.6)
STEPS = (0.05, 0.10, 0.20)
METHODS = (changepoints.METHOD_STUDENT, changepoints.METHOD_WHITENED)
STEP_METRIC = "rtt_p50_us"
REPORTED_WITHIN = SAME_CHANGE_DAYS  # nights (one a day), nightly/publish.py's rule


@dataclass(frozen=True)
class LabSeries:
    scenario: str
    metric: str
    unit: str
    level: float
    noise: float  # relative sd of a night's value (0: constant)


# --------------------------------------------------------------------------- the lab


def stored_catalog(names: Iterable[str] = STORED) -> pd.DataFrame:
    """The catalog rows of the stored campaigns, one night each (night = the folder name)."""
    return pd.concat([history.night_rows(CAMPAIGNS / n, night=n) for n in names],
                     ignore_index=True)


def load_history(folder: str | Path) -> pd.DataFrame:
    """A recorded history's catalog (``<folder>/nights.parquet``, as the nightly driver
    writes it; e.g. tests/analysis_data/history/aa-embedded)."""
    return history.read_catalog(folder)


def noise_levels(catalog: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, metric) of the night with the most series: level, unit and relative
    night-to-night sd.

    With several nights of one segment per series (a recorded history): the sd of the
    series' night values over their mean. With one night per campaign (the stored
    campaigns): sd / sqrt(n_reps) / value of that night, combined (root sum of squares)
    with the metric's between-campaign spread beyond it: per metric, the median over
    scenarios of sqrt(max(0, var(log value across campaigns) - mean within^2)).
    """
    done = catalog.loc[(catalog["outcome"] == "done") & catalog["metric"].notna()].copy()
    done = done.loc[np.isfinite(done["value"].to_numpy(dtype=float))]
    reference = done.groupby("night").size().idxmax()
    ref = done.loc[done["night"] == reference]
    counts = done.groupby(["scenario", "metric"])["value"].transform("size")
    if (counts >= 5).all():  # a history: the nights' own spread
        spread = done.groupby(["scenario", "metric"])["value"].agg(["mean", "std"])
        rel = (spread["std"] / spread["mean"].abs()).fillna(0.0)
        return pd.DataFrame([
            {"scenario": r.scenario, "metric": r.metric, "unit": r.unit, "level": r.value,
             "noise": float(rel.get((r.scenario, r.metric), 0.0))}
            for r in ref.itertuples()])
    within = done["sd"] / np.sqrt(done["n_reps"].clip(lower=1)) / done["value"].abs()
    done["within"] = within.replace([np.inf, -np.inf], np.nan).fillna(0.0)
    positive = done.loc[done["value"] > 0]
    between = {}
    for metric, rows in positive.groupby("metric"):
        per = []
        for _, g in rows.groupby("scenario"):
            if len(g) >= 2:
                excess = float(np.log(g["value"]).var(ddof=1) - (g["within"] ** 2).mean())
                per.append(math.sqrt(max(excess, 0.0)))
        between[metric] = float(np.median(per)) if per else 0.0
    out = []
    for r in ref.itertuples():
        w = float(done.loc[r.Index, "within"])
        noise = math.hypot(w, between.get(r.metric, 0.0)) if r.value != 0 else 0.0
        out.append({"scenario": r.scenario, "metric": r.metric, "unit": r.unit,
                    "level": float(r.value), "noise": noise})
    return pd.DataFrame(out)


def observed_phi(catalog: pd.DataFrame) -> float:
    """The nights' AR(1) coefficient of a recorded history, as the detector estimates it
    (the median over series of the bias-corrected lag-1 autocorrelation, no change
    assumed); NaN with fewer than 8 nights per series."""
    done = catalog.loc[(catalog["outcome"] == "done") & catalog["metric"].notna()]
    parts = []
    for _, g in done.sort_values("night").groupby(["scenario", "metric"]):
        x = g["value"].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        if x.size >= 8:
            parts.append(changepoints.segment_residuals(x, []))
    return changepoints.pooled_phi(parts) if parts else math.nan


def lab_series(levels: pd.DataFrame) -> list[LabSeries]:
    return [LabSeries(r.scenario, r.metric, r.unit, float(r.level), float(r.noise))
            for r in levels.itertuples()]


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """n values of a stationary AR(1) sequence with unit variance."""
    w = rng.standard_normal(n)
    e = np.empty(n)
    e[0] = w[0]
    scale = math.sqrt(1 - phi * phi)
    for t in range(1, n):
        e[t] = phi * e[t - 1] + scale * w[t]
    return e


def simulate(lab: list[LabSeries], nights: int, phi: float, rng: np.random.Generator
             ) -> list[np.ndarray]:
    """One pure-noise history of every series of ``lab``."""
    return [s.level * (1 + s.noise * ar1(rng, nights, phi)) if s.noise > 0
            else np.full(nights, s.level) for s in lab]


NIGHT_NAMES = np.array([f"n{i:05d}" for i in range(100_000)], dtype=object)


def run_detector(lab: list[LabSeries], values: list[np.ndarray], upto: int, method: str,
                 fdr: float | None = None) -> list[dict]:
    """The alerting regressions of the first ``upto`` nights (one lab, one segment): what
    fails a night (a REGRESSION line, exit 1)."""
    items = [changepoints.SeriesData(key=(0, s.scenario, s.metric), unit=s.unit,
                                     nights=NIGHT_NAMES[:upto], values=v[:upto])
             for s, v in zip(lab, values, strict=True)]
    rows, _ = changepoints.changes_of(items, method=method,
                                      fdr=changepoints.DEFAULT_FDR if fdr is None else fdr)
    return [r for r in rows if r["alerting"] and r["direction"] == "regression"]


# --------------------------------------------------------------------------- false alarms


def same_change(a: tuple[str, str, str, int], b: tuple[str, str, str, int],
                tolerance: int = REPORTED_WITHIN) -> bool:
    """Whether two (scenario, metric, direction, night index) are one change, as
    nightly/publish.py judges a change already reported (its nights within ``tolerance``)."""
    return a[:3] == b[:3] and abs(a[3] - b[3]) <= tolerance


def alarm_key(row: dict) -> tuple[str, str, str, int]:
    return row["scenario"], row["metric"], row["direction"], int(row["night"][1:])


def false_alarms(lab: list[LabSeries], *, phi: float, method: str, months: int,
                 warmup: int = 30, seed: int = 0, fdr: float | None = None) -> np.ndarray:
    """New alerting regressions in each of ``months`` simulated lab-months of pure noise."""
    rng = np.random.default_rng([seed, round(phi * 1000), METHODS.index(method)])
    counts = np.zeros(months, dtype=np.int64)
    for m in range(months):
        values = simulate(lab, warmup + MONTH_NIGHTS, phi, rng)
        reported = [alarm_key(r) for r in run_detector(lab, values, warmup, method, fdr)]
        for upto in range(warmup + 1, warmup + MONTH_NIGHTS + 1):
            for r in run_detector(lab, values, upto, method, fdr):
                key = alarm_key(r)
                if not any(same_change(key, old) for old in reported):
                    reported.append(key)
                    counts[m] += 1
    return counts


# --------------------------------------------------------------------------- detection


def detection(lab: list[LabSeries], *, phi: float, method: str, step: float, trials: int,
              noise: float = 0.05, warmup: int = 30, horizon: int = 10, seed: int = 0,
              fdr: float | None = None) -> np.ndarray:
    """Delay (nights, the step's own night = 1) until the step is found, per trial; 0 when
    not found within ``horizon`` nights."""
    target = next(i for i, s in enumerate(lab) if s.metric == STEP_METRIC)
    lab = list(lab)
    lab[target] = LabSeries(lab[target].scenario, STEP_METRIC, lab[target].unit,
                            lab[target].level, noise)
    key = (lab[target].scenario, STEP_METRIC)
    rng = np.random.default_rng([seed, round(phi * 1000), round(step * 1000),
                                 METHODS.index(method)])
    delays = np.zeros(trials, dtype=np.int64)
    for k in range(trials):
        values = simulate(lab, warmup + horizon, phi, rng)
        values[target][warmup:] *= 1 + step
        for upto in range(warmup + 1, warmup + horizon + 1):
            hits = [r for r in run_detector(lab, values, upto, method, fdr)
                    if (r["scenario"], r["metric"]) == key
                    and abs(int(r["night"][1:]) - warmup) <= TOLERANCE_NIGHTS]
            if hits:
                delays[k] = upto - warmup
                break
    return delays


# --------------------------------------------------------------------------- outlier nights


def outlier_alarms(lab: list[LabSeries], *, method: str, trials: int, nights: int = 40,
                   factor: float = 1.5, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Per trial, whether one night at ``factor`` times the level among the last three of
    ``nights`` (RTT p50 of the first scenario, ``noise`` relative sd, no change) makes that
    series alert, as a regression, when the detector runs after the last night."""
    target = next(i for i, s in enumerate(lab) if s.metric == STEP_METRIC)
    lab = list(lab)
    lab[target] = LabSeries(lab[target].scenario, STEP_METRIC, lab[target].unit,
                            lab[target].level, noise)
    key = (lab[target].scenario, STEP_METRIC)
    rng = np.random.default_rng([seed, 17, METHODS.index(method)])
    out = np.zeros(trials, dtype=bool)
    for k in range(trials):
        values = simulate(lab, nights, 0.0, rng)
        values[target][nights - 1 - k % 3] = lab[target].level * factor
        out[k] = any((r["scenario"], r["metric"]) == key
                     for r in run_detector(lab, values, nights, method))
    return out


# --------------------------------------------------------------------------- printing


def alarm_line(counts: np.ndarray) -> str:
    mean = float(counts.mean())
    se = float(counts.std(ddof=1) / math.sqrt(counts.size)) if counts.size > 1 else math.nan
    return f"{mean:.3f} ± {se:.3f} /month ({counts.size} lab-months)"


def detection_line(delays: np.ndarray, within: int = 5, horizon: int = 15) -> str:
    found = (delays > 0) & (delays <= within)
    frac = float(found.mean())
    se = math.sqrt(frac * (1 - frac) / delays.size)
    ordered = np.sort(np.where(delays > 0, delays, 10**6))
    median = ordered[(delays.size - 1) // 2]
    med = f"{median:d}" if median < 10**6 else f"> {horizon}"
    return f"{100 * frac:.0f} ± {100 * se:.0f} % within {within} nights, median delay {med}"


def report_lines(*, methods: Iterable[str] = METHODS, phis: Iterable[float] = PHIS,
                 steps: Iterable[float] = STEPS, step_phi: float = 0.0, months: int = 12,
                 trials: int = 30, history_dir: str | Path | None = None, seed: int = 0,
                 fdr: float = changepoints.DEFAULT_FDR, horizon: int = 15, warmup: int = 30
                 ) -> Iterable[str]:
    """The calibration's lines (what ``main`` prints), one at a time as each is measured:
    the lab, then per method false alarms per month at each phi and step detection.
    ``history_dir``: a recorded history (noise levels from its nights; its observed phi
    printed), else the stored campaigns."""
    catalog = load_history(history_dir) if history_dir else stored_catalog()
    lab = lab_series(noise_levels(catalog))
    key = sum(s.metric in changepoints.KEY_METRICS for s in lab)
    noisy = [s.noise for s in lab if s.noise > 0]
    yield (f"lab: {len(lab)} series ({key} of key metrics), relative night sd median "
           f"{100 * np.median(noisy):.1f} % (range {100 * min(noisy):.1f} to "
           f"{100 * max(noisy):.1f} %), {sum(s.noise == 0 for s in lab)} constant")
    if history_dir:
        yield f"observed phi of the history: {observed_phi(catalog):.2f}"
    for method in methods:
        yield f"-- {method}"
        for phi in phis if months > 0 else ():
            started = time.perf_counter()
            counts = false_alarms(lab, phi=phi, method=method, months=months, seed=seed,
                                  fdr=fdr, warmup=warmup)
            yield (f"false alarms, phi {phi:.1f}: {alarm_line(counts)} "
                   f"[{time.perf_counter() - started:.0f} s]")
        if trials > 0:
            hits = outlier_alarms(lab, method=method, trials=3 * trials, seed=seed)
            rate = float(hits.mean())
            yield (f"one night x1.5 among the last 3 of 40 (5 % noise): alerts in "
                   f"{100 * rate:.1f} ± {100 * math.sqrt(rate * (1 - rate) / hits.size):.1f} "
                   f"% of {hits.size} series")
        for step in steps if trials > 0 else ():
            started = time.perf_counter()
            delays = detection(lab, phi=step_phi, method=method, step=step, trials=trials,
                               seed=seed, fdr=fdr, horizon=horizon, warmup=warmup)
            yield (f"+{100 * step:.0f} % step at 5 % noise, phi {step_phi:.1f}, "
                   f"{len(lab)} series: {detection_line(delays, horizon=horizon)} "
                   f"[{time.perf_counter() - started:.0f} s]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--months", type=int, default=12, help="lab-months per phi")
    parser.add_argument("--trials", type=int, default=30, help="steps per size")
    parser.add_argument("--phis", type=float, nargs="+", default=list(PHIS))
    parser.add_argument("--steps", type=float, nargs="*", default=list(STEPS))
    parser.add_argument("--step-phi", type=float, default=0.0,
                        help="phi of the detection runs")
    parser.add_argument("--history", type=Path, help="a recorded history folder (noise from "
                        "its nights) instead of the stored campaigns")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=30,
                        help="nights of history before the month (or the step)")
    parser.add_argument("--horizon", type=int, default=15,
                        help="nights after a step the detection runs follow")
    parser.add_argument("--fdr", type=float, default=changepoints.DEFAULT_FDR)
    args = parser.parse_args(argv)
    for line in report_lines(methods=args.methods, phis=args.phis, steps=args.steps,
                             step_phi=args.step_phi, months=args.months, trials=args.trials,
                             history_dir=args.history, seed=args.seed, fdr=args.fdr,
                             horizon=args.horizon, warmup=args.warmup):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
