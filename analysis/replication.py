"""Repetition-level statistics: the repetition is the experimental unit.

The data have two levels: probes within repetitions. Probes of one repetition
share its circumstances (the host's load at that moment, where the guest's
threads landed, the state of the caches), so they are not independent draws of
a scenario's behaviour; most of the variation between scenarios that look
different probe by probe is variation between repetitions. Every statistic
that compares scenarios therefore works on one number per repetition:

- a repetition's *summary* is the median RTT of its answered probes (pooled
  over its sending hosts); with a relative margin the comparisons are made on
  the log of it, so differences are ratios;
- a scenario's *typical median* is the geometric mean of its repetitions'
  medians, with a t interval over repetitions (df = R - 1), and a two-level
  (cluster) bootstrap interval beside it;
- two scenarios are compared *paired by block* when the campaign ran in blocks
  (``kvmnetlab.campaign.plan_runs``), otherwise unpaired (Welch): a t test of
  no difference and Schuirmann's TOST of equivalence within the margin, each
  Holm-corrected over all pairs, give one of three outcomes (different,
  equivalent, inconclusive), and a power analysis on the observed
  between-repetition spread says how many repetitions would likely settle an
  inconclusive pair.

Per-probe statistics (percentiles, the CDF) describe one scenario's
distribution and stay in :mod:`analysis.stats`. Pure functions: DataFrames and
arrays in, DataFrames out. Definitions in the report's words are in
docs/analysis.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.between_nights import LOG_FLOOR_US, PRIOR, Component, component_for
from analysis.stats import (
    DEFAULT_RESAMPLES,
    Margin,
    bootstrap_mean,
    bootstrap_median,
    holm,
    quantile_sorted,
    scenario_rng,
)

POWER_TARGET = 0.8
MAX_REPETITIONS = 1000  # kvmnetlab_repetitions' own limit
OUTCOMES = ("different", "equivalent", "inconclusive")

ByRep = dict[str, dict[int, np.ndarray]]
DEFAULT_MARGIN = Margin()


# --------------------------------------------------------------------------- summaries

SUMMARY_COLUMNS = ["scenario", "repetition", "block", "n", "median_us", "mean_us", "p90_us",
                   "p99_us"]


def repetition_summary(
    by_rep: ByRep, blocks: dict[tuple[str, int], int] | None = None
) -> pd.DataFrame:
    """One row per (scenario, repetition): its block, n answered probes, median, mean, p90, p99.

    ``by_rep`` is :func:`analysis.model.rtt_by_repetition`; ``blocks`` maps
    (scenario, repetition) to the block it ran in (empty for campaigns planned
    before blocks: the column is then null).
    """
    blocks = blocks or {}
    rows = []
    for name, reps in by_rep.items():
        for rep, x in reps.items():
            rows.append({
                "scenario": name, "repetition": rep, "block": blocks.get((name, rep)),
                "n": x.size, "median_us": float(quantile_sorted(x, 0.5)),
                "mean_us": float(x.mean()), "p90_us": float(quantile_sorted(x, 0.9)),
                "p99_us": float(quantile_sorted(x, 0.99)),
            })
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    out["block"] = out["block"].astype("Int64")
    return out


def night_value(values: Sequence[float] | np.ndarray, scale: str) -> float:
    """The one summary of a set of repetition values: a scenario's typical value in the
    report, a night's value in the history (:mod:`analysis.history`).

    ``log`` (RTTs, positive and multiplicative): the geometric mean, each value at
    least :data:`LOG_FLOOR_US`; ``linear`` (losses, rates, costs, which may be 0):
    the arithmetic mean. NaN without values.
    """
    y = np.asarray(values, dtype=float)
    if y.size == 0:
        return math.nan
    if scale == "log":
        return float(np.exp(np.log(np.maximum(y, LOG_FLOOR_US)).mean()))
    return float(y.mean())


def _on_scale(values: np.ndarray, scale: str) -> np.ndarray:
    return np.log(np.maximum(values, LOG_FLOOR_US)) if scale == "log" else values


# --------------------------------------------------------------------------- intervals


def _t_interval(y: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Mean of ``y`` and its t interval (df = n - 1); NaN ends with fewer than 2 values."""
    m = float(y.mean())
    if y.size < 2:
        return m, math.nan, math.nan
    half = sps.t.ppf(0.5 + confidence / 2, y.size - 1) * y.std(ddof=1) / math.sqrt(y.size)
    return m, m - half, m + half


