"""Change points in nightly histories: E-divisive means with a t test, as Apache Otava does it.

A night's value of a metric is already a summary of its repetitions
(:mod:`analysis.history`). Over the done nights of one segment (same parameters,
same lab), each (scenario, metric) series is cut where its level changes:

1. **Split** (Matteson & James 2014, E-divisive, alpha = 1). For an interval
   ``x[s:e]`` and every split ``tau`` and end ``kappa`` (s < tau < kappa <= e), with
   ``X = x[s:tau]`` (n values) and ``Y = x[tau:kappa]`` (m values),

       Q(tau, kappa) = 2/(m+n) sum |X_i - Y_j|
                       - 2m/((m+n)(n-1)) sum_{i<k} |X_i - X_k|
                       - 2n/((m+n)(m-1)) sum_{j<k} |Y_j - Y_k|,

   that is mn/(m+n) times the sample energy distance of X and Y. The candidate
   is the (tau, kappa) of the largest Q with at least ``min_segment`` nights in
   X, in Y and in ``x[tau:e]``. The split ``tau`` is kept if Student's two-sided
   t test between ``x[s:tau]`` and ``x[tau:e]`` gives p below the first-pass
   level (Otava's: 10 ``p_value`` when ``p_value`` < 0.05). Failing that,
   ``x[tau:kappa]`` is kept as an *excursion* (splits at tau and kappa) when it
   differs from both ``x[s:tau]`` and ``x[kappa:e]`` at p < ``p_value`` / P each, P
   the interval's number of (tau, kappa) pairs: a Bonferroni level, so on
   nights without a change it fires with probability at most ``p_value``. Kept
   splits are searched again on each side; an interval shorter than
   ``2 min_segment`` is final.
2. **Merge** (Otava's merge step, no minimum magnitude): each kept split is
   tested again between the two final segments beside it; while the weakest has
   p >= ``p_value`` it is dropped and the others are tested again.

A :class:`ChangePoint` reports that last test: the two segments' means, Student's
p, and the 95 % Welch interval of after - before.

Why Student's t test (pooled variance): within a segment the nightly noise is
the same before and after, and pooling it lets a change be confirmed a few
nights after it happened (a 20 % step 3 nights before the end of 30, at 5 %
noise, is found in 96 % of series; with Welch's test, ~2 degrees of freedom
there, in 19 %). Otava does the same, with the population sd (ddof = 0); here
the sample sd.

Differences from Otava: the excursion test (without it, 5 bad nights between 20
and 20 good ones, at 2 % noise, are found in 6 % of series, because the first
split's t test sees the whole interval; with it in 99 %, and the rate of changes
in flat nights unchanged); each interval is searched on its own (Otava stops at
the first candidate, over all intervals, that fails, so a long quiet interval
can hide a change in a short one); a minimum segment length; no sliding windows
(with Otava's 50-night windows the rate of changes in flat nights grows with
the history: about 25 % of flat 1 000-night series, against about 7 % searched
whole); zero spread on both sides gives p = 0 when the means differ and 1 when
not (as :mod:`analysis.replication` does for losses). Apache Otava itself cannot
be installed beside this project: it pins numpy 2.2.* and scipy < 1.17 (ours:
scipy 1.17.1) and pulls in BigQuery, PostgreSQL and Slack clients.

Measured rates (false changes, power): docs/analysis.md, "Nightly history and
change points". Cost: one (n+1)^2 array of pairwise-distance prefix sums per
series, then each interval's Q grid in blocks of rows: about 50 ms for a
1 000-night series with 4 changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from analysis import history

DEFAULT_P_VALUE = 0.001
DEFAULT_MIN_SEGMENT = 3
CONFIDENCE = 0.95


@dataclass(frozen=True)
class ChangePoint:
    """A change between ``values[index - 1]`` and ``values[index]``.

    ``before_mean`` and ``after_mean`` are the means of the two final segments
    beside it; ``ci_low``/``ci_high`` the 95 % Welch interval of after - before
    (the metric's unit); ``p_value`` Student's two-sided t test of the two means.
    """

    index: int
    p_value: float
    before_mean: float
    after_mean: float
    ci_low: float
    ci_high: float


# --------------------------------------------------------------------------- E-divisive

ROWS_PER_BLOCK = 128  # the Q grid is computed in blocks of rows that stay in the CPU's cache


def distance_prefix(values: np.ndarray) -> np.ndarray:
    """P[r, c] = sum of |x_i - x_j| over i < r, j < c: (n + 1) x (n + 1), P[0, :] = P[:, 0] = 0.

    Any rectangle of pairwise distances is then four lookups.
    """
    n = values.size
    prefix = np.zeros((n + 1, n + 1))
    inner = prefix[1:, 1:]
    np.subtract(values[:, None], values[None, :], out=inner)
    np.abs(inner, out=inner)
    np.cumsum(inner, axis=0, out=inner)
    np.cumsum(inner, axis=1, out=inner)
    return prefix


def energy_block(prefix: np.ndarray, start: int, taus: range, kappas: range, min_segment: int
                 ) -> np.ndarray:
    """Q(tau, kappa) of ``x[start:...]`` for tau in ``taus`` (rows), kappa in ``kappas`` (columns),
    -inf where kappa - tau < min_segment. X = x[start:tau] (n values), Y = x[tau:kappa] (m):

        Q = (2 sum|X - Y| - 2m/(n-1) sum_{i<k}|X_i - X_k| - 2n/(m-1) sum_{j<k}|Y_j - Y_k|) / (m+n)
    """
    t0, t1, k0, k1 = taus.start, taus.stop, kappas.start, kappas.stop
    diag = np.diagonal(prefix)
    d_tau, d_kappa = diag[t0:t1, None], diag[None, k0:k1]
    p_tau, p_kappa = prefix[start, t0:t1, None], prefix[start, None, k0:k1]
    p_grid = prefix[t0:t1, k0:k1]
    n = np.arange(t0 - start, t1 - start, dtype=float)[:, None]
    m = np.arange(k0, k1, dtype=float)[None, :] - np.arange(t0, t1, dtype=float)[:, None]
    q = p_grid - p_kappa  # sum|X - Y| = P[tau, kappa] - P[s, kappa] - P[tau, tau] + P[s, tau]
    q += p_tau - d_tau
    q *= 2
    q -= m * ((d_tau - 2 * p_tau + diag[start]) / (n - 1))  # 2m/(n-1) sum_{i<k}|X_i - X_k|
    within_y = p_grid * -2  # 2 sum_{j<k}|Y_j - Y_k| = P[k, k] - 2 P[tau, k] + P[tau, tau]
    within_y += d_kappa
    within_y += d_tau
    with np.errstate(divide="ignore", invalid="ignore"):
        within_y *= n / (m - 1)
        q -= within_y
        q /= m + n
    q[m < min_segment] = -np.inf
    return q


def energy_grid(prefix: np.ndarray, start: int, stop: int, min_segment: int) -> np.ndarray:
    """The whole grid of ``x[start:stop]``: tau = start + min_segment ... stop - min_segment,
    kappa = start + 2 min_segment ... stop (tests and figures; detection uses blocks)."""
    return energy_block(prefix, start, range(start + min_segment, stop - min_segment + 1),
                        range(start + 2 * min_segment, stop + 1), min_segment)


def best_pair(prefix: np.ndarray, start: int, stop: int, min_segment: int
              ) -> tuple[int, int] | None:
    """(tau, kappa) of ``x[start:stop]`` with the largest Q over all pairs with at least
    ``min_segment`` values in X, in Y and in x[tau:stop] (None when the interval is shorter
    than 2 min_segment). Ties go to the smallest tau, then the smallest kappa."""
    last = stop - min_segment + 1
    best, pair = -np.inf, None
    for t0 in range(start + min_segment, last, ROWS_PER_BLOCK):
        t1 = min(t0 + ROWS_PER_BLOCK, last)
        q = energy_block(prefix, start, range(t0, t1), range(t0 + min_segment, stop + 1),
                         min_segment)
        flat = int(np.argmax(q))
        if q.flat[flat] > best:
            row, col = divmod(flat, q.shape[1])
            best, pair = q.flat[flat], (t0 + row, t0 + min_segment + col)
    return pair


# --------------------------------------------------------------------------- the t test


def student_p(before: np.ndarray, after: np.ndarray) -> float:
    """Student's two-sided t test of equal means (pooled sample variance, df = n1 + n2 - 2).

    Both sides need 2 values or more. Zero spread on both sides: 0 when the means differ, else 1.
    """
    na, nb = before.size, after.size
    diff = float(after.mean() - before.mean())
    pooled = (float(before.var(ddof=1)) * (na - 1) + float(after.var(ddof=1)) * (nb - 1)) / (
        na + nb - 2)
    if pooled == 0:
        return 0.0 if diff != 0 else 1.0
    t = abs(diff) / math.sqrt(pooled * (1 / na + 1 / nb))
    return float(2 * special.stdtr(na + nb - 2, -t))


def welch_interval(before: np.ndarray, after: np.ndarray, confidence: float = CONFIDENCE
                   ) -> tuple[float, float]:
    """Welch's t interval of mean(after) - mean(before) (Welch-Satterthwaite df)."""
    diff = float(after.mean() - before.mean())
    sa, sb = float(before.var(ddof=1)) / before.size, float(after.var(ddof=1)) / after.size
    if sa + sb == 0:
        return diff, diff
    df = (sa + sb) ** 2 / (sa**2 / (before.size - 1) + sb**2 / (after.size - 1))
    half = float(special.stdtrit(df, 0.5 + confidence / 2)) * math.sqrt(sa + sb)
    return diff - half, diff + half


# --------------------------------------------------------------------------- detection


def first_pass(p_value: float) -> float:
    """The split step's relaxed threshold (Otava's): 10 p below 0.05, 2 p below 0.5."""
    if p_value < 0.05:
        return 10 * p_value
    return 2 * p_value if p_value < 0.5 else p_value


def split_step(values: np.ndarray, p_value: float, min_segment: int) -> list[int]:
    """Recursive E-divisive: the splits kept by the t test of their interval at the first-pass
    level (or, failing that, by the excursion test at ``p_value``), sorted."""
    weak = first_pass(p_value)
    prefix = distance_prefix(values)
    pending, found = [(0, values.size)], []
    while pending:
        start, stop = pending.pop()
        pair = best_pair(prefix, start, stop, min_segment)
        if pair is None:
            continue
        tau, kappa = pair
        if student_p(values[start:tau], values[tau:stop]) < weak:
            found.append(tau)
            pending += [(start, tau), (tau, stop)]
        elif excursion(values, start, tau, kappa, stop, min_segment, p_value):
            found += [tau, kappa]
            pending += [(start, tau), (tau, kappa), (kappa, stop)]
    return sorted(found)


def excursion_pairs(length: int, min_segment: int) -> int:
    """How many (tau, kappa) of an interval of ``length`` values leave at least ``min_segment``
    values in each of x[s:tau], x[tau:kappa] and x[kappa:e]."""
    k = length - 3 * min_segment + 1
    return max(k, 0) * (k + 1) // 2


def excursion(values: np.ndarray, start: int, tau: int, kappa: int, stop: int,
              min_segment: int, p_value: float) -> bool:
    """Whether x[tau:kappa] differs from both x[start:tau] and x[kappa:stop], each by a t test
    at ``p_value`` / (the interval's number of (tau, kappa) pairs): a Bonferroni level, so on
    nights without a change this fires with probability at most ``p_value``."""
    pairs = excursion_pairs(stop - start, min_segment)
    if stop - kappa < min_segment or pairs == 0:
        return False
    level = p_value / pairs
    return (student_p(values[start:tau], values[tau:kappa]) < level
            and student_p(values[tau:kappa], values[kappa:stop]) < level)


def _neighbours(values: np.ndarray, splits: list[int], i: int) -> tuple[np.ndarray, np.ndarray]:
    """The final segments before and after split ``i``."""
    bounds = [0, *splits, values.size]
    return values[bounds[i]:bounds[i + 1]], values[bounds[i + 1]:bounds[i + 2]]


def merge_step(values: np.ndarray, splits: list[int], p_value: float) -> list[int]:
    """Drop the weakest split (largest p between its neighbours) while p >= ``p_value``."""
    splits = list(splits)
    while splits:
        pvalues = [student_p(*_neighbours(values, splits, i)) for i in range(len(splits))]
        weakest = int(np.argmax(pvalues))
        if pvalues[weakest] < p_value:
            break
        del splits[weakest]
    return splits


def e_divisive(
    values: np.ndarray, *, p_value: float = DEFAULT_P_VALUE, min_segment: int = DEFAULT_MIN_SEGMENT
) -> list[ChangePoint]:
    """Change points of ``values`` (one finite value per night, in night order), by index."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError("values must be one-dimensional")
    if not np.isfinite(x).all():
        raise ValueError("values must be finite")
    if isinstance(min_segment, bool) or not isinstance(min_segment, int) or min_segment < 2:
        raise ValueError(f"min_segment must be an integer >= 2 (a t test needs 2 values per "
                         f"side), got {min_segment!r}")
    if not 0 < p_value < 1:
        raise ValueError(f"p_value must be in (0, 1), got {p_value!r}")
    splits = merge_step(x, split_step(x, p_value, min_segment), p_value)
    out = []
    for i, index in enumerate(splits):
        before, after = _neighbours(x, splits, i)
        low, high = welch_interval(before, after)
        out.append(ChangePoint(index=index, p_value=student_p(before, after),
                               before_mean=float(before.mean()), after_mean=float(after.mean()),
                               ci_low=low, ci_high=high))
    return out


# --------------------------------------------------------------------------- a catalog

DETECT_COLUMNS: dict[str, str] = {
    "scenario": "str", "metric": "str", "unit": "str", "segment": "int64", "night": "str",
    "previous_night": "str", "before": "float64", "after": "float64", "change_pct": "float64",
    "ci_low_pct": "float64", "ci_high_pct": "float64", "p_value": "float64",
    "direction": "str", "differs": "str",
}
NOTHING_DIFFERS = "nothing recorded differs"


def series(catalog: pd.DataFrame) -> pd.DataFrame:
    """The done nights' values with their segment: segment, scenario, metric, unit, night,
    value, sorted by (segment, scenario, metric, night); rows without a finite value left out."""
    columns = ["night", "outcome", "scenario", "metric", "unit", "value"]
    rows = catalog.loc[catalog["outcome"] == "done", columns]
    rows = rows.loc[rows["metric"].notna() & np.isfinite(rows["value"].to_numpy(dtype=float))]
    rows = rows.merge(history.segments(catalog)[["night", "segment"]], on="night", how="inner")
    rows = rows.sort_values(["segment", "scenario", "metric", "night"], kind="stable")
    return rows[["segment", "scenario", "metric", "unit", "night", "value"]].reset_index(
        drop=True)


def detect(catalog: pd.DataFrame, *, p_value: float = DEFAULT_P_VALUE,
           min_segment: int = DEFAULT_MIN_SEGMENT) -> pd.DataFrame:
    """Change points of every (segment, scenario, metric) series of the done nights.

    One row per change: the first night after it and the one before, the means of the
    final segments either side (the metric's unit), the change and its 95 % Welch interval
    in % of ``before`` (NaN when ``before`` is 0), Student's p, whether it is a regression
    or a progression (:func:`analysis.history.better`) and what differs between the two
    nights' contexts.
    """
    data = series(catalog)
    found = []
    keys = ["segment", "scenario", "metric"]
    for (segment, scenario, metric), group in data.groupby(keys, sort=False):
        values = group["value"].to_numpy(dtype=float)
        if values.size < 2 * min_segment:
            continue
        nights = group["night"].to_numpy(dtype=object)
        unit = group["unit"].iloc[-1]
        for cp in e_divisive(values, p_value=p_value, min_segment=min_segment):
            found.append(_row(segment, scenario, metric, unit, nights, cp))
    frame = pd.DataFrame(found, columns=[c for c in DETECT_COLUMNS if c != "differs"])
    either_side = set(frame["night"]) | set(frame["previous_night"])
    contexts = history.contexts_by_night(catalog, either_side)
    parsed = {night: history.parse_context(text) for night, text in contexts.items()}
    frame["differs"] = [
        "; ".join(history.differences(parsed.get(a, {}), parsed.get(b, {}))) or NOTHING_DIFFERS
        for a, b in zip(frame["previous_night"], frame["night"], strict=True)]
    frame = frame.sort_values(["night", "scenario", "metric"], kind="stable")
    return frame.astype(DETECT_COLUMNS).reset_index(drop=True)


def _row(segment: int, scenario: str, metric: str, unit: str, nights: np.ndarray,
         cp: ChangePoint) -> dict:
    scale = 100.0 / abs(cp.before_mean) if cp.before_mean != 0 else math.nan
    rising = cp.after_mean > cp.before_mean
    return {
        "scenario": scenario, "metric": metric, "unit": unit, "segment": segment,
        "night": nights[cp.index], "previous_night": nights[cp.index - 1],
        "before": cp.before_mean, "after": cp.after_mean,
        "change_pct": (cp.after_mean - cp.before_mean) * scale,
        "ci_low_pct": cp.ci_low * scale, "ci_high_pct": cp.ci_high * scale,
        "p_value": cp.p_value,
        "direction": "progression" if rising == (history.better(metric) > 0) else "regression",
    }
