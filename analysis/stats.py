"""Per-probe statistics: pure functions, DataFrames in and DataFrames out.

Every RTT function takes a *samples* frame (``scenario``, ``rtt_us``; see
:func:`analysis.model.rtt_samples`) and returns a tidy frame. Definitions, in
the words the report uses, are in docs/analysis.md; the short form is in each
docstring.

These describe one scenario's distribution of single probes (percentiles, the
ECDF, closeness's KS distance) and provide the building blocks the
repetition-level statistics use (quantiles, within-repetition bootstrap, Holm).
Comparisons between scenarios treat the repetition as the unit and live in
:mod:`analysis.replication`. :func:`pairwise_tests`, which pools probes as if
they were independent, is kept only for the calibration suite
(tests/analysis/test_calibration.py, bench/bench_calibration.py), which measures its
false-positive rate to document why it was replaced.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as sps

from analysis.model import samples_by_scenario

DEFAULT_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)
DEFAULT_RESAMPLES = 2000

# Bootstrap of the mean: the textbook resampling up to this many observations;
# above it, exact multinomial resampling over distinct values when there are at
# most BOOT_MAX_DISTINCT of them, else the rescaled m-out-of-n bootstrap with
# m = BOOT_FULL_MAX_N. See bootstrap_ci.
BOOT_FULL_MAX_N = 10_000
BOOT_MAX_DISTINCT = 1_000
# Pairwise tests: scipy's exact small-sample p-values below these sizes.
MW_EXACT_MAX_N = 8
KS_EXACT_MAX_N = 10_000
KS_LIMIT_N = 100_000


def percentile_column(p: float) -> str:
    return f"p{p:g}_us"


def quantile_sorted(x: np.ndarray, q: float | np.ndarray) -> np.ndarray | float:
    """Quantile of sorted ``x`` at probability ``q`` by linear interpolation.

    Hyndman & Fan type 7 (numpy's default): position h = (n - 1) q, value
    x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]).
    """
    n = x.size
    h = (n - 1) * np.asarray(q, dtype=float)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    return x[lo] + (h - lo) * (x[hi] - x[lo])


# --------------------------------------------------------------------------- summaries


def percentiles(
    samples: pd.DataFrame, percentiles: Sequence[float] = DEFAULT_PERCENTILES
) -> pd.DataFrame:
    """Per scenario: n, mean, min, the requested percentiles (type 7) and max, in µs."""
    rows = []
    for name, x in samples_by_scenario(samples).items():
        row = {"scenario": name, "n": x.size, "mean_us": float(x.mean()), "min_us": float(x[0])}
        for p in percentiles:
            row[percentile_column(p)] = float(quantile_sorted(x, p / 100.0))
        row["max_us"] = float(x[-1])
        rows.append(row)
    columns = ["scenario", "n", "mean_us", "min_us"]
    columns += [percentile_column(p) for p in percentiles] + ["max_us"]
    return pd.DataFrame(rows, columns=columns)


def ecdf_points(samples: pd.DataFrame, max_points: int = 2000) -> pd.DataFrame:
    """Points on each scenario's empirical CDF, for plotting.

    Every point is exact: (x_(k), k / n) for a chosen set of ranks k. All ranks
    when n <= max_points; otherwise ``max_points`` evenly spaced ranks plus the
    ranks of the upper tail (n - 10^j), so the tail is drawn faithfully.
    """
    frames = []
    for name, x in samples_by_scenario(samples).items():
        n = x.size
        if n <= max_points:
            ranks = np.arange(1, n + 1)
        else:
            tail = n - np.array([10**j for j in range(int(math.log10(n)) + 1)])
            ranks = np.unique(
                np.concatenate((np.linspace(1, n, max_points).round().astype(np.int64), tail))
            )
            ranks = ranks[(ranks >= 1) & (ranks <= n)]
        frames.append(
            pd.DataFrame({"scenario": name, "rtt_us": x[ranks - 1], "cum_prob": ranks / n})
        )
    if not frames:
        return pd.DataFrame(columns=["scenario", "rtt_us", "cum_prob"])
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- bootstrap


def scenario_rng(seed: int, name: str) -> np.random.Generator:
    """The random stream for one scenario: depends on the seed and the name only."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def bootstrap_median(x: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of the median of sorted ``x``, exact in distribution, in O(B).

    A resample draws x_(ceil(n U)) for n independent uniforms U, and ceil(n u) is
    monotone, so the resample's k-th smallest value is x_(ceil(n U_(k))) where
    U_(k), the k-th smallest of n uniforms, is Beta(k, n + 1 - k). For odd n the
    median is the k = (n + 1) / 2 order statistic. For even n it is the mean of
    the k = n / 2 and k + 1 order statistics; given U_(k) = u, U_(k+1) is the
    smallest of n - k uniforms on (u, 1), that is u + (1 - u) Beta(1, n - k).
    """
    n = x.size
    k = (n + 1) // 2

    def pick(u: np.ndarray) -> np.ndarray:
        return x[np.clip(np.ceil(n * u).astype(np.int64) - 1, 0, n - 1)]

    u1 = rng.beta(k, n + 1 - k, size=n_resamples)
    if n % 2:
        return pick(u1)
    u2 = u1 + (1.0 - u1) * rng.beta(1, n - k, size=n_resamples)
    return 0.5 * (pick(u1) + pick(u2))


def _index_dtype(n: int) -> type:
    return np.int32 if n < 2**31 else np.int64


def bootstrap_mean(
    x: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    """Bootstrap replicates of the mean of ``x`` and the name of the method used.

    - n <= BOOT_FULL_MAX_N: textbook: B resamples of size n with replacement.
    - else, at most BOOT_MAX_DISTINCT distinct values (ping reports RTT at 1 µs
      resolution, so real data nearly always is): exact, a resample is a
      multinomial draw of counts over the distinct values, Multinomial(n, c / n).
    - else: m-out-of-n, m = BOOT_FULL_MAX_N, rescaled: x̄ + sqrt(m / n) (x̄*_m - x̄).
      Same mean and variance as the full bootstrap; its skewness is that of a
      sample of m, so the interval is slightly more asymmetric than it should be.
    """
    n = x.size
    if n <= BOOT_FULL_MAX_N:
        out = np.empty(n_resamples)
        chunk = max(1, 10_000_000 // max(n, 1))
        for start in range(0, n_resamples, chunk):
            stop = min(n_resamples, start + chunk)
            idx = rng.integers(0, n, size=(stop - start, n), dtype=_index_dtype(n))
            out[start:stop] = x[idx].mean(axis=1)
        return out, "resampling"
    values, counts = np.unique(x, return_counts=True)
    if values.size <= BOOT_MAX_DISTINCT:
        draws = rng.multinomial(n, counts / n, size=n_resamples)
        return draws @ values / n, f"exact multinomial over {values.size} distinct values"
    m = BOOT_FULL_MAX_N
    mean = x.mean()
    out = np.empty(n_resamples)
    chunk = max(1, 10_000_000 // m)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, m), dtype=_index_dtype(n))
        out[start:stop] = x[idx].mean(axis=1)
    return mean + math.sqrt(m / n) * (out - mean), f"m-out-of-n (m={m}), rescaled"


def bootstrap_ci(
    samples: pd.DataFrame,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    statistics: Iterable[str] = ("mean", "median"),
) -> pd.DataFrame:
    """Percentile-bootstrap confidence intervals for each scenario's mean and median RTT.

    Percentile method: draw B replicates of the statistic under resampling with
    replacement; the interval is the (1 - C) / 2 and (1 + C) / 2 quantiles (type 7)
    of the replicates. Seeded per scenario (:func:`scenario_rng`), so a report is
    reproducible and adding a scenario does not move the others' intervals.
    """
    alpha = 1.0 - confidence
    rows = []
    for name, x in samples_by_scenario(samples).items():
        rng = scenario_rng(seed, name)
        for stat in statistics:
            if stat == "mean":
                estimate = float(x.mean())
                reps, method = bootstrap_mean(x, n_resamples, rng)
            elif stat == "median":
                estimate = float(quantile_sorted(x, 0.5))
                reps, method = bootstrap_median(x, n_resamples, rng), "exact order statistic"
            else:
                raise ValueError(f"unknown statistic {stat!r}")
            low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
            rows.append(
                {
                    "scenario": name,
                    "statistic": stat,
                    "n": x.size,
                    "estimate_us": estimate,
                    "ci_low_us": float(low),
                    "ci_high_us": float(high),
                    "confidence": confidence,
                    "resamples": n_resamples,
                    "method": method,
                }
            )
    columns = [
        "scenario", "statistic", "n", "estimate_us", "ci_low_us", "ci_high_us",
        "confidence", "resamples", "method",
    ]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- tests


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate).

    Sort ascending p_(1) <= ... <= p_(m); adjusted p_(i) = max over j <= i of
    min(1, (m - j + 1) p_(j)). NaN entries are left out of the family and stay NaN.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


@dataclass(frozen=True)
class TostResult:
    pvalue: float
    p_lower: float
    p_upper: float
    t_lower: float
    t_upper: float
    df: float


def tost_welch(
    mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int, margin: float
) -> TostResult:
    """Two one-sided Welch t-tests that mean_a - mean_b lies within (-margin, +margin).

    H0_lower: d <= -margin, rejected for large t_lower = (d + margin) / se;
    H0_upper: d >= +margin, rejected for small t_upper = (d - margin) / se;
    se = sqrt(var_a / n_a + var_b / n_b), Welch-Satterthwaite degrees of freedom.
    The TOST p-value is the larger of the two one-sided p-values; equivalence
    is concluded at level alpha when it is below alpha.
    """
    d = mean_a - mean_b
    va, vb = var_a / n_a, var_b / n_b
    se = math.sqrt(va + vb)
    if se == 0.0:
        inside = -margin < d < margin
        p = 0.0 if inside else 1.0
        return TostResult(p, p, p, math.nan, math.nan, math.nan)
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    t_lower = (d + margin) / se
    t_upper = (d - margin) / se
    p_lower = float(sps.t.sf(t_lower, df))
    p_upper = float(sps.t.cdf(t_upper, df))
    return TostResult(max(p_lower, p_upper), p_lower, p_upper, t_lower, t_upper, df)


@dataclass(frozen=True)
class Margin:
    """The equivalence margin.

    Relative (the default, ``relative`` = F): two scenarios are equivalent when
    the ratio of their typical repetition medians lies within 1/(1 + F) and
    1 + F; the comparisons are then made on the log scale, where that is
    |log ratio| < log(1 + F), symmetric in the pair. A margin tied to the
    baseline would call every pair of guests different when guests are 100
    times slower than bare metal; a ratio is on the pair's own scale.
    Absolute (``absolute_us`` = X): equivalent when the typical repetition
    medians differ by less than X µs; comparisons on the µs scale.

    ``for_pair`` is the margin of the per-probe TOST (pooled probes, kept for the
    calibration suite that documents why it was replaced): ``absolute_us``, or
    ``relative`` times the average of the two scenarios' mean RTTs.
    """

    relative: float = 0.10
    absolute_us: float | None = None

    @property
    def scale(self) -> str:
        return "linear" if self.absolute_us is not None else "log"

    @property
    def bound(self) -> float:
        """The margin on the comparison's scale: log(1 + F), or X µs."""
        if self.absolute_us is not None:
            return float(self.absolute_us)
        return math.log1p(self.relative)

    def for_pair(self, mean_a: float, mean_b: float) -> float:
        if self.absolute_us is not None:
            return float(self.absolute_us)
        return self.relative * (mean_a + mean_b) / 2.0

    def describe(self) -> str:
        if self.absolute_us is not None:
            return (f"±{self.absolute_us:g} µs (absolute) on the difference of the typical "
                    "repetition medians")
        f = 1.0 + self.relative
        return (f"±{100 * self.relative:g} % (relative): the ratio of the typical repetition "
                f"medians within 1/{f:g} = {1 / f:.4g} and {f:g}")


