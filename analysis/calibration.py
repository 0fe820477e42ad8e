"""Calibration: how often the verdicts are wrong, measured on real campaigns.

The verdicts' error rates are claims about data like the lab's, so they are
measured on data the lab produced: whole repetitions of captured campaigns.

- An *A/A dataset* takes one scenario's real repetitions, draws 2R of them
  without replacement (with replacement when the pool has fewer than 2R; the
  result says so), and splits them into two pseudo-scenarios A and B of R
  repetitions each; block k pairs A's k-th repetition with B's k-th. Probes are
  never moved between repetitions, so each keeps its own circumstances. Nothing
  but chance tells A from B: any "different" is a false positive.
- An *A/B dataset* is the same with every RTT of B multiplied by 1 + shift, a
  known difference. With the shift equal to the margin, any "equivalent" is a
  false positive of the equivalence verdict; with larger shifts, the share of
  "different" is the power.

Two methods are run on every dataset:

- ``repetition``: the report's method (:mod:`analysis.replication`): t test and
  TOST on the log repetition medians, paired by block.
- ``pooled probes``: the method the report replaced: Mann-Whitney, KS and the
  Welch TOST over all probes pooled (:func:`analysis.stats.pairwise_tests`'s
  building blocks), "different" when MW or KS rejects.

Pure functions; tests/analysis/test_calibration.py runs a few hundred datasets,
bench/bench_calibration.py many thousands.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import replication, stats
from analysis.model import rtt_by_repetition
from analysis.stats import Margin

METHODS = ("repetition", "pooled probes")
DEFAULT_SHIFTS = (0.0, 0.05, 0.10, 0.20, 0.50)


def repetition_pools(
    rtt: pd.DataFrame, order: Sequence[str] | None = None
) -> dict[str, list[np.ndarray]]:
    """Scenario -> its repetitions' answered RTTs (sorted arrays), from an rtt table."""
    names = list(order) if order is not None else list(
        dict.fromkeys(rtt["scenario"].astype(str)))
    by_rep = rtt_by_repetition(rtt, names)
    return {name: list(reps.values()) for name, reps in by_rep.items()}


def draw(
    pool: Sequence[np.ndarray], repetitions: int, rng: np.random.Generator, shift: float = 0.0
) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
    """One A/A (shift 0) or A/B dataset: (A's repetitions, B's, drawn with replacement?)."""
    replace = len(pool) < 2 * repetitions
    idx = rng.choice(len(pool), size=2 * repetitions, replace=replace)
    a = [pool[i] for i in idx[:repetitions]]
    b = [pool[i] * (1.0 + shift) if shift else pool[i] for i in idx[repetitions:]]
    return a, b, replace


def repetition_verdict(
    a: Sequence[np.ndarray], b: Sequence[np.ndarray], margin: Margin, alpha: float
) -> tuple[bool, bool]:
    """(different, equivalent) by the report's method, paired by block (k-th with k-th)."""
    def values(reps: Sequence[np.ndarray]) -> np.ndarray:
        med = np.array([float(stats.quantile_sorted(x, 0.5)) for x in reps])
        if margin.scale == "log":
            return np.log(np.maximum(med, replication.LOG_FLOOR_US))
        return med

    c = replication.paired_contrast(values(a), values(b))
    t = replication.t_tests(c, margin.bound, alpha)
    return bool(t.p_difference < alpha), bool(t.p_tost < alpha)


def pooled_verdict(
    a: Sequence[np.ndarray], b: Sequence[np.ndarray], margin: Margin, alpha: float
) -> tuple[bool, bool]:
    """(different, equivalent) by the replaced method: every probe an independent sample."""
    xa, xb = np.sort(np.concatenate(a)), np.sort(np.concatenate(b))
    sa, sb = stats._Sorted.of(xa), stats._Sorted.of(xb)
    _, p_mw, _, p_ks = stats._mwu_ks(sa, sb)
    mean_a, mean_b = float(xa.mean()), float(xb.mean())
    tost = stats.tost_welch(mean_a, float(xa.var(ddof=1)), xa.size, mean_b,
                            float(xb.var(ddof=1)), xb.size, margin.for_pair(mean_a, mean_b))
    return bool(p_mw < alpha or p_ks < alpha), bool(tost.pvalue < alpha)


RESULT_COLUMNS = ["pool", "pool_repetitions", "method", "repetitions", "shift", "datasets",
                  "with_replacement", "rate_different", "rate_equivalent"]


