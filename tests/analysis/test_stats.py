"""analysis.stats (per-probe statistics) against scipy/statsmodels and answers known by hand."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_ind

from analysis import stats
from analysis.model import rtt_samples, samples_by_scenario


def frame(**groups: np.ndarray | list[float]) -> pd.DataFrame:
    """A samples frame (unsorted on purpose) from name=values."""
    rows = [(name, float(v)) for name, values in groups.items() for v in values]
    return pd.DataFrame(rows, columns=["scenario", "rtt_us"])


# --------------------------------------------------------------------------- percentiles


def test_quantile_type7_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    # h = (n - 1) q: p50 -> h = 1.5 -> 2.5; p90 -> h = 2.7 -> 3 + 0.7 = 3.7; p0, p100 are the ends
    assert stats.quantile_sorted(x, 0.5) == pytest.approx(2.5)
    assert stats.quantile_sorted(x, 0.9) == pytest.approx(3.7)
    assert stats.quantile_sorted(x, 0.0) == 1.0
    assert stats.quantile_sorted(x, 1.0) == 4.0


def test_percentiles_match_numpy():
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(3, 0.7, 1001), rng.integers(1, 50, 400).astype(float)
    out = stats.percentiles(frame(a=a, b=b)).set_index("scenario")
    for name, x in (("a", a), ("b", b)):
        for p in stats.DEFAULT_PERCENTILES:
            assert out.loc[name, stats.percentile_column(p)] == pytest.approx(np.percentile(x, p))
        assert out.loc[name, "mean_us"] == pytest.approx(x.mean())
        assert out.loc[name, "min_us"] == x.min() and out.loc[name, "max_us"] == x.max()
        assert out.loc[name, "n"] == x.size


def test_samples_are_sorted_per_scenario_in_order():
    rtt = pd.DataFrame({
        "scenario": ["b", "a", "b", "a", "c"],
        "answered": [True, True, True, False, True],
        "rtt_us": [5.0, 3.0, 1.0, math.nan, 2.0],
    })
    s = rtt_samples(rtt, ["c", "a", "b", "never"])
    assert list(s["scenario"].astype(str)) == ["c", "a", "b", "b"]
    assert list(s["rtt_us"]) == [2.0, 3.0, 1.0, 5.0]
    groups = samples_by_scenario(s)
    assert list(groups) == ["c", "a", "b"]
    assert groups["b"].tolist() == [1.0, 5.0]


def test_ecdf_points_are_exact_points_of_the_ecdf():
    x = np.arange(1.0, 100_001.0)
    pts = stats.ecdf_points(frame(a=x), max_points=500)
    assert len(pts) < 600
    # every point (x_(k), k/n): here x_(k) = k, so cum_prob = rtt / n exactly
    assert np.allclose(pts["cum_prob"], pts["rtt_us"] / x.size)
    assert pts["cum_prob"].iloc[-1] == 1.0
    assert (pts["rtt_us"] == 99_990.0).any()  # the tail ranks n - 10^j are kept


# --------------------------------------------------------------------------- bootstrap


def _exact_median_distribution(x: list[float]) -> dict[float, float]:
    """Bootstrap distribution of the median by enumerating all n^n resamples."""
    n = len(x)
    counts = Counter(float(np.median(r)) for r in itertools.product(x, repeat=n))
    return {k: v / n**n for k, v in counts.items()}


@pytest.mark.parametrize("x", [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 5.0, 7.0, 9.0]])
def test_bootstrap_median_is_exact_in_distribution(x):
    # n = 3: P(median* = 1) = P(at least two draws are 1) = 3 (1/3)^2 (2/3) + (1/3)^3 = 7/27
    exact = _exact_median_distribution(x)
    if x == [1.0, 2.0, 3.0]:
        assert exact == pytest.approx({1.0: 7 / 27, 2.0: 13 / 27, 3.0: 7 / 27})
    reps = stats.bootstrap_median(np.array(x), 200_000, np.random.default_rng(5))
    seen = Counter(reps.tolist())
    assert set(seen) <= set(exact)
    for value, p in exact.items():
        assert seen[value] / reps.size == pytest.approx(p, abs=0.005)


def test_bootstrap_mean_resampling_matches_scipy():
    x = np.random.default_rng(8).lognormal(2, 0.5, 300)
    ours = stats.bootstrap_ci(frame(a=x), n_resamples=4000, seed=1, statistics=("mean",))
    ref = sps.bootstrap((x,), np.mean, n_resamples=4000, method="percentile",
                        confidence_level=0.95, random_state=np.random.default_rng(2))
    assert ours["method"].iloc[0] == "resampling"
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert ours["ci_low_us"].iloc[0] == pytest.approx(ref.confidence_interval.low, abs=0.05 * width)
    assert ours["ci_high_us"].iloc[0] == pytest.approx(ref.confidence_interval.high,
                                                       abs=0.05 * width)


def test_bootstrap_median_matches_scipy():
    x = np.random.default_rng(9).integers(10, 60, 201).astype(float)
    ours = stats.bootstrap_ci(frame(a=x), n_resamples=4000, seed=1, statistics=("median",))
    ref = sps.bootstrap((x,), np.median, n_resamples=4000, method="percentile",
                        random_state=np.random.default_rng(2))
    # integer data: the interval ends are data values, and agree exactly or by one step
    assert abs(ours["ci_low_us"].iloc[0] - ref.confidence_interval.low) <= 1
    assert abs(ours["ci_high_us"].iloc[0] - ref.confidence_interval.high) <= 1


@pytest.mark.parametrize(
    ("values", "method"),
    [
        # 1 µs resolution, as ping reports: few distinct values -> exact multinomial
        (np.round(np.random.default_rng(1).lognormal(4, 0.4, 200_000)), "exact multinomial"),
        # continuous values: m-out-of-n, rescaled
        (np.random.default_rng(1).lognormal(4, 0.4, 200_000), "m-out-of-n"),
    ],
)
def test_bootstrap_mean_at_large_n_agrees_with_the_normal_interval(values, method):
    out = stats.bootstrap_ci(frame(a=values), seed=4, statistics=("mean",)).iloc[0]
    assert out["method"].startswith(method)
    se = values.std(ddof=0) / math.sqrt(values.size)
    center = values.mean()
    assert out["ci_low_us"] == pytest.approx(center - 1.96 * se, abs=0.1 * se * 1.96)
    assert out["ci_high_us"] == pytest.approx(center + 1.96 * se, abs=0.1 * se * 1.96)


def test_bootstrap_is_seeded_and_per_scenario():
    rng = np.random.default_rng(0)
    a, b = rng.normal(100, 10, 500), rng.normal(50, 5, 500)
    one = stats.bootstrap_ci(frame(a=a, b=b), seed=7)
    again = stats.bootstrap_ci(frame(a=a, b=b), seed=7)
    pd.testing.assert_frame_equal(one, again)
    other = stats.bootstrap_ci(frame(a=a, b=b), seed=8)
    assert not np.allclose(one["ci_low_us"], other["ci_low_us"])
    # adding a scenario does not move another scenario's interval
    alone = stats.bootstrap_ci(frame(b=b), seed=7)
    pd.testing.assert_frame_equal(
        one.loc[one["scenario"] == "b"].reset_index(drop=True), alone
    )


# --------------------------------------------------------------------------- tests


def test_holm_by_hand_and_against_statsmodels():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, 2 * 0.03, max(1 * 0.04, 0.06)
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    p = np.random.default_rng(2).uniform(0, 0.2, 25)
    assert stats.holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    with_nan = stats.holm([0.01, math.nan, 0.02])
    assert math.isnan(with_nan[1]) and with_nan[[0, 2]] == pytest.approx([0.02, 0.02])


def _tost(x, y, margin):
    return stats.tost_welch(x.mean(), x.var(ddof=1), x.size, y.mean(), y.var(ddof=1), y.size,
                            margin)


def test_tost_matches_statsmodels():
    rng = np.random.default_rng(11)
    x, y = rng.normal(100, 10, 80), rng.normal(102, 20, 120)
    ours = _tost(x, y, 5.0)
    p, lower, upper = ttost_ind(x, y, -5.0, 5.0, usevar="unequal")
    assert ours.pvalue == pytest.approx(p)
    assert ours.t_lower == pytest.approx(lower[0]) and ours.p_lower == pytest.approx(lower[1])
    assert ours.t_upper == pytest.approx(upper[0]) and ours.p_upper == pytest.approx(upper[1])
    assert ours.df == pytest.approx(lower[2])


def test_tost_on_constructed_samples():
    # identical spread, means 0.2 apart, margin 1: equivalent
    base = np.tile([-1.0, 0.0, 1.0], 100)
    eq = _tost(base + 10.0, base + 10.2, 1.0)
    assert eq.pvalue < 1e-6
    # means 3 apart, margin 1: not equivalent, whatever the sample size
    neq = _tost(base + 10.0, base + 13.0, 1.0)
    assert neq.pvalue > 0.99
    # by hand for the equivalent case: d = -0.2, se = sqrt(2 * var / 300)
    var = base.var(ddof=1)
    se = math.sqrt(2 * var / 300)
    assert eq.t_lower == pytest.approx((-0.2 + 1.0) / se)
    assert eq.t_upper == pytest.approx((-0.2 - 1.0) / se)
    assert eq.df == pytest.approx(598.0)


def test_mann_whitney_and_ks_match_scipy_on_large_tied_samples():
    rng = np.random.default_rng(12)
    # 1 µs resolution, heavy ties; sizes above the exact thresholds
    x = np.round(rng.lognormal(3.0, 0.3, 12_000))
    y = np.round(rng.lognormal(3.01, 0.3, 15_000))
    u1, p_mw, d, p_ks = stats._mwu_ks(stats._Sorted.of(np.sort(x)), stats._Sorted.of(np.sort(y)))
    ref_mw = sps.mannwhitneyu(x, y, method="asymptotic")
    ref_ks = sps.ks_2samp(x, y, method="asymp")
    assert u1 == pytest.approx(ref_mw.statistic)
    assert p_mw == pytest.approx(ref_mw.pvalue, rel=1e-9)
    assert d == pytest.approx(ref_ks.statistic)
    assert p_ks == pytest.approx(ref_ks.pvalue, rel=1e-9)


def test_mann_whitney_and_ks_small_samples_by_hand():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 5.0, 6.0])
    # U_x = sum over x of (#y below + half #y equal) = 0 + 0.5 + 1 = 1.5
    # KS: F_x - F_y at 3: 1 - 1/4 = 0.75 (the largest gap)
    u1, p_mw, d, p_ks = stats._mwu_ks(stats._Sorted.of(x), stats._Sorted.of(y))
    assert u1 == 1.5
    assert d == pytest.approx(0.75)
    assert p_mw == pytest.approx(sps.mannwhitneyu(x, y).pvalue)
    assert p_ks == pytest.approx(sps.ks_2samp(x, y).pvalue)


def test_pairwise_tests_find_equivalent_and_different_pairs():
    rng = np.random.default_rng(13)
    samples = frame(
        a=rng.normal(100, 10, 3000), b=rng.normal(100.5, 10, 3000), c=rng.normal(150, 10, 3000)
    )
    pairs = stats.pairwise_tests(samples, margin=stats.Margin(absolute_us=5.0))
    by = pairs.set_index(["scenario_a", "scenario_b"])
    assert list(by.index) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert bool(by.loc[("a", "b"), "equivalent"]) and not bool(by.loc[("a", "c"), "equivalent"])
    assert bool(by.loc[("a", "c"), "different_mw"]) and bool(by.loc[("b", "c"), "different_ks"])
    assert by.loc[("a", "c"), "prob_superiority"] < 0.01
    assert (by["margin_us"] == 5.0).all()
    for test in ("mw", "ks", "tost"):
        assert by[f"{test}_p_holm"].tolist() == pytest.approx(
            multipletests(by[f"{test}_p"], method="holm")[1]
        )


def test_relative_margin_is_on_the_pairs_scale():
    m = stats.Margin(relative=0.1)
    assert m.for_pair(100.0, 300.0) == pytest.approx(20.0)
    assert stats.Margin(relative=0.1, absolute_us=3.0).for_pair(100.0, 300.0) == 3.0
    # the repetition-level comparisons: a ratio within 1/1.1 .. 1.1, i.e. |log| < log 1.1
    assert (m.scale, m.bound) == ("log", pytest.approx(math.log(1.1)))
    assert (stats.Margin(absolute_us=3.0).scale, stats.Margin(absolute_us=3.0).bound) == (
        "linear", 3.0)


# --------------------------------------------------------------------------- closeness


def test_closeness_by_hand():
    base = np.arange(1.0, 11.0)  # p90: h = 9 * 0.9 = 8.1 -> 9 + 0.1 * 1 = 9.1
    s = np.array([5.0, 9.0, 9.1, 9.2, 20.0])
    out = stats.closeness(frame(base=base, s=s), "base", 90).set_index("scenario")
    assert out.loc["s", "threshold_us"] == pytest.approx(9.1)
    assert out.loc["s", "share_at_or_below"] == pytest.approx(3 / 5)
    # largest CDF gap on [8, 9): F_base = 0.8, F_s = 0.2 (only 5 is below 9)
    assert out.loc["s", "ks_distance"] == pytest.approx(0.6)
    assert out.loc["s", "ks_distance"] == pytest.approx(sps.ks_2samp(base, s).statistic)
    assert out.loc["s", "ks_similarity"] == pytest.approx(0.4)
    assert out.loc["base", "share_at_or_below"] == pytest.approx(0.9)
    assert out.loc["base", "ks_distance"] == 0.0


def test_ks_p_value_uses_kolmogorovs_limit_for_huge_samples():
    rng = np.random.default_rng(14)
    x = np.sort(rng.normal(0.0, 1.0, 300_000))
    y = np.sort(rng.normal(0.004, 1.0, 300_000))
    _, _, d, p = stats._mwu_ks(stats._Sorted.of(x), stats._Sorted.of(y))
    ref = sps.ks_2samp(x, y, method="asymp")
    assert d == pytest.approx(ref.statistic)
    assert p == pytest.approx(ref.pvalue, rel=0.02)