@dataclass(frozen=True)
class _Sorted:
    """A sorted sample with its distinct values, their counts and cumulative counts."""

    x: np.ndarray
    values: np.ndarray
    counts: np.ndarray
    cumulative: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> _Sorted:
        starts = np.flatnonzero(np.concatenate(([True], x[1:] != x[:-1])))
        counts = np.diff(np.concatenate((starts, [x.size])))
        return cls(x, x[starts], counts, np.cumsum(counts))

    @property
    def n(self) -> int:
        return self.x.size

    def below_and_equal(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For sorted values ``v``: how many of this sample are < v, and how many == v.

        One binary search per value over the distinct values (few, for data at
        ping's 1 µs resolution) instead of two over the whole sample.
        """
        j = np.searchsorted(self.values, v, "right")  # distinct values <= v
        at_or_below = np.concatenate(([0], self.cumulative))[j]
        last = np.maximum(j - 1, 0)
        equal = np.where((j > 0) & (self.values[last] == v), self.counts[last], 0)
        return at_or_below - equal, equal


def _ks_distance(a: _Sorted, b: _Sorted, at_a: np.ndarray, at_b: np.ndarray) -> float:
    """max |F_a - F_b| over all distinct values; ``at_a`` = #b <= each a value, and vice versa."""
    return max(
        float(np.max(np.abs(a.cumulative / a.n - at_a / b.n))),
        float(np.max(np.abs(at_b / a.n - b.cumulative / b.n))),
    )


def _mwu_ks(a: _Sorted, b: _Sorted) -> tuple[float, float, float, float]:
    """Mann-Whitney U1 and two-sided p, KS distance D and two-sided p, from sorted samples.

    U1 = sum over a of (#b below + half #b equal); asymptotic p with the tie
    correction and continuity correction scipy uses. D = max |F_a - F_b| over
    all distinct values. Small samples go to scipy's exact distributions; for
    n_a n_b / (n_a + n_b) > KS_LIMIT_N the KS p-value is Kolmogorov's limit.
    """
    na, nb = a.n, b.n
    below_ab, equal_ab = b.below_and_equal(a.values)
    below_ba, equal_ba = a.below_and_equal(b.values)
    u1 = float(np.dot(a.counts, below_ab + 0.5 * equal_ab))
    d = _ks_distance(a, b, below_ab + equal_ab, below_ba + equal_ba)
    if min(na, nb) <= MW_EXACT_MAX_N:
        p_mw = float(sps.mannwhitneyu(a.x, b.x).pvalue)
    else:
        t_a = (a.counts + equal_ab).astype(float)
        t_b = b.counts[equal_ba == 0].astype(float)
        ties = float(np.sum(t_a**3 - t_a) + np.sum(t_b**3 - t_b))
        n = na + nb
        s = math.sqrt(na * nb / 12.0 * ((n + 1) - ties / (n * (n - 1))))
        u = max(u1, na * nb - u1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.float64(u - na * nb / 2.0 - 0.5) / s
        p_mw = float(np.clip(2.0 * special.ndtr(-z), 0.0, 1.0))
    en = na * nb / (na + nb)
    if max(na, nb) <= KS_EXACT_MAX_N:
        p_ks = float(sps.ks_2samp(a.x, b.x).pvalue)
    elif en <= KS_LIMIT_N:  # scipy's asymptotic method: the KS distribution for n = round(en)
        p_ks = float(np.clip(sps.kstwo.sf(d, round(en)), 0.0, 1.0))
    else:  # its n -> infinity limit, Kolmogorov's distribution of sqrt(en) D; kstwo is slow here
        p_ks = float(np.clip(sps.kstwobign.sf(math.sqrt(en) * d), 0.0, 1.0))
    return u1, p_mw, d, p_ks


PAIRWISE_COLUMNS = [
    "scenario_a", "scenario_b", "n_a", "n_b", "mean_a_us", "mean_b_us", "diff_us",
    "mw_u", "prob_superiority", "mw_p", "mw_p_holm", "ks_d", "ks_p", "ks_p_holm",
    "margin_us", "tost_p", "tost_p_holm", "different_mw", "different_ks", "equivalent",
]


def pairwise_tests(
    samples: pd.DataFrame, *, margin: Margin = Margin(), confidence: float = 0.95
) -> pd.DataFrame:
    """Pooled per-probe tests of every pair (with at least 2 samples each): the replaced method.

    Treats every probe as an independent sample, which they are not (probes of a
    repetition share its state): its false-positive rate is far above alpha on
    real campaigns (tests/analysis/test_calibration.py). Not used by the report.

    Mann-Whitney U (two-sided; prob_superiority = U_a / (n_a n_b), the chance
    that a probe of a is slower than one of b, ties counting half),
    Kolmogorov-Smirnov (two-sided) and the Welch TOST on the difference of
    means. Each test forms its own family, Holm-corrected over all pairs;
    decisions at alpha = 1 - confidence.
    """
    alpha = 1.0 - confidence
    groups = {k: v for k, v in samples_by_scenario(samples).items() if v.size >= 2}
    names = list(groups)
    prepared = {k: _Sorted.of(v) for k, v in groups.items()}
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            sa, sb = prepared[a], prepared[b]
            mean_a, mean_b = float(sa.x.mean()), float(sb.x.mean())
            u1, p_mw, d, p_ks = _mwu_ks(sa, sb)
            delta = margin.for_pair(mean_a, mean_b)
            tost = tost_welch(
                mean_a, float(sa.x.var(ddof=1)), sa.n, mean_b, float(sb.x.var(ddof=1)), sb.n, delta
            )
            rows.append(
                {
                    "scenario_a": a, "scenario_b": b, "n_a": sa.n, "n_b": sb.n,
                    "mean_a_us": mean_a, "mean_b_us": mean_b, "diff_us": mean_a - mean_b,
                    "mw_u": u1, "prob_superiority": u1 / (sa.n * sb.n), "mw_p": p_mw,
                    "ks_d": d, "ks_p": p_ks, "margin_us": delta, "tost_p": tost.pvalue,
                }
            )
    out = pd.DataFrame(rows).reindex(columns=PAIRWISE_COLUMNS)
    for test in ("mw", "ks", "tost"):
        out[f"{test}_p_holm"] = holm(out[f"{test}_p"].to_numpy(dtype=float))
    out["different_mw"] = out["mw_p_holm"] < alpha
    out["different_ks"] = out["ks_p_holm"] < alpha
    out["equivalent"] = out["tost_p_holm"] < alpha
    return out[PAIRWISE_COLUMNS]


# --------------------------------------------------------------------------- baseline


def closeness(samples: pd.DataFrame, baseline: str, percentile: float = 90.0) -> pd.DataFrame:
    """How close each scenario's RTT distribution is to the baseline's.

    - share_at_or_below: the fraction of the scenario's probes with
      RTT <= the baseline's ``percentile``-th percentile (type 7). The baseline
      itself scores about percentile / 100; a scenario as fast as the baseline
      scores the same, a slower one less.
    - ks_similarity: 1 - D, D the two-sample Kolmogorov-Smirnov distance
      max |F_s(x) - F_baseline(x)|; 1 means identical empirical distributions,
      0 means they do not overlap at all.
    """
    groups = samples_by_scenario(samples)
    columns = [
        "scenario", "n", "baseline", "percentile", "threshold_us", "share_at_or_below",
        "ks_distance", "ks_similarity",
    ]
    if baseline not in groups:
        return pd.DataFrame(columns=columns)
    base = _Sorted.of(groups[baseline])
    threshold = float(quantile_sorted(base.x, percentile / 100.0))
    rows = []
    for name, x in groups.items():
        s = _Sorted.of(x)
        d = _ks_distance(s, base, sum(base.below_and_equal(s.values)),
                         sum(s.below_and_equal(base.values)))
        rows.append(
            {
                "scenario": name,
                "n": s.n,
                "baseline": baseline,
                "percentile": percentile,
                "threshold_us": threshold,
                "share_at_or_below": np.searchsorted(x, threshold, "right") / s.n,
                "ks_distance": d,
                "ks_similarity": 1.0 - d,
            }
        )
    return pd.DataFrame(rows, columns=columns)