def calibrate(
    pools: dict[str, Sequence[np.ndarray]],
    *,
    repetitions: Iterable[int] = (3,),
    shifts: Iterable[float] = DEFAULT_SHIFTS,
    datasets: int = 200,
    margin: Margin = replication.DEFAULT_MARGIN,
    alpha: float = 0.05,
    seed: int = 0,
    methods: Iterable[str] = METHODS,
) -> pd.DataFrame:
    """Rates of 'different' and 'equivalent' per pool, method, R and shift.

    For each (pool, R, shift) the same ``datasets`` datasets are judged by every
    method, so the methods are compared on identical data. Seeded: the same
    arguments give the same table.
    """
    judges = {"repetition": repetition_verdict, "pooled probes": pooled_verdict}
    chosen = [m for m in methods if m in judges]
    rows = []
    for p_index, (name, pool) in enumerate(pools.items()):
        for r in repetitions:
            for s_index, shift in enumerate(shifts):
                rng = np.random.default_rng([seed, p_index, r, s_index])
                counts = {m: [0, 0] for m in chosen}
                replaced = False
                for _ in range(datasets):
                    a, b, rep = draw(pool, r, rng, shift)
                    replaced |= rep
                    for m in chosen:
                        diff, eq = judges[m](a, b, margin, alpha)
                        counts[m][0] += diff
                        counts[m][1] += eq
                for m in chosen:
                    rows.append({"pool": name, "pool_repetitions": len(pool), "method": m,
                                 "repetitions": r, "shift": shift, "datasets": datasets,
                                 "with_replacement": replaced,
                                 "rate_different": counts[m][0] / datasets,
                                 "rate_equivalent": counts[m][1] / datasets})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def binomial_se(rate: float, n: int) -> float:
    """Standard error of a rate estimated from n independent datasets."""
    return math.sqrt(max(rate * (1.0 - rate), 1e-12) / n)


# --------------------------------------------------------------------------- across campaigns
#
# The comparison of two campaigns (--compare) is calibrated on nights: two campaigns of an
# unchanged lab differ by the variation between nights as well as between repetitions.
#
# - *Resampled*: the whole repetitions of one configuration in each stored campaign are that
#   night's pool (:func:`night_pools`); a dataset draws two different nights and R
#   repetitions from each (without replacement when the pool holds R, else with), the first
#   as the newer campaign: nothing changed but the night, so any "regressed" is false.
# - *Simulated*: nights drawn from the two-level model with the variance components
#   measured on the stored campaigns (:func:`simulate_campaign`), optionally with a history
#   of nights of the same lab and a planted relative change of the newer campaign's RTTs.


def night_pools(
    campaigns: Sequence[tuple[str, pd.DataFrame, pd.DataFrame]], pool_of: Callable[[str], str]
) -> dict[str, list[tuple[float, float]]]:
    """Night -> its repetitions of one configuration as (median µs, loss %) pairs.

    ``campaigns``: (night, repetition summary, loss per repetition) each;
    ``pool_of`` maps a scenario to its configuration's name (those that map to
    ``""`` are left out); only the largest configuration is kept per night.
    """
    out: dict[str, list[tuple[float, float]]] = {}
    for night, reps, loss in campaigns:
        merged = reps.merge(loss[["scenario", "repetition", "loss_pct"]],
                            on=["scenario", "repetition"], how="left")
        merged["pool"] = merged["scenario"].astype(str).map(pool_of)
        merged = merged.loc[merged["pool"] != ""]
        if merged.empty:
            continue
        biggest = merged["pool"].value_counts().index[0]
        sel = merged.loc[merged["pool"] == biggest]
        out[night] = list(zip(sel["median_us"].astype(float), sel["loss_pct"].astype(float),
                              strict=True))
    return out


