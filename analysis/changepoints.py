"""Change points in nightly histories: E-divisive candidates, confirmed on whitened nights.

A night's value of a metric is already a summary of its repetitions
(:mod:`analysis.history`). Over the done nights of one segment (same parameters,
same lab), each (scenario, metric) series is examined by :func:`detect`, for all
series of a lab at once (:func:`changes_of`):

1. **Outlier nights.** A night whose robust z exceeds 5 against both the median of
   up to 5 nights before it and of up to 5 after it (one side at the ends; the
   scale 1.4826 times the series' median absolute deviation from those medians),
   by at least the metric's resolution floor, and whose neighbours stay near the
   level it is compared with, is an *outlier* (:func:`outlier_nights`): reported on its
   own row (``kind`` "outlier"), never a change, never an alert, and left out of
   the tests below. That holds for the last night too: one night is never enough
   for a change, and a change needs ``min_segment`` nights after it.
2. **Candidates** (Matteson & James 2014, E-divisive, alpha = 1), as before: for an
   interval ``x[s:e]`` and every split ``tau`` and end ``kappa``, with ``X = x[s:tau]``
   (n values) and ``Y = x[tau:kappa]`` (m values),

       Q(tau, kappa) = 2/(m+n) sum |X_i - Y_j|
                       - 2m/((m+n)(n-1)) sum_{i<k} |X_i - X_k|
                       - 2n/((m+n)(m-1)) sum_{j<k} |Y_j - Y_k|,

   the largest Q with at least ``min_segment`` nights in X, in Y and in
   ``x[tau:e]`` is kept when Student's t test between ``x[s:tau]`` and ``x[tau:e]``
   gives p below 10 ``p_value`` (or, failing that, ``x[tau:kappa]`` differs from
   both sides at ``p_value`` over the interval's number of (tau, kappa) pairs: an
   excursion); kept splits are searched again on each side, then merged (the
   weakest dropped while Student's p between its final neighbours is >= ``p_value``).
   These p-values ignore that the split was chosen and that nights correlate: they
   only propose where a change may be.
3. **Autocorrelation.** Nights are not independent: the lab drifts, and a night's
   conditions linger (the stored campaigns of one unchanged lab differ more between
   campaigns than their repetitions allow: F = 4.4). One AR(1) coefficient phi is
   estimated per call from the lab's series: per series, the lag-1 autocorrelation
   r of the residuals around its segment means, corrected for the bias that removing
   a mean of L nights brings, (r + c) / (1 - 4 c) with c = segments / nights
   (Kendall 1954); the lab's phi is their median (a series with a change not yet
   found looks autocorrelated, and the median does not follow it), clipped to
   [0, 0.9]; first around each series' overall mean, then again around the changes
   the first pass confirmed. Pooling matters: one 40-night series estimates phi to
   about ±0.15, the median of 47 to about ±0.03, and an underestimated phi is what
   makes false alarms. Why whitening rather than a block permutation: a change a few nights
   before the end falls inside one block, blocks of 5 in 40 nights leave 8 blocks
   to permute, and BH over a lab's 47 series needs p near 0.05 / 47 = 1e-3
   resolved, that is thousands of permutations per series every night; the
   whitened test is exact under its model and costs O(n).
4. **The test of the chosen split** (whitened max-t). The nights are Prais-Winsten
   transformed with phi (u_0 = sqrt(1 - phi^2) x_0, u_t = x_t - phi x_(t-1)), and a
   step at every admissible split j (``min_segment`` nights each side) is fitted by
   least squares with its level: t_j, L - 2 degrees of freedom (phi = 0: Student's
   pooled two-sample t test, as before). The statistic is max_j |t_j|: the split is
   not tested as if it had not been chosen. Its p-value is the tail of that
   maximum (:func:`max_t_p`: each |t| mapped to the normal deviate b of the same
   tail, then Siegmund & Yakir's approximation for the maximum of a sequence of
   correlated normal statistics, P ~ 2 [Q(b) + phi(b) b sum_j (1 - rho_j)
   nu(b sqrt(2 (1 - rho_j)))], rho_j the correlation of neighbouring splits'
   statistics). Checked against simulated AR(1) nights: at the simulated 1 % and
   0.1 % quantiles it gives 0.8-1.5 % and 0.10-0.19 % for 8 to 1 000 nights.
5. **False-discovery rate over the lab.** Each series' *gate* p is that test over
   all its nights; Benjamini-Hochberg over all series of the call (every series with
   at least 2 ``min_segment`` nights is one hypothesis) gives its ``q_value``; a
   series with q <= ``fdr`` has changed. Its changes are the candidates whose
   *local* p (the same test in the window between the neighbouring changes) is
   within the BH cut (the largest gate p rejected), the weakest dropped and the
   others tested again until all pass (no candidate: the gate's own split). A
   series that does not pass its gate reports no change, so with no change
   anywhere the chance of any change in one call is at most ``fdr``.
6. **Alerts.** A change *alerts* (nightly: a REGRESSION line and exit 1, or a listed
   progression) only when its metric is one of ``alert_metrics`` (default
   :data:`KEY_METRICS`: RTT p50 and p99, NDR, loss at rate) and |after - before|
   is at least the metric's resolution floor (:func:`resolution_floor`). Other
   changes are listed on the dashboard with ``alerting`` false.

A :class:`ChangePoint` reports a change's final segments' means, its local p, and
the 95 % Welch interval of after - before widened by sqrt((1 + phi) / (1 - phi)) (the
AR(1) variance inflation of a mean).

``method="student"`` (:data:`METHOD_STUDENT`) is the previous detector, kept to
measure against: step 2 alone, its p Student's, every change alerting, no
outliers. The old chain's shortcomings, measured on 40-night series with 5 %
noise: changes in 1.2 % of flat series and 30 % at phi = 0.5, one outlier among the
last three nights a change in 6.6-8.2 %, nothing controlling the rate over a lab's
series.

Why E-divisive still proposes the splits: it finds excursions (a few bad nights
between good ones) that a single-split statistic misses, and its splits are only
candidates here. Apache Otava itself cannot be installed beside this project: it
pins numpy 2.2.* and scipy < 1.17 (ours: scipy 1.17.1) and pulls in BigQuery,
PostgreSQL and Slack clients.

Determinism: no random numbers are drawn; the same catalog gives the same rows.
Measured rates (false alarms per month per lab, detection delays): docs/analysis.md,
"Nightly history and change points" (bench/calibration_nights.py). Cost: the
candidate search's (n+1)^2 array of pairwise-distance prefix sums per series, then
O(n) per test (bench/bench_changepoints.py).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from analysis import history

DEFAULT_P_VALUE = 0.001  # the candidate search's level (and the previous method's only test)
DEFAULT_MIN_SEGMENT = 3
DEFAULT_FDR = 0.025  # Benjamini-Hochberg level over all series of one detect() call (calibrated:
# bench/calibration_nights.py, docs/analysis.md)
CONFIDENCE = 0.95
METHOD_WHITENED = "whitened"  # outliers, whitened max-t p, FDR, key metrics alert
METHOD_STUDENT = "student"  # the previous method: Student's t at p_value, every change alerts
METHODS = (METHOD_WHITENED, METHOD_STUDENT)
# Metrics whose changes alert (REGRESSION lines, exit 1); other metrics' changes are listed.
KEY_METRICS = frozenset({"rtt_p50_us", "rtt_p99_us", "ndr_pps", "rate_loss_pct"})
OUTLIER_Z = 5.0  # robust z beyond which a lone night is an outlier
OUTLIER_WINDOW = 5  # nights each side whose medians a night is compared with
SQRT_2PI = math.sqrt(2 * math.pi)
RECENT_NIGHTS = 10  # splits with at most this many nights after them are searched apart
RECENT_WEIGHT = 0.75  # the share of the level given to that search (split_p)
MAX_PHI = 0.9  # the AR(1) coefficient used is capped here (variance inflation 19)
RTT_RESOLUTION_US = 1.0  # ping prints RTTs to 1 µs (data/rtt.parquet rtt_us)
RESOLUTION_STEPS = 2  # a change must span this many resolution steps to alert
# kvmnetlab.parameters' defaults, used when a night's context lacks the parameter
PARAMETER_DEFAULTS = {"rate_frames": 20000, "ping_count": 200, "search_granularity": 0.1}


# The dashboard's definition of a change point (analysis.definitions takes it when exported):
# a (term, text) template with the fields {p_value} and {min_segment}; the other numbers are
# this module's constants.
DEFINITION: tuple[str, str] = (
    'Change point',
    'A night where the level of a metric changes, found within each segment, for all '
    'series of the lab at once. Lone outlier nights come first: a night more than '
    f'{OUTLIER_Z:g} robust standard deviations from the median of the {OUTLIER_WINDOW} '
    'nights before it and of those after it (one side at the ends), its neighbours staying '
    'near that level, is marked as an outlier (a cross on the chart, listed under "Outlier '
    'nights") and is never a change point. Candidates come from E-divisive means (Matteson '
    'and James 2014): the nights are split recursively where the energy distance between '
    'the sides is largest, each side holding at least {min_segment} nights, a split kept '
    "when Student's pooled t test gives p below 10 times {p_value:g} (or a run of nights "
    'differs from both sides at a Bonferroni level), and dropped again while the weakest '
    'has p >= {p_value:g}. A candidate is a change point only when its series passes a '
    'test that accounts for the split having been chosen and for nights that resemble the '
    "night before: the largest t over all splits, on nights whitened with the lab's AR(1) "
    f'coefficient phi, its p from the distribution of that maximum, at a false-discovery '
    f'rate of {DEFAULT_FDR:g} over all series of the lab (Benjamini-Hochberg; the q-value '
    'is the series\' adjusted p). Shown with the first night after the change, the means '
    'before and after (in the unit), the change (after - before) as % of before, its '
    f'{100 * CONFIDENCE:g} % Welch confidence interval widened by sqrt((1 + phi) / (1 - '
    "phi)) (also % of before), the p-value and the q-value. It alerts (the nightly run "
    'prints REGRESSION and exits 1 for a regression) only for '
    f'{", ".join(sorted(KEY_METRICS))} and only when the change is at least the metric\'s '
    f'resolution floor ({RESOLUTION_STEPS * RTT_RESOLUTION_US:g} µs of RTT; '
    f'{RESOLUTION_STEPS:g} frames of a '
    'repetition for loss at rate; half the search granularity for NDR); other change '
    'points are listed, not alerted.',
)


@dataclass(frozen=True)
class ChangePoint:
    """A change between ``values[index - 1]`` and ``values[index]``.

    ``before_mean`` and ``after_mean`` are the means of the two final segments
    beside it; ``ci_low``/``ci_high`` the 95 % Welch interval of after - before
    (the metric's unit; widened for autocorrelation by :func:`detect`); ``p_value``
    Student's two-sided t test of the two means (:func:`e_divisive`), or the change's
    whitened max-t p (:func:`detect`).
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


# --------------------------------------------------------------------------- outlier nights


def _window_median(padded: np.ndarray, n: int, start: int, width: int) -> np.ndarray:
    """Row i: the median of padded[i + start : i + start + width] ignoring NaN (NaN if none)."""
    views = np.lib.stride_tricks.sliding_window_view(padded, width)[start:start + n]
    ordered = np.sort(views, axis=1)  # NaN last
    k = np.count_nonzero(~np.isnan(views), axis=1)
    rows = np.arange(n)
    lo, hi = np.maximum((k - 1) // 2, 0), np.minimum(k // 2, width - 1)
    out = (ordered[rows, lo] + ordered[rows, hi]) / 2
    out[k == 0] = np.nan
    return out


def side_levels(values: np.ndarray, window: int = OUTLIER_WINDOW
                ) -> tuple[np.ndarray, np.ndarray]:
    """For each night, the median of up to ``window`` nights before it and of up to
    ``window`` nights after it (NaN where there is none: the first night, the last)."""
    n = values.size
    padded = np.r_[np.full(window, np.nan), values.astype(float), np.full(window, np.nan)]
    before = _window_median(padded, n, 0, window)
    after = _window_median(padded, n, window + 1, window)
    return before, after


def outlier_nights(values: np.ndarray, min_change: float = 0.0, *,
                   threshold: float = OUTLIER_Z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(is_outlier, robust z, reference level) of every night.

    Night i is compared with the median of up to 5 nights before it and the median of up
    to 5 after it (what there is at the ends); its robust z is its deviation from the
    nearer of the two, over s = 1.4826 times the median absolute deviation of the nights
    from the mean of the two medians. It is an *outlier* when |z| > ``threshold`` on
    both sides (one side at the ends) in the same direction, by at least ``min_change``,
    and neither neighbouring night is beyond ``threshold`` / 2 on the same side of the
    reference: a lone night, wherever it is (the last night too). A step is not an
    outlier: its first night is close to the nights after it, and the nights after it
    are close to each other.
    """
    n = values.size
    if n < 3:
        return np.zeros(n, dtype=bool), np.zeros(n), values.astype(float).copy()
    before, after = side_levels(values)
    both = np.where(np.isnan(before), after, np.where(np.isnan(after), before,
                                                      (before + after) / 2))
    scale = 1.4826 * float(np.median(np.abs(values - both)))
    dev_b, dev_a = values - before, values - after
    dev = np.where(np.isnan(dev_b), dev_a, np.where(np.isnan(dev_a), dev_b,
                   np.where(np.abs(dev_b) < np.abs(dev_a), dev_b, dev_a)))
    same = np.isnan(dev_b) | np.isnan(dev_a) | (np.sign(dev_b) == np.sign(dev_a))
    reference = values - dev
    with np.errstate(divide="ignore", invalid="ignore"):  # no spread: any deviation is inf
        z = dev / scale if scale > 0 else np.where(dev == 0, 0.0, np.copysign(np.inf, dev))
    flagged = same & (np.abs(z) > threshold) & (np.abs(dev) >= max(min_change, 0.0))
    lone = np.ones(n, dtype=bool)
    for shift in (-1, 1):  # the neighbour's distance from night i's reference, same side
        j = np.arange(n) + shift
        ok = (j >= 0) & (j < n)
        far = np.zeros(n, dtype=bool)
        gap = (values[j[ok]] - reference[ok]) * np.sign(dev[ok])
        limit = threshold / 2 * scale
        far[ok] = gap > limit if scale > 0 else gap > 0
        lone &= ~far
    return flagged & lone, z, reference


# --------------------------------------------------------------------------- AR(1)


def segment_residuals(values: np.ndarray, splits: list[int]) -> list[np.ndarray]:
    """Each segment's values minus its mean."""
    bounds = [0, *splits, values.size]
    return [values[a:b] - values[a:b].mean() for a, b in itertools.pairwise(bounds) if b > a]


def pooled_phi(residuals: list[list[np.ndarray]]) -> float:
    """The lag-1 autocorrelation of nights, over a lab's series, bias-corrected, in
    [0, MAX_PHI].

    ``residuals``: per series, its segments' residuals. Per series, r = sum e_t e_(t-1) /
    sum e_t^2 over its segments (a series without spread is left out). Removing a
    segment's mean biases r down by about (1 + 4 phi) / L for a segment of L nights
    (Kendall 1954), hence phi_s = (r + c) / (1 - 4 c), c = segments / nights. The lab's
    phi is the median of the phi_s: a series with a change not yet removed looks
    autocorrelated, and the median does not follow it. Negative estimates count as 0:
    they would narrow the test, and nights are not expected to alternate.
    """
    estimates = []
    for parts in residuals:
        var = sum(float(e @ e) for e in parts)
        nights = sum(e.size for e in parts)
        if var <= 0 or nights == 0:
            continue
        r = sum(float(e[1:] @ e[:-1]) for e in parts) / var
        c = len(parts) / nights
        estimates.append((r + c) / (1 - 4 * c) if 1 - 4 * c > 0.25 else r + c)
    if not estimates:
        return 0.0
    return float(min(max(float(np.median(estimates)), 0.0), MAX_PHI))


# --------------------------------------------------------------------------- confirmation


def whitened_split_stats(window: np.ndarray, phi: float, min_segment: int
                         ) -> tuple[np.ndarray, np.ndarray, int]:
    """|t| of a step at every admissible split of ``window`` on AR(1)-whitened nights, the
    correlation of the statistics at neighbouring splits, and their degrees of freedom.

    Prais-Winsten transform: u_0 = sqrt(1 - phi^2) x_0, u_t = x_t - phi x_(t-1); the level
    becomes the column c (sqrt(1 - phi^2), 1 - phi, ...) and a step at j the column z_j (0
    before j, 1 at j, 1 - phi after). Least squares of u on (c, z_j) gives the step's t
    (L - 2 degrees of freedom); with phi = 0 it is Student's pooled t test of x[:j] against
    x[j:]. Splits j = min_segment ... L - min_segment.
    """
    x = np.asarray(window, dtype=float)
    n = x.size
    root = math.sqrt(1 - phi * phi)
    u = np.empty(n)
    u[0] = root * x[0]
    u[1:] = x[1:] - phi * x[:-1]
    j = np.arange(min_segment, n - min_segment + 1)
    tail = np.r_[np.cumsum(u[::-1])[::-1], 0.0]  # tail[k] = sum u[k:]
    after = (n - 1 - j).astype(float)  # rows after j
    sz = 1 + (1 - phi) * after
    szz = 1 + (1 - phi) ** 2 * after
    szu = u[j] + (1 - phi) * tail[j + 1]
    scc = root * root + (n - 1) * (1 - phi) ** 2
    scu = root * u[0] + (1 - phi) * tail[1]
    scz = (1 - phi) * sz
    sxx = szz - scz * scz / scc
    sxy = szu - scz * scu / scc
    syy = float(u @ u) - scu * scu / scc
    df = n - 2
    resid = syy - sxy * sxy / sxx
    tiny = 1e-12 * float(u @ u)  # rounding: an exact fit (no spread either side) is 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(resid > tiny, np.abs(sxy) / np.sqrt(sxx * resid / df),
                     np.where(sxy * sxy > tiny * sxx, np.inf, 0.0))
    # neighbouring splits j, j + 1: sum z_j z_(j+1) = (1 - phi) + (1 - phi)^2 (rows after j+1)
    szz_next = (1 - phi) + (1 - phi) ** 2 * after[:-1] - (1 - phi) ** 2
    cov = szz_next - scz[:-1] * scz[1:] / scc
    rho = np.clip(cov / np.sqrt(sxx[:-1] * sxx[1:]), -1.0, 1.0)
    return t, rho, df


def overshoot(x: np.ndarray) -> np.ndarray:
    """Siegmund's correction nu(x) for a discrete grid, (2/x)(Phi(x/2) - 1/2) / ((x/2) Phi(x/2)
    + phi(x/2)) (Siegmund & Yakir 2007, 4.5): 1 at x = 0, smaller for coarser grids."""
    h = np.maximum(np.asarray(x, dtype=float), 1e-12) / 2
    return (special.ndtr(h) - 0.5) / h / (h * special.ndtr(h) + np.exp(-h * h / 2) / SQRT_2PI)


def max_t_p(t_max: float, rho: np.ndarray, df: int) -> float:
    """P(max over splits of |t| >= ``t_max``) with no change: the p of the chosen split.

    |t| -> the normal deviate b with the same one-sided tail Q(b) (Student's t, ``df``);
    then the tail of the maximum of a Brownian-bridge-like sequence of normal statistics
    whose neighbours correlate ``rho`` (Siegmund & Yakir 2007, ch. 4):

        P(max > b) ~ Q(b) + phi(b) b sum_j (1 - rho_j) nu(b sqrt(2 (1 - rho_j))),

    doubled for the two signs. Checked against simulated AR(1) nights (whitened with the
    true phi): at the simulated 1 %, 0.1 % quantiles of the maximum it gives 0.8-1.5 % and
    0.10-0.19 % for 8 to 1 000 nights (tests/analysis/test_changepoints.py checks 40).
    """
    if not math.isfinite(t_max):
        return 0.0
    if t_max <= 0:
        return 1.0
    tail = float(special.stdtr(df, -t_max))  # one-sided
    if tail <= 0:
        return 0.0
    b = -float(special.ndtri(tail))
    step = np.maximum(1 - rho, 0.0)
    density = math.exp(-0.5 * b * b) / SQRT_2PI
    crossings = float((step * overshoot(b * np.sqrt(2 * step))).sum())
    return float(min(1.0, 2 * (tail + density * b * crossings)))


def split_p(window: np.ndarray, phi: float, min_segment: int, recent: int | None = None
            ) -> tuple[float, int]:
    """(p, split) of the largest whitened |t| over the splits of ``window``.

    ``recent`` None: :func:`max_t_p` over every split. Otherwise the splits with at most
    ``recent`` nights after them get their own maximum too, and p = min(1, p_recent /
    w, p_all / (1 - w)), w = :data:`RECENT_WEIGHT` (a weighted Bonferroni of the two, so
    still a p-value): a change in the last nights pays for a search over 10 nights, not
    over the whole history, while an older one pays a little more.
    """
    t, rho, df = whitened_split_stats(window, phi, min_segment)
    if t.size == 0:
        return 1.0, -1
    best = int(np.argmax(t))
    p_all = max_t_p(float(t[best]), rho, df)
    first = window.size - recent - min_segment if recent is not None else 0
    if first <= 0:
        return p_all, best + min_segment
    late = first + int(np.argmax(t[first:]))
    p_recent = max_t_p(float(t[late]), rho[first:], df)
    if p_recent / RECENT_WEIGHT <= p_all / (1 - RECENT_WEIGHT):
        return min(1.0, p_recent / RECENT_WEIGHT), late + min_segment
    return min(1.0, p_all / (1 - RECENT_WEIGHT)), best + min_segment


def confirm_p(values: np.ndarray, splits: list[int], i: int, phi: float, min_segment: int,
              recent: int | None = None) -> float:
    """The p of split ``i`` between its neighbouring segments: :func:`split_p` of that
    window (``recent`` applies to the last split's window, which ends at the last night)."""
    before, after = _neighbours(values, splits, i)
    window = np.r_[before, after]
    last = i == len(splits) - 1
    return split_p(window, phi, min_segment, recent if last else None)[0]


def bh_qvalues(pvalues: np.ndarray, family: int) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) of ``pvalues`` in a family of
    ``family`` hypotheses (>= len(pvalues); the others count as p = 1)."""
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return p
    m = max(family, p.size)
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, p.size + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1.0)
    return out


# --------------------------------------------------------------------------- magnitudes


def resolution_floor(metric: str, before: float, parameters: dict | None = None) -> float:
    """The smallest change of ``metric`` that may alert (the metric's unit; 0: no floor).

    Tied to what one measurement can resolve (parameters: the night's, else the defaults of
    kvmnetlab.parameters):

    - RTT percentiles: ping prints RTTs to 1 µs (data/rtt.parquet ``rtt_us``);
      RESOLUTION_STEPS of it.
    - loss at rate: one frame of a repetition, 100 / ``rate_frames`` % (20 000 frames:
      0.005 %); RESOLUTION_STEPS of it.
    - ping loss: one probe, 100 / ``ping_count`` % (200 probes: 0.5 %); RESOLUTION_STEPS of it.
    - NDR, PDR: the search stops when its bracket hi/lo - 1 is below ``search_granularity``
      (0.1), so a repetition's rate is known to about half the bracket: granularity / 2 of
      the level before.
    """
    params = parameters or {}

    def param(name: str) -> float:
        value = params.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
        return float(PARAMETER_DEFAULTS[name])

    if metric in history.RTT_PERCENTILES:
        return RESOLUTION_STEPS * RTT_RESOLUTION_US
    if metric == "rate_loss_pct":
        return RESOLUTION_STEPS * 100.0 / param("rate_frames")
    if metric == "ping_loss_pct":
        return RESOLUTION_STEPS * 100.0 / param("ping_count")
    if metric in ("ndr_pps", "pdr_pps"):
        return param("search_granularity") / 2 * abs(before)
    return 0.0


# --------------------------------------------------------------------------- a catalog

DETECT_COLUMNS: dict[str, str] = {
    "scenario": "str", "metric": "str", "unit": "str", "segment": "int64", "night": "str",
    "previous_night": "str", "before": "float64", "after": "float64", "change_pct": "float64",
    "ci_low_pct": "float64", "ci_high_pct": "float64", "p_value": "float64",
    "direction": "str", "differs": "str",
    # added with the whitened, FDR-controlled confirmation (METHOD_WHITENED)
    "kind": "str", "q_value": "float64", "alerting": "bool", "phi": "float64",
    "outlier_z": "float64", "min_change": "float64",
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


@dataclass
class SeriesData:
    """One (segment, scenario, metric) series while it is tested."""

    key: tuple[int, str, str]
    unit: str
    nights: np.ndarray  # the nights left after the outliers
    values: np.ndarray
    splits: list[int] = field(default_factory=list)  # the changes confirmed
    pvalues: list[float] = field(default_factory=list)  # their local p
    outliers: list[dict] = field(default_factory=list)
    candidates: list[int] | None = None  # E-divisive's splits (once searched)
    q_value: float = math.nan  # the series gate's BH q-value
    gate_split: int = -1  # where the gate's largest |t| is


def detect(catalog: pd.DataFrame, *, p_value: float = DEFAULT_P_VALUE,
           min_segment: int = DEFAULT_MIN_SEGMENT, fdr: float = DEFAULT_FDR,
           alert_metrics: tuple[str, ...] | frozenset[str] = KEY_METRICS,
           method: str = METHOD_WHITENED) -> pd.DataFrame:
    """Change points and outlier nights of every (segment, scenario, metric) series of the
    done nights (the module's docstring: the method).

    One row per change (``kind`` "change") or lone outlier night (``kind`` "outlier"): the
    first night after the change (the outlier night) and the one before, the means of the
    final segments either side (for an outlier: the local level and the night's value; the
    metric's unit), the change and its 95 % interval in % of ``before`` (NaN when ``before``
    is 0; none for an outlier), ``p_value`` (the selection- and autocorrelation-aware p of
    the change), ``q_value`` (its series' Benjamini-Hochberg q-value among all series of
    this call), ``phi`` (the nights' AR(1) coefficient used), ``outlier_z`` (an outlier's
    robust z), ``min_change`` (the smallest change that may alert, the metric's unit),
    whether it is a regression or a progression (:func:`analysis.history.better`), whether
    it alerts (a change of a metric in ``alert_metrics`` with q <= ``fdr`` and |after -
    before| >= ``min_change``), and what differs between the two nights' contexts.

    ``method`` :data:`METHOD_STUDENT` is the previous detector (Student's t at ``p_value``,
    every change alerting, no outliers): kept to measure against.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 < fdr < 1:
        raise ValueError(f"fdr must be in (0, 1), got {fdr!r}")
    data = series(catalog)
    items = []
    for (segment, scenario, metric), group in data.groupby(
            ["segment", "scenario", "metric"], sort=False):
        items.append(SeriesData(key=(segment, scenario, metric), unit=group["unit"].iloc[-1],
                                nights=group["night"].to_numpy(dtype=object),
                                values=group["value"].to_numpy(dtype=float)))
    contexts = history.contexts_by_night(catalog, set(data["night"]))
    parsed: dict[str, dict] = {}

    def context_of(night: str) -> dict:
        if night not in parsed:
            parsed[night] = history.parse_context(contexts.get(night))
        return parsed[night]

    def floor(metric: str, before: float, night: str) -> float:
        params = context_of(night).get("parameters")
        return resolution_floor(metric, before, params if isinstance(params, dict) else None)

    rows, phi = changes_of(items, p_value=p_value, min_segment=min_segment, fdr=fdr,
                           alert_metrics=alert_metrics, method=method, floor=floor)
    frame = pd.DataFrame(rows, columns=[c for c in DETECT_COLUMNS if c != "differs"])
    frame["phi"] = phi
    frame["differs"] = [
        "; ".join(history.differences(context_of(a), context_of(b))) or NOTHING_DIFFERS
        for a, b in zip(frame["previous_night"], frame["night"], strict=True)]
    frame = frame.sort_values(["night", "scenario", "metric"], kind="stable")
    return frame[list(DETECT_COLUMNS)].astype(DETECT_COLUMNS).reset_index(drop=True)


def default_floor(metric: str, before: float, night: str) -> float:
    """:func:`resolution_floor` at kvmnetlab.parameters' defaults (any night)."""
    return resolution_floor(metric, before)


def changes_of(items: list[SeriesData], *, p_value: float = DEFAULT_P_VALUE,
               min_segment: int = DEFAULT_MIN_SEGMENT, fdr: float = DEFAULT_FDR,
               alert_metrics: tuple[str, ...] | frozenset[str] = KEY_METRICS,
               method: str = METHOD_WHITENED, floor=default_floor
               ) -> tuple[list[dict], float]:
    """What :func:`detect` finds in ``items`` (one lab's series; changed in place): one dict
    per change or outlier with :data:`DETECT_COLUMNS` but ``differs``, and the AR(1)
    coefficient used (NaN for the previous method). ``floor(metric, before, night)`` gives
    the smallest change that may alert."""
    if method == METHOD_STUDENT:
        rows = _student_rows(items, p_value, min_segment)
        for row in rows:
            row["alerting"] = True
        return rows, math.nan
    rows, phi = _whitened_rows(items, p_value, min_segment, fdr, floor)
    for row in rows:
        row["phi"] = phi
        row["alerting"] = bool(
            row["kind"] == "change" and row["metric"] in alert_metrics
            and row["q_value"] <= fdr and abs(row["after"] - row["before"]) >= row["min_change"])
    return rows, phi


def _student_rows(items: list[SeriesData], p_value: float, min_segment: int) -> list[dict]:
    """The previous detector: :func:`e_divisive` per series, every change kept."""
    rows = []
    for s in items:
        if s.values.size < 2 * min_segment:
            continue
        for cp in e_divisive(s.values, p_value=p_value, min_segment=min_segment):
            rows.append(_row(s, cp, kind="change", q_value=math.nan, min_change=math.nan))
    return rows


def _whitened_rows(items: list[SeriesData], p_value: float, min_segment: int, fdr: float,
                   floor) -> tuple[list[dict], float]:
    """Outliers out; E-divisive candidates; the series gate and BH; the candidates' local
    tests (the module's docstring, steps 1-5)."""
    for s in items:
        typical = float(np.median(s.values))
        mask, z, level = outlier_nights(s.values, floor(s.key[2], typical, s.nights[-1]))
        for i in np.flatnonzero(mask):
            s.outliers.append(_outlier_row(s, int(i), float(z[i]), float(level[i]),
                                           floor(s.key[2], float(level[i]), s.nights[i])))
        s.nights, s.values = s.nights[~mask], s.values[~mask]
    testable = [s for s in items if s.values.size >= 2 * min_segment]
    phi = pooled_phi([segment_residuals(s.values, []) for s in testable])
    _confirm(testable, phi, min_segment, fdr, p_value)
    if any(s.splits for s in testable):  # again, with phi from around the changes found
        phi = pooled_phi([segment_residuals(s.values, s.splits) for s in testable])
        _confirm(testable, phi, min_segment, fdr, p_value)
    rows = []
    widen = math.sqrt((1 + phi) / (1 - phi))  # AR(1): the variance of a mean grows by this^2
    for s in items:
        for i, index in enumerate(s.splits):
            before, after = _neighbours(s.values, s.splits, i)
            low, high = welch_interval(before, after)
            mid = float(after.mean() - before.mean())
            cp = ChangePoint(index=index, p_value=s.pvalues[i],
                             before_mean=float(before.mean()), after_mean=float(after.mean()),
                             ci_low=mid - (mid - low) * widen, ci_high=mid + (high - mid) * widen)
            rows.append(_row(s, cp, kind="change", q_value=s.q_value,
                             min_change=floor(s.key[2], cp.before_mean, s.nights[index])))
        rows += s.outliers
    return rows, phi


def _confirm(items: list[SeriesData], phi: float, min_segment: int, fdr: float,
             p_value: float) -> None:
    """Each series' gate p (whitened max-t over all its nights) and BH q-value over ``items``;
    in the series BH rejects, the candidates whose local p is within the BH cut (the largest
    gate p rejected), the weakest dropped and the others tested again until all pass."""
    gates = []
    for s in items:
        p, s.gate_split = split_p(s.values, phi, min_segment, RECENT_NIGHTS)
        gates.append(p)
    gate = np.array(gates)
    q = bh_qvalues(gate, len(items))
    rejected = q <= fdr
    cut = float(gate[rejected].max()) if rejected.any() else -1.0
    for s, qs, passed in zip(items, q, rejected, strict=True):
        s.q_value = float(qs)
        s.splits, s.pvalues = [], []
        if not passed:
            continue
        if s.candidates is None:  # searched only in series that pass their gate
            s.candidates = merge_step(s.values, split_step(s.values, p_value, min_segment),
                                      p_value)
        s.splits = list(s.candidates) or [s.gate_split]
        while s.splits:
            s.pvalues = [confirm_p(s.values, s.splits, i, phi, min_segment, RECENT_NIGHTS)
                         for i in range(len(s.splits))]
            weakest = int(np.argmax(s.pvalues))
            if s.pvalues[weakest] <= cut:
                break
            del s.splits[weakest]
            s.pvalues = []


def _row(s: SeriesData, cp: ChangePoint, *, kind: str, q_value: float, min_change: float) -> dict:
    segment, scenario, metric = s.key
    scale = 100.0 / abs(cp.before_mean) if cp.before_mean != 0 else math.nan
    rising = cp.after_mean > cp.before_mean
    return {
        "scenario": scenario, "metric": metric, "unit": s.unit, "segment": segment,
        "night": s.nights[cp.index], "previous_night": s.nights[cp.index - 1],
        "before": cp.before_mean, "after": cp.after_mean,
        "change_pct": (cp.after_mean - cp.before_mean) * scale,
        "ci_low_pct": cp.ci_low * scale, "ci_high_pct": cp.ci_high * scale,
        "p_value": cp.p_value,
        "direction": "progression" if rising == (history.better(metric) > 0) else "regression",
        "kind": kind, "q_value": q_value, "alerting": False, "phi": math.nan,
        "outlier_z": math.nan, "min_change": min_change,
    }


def _outlier_row(s: SeriesData, i: int, z: float, level: float, min_change: float) -> dict:
    segment, scenario, metric = s.key
    value = float(s.values[i])
    scale = 100.0 / abs(level) if level != 0 else math.nan
    return {
        "scenario": scenario, "metric": metric, "unit": s.unit, "segment": segment,
        "night": s.nights[i], "previous_night": s.nights[i - 1] if i > 0 else s.nights[i],
        "before": level, "after": value, "change_pct": (value - level) * scale,
        "ci_low_pct": math.nan, "ci_high_pct": math.nan, "p_value": math.nan,
        "direction": "progression" if (value > level) == (history.better(metric) > 0)
        else "regression",
        "kind": "outlier", "q_value": math.nan, "alerting": False, "phi": math.nan,
        "outlier_z": z, "min_change": min_change,
    }