def _two_level(
    inner: list[np.ndarray], combine: str, n_resamples: int, rng: np.random.Generator,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Outer level of the two-level bootstrap.

    ``inner[r]`` holds B within-repetition replicates of repetition r's statistic
    (its probes resampled with replacement). A replicate draws R repetitions with
    replacement and, for each draw, one of that repetition's inner replicates
    chosen at random (so a repetition drawn twice gets two independent inner
    draws, up to a 1/B chance); it then combines them: ``log``, the geometric
    mean; ``weighted``, the mean weighted by ``weights`` (probe counts); else
    the plain mean.
    """
    table = np.vstack(inner)  # R x B
    n_reps, b = table.shape
    picks = rng.integers(0, n_reps, size=(n_resamples, n_reps))
    columns = rng.integers(0, b, size=(n_resamples, n_reps))
    drawn = table[picks, columns]
    if combine == "log":
        return np.exp(np.log(np.maximum(drawn, LOG_FLOOR_US)).mean(axis=1))
    if combine == "weighted" and weights is not None:
        w = weights[picks]
        return (drawn * w).sum(axis=1) / w.sum(axis=1)
    return drawn.mean(axis=1)


INTERVAL_COLUMNS = [
    "scenario", "statistic", "repetitions", "n", "estimate_us", "t_low_us", "t_high_us",
    "boot_low_us", "boot_high_us", "between_rep_sd", "confidence", "resamples",
]


def scenario_intervals(
    by_rep: ByRep,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    bootstrap: bool = True,
) -> pd.DataFrame:
    """Each scenario's typical median and mean RTT with two intervals over repetitions.

    - ``median``: the geometric mean of the repetitions' medians. t interval:
      mean of the log medians ± t(1 - (1-C)/2, R - 1) · sd / √R, back-transformed.
      ``between_rep_sd`` is that sd of the log medians (about the coefficient of
      variation between repetitions).
    - ``mean``: the mean of the repetitions' means (each repetition weighs the
      same). t interval on the repetition means, its lower end at least 0 (an
      RTT is never negative); ``between_rep_sd`` in µs.
    - two-level bootstrap (percentile method, B replicates): repetitions drawn
      with replacement, then probes within each (see :func:`_two_level`), the
      statistic recomputed; the interval is the (1 - C)/2 and (1 + C)/2
      quantiles. With few repetitions it is too narrow (it sees only the R
      repetitions' spread, and divides by R rather than R - 1): the t interval is
      the one the verdicts agree with. ``bootstrap=False`` leaves it out (NaN).
    """
    alpha = 1.0 - confidence
    rows = []
    for name, reps in by_rep.items():
        rng = scenario_rng(seed, name)
        xs = list(reps.values())
        counts = np.array([x.size for x in xs])
        medians = np.array([float(quantile_sorted(x, 0.5)) for x in xs])
        means = np.array([float(x.mean()) for x in xs])
        logs = _on_scale(medians, "log")
        est, low, high = _t_interval(logs, confidence)
        boot = (_two_level([bootstrap_median(x, n_resamples, rng) for x in xs], "log",
                           n_resamples, rng) if bootstrap else None)
        rows.append(_interval_row(name, "median", xs, math.exp(est), math.exp(low),
                                  math.exp(high), boot, alpha,
                                  float(logs.std(ddof=1)) if logs.size > 1 else math.nan))
        est, low, high = _t_interval(means, confidence)
        low = max(low, 0.0) if not math.isnan(low) else low  # an RTT is never negative
        boot = (_two_level([bootstrap_mean(x, n_resamples, rng)[0] for x in xs], "mean",
                           n_resamples, rng, counts) if bootstrap else None)
        rows.append(_interval_row(name, "mean", xs, est, low, high, boot, alpha,
                                  float(means.std(ddof=1)) if means.size > 1 else math.nan))
    out = pd.DataFrame(rows, columns=INTERVAL_COLUMNS)
    out["confidence"] = confidence
    out["resamples"] = n_resamples
    return out


def _interval_row(name, statistic, xs, est, low, high, boot, alpha, sd) -> dict:
    b_low, b_high = (np.quantile(boot, [alpha / 2, 1 - alpha / 2]) if boot is not None
                     else (math.nan, math.nan))
    return {"scenario": name, "statistic": statistic, "repetitions": len(xs),
            "n": int(sum(x.size for x in xs)), "estimate_us": est, "t_low_us": low,
            "t_high_us": high, "boot_low_us": float(b_low), "boot_high_us": float(b_high),
            "between_rep_sd": sd}


# --------------------------------------------------------------------------- a contrast


@dataclass(frozen=True)
class Contrast:
    """The difference a - b of two scenarios' repetition values, on the comparison's scale.

    ``design``: ``paired`` (by block: the difference of the two repetitions of
    each block both ran in), ``unpaired`` (Welch: the difference of the means,
    unequal variances), or ``untestable`` (fewer than 2 repetitions on a side).
    """

    design: str
    n_a: int
    n_b: int
    pairs: int
    estimate: float
    se: float
    df: float
    sd_a: float
    sd_b: float
    sd_diff: float

    @property
    def testable(self) -> bool:
        return self.design != "untestable"

    @property
    def n_now(self) -> int:
        """Repetitions per scenario (or blocks) the comparison has now."""
        return self.pairs if self.design == "paired" else min(self.n_a, self.n_b)


def contrast(a: pd.DataFrame, b: pd.DataFrame) -> Contrast:
    """Compare repetition values ``a`` and ``b`` (frames with columns ``value``, ``block``).

    Paired when every repetition of both has a block, no block holds two of a
    scenario's repetitions, and at least 2 blocks hold both (repetitions of a
    block only one of them ran in are then left out); unpaired (Welch)
    otherwise.
    """
    ya, yb = a["value"].to_numpy(dtype=float), b["value"].to_numpy(dtype=float)
    na, nb = ya.size, yb.size
    sd_a = float(ya.std(ddof=1)) if na > 1 else math.nan
    sd_b = float(yb.std(ddof=1)) if nb > 1 else math.nan
    blocked = (a["block"].notna().all() and b["block"].notna().all()
               and a["block"].is_unique and b["block"].is_unique)
    if blocked:
        joined = a.merge(b, on="block", suffixes=("_a", "_b"))
        if len(joined) >= 2:
            c = paired_contrast(joined["value_a"].to_numpy(dtype=float),
                                joined["value_b"].to_numpy(dtype=float))
            return Contrast("paired", na, nb, c.pairs, c.estimate, c.se, c.df, sd_a, sd_b,
                            c.sd_diff)
    if na < 2 or nb < 2:
        est = float(ya.mean() - yb.mean()) if na and nb else math.nan
        return Contrast("untestable", na, nb, 0, est, math.nan, math.nan, sd_a, sd_b, math.nan)
    va, vb = sd_a**2 / na, sd_b**2 / nb
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)) if se > 0 else float(na + nb - 2)
    return Contrast("unpaired", na, nb, 0, float(ya.mean() - yb.mean()), se, df, sd_a, sd_b,
                    math.nan)


def paired_contrast(ya: np.ndarray, yb: np.ndarray) -> Contrast:
    """The paired contrast of two aligned arrays (element k of each from block k)."""
    d = ya - yb
    n = d.size
    sd = float(d.std(ddof=1))
    sd_a, sd_b = float(ya.std(ddof=1)), float(yb.std(ddof=1))
    return Contrast("paired", n, n, n, float(d.mean()), sd / math.sqrt(n), float(n - 1),
                    sd_a, sd_b, sd)


@dataclass(frozen=True)
class Tests:
    p_difference: float
    p_tost: float
    ci: tuple[float, float]  # (1 - alpha) two-sided, for the difference test
    ci_tost: tuple[float, float]  # (1 - 2 alpha), the TOST's: inside ±margin <=> equivalent


def t_tests(c: Contrast, bound: float, alpha: float) -> Tests:
    """Two-sided t test of no difference and the TOST of |difference| < ``bound``.

    t = estimate / se with the contrast's df. TOST (Schuirmann): the larger of
    P(T >= (d + bound) / se) and P(T <= (d - bound) / se). A zero se (every
    repetition identical) decides by the estimate alone.
    """
    nan2 = (math.nan, math.nan)
    if not c.testable:
        return Tests(math.nan, math.nan, nan2, nan2)
    d, se, df = c.estimate, c.se, c.df
    if se == 0.0:
        return Tests(1.0 if d == 0 else 0.0, 0.0 if abs(d) < bound else 1.0, (d, d), (d, d))
    p_diff = float(2.0 * sps.t.sf(abs(d) / se, df))
    p_tost = max(float(sps.t.sf((d + bound) / se, df)), float(sps.t.cdf((d - bound) / se, df)))
    h1 = sps.t.ppf(1 - alpha / 2, df) * se
    h2 = sps.t.ppf(1 - alpha, df) * se
    return Tests(p_diff, p_tost, (d - h1, d + h1), (d - h2, d + h2))


# --------------------------------------------------------------------------- power


def _plan_se_df(c: Contrast, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard error and df with ``n`` repetitions per scenario (n blocks when paired)."""
    if c.design == "paired":
        return c.sd_diff / np.sqrt(n), n - 1.0
    va, vb = c.sd_a**2, c.sd_b**2
    se = np.sqrt((va + vb) / n)
    df = (va + vb) ** 2 * (n - 1.0) / (va**2 + vb**2) if va + vb > 0 else 2.0 * n - 2.0
    return se, df


