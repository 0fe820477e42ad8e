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
from collections.abc import Iterable, Sequence

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