def frames_of(values: Sequence[tuple[float, float]], scenario: str = "guest"
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A campaign's repetition summary and loss frames from (median µs, loss %) pairs."""
    reps = pd.DataFrame({"scenario": scenario, "repetition": np.arange(1, len(values) + 1),
                         "block": pd.array([pd.NA] * len(values), dtype="Int64"),
                         "median_us": [v[0] for v in values]})
    loss = pd.DataFrame({"scenario": scenario, "repetition": reps["repetition"],
                         "loss_pct": [v[1] for v in values]})
    return reps, loss


def new_chain(new, old, *, history: pd.DataFrame | None = None, prior=True,
              threshold_pct: float = 10.0, loss_threshold_pp: float = 1.0,
              confidence: float = 0.95) -> pd.DataFrame:
    """The comparison as the CLI makes it (:func:`analysis.replication.compare_campaigns`),
    ``new``/``old``: (summary, loss) frames; ``history``: night values
    (:func:`analysis.nights.read_nights`' frame) or None."""
    from analysis import between_nights

    comps = between_nights.components(history) if history is not None else None
    return replication.compare_campaigns(
        new[0], old[0], new[1], old[1], older="old", threshold_pct=threshold_pct,
        loss_threshold_pp=loss_threshold_pp, confidence=confidence, between=comps,
        prior=between_nights.PRIOR if prior else None)


def resampled_pairs(
    pools: dict[str, list[tuple[float, float]]], repetitions: int, datasets: int, seed: int
):
    """``datasets`` (new, old) campaign pairs of an unchanged lab: two different nights, R
    whole repetitions of each (see the section comment). Yields frames_of pairs."""
    rng = np.random.default_rng([seed, repetitions])
    nights = list(pools)
    for _ in range(datasets):
        a, b = rng.choice(len(nights), size=2, replace=False)
        sides = []
        for k in (a, b):
            pool = pools[nights[k]]
            idx = rng.choice(len(pool), size=repetitions, replace=len(pool) < repetitions)
            sides.append(frames_of([pool[i] for i in idx]))
        yield sides[0], sides[1]


@dataclass(frozen=True)
class NightModel:
    """The two-level model of a night's repetition values (log median RTT and loss %)."""

    log_median: float  # the lab's level, log µs
    between_sd: float  # sd of the night's effect on the log median
    within_sd: float  # sd between repetitions of one night, log
    loss_pct: float
    loss_between_sd: float  # points
    loss_within_sd: float  # points


def simulate_campaign(model: NightModel, repetitions: int, rng: np.random.Generator,
                      shift: float = 0.0) -> list[tuple[float, float]]:
    """One night's R repetitions as (median µs, loss %) pairs; ``shift``: the RTTs' relative
    change (0.1: +10 %). Losses are clipped to [0, 100]."""
    b, bl = rng.normal(0.0, model.between_sd), rng.normal(0.0, model.loss_between_sd)
    y = model.log_median + b + rng.normal(0.0, model.within_sd, repetitions)
    loss = model.loss_pct + bl + rng.normal(0.0, model.loss_within_sd, repetitions)
    med = np.exp(y) * (1.0 + shift)
    return list(zip(med.tolist(), np.clip(loss, 0.0, 100.0).tolist(), strict=True))


def simulated_history(model: NightModel, nights: int, repetitions: int,
                      rng: np.random.Generator) -> pd.DataFrame:
    """Night values (:mod:`analysis.between_nights` frame) of ``nights`` simulated nights:
    what :func:`analysis.between_nights.campaign_nights` gives for each, computed at once."""
    from analysis import between_nights

    b = rng.normal(0.0, model.between_sd, (nights, 1))
    y = model.log_median + b + rng.normal(0.0, model.within_sd, (nights, repetitions))
    y = np.log(np.maximum(np.exp(y), replication.LOG_FLOOR_US))
    bl = rng.normal(0.0, model.loss_between_sd, (nights, 1))
    loss = np.clip(model.loss_pct + bl + rng.normal(0.0, model.loss_within_sd,
                                                    (nights, repetitions)), 0.0, 100.0)
    ddof = 1 if repetitions > 1 else 0
    names = [f"n{k:03d}" for k in range(nights)]
    frames = [pd.DataFrame({"night": names, "scenario": "guest", "metric": metric,
                            "mean": v.mean(axis=1),
                            "within_var": v.var(axis=1, ddof=ddof) if ddof else np.nan,
                            "n_reps": repetitions})
              for metric, v in (("median", y), ("loss", loss))]
    return pd.concat(frames, ignore_index=True)[between_nights.NIGHT_COLUMNS]


def verdict_rates(verdicts: Iterable[str]) -> dict[str, float]:
    """Share of each comparison verdict (regressed, unchanged, ...) among ``verdicts``."""
    values = list(verdicts)
    n = max(len(values), 1)
    return {v: sum(x == v for x in values) / n for v in
            ("regressed", "improved", "unchanged", "inconclusive", "not comparable")}


def night_inputs(folder) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """One stored campaign as a night: (campaign id, its repetition summary, its loss per
    repetition), what :func:`night_pools` takes."""
    from analysis import tables
    from analysis.load import load_campaign

    c = load_campaign(folder)
    reps = replication.repetition_summary(rtt_by_repetition(c.rtt, c.scenario_order))
    return c.campaign_id, reps, tables.loss_per_repetition(c.ping_summary, c.rate)