def power_difference(c: Contrast, theta: float, alpha: float, n) -> np.ndarray:
    """P(the two-sided t test at ``alpha`` rejects | true difference ``theta``), n repetitions.

    Exact for the t test: the noncentral t distribution with noncentrality
    theta / se, se and df from the observed between-repetition sd(s).
    """
    n = np.atleast_1d(np.asarray(n, dtype=float))
    se, df = _plan_se_df(c, n)
    crit = sps.t.ppf(1 - alpha / 2, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        ncp = theta / se
    return sps.nct.sf(crit, df, ncp) + sps.nct.cdf(-crit, df, ncp)


def power_equivalence(c: Contrast, theta: float, bound: float, alpha: float, n) -> np.ndarray:
    """P(the TOST at ``alpha`` shows |difference| < ``bound`` | true difference ``theta``).

    The usual approximation from two noncentral t distributions:
    P(T > t_crit; (theta + bound)/se) + P(T < -t_crit; (theta - bound)/se) - 1,
    at least 0 (it ignores the correlation of the two one-sided tests, which
    matters only when the power is small anyway).
    """
    n = np.atleast_1d(np.asarray(n, dtype=float))
    se, df = _plan_se_df(c, n)
    crit = sps.t.ppf(1 - alpha, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = sps.nct.sf(crit, df, (theta + bound) / se)
        lower = sps.nct.cdf(-crit, df, (theta - bound) / se)
    return np.maximum(upper + lower - 1.0, 0.0)


def repetitions_needed(power, target: float = POWER_TARGET) -> int | None:
    """The smallest n in 2..MAX_REPETITIONS with power(n) >= target (None: none is enough)."""
    n = np.arange(2, MAX_REPETITIONS + 1)
    ok = np.flatnonzero(np.nan_to_num(power(n)) >= target)
    return int(n[ok[0]]) if ok.size else None


def _plannable(c: Contrast) -> bool:
    sd = c.sd_diff if c.design == "paired" else (c.sd_a, c.sd_b)
    return c.testable and bool(np.all(np.isfinite(sd)))


def settle(c: Contrast, bound: float, alpha: float) -> tuple[int | None, str]:
    """Repetitions that would settle a pair either way, planned at two stated truths, never
    at the observed difference (an observed difference is mostly noise when the pair is
    inconclusive, and planning from it sends A/A pairs after "different").

    With the observed between-repetition sd: n_eq, the n at which the TOST reaches
    80 % power if the true difference is 0, and n_diff, the n at which the
    difference test reaches 80 % power if it is as large as the margin. Returns
    (max(n_eq, n_diff), both in words); (None, reason) when the spread cannot be
    estimated or one of them exceeds MAX_REPETITIONS.
    """
    if not _plannable(c):
        return None, "needs at least 2 repetitions of each to estimate the spread"
    n_eq = repetitions_needed(lambda n: power_equivalence(c, 0.0, bound, alpha, n))
    n_diff = repetitions_needed(lambda n: power_difference(c, bound, alpha, n))

    def words(n):
        return str(n) if n is not None else f"more than {MAX_REPETITIONS}"

    text = (f"equivalence if the true difference is 0: {words(n_eq)}; a difference as "
            f"large as the margin: {words(n_diff)}")
    if n_eq is None or n_diff is None:
        return None, text
    return max(n_eq, n_diff), text


# --------------------------------------------------------------------------- pairs


def unit_values(summary: pd.DataFrame, scale: str) -> dict[str, pd.DataFrame]:
    """Scenario -> its repetitions' values on the comparison scale, with their blocks."""
    out = {}
    for name, g in summary.groupby("scenario", sort=False, observed=True):
        out[str(name)] = pd.DataFrame({
            "repetition": g["repetition"].to_numpy(),
            "block": g["block"].to_numpy(),
            "value": _on_scale(g["median_us"].to_numpy(dtype=float), scale),
        })
    return out


PAIR_COLUMNS = [
    "scenario_a", "scenario_b", "design", "repetitions_a", "repetitions_b", "pairs",
    "typical_a_us", "typical_b_us", "ratio", "ratio_ci_low", "ratio_ci_high",
    "diff_us", "diff_ci_low_us", "diff_ci_high_us", "margin", "between_rep_sd",
    "p_difference", "p_difference_holm", "p_tost", "p_tost_holm", "different",
    "equivalent", "outcome", "power_equivalence_now", "power_difference_now",
    "repetitions_to_settle", "settles_towards", "alpha_planning", "family",
]
FAMILY = "of interest"  # the pairs Holm's correction runs over


def pairwise_verdicts(
    summary: pd.DataFrame,
    *,
    margin: Margin = DEFAULT_MARGIN,
    confidence: float = 0.95,
    order: Sequence[str] | None = None,
    baseline: str | None = None,
    controls: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every pair of scenarios, compared repetition by repetition, with one of three outcomes.

    On the margin's scale (log of repetition medians for a relative margin,
    repetition medians in µs for an absolute one): the contrast
    (:func:`contrast`, paired by block when possible), the two-sided t test of
    no difference and the TOST of equivalence within the margin. Each family
    (difference, TOST) is Holm-corrected over the testable pairs of interest
    (``family`` = ``of interest``): every pair but those with the ``baseline`` (a
    reference, different by design) and those with an A/A control scenario
    (``controls``: control -> original), which are each judged at alpha itself
    (``family`` = ``baseline`` or ``A/A control``; their "Holm" p is the raw p): a
    control must be held to the plain test, or Holm's correction would hide a
    method that lets noise through. Outcome:
    ``equivalent`` when the Holm TOST p < alpha (even if a difference smaller
    than the margin is also detected: ``different`` then says so),
    ``different`` when the Holm difference p < alpha, else ``inconclusive``.

    Power and planning use alpha / m for the pairs of interest (m testable pairs
    of interest, the first and strictest step of Holm) and alpha for the others,
    the observed between-repetition sd, and a true difference of 0 (can
    equivalence be shown?) and of the margin (can a difference that large be
    found?), for the power now and the repetitions to settle (:func:`settle`)
    alike.
    """
    alpha = 1.0 - confidence
    scale, bound = margin.scale, margin.bound
    values = unit_values(summary, scale)
    typical = _typical_medians(summary)
    names = [n for n in (order or list(values)) if n in values]
    rows, contrasts = [], []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            c = contrast(values[a], values[b])
            t = t_tests(c, bound, alpha)
            row = {"scenario_a": a, "scenario_b": b, "design": c.design,
                   "repetitions_a": c.n_a, "repetitions_b": c.n_b,
                   "pairs": c.pairs if c.design == "paired" else None,
                   "typical_a_us": typical[a], "typical_b_us": typical[b],
                   "margin": bound, "p_difference": t.p_difference, "p_tost": t.p_tost,
                   "between_rep_sd": c.sd_diff if c.design == "paired" else math.sqrt(
                       (c.sd_a**2 + c.sd_b**2) / 2) if c.testable else math.nan}
            if scale == "log":
                row.update(ratio=math.exp(c.estimate), ratio_ci_low=math.exp(t.ci[0]),
                           ratio_ci_high=math.exp(t.ci[1]))
            else:
                row.update(diff_us=c.estimate, diff_ci_low_us=t.ci[0],
                           diff_ci_high_us=t.ci[1])
            rows.append(row)
            contrasts.append(c)
    out = pd.DataFrame(rows).reindex(columns=PAIR_COLUMNS)
    if out.empty:
        return out
    out["pairs"] = out["pairs"].astype("Int64")
    out["family"] = [pair_family(a, b, baseline, controls)
                     for a, b in zip(out["scenario_a"], out["scenario_b"], strict=True)]
    inside = (out["family"] == FAMILY).to_numpy()
    for column in ("p_difference", "p_tost"):
        raw = out[column].to_numpy(dtype=float)
        adjusted = raw.copy()
        adjusted[inside] = holm(raw[inside])
        out[f"{column}_holm"] = adjusted
    out["different"] = out["p_difference_holm"] < alpha
    out["equivalent"] = out["p_tost_holm"] < alpha
    out["outcome"] = np.select([out["equivalent"], out["different"]],
                               ["equivalent", "different"], default="inconclusive")
    m = max(1, int(out.loc[inside, "p_difference"].notna().sum()))
    out["alpha_planning"] = np.where(inside, alpha / m, alpha)
    now_eq, now_diff, needed, towards = [], [], [], []
    for c, outcome, plan_alpha in zip(contrasts, out["outcome"], out["alpha_planning"],
                                      strict=True):
        if _plannable(c):
            now_eq.append(float(power_equivalence(c, 0.0, bound, plan_alpha, c.n_now)[0]))
            now_diff.append(float(power_difference(c, bound, plan_alpha, c.n_now)[0]))
        else:
            now_eq.append(math.nan)
            now_diff.append(math.nan)
        if outcome == "inconclusive":
            n, way = settle(c, bound, plan_alpha)
            needed.append(n)
            towards.append(way)
        else:
            needed.append(None)
            towards.append("")
    out["power_equivalence_now"] = now_eq
    out["power_difference_now"] = now_diff
    out["repetitions_to_settle"] = pd.array(needed, dtype="Int64")
    out["settles_towards"] = towards
    return out[PAIR_COLUMNS]


def pair_family(a: str, b: str, baseline: str | None,
                controls: Mapping[str, str] | None) -> str:
    """``baseline`` when the pair includes the baseline, ``A/A control`` when it includes a
    control scenario, else ``of interest`` (the family Holm's correction runs over)."""
    if baseline and baseline in (a, b):
        return "baseline"
    if controls and (a in controls or b in controls):
        return "A/A control"
    return FAMILY


def _typical_medians(summary: pd.DataFrame) -> dict[str, float]:
    """Each scenario's typical median (µs): :func:`night_value` of its repetition medians."""
    g = summary.groupby(summary["scenario"].astype(str), sort=False)["median_us"]
    return {str(k): night_value(v.to_numpy(dtype=float), "log") for k, v in g}


def equivalence_groups(pairs: pd.DataFrame, scenarios: Sequence[str]) -> pd.DataFrame:
    """Scenarios joined by pairs found equivalent (connected components).

    ``all_pairs_equivalent`` says whether every pair inside a group was found
    equivalent (a clique) or the group is only held together by a chain.
    """
    parent = {s: s for s in scenarios}

    def root(s: str) -> str:
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    equivalent = set()
    for row in pairs.loc[pairs["outcome"] == "equivalent"].itertuples():
        if row.scenario_a in parent and row.scenario_b in parent:
            equivalent.add(frozenset((row.scenario_a, row.scenario_b)))
            parent[root(row.scenario_a)] = root(row.scenario_b)
    members: dict[str, list[str]] = {}
    for s in scenarios:
        members.setdefault(root(s), []).append(s)
    rows = []
    for i, group in enumerate(members.values(), start=1):
        clique = all(
            frozenset((a, b)) in equivalent for j, a in enumerate(group) for b in group[j + 1:]
        )
        rows.append({"group": f"G{i}", "members": ", ".join(group), "size": len(group),
                     "all_pairs_equivalent": clique})
    return pd.DataFrame(rows, columns=["group", "members", "size", "all_pairs_equivalent"])


# --------------------------------------------------------------------------- closeness


def closeness_by_repetition(
    by_rep: ByRep, baseline: str, percentile: float = 90.0,
    blocks: dict[tuple[str, int], int] | None = None,
) -> tuple[float, pd.DataFrame]:
    """The baseline's pP over all its probes, and each repetition's share of probes at or below it.

    Returns (threshold in µs, frame scenario, repetition, block, n, share).
    """
    blocks = blocks or {}
    columns = ["scenario", "repetition", "block", "n", "share"]
    if baseline not in by_rep:
        return math.nan, pd.DataFrame(columns=columns)
    pooled = np.sort(np.concatenate(list(by_rep[baseline].values())))
    threshold = float(quantile_sorted(pooled, percentile / 100.0))
    rows = [{"scenario": name, "repetition": rep, "block": blocks.get((name, rep)), "n": x.size,
             "share": np.searchsorted(x, threshold, "right") / x.size}
            for name, reps in by_rep.items() for rep, x in reps.items()]
    out = pd.DataFrame(rows, columns=columns)
    out["block"] = out["block"].astype("Int64")
    return threshold, out


def closeness_summary(shares: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per scenario: the mean over repetitions of the share at or below the threshold, t CI.

    The t interval's standard error is at least the shares' sampling error
    (:func:`share_sampling_se`), so it never collapses to a point when the
    repetitions happen to agree; clipped to [0, 1].
    """
    rows = []
    for name, g in shares.groupby("scenario", sort=False, observed=True):
        y = g["share"].to_numpy(dtype=float)
        est, low, high = _t_interval(y, confidence)
        floor = share_sampling_se(g)
        if y.size > 1 and math.isfinite(floor):
            half = sps.t.ppf(0.5 + confidence / 2, y.size - 1) * max(
                float(y.std(ddof=1)) / math.sqrt(y.size), floor)
            low, high = est - half, est + half
        rows.append({"scenario": str(name), "repetitions": len(g), "share": est,
                     "share_ci_low": max(0.0, low) if not math.isnan(low) else low,
                     "share_ci_high": min(1.0, high) if not math.isnan(high) else high,
                     "share_min": float(g["share"].min()), "share_max": float(g["share"].max())})
    return pd.DataFrame(rows, columns=["scenario", "repetitions", "share", "share_ci_low",
                                       "share_ci_high", "share_min", "share_max"])


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """A claim of the seed study, as data.

    ``kind``: ``equivalent`` (a ≈ b within the margin), ``faster`` (a's typical
    median below b's) or ``closer`` (a's share of probes at or below the
    baseline's percentile above b's; ``claimed`` holds the study's two shares).
    """

    key: str
    statement: str
    kind: str
    a: str
    b: str
    claimed: tuple[float, float] | None = None


SEED_CLAIMS: tuple[Claim, ...] = (
    Claim("2 ≈ 4", "virtio and virtio + vPF_RING are statistically equivalent, so vPF_RING "
          "is unnecessary", "equivalent", "virtio", "virtio_vpfring"),
    Claim("3 ≈ 5", "virtio + ELVIS and virtio + ELVIS + vPF_RING are statistically equivalent",
          "equivalent", "virtio_elvis", "virtio_elvis_vpfring"),
    Claim("3 < 2", "ELVIS brings a guest closer to bare metal: virtio + ELVIS is faster than "
          "virtio", "faster", "virtio_elvis", "virtio"),
    Claim("5 < 4", "ELVIS helps with vPF_RING too: virtio + ELVIS + vPF_RING is faster than "
          "virtio + vPF_RING", "faster", "virtio_elvis_vpfring", "virtio_vpfring"),
    Claim("3 closer than 5", "virtio + ELVIS is close to the baseline about 78 % of the time, "
          "virtio + ELVIS + vPF_RING only 50 %", "closer", "virtio_elvis",
          "virtio_elvis_vpfring", (0.78, 0.50)),
)

CLAIM_COLUMNS = ["claim", "statement", "scenario_a", "scenario_b", "test", "estimate",
                 "p", "p_adjustment", "outcome", "verdict", "power_now", "power_assumes",
                 "repetitions_to_settle"]


def judge_claims(
    claims: Sequence[Claim],
    pairs: pd.DataFrame,
    shares: pd.DataFrame,
    *,
    margin: Margin,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Each claim whose scenarios both have data: the verdict and the power behind it.

    Verdicts: ``supported`` (the test shows it), ``contradicted`` (the test shows
    the opposite: a claimed equivalence found different; a claimed speed-up found
    equivalent or slower; a claimed closeness found reversed), ``not settled``.
    ``equivalent`` and ``faster`` read the pair's outcome (Holm over all pairs);
    power now at alpha / m as there, of showing equivalence if the true
    difference were 0, or of finding a difference as large as the margin.
    ``closer`` is its own test (:func:`_closer_claim`): t tests, paired by
    block or Welch, of the difference of the repetitions' shares; power now of
    finding the study's own difference (0.78 - 0.50) at alpha.
    """
    alpha = 1.0 - confidence
    by_pair = {}
    for row in pairs.itertuples():
        by_pair[(row.scenario_a, row.scenario_b)] = (row, False)
        by_pair[(row.scenario_b, row.scenario_a)] = (row, True)
    scale_word = "ratio a/b" if margin.scale == "log" else "a - b (µs)"
    rows = []
    for claim in claims:
        base = {"claim": claim.key, "statement": claim.statement, "scenario_a": claim.a,
                "scenario_b": claim.b}
        if claim.kind == "closer":
            row = _closer_claim(claim, shares, alpha)
            if row is not None:
                rows.append({**base, **row})
            continue
        found = by_pair.get((claim.a, claim.b))
        if found is None:
            continue
        row, flipped = found
        if margin.scale == "log":
            est = row.ratio if not flipped else 1.0 / row.ratio
            estimate = f"{scale_word} = {est:.3g}"
        else:
            est = row.diff_us if not flipped else -row.diff_us
            estimate = f"{scale_word} = {est:.4g}"
        faster = (est < 1.0) if margin.scale == "log" else (est < 0.0)
        if claim.kind == "equivalent":
            verdict = {"equivalent": "supported", "different": "contradicted"}.get(
                row.outcome, "not settled")
            power, assumes = row.power_equivalence_now, "true difference 0"
            test = "TOST within the margin (pairwise table)"
        else:
            if row.outcome == "different" and faster:
                verdict = "supported"
            elif row.outcome == "equivalent" or row.outcome == "different":
                verdict = "contradicted"
            else:
                verdict = "not settled"
            power, assumes = row.power_difference_now, "true difference = the margin"
            test = "t test of no difference (pairwise table)"
        rows.append({**base, "test": test, "estimate": estimate,
                     "p": row.p_tost_holm if claim.kind == "equivalent"
                     else row.p_difference_holm, "p_adjustment": PAIR_ADJUSTMENT,
                     "outcome": row.outcome, "verdict": verdict, "power_now": power,
                     "power_assumes": assumes,
                     "repetitions_to_settle": row.repetitions_to_settle})
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


CLOSER_ADJUSTMENT = "Holm over the claim's two tests (none; less than the study's)"
PAIR_ADJUSTMENT = "Holm over the pairs of interest"


def share_sampling_se(shares: pd.DataFrame) -> float:
    """The smallest standard error a mean of repetition shares can have: each share is a
    proportion of its repetition's n probes, so its sampling variance is at least
    p~(1 - p~) / n, with p~ = (k + 1/2) / (n + 1) (k = share · n: never 0 or 1, so
    the floor never vanishes, even when every repetition agrees exactly). The mean
    over R repetitions: sqrt(mean variance / R). NaN without probe counts."""
    if "n" not in shares or shares.empty:
        return math.nan
    n = shares["n"].to_numpy(dtype=float)
    k = shares["share"].to_numpy(dtype=float) * n
    p = (k + 0.5) / (n + 1.0)
    return math.sqrt(float(np.mean(p * (1.0 - p) / n)) / len(shares))


def _closer_claim(claim: Claim, shares: pd.DataFrame, alpha: float) -> dict | None:
    """The closeness claim: a's share above b's, by about the study's difference.

    Two t tests (paired by block, else Welch) of the difference of the
    repetitions' shares: two-sided of no difference, and one-sided of H0 "the
    difference is at least the study's"; their p-values Holm-adjusted over the two.
    Supported: a's share found above b's. Contradicted: found below, or found
    smaller than the study's difference. Not settled otherwise. The standard error
    is at least the shares' sampling error (:func:`share_sampling_se`), so two
    identical configurations whose repetitions agree exactly still get an interval
    of nonzero width and a p-value that is not 0.
    """
    def values(name: str) -> pd.DataFrame:
        g = shares.loc[shares["scenario"] == name]
        return pd.DataFrame({"block": g["block"].to_numpy(), "value": g["share"].to_numpy()})

    a, b = values(claim.a), values(claim.b)
    if a.empty or b.empty:
        return None
    c = contrast(a, b)
    floor = math.hypot(share_sampling_se(shares.loc[shares["scenario"] == claim.a]),
                       share_sampling_se(shares.loc[shares["scenario"] == claim.b]))
    if c.testable and math.isfinite(floor) and not c.se >= floor:
        n = c.n_now  # the spreads that give this se, so that planning sees it too
        c = (replace(c, se=floor, sd_diff=floor * math.sqrt(n)) if c.design == "paired"
             else replace(c, se=floor, sd_a=floor * math.sqrt(n / 2), sd_b=floor *
                          math.sqrt(n / 2)))
    delta = claim.claimed[0] - claim.claimed[1] if claim.claimed else 0.0
    verdict, p, outcome = "not settled", math.nan, "inconclusive"
    interval = ""
    if c.testable:
        t = t_tests(c, math.inf, alpha)
        if c.se > 0:
            p_less = float(sps.t.cdf((c.estimate - delta) / c.se, c.df))
        else:
            p_less = 0.0 if c.estimate < delta else 1.0
        p_diff, p_less = holm([t.p_difference, p_less])
        interval = f" [{t.ci[0]:+.1%}, {t.ci[1]:+.1%}]"
        if p_diff < alpha and c.estimate < 0:
            verdict, p, outcome = "contradicted", p_diff, "different"
        elif p_less < alpha:
            verdict, p = "contradicted", p_less
            outcome = "different" if p_diff < alpha else "smaller than claimed"
        elif p_diff < alpha:
            verdict, p, outcome = "supported", p_diff, "different"
        else:
            p = p_diff
    if _plannable(c):
        power = 1.0 if c.se == 0 else float(power_difference(c, delta, alpha, c.n_now)[0])
    else:
        power = math.nan
    needed = (repetitions_needed(lambda n: power_difference(c, delta, alpha, n))
              if _plannable(c) and c.se > 0 and verdict == "not settled" else None)
    return {"test": "t tests of the shares' difference (none; less than the study's), "
                    "repetition by repetition",
            "estimate": f"shares {a['value'].mean():.1%} vs {b['value'].mean():.1%} "
                        f"(difference {c.estimate:+.1%}{interval}; the study: {delta:+.0%})",
            "p": p, "p_adjustment": CLOSER_ADJUSTMENT, "outcome": outcome, "verdict": verdict,
            "power_now": power, "power_assumes": f"true difference {delta:.0%} (the study's)",
            "repetitions_to_settle": needed}


# --------------------------------------------------------------------------- campaigns


COMPARISON_COLUMNS = [
    "scenario", "older", "repetitions_old", "repetitions_new", "median_old_us",
    "median_new_us", "median_change_pct", "median_ci_low_pct", "median_ci_high_pct",
    "median_between_sd", "median_df", "median_p", "median_p_holm", "median_p_tost",
    "median_p_tost_holm", "median_outcome", "loss_old_pct", "loss_new_pct", "loss_change_pp",
    "loss_ci_low_pp", "loss_ci_high_pp", "loss_between_sd", "loss_df", "loss_p", "loss_p_holm",
    "loss_p_tost", "loss_p_tost_holm", "loss_outcome", "median_regressed", "loss_regressed",
    "verdict", "between_source", "note",
]
# A scenario's verdict against an older campaign; the comparison's outcome is the worst.
COMPARISON_VERDICTS = ("regressed", "inconclusive", "improved", "unchanged", "not comparable")
COMPARISON_OUTCOMES = ("regressed", "inconclusive", "unchanged")


def campaign_contrast(
    new: np.ndarray, old: np.ndarray, between: Component | None
) -> Contrast:
    """The difference of two campaigns' means of ``new`` and ``old`` (one value per repetition),
    each campaign one draw of the night.

    Variance of the difference: 2 sigma_b^2 + s_new^2 / R_new + s_old^2 / R_old,
    sigma_b the component's between-night sd (df ``between_df``), s the
    campaign's own repetition sd (df R - 1; with one repetition the component's
    ``within_sd`` and ``within_df``). df: Welch-Satterthwaite over the three terms.
    Untestable without a component, or with no repetition on a side.
    """
    na, nb = new.size, old.size
    sd_a = float(new.std(ddof=1)) if na > 1 else math.nan
    sd_b = float(old.std(ddof=1)) if nb > 1 else math.nan
    est = float(new.mean() - old.mean()) if na and nb else math.nan
    if between is None or not na or not nb:
        return Contrast("untestable", na, nb, 0, est, math.nan, math.nan, sd_a, sd_b, math.nan)
    terms = [(2.0 * between.between_sd**2, between.between_df)]
    for sd, n in ((sd_a, na), (sd_b, nb)):
        if n > 1:
            terms.append((sd**2 / n, float(n - 1)))
        else:
            terms.append((between.within_sd**2, between.within_df))
    if any(not math.isfinite(v) for v, _ in terms):
        return Contrast("untestable", na, nb, 0, est, math.nan, math.nan, sd_a, sd_b, math.nan)
    var = sum(v for v, _ in terms)
    spread = sum(v**2 / df for v, df in terms if v > 0 and df > 0 and math.isfinite(df))
    df = var**2 / spread if spread > 0 else math.inf
    return Contrast("between nights", na, nb, 0, est, math.sqrt(var), df, sd_a, sd_b, math.nan)


def compare_campaigns(
    new_summary: pd.DataFrame,
    old_summary: pd.DataFrame,
    new_loss: pd.DataFrame,
    old_loss: pd.DataFrame,
    *,
    older: str,
    threshold_pct: float = 10.0,
    loss_threshold_pp: float = 1.0,
    confidence: float = 0.95,
    between: pd.DataFrame | None = None,
    prior: dict[str, Component] | None = PRIOR,
) -> pd.DataFrame:
    """Per scenario: did the newer campaign get worse than the older one, night against night?

    Each campaign is one draw of the night (:mod:`analysis.between_nights`): the
    difference of the two campaigns' means of the log repetition medians (median
    RTT) and of the repetition losses (points) has a standard error that includes
    twice the between-night variance, from ``between``
    (:func:`analysis.between_nights.components` of a history) pooled with
    ``prior``, or from the prior alone; ``prior=None`` and no history row: not
    judged (inconclusive). Per metric, with the margin ±``threshold_pct`` % of the
    typical median (on the log scale) and ±``loss_threshold_pp`` points of loss:

    - ``regressed``: worse by more than the margin, and the two-sided t test of
      no change has a Holm p < alpha (Holm over this comparison's scenarios and
      both metrics, so that any false "regressed" has a chance of at most alpha / 2);
    - ``improved``: the same, better;
    - ``unchanged``: the TOST shows the change within ±the margin (Holm p <
      alpha, the same family): the (1 - 2 alpha) interval lies inside it;
    - ``inconclusive``: neither (a wide interval is not evidence of no change).

    A scenario's ``verdict``: regressed if a metric regressed; else inconclusive
    if one is inconclusive (or untested); else improved if one improved; else
    unchanged; ``not comparable`` without data in both campaigns.
    """
    alpha = 1.0 - confidence
    new_v, old_v = unit_values(new_summary, "log"), unit_values(old_summary, "log")
    nl, ol = _loss_values(new_loss), _loss_values(old_loss)
    names = list(dict.fromkeys([*new_v, *old_v, *nl, *ol]))
    bounds = {"median": math.log1p(threshold_pct / 100.0), "loss": loss_threshold_pp}
    rows = []
    for name in names:
        row: dict[str, object] = {"scenario": name, "older": older}
        notes, sources = [], set()
        for metric, new_side, old_side in (("median", new_v, old_v), ("loss", nl, ol)):
            if name not in new_side or name not in old_side:
                continue
            y_new = new_side[name]["value"].to_numpy(dtype=float)
            y_old = old_side[name]["value"].to_numpy(dtype=float)
            comp = component_for(between, name, metric, prior)
            c = campaign_contrast(y_new, y_old, comp)
            t = t_tests(c, bounds[metric], alpha)
            if comp is not None:
                sources.add(comp.describe(metric))
            if metric == "median":
                row.update(repetitions_new=c.n_a, repetitions_old=c.n_b,
                           median_new_us=math.exp(y_new.mean()),
                           median_old_us=math.exp(y_old.mean()),
                           median_change_pct=100.0 * math.expm1(c.estimate),
                           median_ci_low_pct=100.0 * math.expm1(t.ci[0]),
                           median_ci_high_pct=100.0 * math.expm1(t.ci[1]))
            else:
                row.update(loss_new_pct=float(y_new.mean()), loss_old_pct=float(y_old.mean()),
                           loss_change_pp=c.estimate, loss_ci_low_pp=t.ci[0],
                           loss_ci_high_pp=t.ci[1])
            row.update({f"{metric}_between_sd": comp.between_sd if comp else math.nan,
                        f"{metric}_df": c.df, f"{metric}_p": t.p_difference,
                        f"{metric}_p_tost": t.p_tost})
            if not c.testable:
                notes.append(f"{'RTT' if metric == 'median' else 'loss'}: not judged (no "
                             "between-night variation known: no history and no prior)")
        row["between_source"] = "; ".join(sorted(sources))
        row["note"] = "; ".join(notes)
        rows.append(row)
    out = pd.DataFrame(rows).reindex(columns=COMPARISON_COLUMNS)
    n = len(out)
    for kind in ("p", "p_tost"):  # one family per test: every scenario, both metrics
        joint = holm(np.concatenate([out[f"median_{kind}"].to_numpy(dtype=float),
                                     out[f"loss_{kind}"].to_numpy(dtype=float)]))
        out[f"median_{kind}_holm"], out[f"loss_{kind}_holm"] = joint[:n], joint[n:]
    for metric, bound in (("median", bounds["median"]), ("loss", bounds["loss"])):
        change = (out["median_change_pct"].to_numpy(dtype=float) if metric == "median"
                  else out["loss_change_pp"].to_numpy(dtype=float))
        limit = threshold_pct if metric == "median" else bound
        sig = (out[f"{metric}_p_holm"] < alpha).to_numpy()
        present = out["median_new_us" if metric == "median" else "loss_new_pct"].notna()
        present = present.to_numpy()
        out[f"{metric}_outcome"] = np.select(
            [~present, sig & (change > limit), sig & (change < -limit),
             (out[f"{metric}_p_tost_holm"] < alpha).to_numpy()],
            ["", "regressed", "improved", "unchanged"], default="inconclusive")
    out["median_regressed"] = out["median_outcome"] == "regressed"
    out["loss_regressed"] = out["loss_outcome"] == "regressed"
    out["verdict"] = [_scenario_verdict(m, lo) for m, lo in
                      zip(out["median_outcome"], out["loss_outcome"], strict=True)]
    return out


def _scenario_verdict(median: str, loss: str) -> str:
    found = [o for o in (median, loss) if o]
    if not found:
        return "not comparable"
    for verdict in COMPARISON_VERDICTS:
        if verdict in found:
            return verdict
    return "inconclusive"


def comparison_outcome(comparison: pd.DataFrame) -> str:
    """The comparison's outcome over every scenario and older campaign: regressed when any
    scenario regressed, else inconclusive when any is, else unchanged (improved scenarios
    count as unchanged: nothing got worse); scenarios not comparable do not count."""
    verdicts = set(comparison["verdict"]) if not comparison.empty else set()
    if "regressed" in verdicts:
        return "regressed"
    if "inconclusive" in verdicts or not verdicts - {"not comparable"}:
        return "inconclusive"
    return "unchanged"


def _loss_values(loss: pd.DataFrame) -> dict[str, pd.DataFrame]:
    out = {}
    if loss is None or loss.empty:
        return out
    clean = loss.dropna(subset=["loss_pct"])
    for name, g in clean.groupby("scenario", sort=False, observed=True):
        out[str(name)] = pd.DataFrame({"repetition": g["repetition"].to_numpy(),
                                       "block": pd.NA,
                                       "value": g["loss_pct"].to_numpy(dtype=float)})
    return out
