"""analysis.replication: the repetition as the unit, against scipy/statsmodels and by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.formula.api import ols
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from analysis import between_nights as bn
from analysis import replication as rp
from analysis.model import rtt_by_repetition
from analysis.stats import Margin

LOG11 = math.log(1.1)


def values(v, blocks=None) -> pd.DataFrame:
    v = np.asarray(v, dtype=float)
    blocks = range(1, v.size + 1) if blocks is None else blocks
    return pd.DataFrame({"block": pd.array(list(blocks), dtype="Int64"), "value": v})


def summary_from(medians: dict[str, list[float]], blocked: bool = True) -> pd.DataFrame:
    """A repetition summary with the given repetition medians (block k = repetition k)."""
    rows = [{"scenario": s, "repetition": k, "block": k if blocked else None, "n": 200,
             "median_us": m, "mean_us": m, "p90_us": m, "p99_us": m}
            for s, ms in medians.items() for k, m in enumerate(ms, start=1)]
    out = pd.DataFrame(rows, columns=rp.SUMMARY_COLUMNS)
    out["block"] = out["block"].astype("Int64")
    return out


# --------------------------------------------------------------------------- the model


def test_rtt_by_repetition_splits_sorts_and_drops_unanswered():
    rtt = pd.DataFrame({
        "scenario": ["b", "a", "b", "a", "a", "b"],
        "repetition": [2, 1, 1, 1, 2, 2],
        "answered": [True, True, True, False, True, True],
        "rtt_us": [5.0, 3.0, 1.0, math.nan, 2.0, 4.0],
    })
    out = rtt_by_repetition(rtt, ["b", "a", "never"])
    assert list(out) == ["b", "a"]
    assert {k: v.tolist() for k, v in out["b"].items()} == {1: [1.0], 2: [4.0, 5.0]}
    assert {k: v.tolist() for k, v in out["a"].items()} == {1: [3.0], 2: [2.0]}


def test_repetition_summary_by_hand():
    by_rep = {"a": {1: np.array([1.0, 2.0, 3.0, 10.0]), 2: np.array([4.0])}}
    s = rp.repetition_summary(by_rep, {("a", 1): 2, ("a", 2): 1}).set_index("repetition")
    assert s.loc[1, "median_us"] == 2.5 and s.loc[1, "mean_us"] == 4.0 and s.loc[1, "n"] == 4
    assert s.loc[1, "block"] == 2 and s.loc[2, "block"] == 1 and s.loc[2, "median_us"] == 4.0
    # p90 type 7 of 1, 2, 3, 10: h = 2.7 -> 3 + 0.7 * 7
    assert s.loc[1, "p90_us"] == pytest.approx(7.9)


# --------------------------------------------------------------------------- tests


def test_paired_contrast_and_tost_match_scipy_and_statsmodels():
    rng = np.random.default_rng(1)
    a, b = rng.normal(6.2, 0.1, 6), rng.normal(6.25, 0.1, 6)
    c = rp.contrast(values(a), values(b))
    assert c.design == "paired" and c.pairs == 6
    t = rp.t_tests(c, LOG11, 0.05)
    assert t.p_difference == pytest.approx(sps.ttest_rel(a, b).pvalue)
    p, _, _ = ttost_paired(a, b, -LOG11, LOG11)
    assert t.p_tost == pytest.approx(p)
    # the paired t test is the two-level model's contrast: OLS with a fixed block effect
    frame = pd.DataFrame({"y": np.concatenate((a, b)), "s": ["a"] * 6 + ["b"] * 6,
                          "block": list(range(6)) * 2})
    fit = ols("y ~ C(s) + C(block)", frame).fit()
    assert fit.pvalues["C(s)[T.b]"] == pytest.approx(t.p_difference)
    assert -fit.params["C(s)[T.b]"] == pytest.approx(c.estimate)


def test_unpaired_contrast_and_tost_match_welch():
    rng = np.random.default_rng(2)
    a, b = rng.normal(3.6, 0.12, 3), rng.normal(6.2, 0.08, 4)
    c = rp.contrast(values(a, [None] * 3), values(b, [None] * 4))
    assert c.design == "unpaired"
    t = rp.t_tests(c, LOG11, 0.05)
    assert t.p_difference == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue)
    p, _, _ = ttost_ind(a, b, -LOG11, LOG11, usevar="unequal")
    assert t.p_tost == pytest.approx(p)


def test_blocks_only_one_side_ran_are_left_out_and_too_few_is_unpaired():
    a = values([1.0, 2.0, 3.0], [1, 2, 3])
    b = values([1.5, 2.5], [2, 3])
    c = rp.contrast(a, b)
    assert (c.design, c.pairs) == ("paired", 2)
    assert c.estimate == pytest.approx(0.5)  # blocks 2 and 3: 2 - 1.5, 3 - 2.5
    assert rp.contrast(a, values([1.0, 5.0], [3, 4])).design == "unpaired"  # one common block
    assert rp.contrast(values([1.0]), values([2.0, 3.0])).design == "untestable"


def test_blocking_cancels_drift():
    # every block shifts both scenarios alike (drift up to 30 %); b is 2 % slower in each
    drift = np.log([1.0, 1.3, 0.8, 1.15])
    a, b = 6.0 + drift, 6.0 + math.log(1.02) + drift + [0.001, -0.001, 0.0, 0.0]
    paired = rp.t_tests(rp.contrast(values(a), values(b)), LOG11, 0.05)
    unpaired = rp.t_tests(rp.contrast(values(a, [None] * 4), values(b, [None] * 4)), LOG11,
                          0.05)
    assert paired.p_tost < 0.001  # equivalent within ±10 %
    assert unpaired.p_tost > 0.05  # the drift swamps it


def test_power_matches_statsmodels_and_simulation():
    c = rp.contrast(values([0.0, 0.1, -0.05, 0.08]), values([0.02, 0.0, 0.0, 0.0]))
    sd = c.sd_diff
    for n in (3, 8, 20):
        ours = rp.power_difference(c, 0.1, 0.05, n)[0]
        ref = TTestPower().power(effect_size=0.1 / sd, nobs=n, alpha=0.05)
        assert ours == pytest.approx(ref, rel=1e-6)
    # the TOST power by simulation of paired differences ~ N(0, sd)
    rng = np.random.default_rng(3)
    n, sims = 10, 4000
    d = rng.normal(0.0, sd, size=(sims, n))
    se = d.std(axis=1, ddof=1) / math.sqrt(n)
    crit = sps.t.ppf(0.95, n - 1)
    shown = ((d.mean(axis=1) + LOG11) / se > crit) & ((d.mean(axis=1) - LOG11) / se < -crit)
    assert rp.power_equivalence(c, 0.0, LOG11, 0.05, n)[0] == pytest.approx(shown.mean(),
                                                                           abs=0.03)


def test_repetitions_needed_is_the_first_n_with_enough_power():
    c = rp.contrast(values([0.0, 0.1, -0.05, 0.08]), values([0.0, 0.0, 0.0, 0.0]))
    n = rp.repetitions_needed(lambda k: rp.power_difference(c, 0.1, 0.05, k))
    assert rp.power_difference(c, 0.1, 0.05, n)[0] >= 0.8 > rp.power_difference(
        c, 0.1, 0.05, n - 1)[0]
    assert rp.repetitions_needed(lambda k: rp.power_difference(c, 0.0, 0.05, k)) is None


def test_three_outcomes_and_holm():
    summary = summary_from({
        "base": [40.0, 44.0, 37.0],
        "g1": [520.0, 469.0, 549.0],
        "g2": [600.0, 500.0, 530.0],     # 4 % apart on average, not in step with g1
        "g3": [500.0, 501.0, 499.5],
        "g4": [501.0, 501.5, 500.0],     # within 0.3 % of g3 in every block
    })
    pairs = rp.pairwise_verdicts(summary, order=["base", "g1", "g2", "g3", "g4"])
    by = pairs.set_index(["scenario_a", "scenario_b"])
    assert by.loc[("base", "g1"), "outcome"] == "different"
    assert by.loc[("g1", "g2"), "outcome"] == "inconclusive"
    assert by.loc[("g3", "g4"), "outcome"] == "equivalent"
    assert by.loc[("base", "g1"), "ratio"] == pytest.approx(
        math.exp(np.mean(np.log([40, 44, 37])) - np.mean(np.log([520, 469, 549]))))
    assert by.loc[("g1", "g2"), "repetitions_to_settle"] > 3
    assert "equivalence if the true difference is 0" in by.loc[("g1", "g2"), "settles_towards"]
    assert pd.isna(by.loc[("g3", "g4"), "repetitions_to_settle"])
    assert set(pairs["family"]) == {"of interest"}  # no baseline or control named
    for family in ("p_difference", "p_tost"):
        assert pairs[f"{family}_holm"].tolist() == pytest.approx(
            multipletests(pairs[family], method="holm")[1])
    assert pairs["alpha_planning"].tolist() == pytest.approx([0.05 / len(pairs)] * len(pairs))
    groups = rp.equivalence_groups(pairs, ["base", "g1", "g2", "g3", "g4"])
    assert "g3, g4" in groups["members"].tolist()


def test_holm_runs_over_the_pairs_of_interest_and_the_control_is_judged_at_alpha():
    summary = summary_from({
        "base": [40.0, 44.0, 37.0, 41.0],
        "g1": [520.0, 469.0, 549.0, 510.0],
        "g1_aa": [530.0, 470.0, 560.0, 520.0],
        "g2": [600.0, 500.0, 530.0, 560.0],
        "g3": [500.0, 501.0, 499.5, 502.0],
    })
    pairs = rp.pairwise_verdicts(summary, baseline="base", controls={"g1_aa": "g1"})
    by = pairs.set_index(["scenario_a", "scenario_b"])
    assert by.loc[("base", "g1"), "family"] == "baseline"
    assert by.loc[("g1", "g1_aa"), "family"] == by.loc[("g1_aa", "g3"), "family"] == "A/A control"
    inside = pairs.loc[pairs["family"] == "of interest"]
    assert len(inside) == 3  # g1-g2, g1-g3, g2-g3
    for family in ("p_difference", "p_tost"):
        assert inside[f"{family}_holm"].tolist() == pytest.approx(
            multipletests(inside[family], method="holm")[1])
        outside = pairs.loc[pairs["family"] != "of interest"]
        assert outside[f"{family}_holm"].tolist() == pytest.approx(outside[family].tolist())
    # the A/A pair: raw alpha, so it is held to the plain test
    assert by.loc[("g1", "g1_aa"), "different"] == (by.loc[("g1", "g1_aa"), "p_difference"] < 0.05)
    assert inside["alpha_planning"].tolist() == pytest.approx([0.05 / 3] * 3)
    assert by.loc[("g1", "g1_aa"), "alpha_planning"] == pytest.approx(0.05)


def test_repetitions_to_settle_are_planned_at_zero_and_the_margin_not_the_observed():
    """Two pairs with the same spread of differences but different observed differences
    get the same plan: it never follows the observed difference."""
    near = rp.paired_contrast(np.log([100.0, 110.0, 95.0]), np.log([101.0, 104.0, 99.0]))
    far = rp.paired_contrast(np.log([100.0, 110.0, 95.0]) + 0.05,
                             np.log([101.0, 104.0, 99.0]))
    bound = math.log(1.1)
    got_near, got_far = rp.settle(near, bound, 0.05), rp.settle(far, bound, 0.05)
    assert got_near == got_far
    n_eq = rp.repetitions_needed(lambda n: rp.power_equivalence(near, 0.0, bound, 0.05, n))
    n_diff = rp.repetitions_needed(lambda n: rp.power_difference(near, bound, 0.05, n))
    assert got_near[0] == max(n_eq, n_diff)
    assert f": {n_eq};" in got_near[1] and got_near[1].endswith(f": {n_diff}")


def test_the_issues_repetition_medians_unpaired():
    # per-repetition medians quoted in the issue (a campaign without blocks)
    summary = summary_from({"virtio": [520.5, 469.0, 549.5], "virtio_elvis": [578.0, 513.0, 612.0]},
                           blocked=False)
    row = rp.pairwise_verdicts(summary).iloc[0]
    assert row["design"] == "unpaired"
    assert row["p_difference"] == pytest.approx(0.2229, abs=1e-4)  # Welch on the log medians
    assert row["outcome"] == "inconclusive" and row["repetitions_to_settle"] > 3


def test_absolute_margin_compares_medians_in_us():
    summary = summary_from({"a": [100.0, 102.0, 101.0], "b": [101.0, 103.0, 101.5]})
    pairs = rp.pairwise_verdicts(summary, margin=Margin(absolute_us=5.0))
    row = pairs.iloc[0]
    assert row["diff_us"] == pytest.approx(-2.5 / 3)
    assert row["outcome"] == "equivalent" and math.isnan(row["ratio"])


def test_equivalence_groups_mark_chains():
    pairs = pd.DataFrame(
        [("a", "b", "equivalent"), ("a", "c", "inconclusive"), ("b", "c", "equivalent"),
         ("a", "d", "different"), ("b", "d", "different"), ("c", "d", "different"),
         ("e", "f", "equivalent")],
        columns=["scenario_a", "scenario_b", "outcome"],
    )
    g = rp.equivalence_groups(pairs, ["a", "b", "c", "d", "e", "f"])
    assert g["members"].tolist() == ["a, b, c", "d", "e, f"]
    assert g["all_pairs_equivalent"].tolist() == [False, True, True]


# --------------------------------------------------------------------------- intervals


def test_t_interval_of_the_typical_median_by_hand():
    by_rep = {"a": {1: np.array([100.0]), 2: np.array([110.0, 110.0]), 3: np.array([121.0])}}
    iv = rp.scenario_intervals(by_rep, n_resamples=200).set_index("statistic")
    logs = np.log([100.0, 110.0, 121.0])
    half = sps.t.ppf(0.975, 2) * logs.std(ddof=1) / math.sqrt(3)
    assert iv.loc["median", "estimate_us"] == pytest.approx(110.0)
    assert iv.loc["median", "t_low_us"] == pytest.approx(110.0 * math.exp(-half))
    assert iv.loc["median", "t_high_us"] == pytest.approx(110.0 * math.exp(half))
    assert iv.loc["mean", "estimate_us"] == pytest.approx(331.0 / 3)


def test_two_level_bootstrap_agrees_with_t_when_repetitions_are_many():
    rng = np.random.default_rng(5)
    by_rep = {"a": {k: np.sort(np.round(rng.lognormal(math.log(500 * rng.lognormal(0, 0.08)),
                                                      0.3, 200))) for k in range(1, 41)}}
    iv = rp.scenario_intervals(by_rep, n_resamples=2000, seed=1).set_index("statistic")
    for stat in ("median", "mean"):
        row = iv.loc[stat]
        width_t = row["t_high_us"] - row["t_low_us"]
        assert row["boot_low_us"] == pytest.approx(row["t_low_us"], abs=0.15 * width_t)
        assert row["boot_high_us"] == pytest.approx(row["t_high_us"], abs=0.15 * width_t)


def test_intervals_are_seeded_per_scenario():
    rng = np.random.default_rng(6)
    by_rep = {s: {k: np.sort(rng.normal(100, 10, 50)) for k in (1, 2, 3)} for s in "ab"}
    one = rp.scenario_intervals(by_rep, seed=3, n_resamples=300)
    alone = rp.scenario_intervals({"b": by_rep["b"]}, seed=3, n_resamples=300)
    pd.testing.assert_frame_equal(one.loc[one["scenario"] == "b"].reset_index(drop=True), alone)


# --------------------------------------------------------------------------- closeness


def test_closeness_per_repetition_by_hand():
    by_rep = {"base": {1: np.arange(1.0, 6.0), 2: np.arange(6.0, 11.0)},
              "s": {1: np.array([5.0, 9.0, 9.1, 20.0]), 2: np.array([9.2, 30.0])}}
    threshold, shares = rp.closeness_by_repetition(by_rep, "base", 90)
    assert threshold == pytest.approx(9.1)  # p90 of 1..10
    s = shares.loc[shares["scenario"] == "s"].set_index("repetition")["share"]
    assert s.tolist() == pytest.approx([3 / 4, 0.0])
    summary = rp.closeness_summary(shares).set_index("scenario")
    assert summary.loc["s", "share"] == pytest.approx(3 / 8)
    assert summary.loc["s", "share_ci_low"] == 0.0  # clipped


# --------------------------------------------------------------------------- claims


def test_claims_read_the_pairs_and_the_shares():
    summary = summary_from({
        "virtio": [500.0, 520.0, 480.0], "virtio_elvis": [200.0, 210.0, 190.0],
        "virtio_vpfring": [501.0, 521.0, 481.0], "virtio_elvis_vpfring": [300.0, 200.0, 100.0],
    })
    pairs = rp.pairwise_verdicts(summary)
    shares = pd.DataFrame({"scenario": ["virtio_elvis"] * 3 + ["virtio_elvis_vpfring"] * 3,
                           "repetition": [1, 2, 3] * 2, "block": [1, 2, 3] * 2,
                           "share": [0.80, 0.76, 0.79, 0.50, 0.52, 0.48]})
    claims = rp.judge_claims(rp.SEED_CLAIMS, pairs, shares, margin=Margin()).set_index("claim")
    assert claims.loc["2 ≈ 4", "verdict"] == "supported"
    assert claims.loc["3 < 2", "verdict"] == "supported"
    assert claims.loc["3 ≈ 5", "verdict"] == "not settled"
    assert claims.loc["3 closer than 5", "verdict"] == "supported"
    assert 0.0 <= claims.loc["3 ≈ 5", "power_now"] <= 1.0
    # neither close to the baseline at all: the study's 28 points are contradicted
    far = shares.assign(share=[0.01, 0.0, 0.02, 0.0, 0.01, 0.01])
    claim = rp.judge_claims(rp.SEED_CLAIMS, pairs, far, margin=Margin()).set_index("claim")
    assert claim.loc["3 closer than 5", "verdict"] == "contradicted"
    d = np.array([0.01, -0.01, 0.01])
    p_less = sps.ttest_1samp(d, 0.28, alternative="less").pvalue
    p_diff = sps.ttest_1samp(d, 0.0).pvalue
    # Holm over the claim's two tests: the smaller p doubled
    assert claim.loc["3 closer than 5", "p"] == pytest.approx(min(1, 2 * p_less))
    assert p_less < p_diff
    assert claim.loc["3 closer than 5", "p_adjustment"] == rp.CLOSER_ADJUSTMENT
    assert claim.loc["2 ≈ 4", "p_adjustment"] == rp.PAIR_ADJUSTMENT


def test_identical_configurations_with_zero_spread_never_give_p_0_or_a_point_interval():
    """Every repetition of both at share 1.0 (200 probes each): the study's +28 points are
    contradicted, but with a p the sampling error allows, and an interval of nonzero width."""
    summary = summary_from({"virtio_elvis": [500.0, 500.0, 500.0],
                            "virtio_elvis_vpfring": [500.0, 500.0, 500.0]})
    pairs = rp.pairwise_verdicts(summary)
    shares = pd.DataFrame({"scenario": ["virtio_elvis"] * 3 + ["virtio_elvis_vpfring"] * 3,
                           "repetition": [1, 2, 3] * 2, "block": [1, 2, 3] * 2,
                           "n": 200, "share": 1.0})
    claim = rp.judge_claims(rp.SEED_CLAIMS, pairs, shares, margin=Margin()).set_index("claim")
    row = claim.loc["3 closer than 5"]
    assert row["verdict"] == "contradicted"
    assert row["p"] > 1e-300 and row["p"] < 0.05
    low, high = (float(x.strip("%")) for x in
                 row["estimate"].split("[")[1].split("]")[0].split(", "))
    assert low < 0 < high
    summary = rp.closeness_summary(shares).set_index("scenario")
    assert (summary["share_ci_low"] < summary["share"]).all()
    assert (summary["share_ci_high"] == 1.0).all()  # clipped


# --------------------------------------------------------------------------- campaigns


def _loss(rows):
    return pd.DataFrame(rows, columns=["scenario", "repetition", "loss_pct"])


def _history(sd_between: float, nights: int = 12, reps: int = 5, seed: int = 1,
             scenarios=("a", "b", "c")) -> pd.DataFrame:
    """Night values of a simulated history: log medians around log 100 µs, no loss."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(nights):
        for name in scenarios:
            y = np.log(100.0) + rng.normal(0, sd_between) + rng.normal(0, 0.02, reps)
            rows.append({"night": f"n{k}", "scenario": name, "metric": "median",
                         "mean": y.mean(), "within_var": y.var(ddof=1), "n_reps": reps})
            rows.append({"night": f"n{k}", "scenario": name, "metric": "loss", "mean": 0.0,
                         "within_var": 0.0, "n_reps": reps})
    return pd.DataFrame(rows)


def test_compare_campaigns_includes_the_variation_between_nights():
    old = summary_from({"a": [100.0, 104.0, 98.0], "b": [50.0, 51.0, 49.0], "c": [10, 11, 9]})
    new = summary_from({"a": [135.0, 138.0, 132.0], "b": [56.0, 49.0, 60.0], "d": [10, 11, 9]})
    new_loss = _loss([("a", k, 0.0) for k in (1, 2, 3)] + [("b", k, 5.0 * k) for k in (1, 2)])
    old_loss = _loss([("a", k, 0.0) for k in (1, 2, 3)] + [("b", k, 0.0) for k in (1, 2)])
    comps = bn.components(_history(0.02))
    out = rp.compare_campaigns(new, old, new_loss, old_loss, older="night-1", between=comps,
                               prior=None).set_index("scenario")
    assert out.loc["a", "verdict"] == "regressed"
    logs_new, logs_old = np.log([135.0, 138.0, 132.0]), np.log([100.0, 104.0, 98.0])
    d = logs_new.mean() - logs_old.mean()
    assert out.loc["a", "median_change_pct"] == pytest.approx(100 * math.expm1(d))
    sb = comps.set_index(["scenario", "metric"]).loc[("a", "median"), "between_sd"]
    se = math.sqrt(2 * sb**2 + logs_new.var(ddof=1) / 3 + logs_old.var(ddof=1) / 3)
    terms = [(2 * sb**2, 11), (logs_new.var(ddof=1) / 3, 2), (logs_old.var(ddof=1) / 3, 2)]
    df = se**4 / sum(v**2 / k for v, k in terms)
    assert out.loc["a", "median_df"] == pytest.approx(df)
    assert out.loc["a", "median_p"] == pytest.approx(2 * sps.t.sf(d / se, df))
    assert out.loc["a", "loss_outcome"] == "unchanged"  # no loss, ever: the history agrees
    # b: +10 % but the repetitions scatter as much: neither regressed nor unchanged
    assert out.loc["b", "verdict"] == "inconclusive"
    assert out.loc["b", "loss_change_pp"] == pytest.approx(7.5)
    assert out.loc["c", "verdict"] == "not comparable"
    assert out.loc["d", "verdict"] == "not comparable"
    assert rp.comparison_outcome(out.reset_index()) == "regressed"


def test_the_same_rise_is_no_regression_when_nights_vary_as_much():
    """+35 % against repetitions that agree within 3 %: a regression if nights vary by 2 %,
    not when they vary by 30 % (the previous method, blind to nights, called both)."""
    old = summary_from({"a": [100.0, 104.0, 98.0]})
    new = summary_from({"a": [135.0, 138.0, 132.0]})
    none = _loss([])
    calm = rp.compare_campaigns(new, old, none, none, older="x",
                                between=bn.components(_history(0.02)), prior=None)
    rough = rp.compare_campaigns(new, old, none, none, older="x",
                                 between=bn.components(_history(0.30)), prior=None)
    assert calm.iloc[0]["verdict"] == "regressed"
    assert rough.iloc[0]["verdict"] == "inconclusive"
    assert rough.iloc[0]["median_ci_high_pct"] > 2 * calm.iloc[0]["median_ci_high_pct"]


def test_an_unchanged_pair_with_a_wide_interval_is_inconclusive_not_unchanged():
    old = summary_from({"a": [100.0, 60.0, 150.0]})
    new = summary_from({"a": [101.0, 62.0, 148.0]})  # +0.4 %, the interval spans ±50 %
    out = rp.compare_campaigns(new, old, _loss([]), _loss([]), older="x").iloc[0]
    assert abs(out["median_change_pct"]) < 2
    assert out["median_ci_low_pct"] < -10 and out["median_ci_high_pct"] > 10
    assert out["verdict"] == "inconclusive" and out["median_outcome"] == "inconclusive"
    # the same change, repetitions and nights agreeing within 1 %: unchanged
    tight_old = summary_from({"a": [100.0, 100.5, 99.5]})
    tight_new = summary_from({"a": [100.4, 100.9, 99.9]})
    out = rp.compare_campaigns(tight_new, tight_old, _loss([]), _loss([]), older="x",
                               between=bn.components(_history(0.005)), prior=None).iloc[0]
    assert out["verdict"] == "unchanged"
    assert rp.comparison_outcome(pd.DataFrame([out])) == "unchanged"


def test_a_single_campaign_a_side_is_judged_with_the_history_or_prior():
    out = rp.compare_campaigns(summary_from({"a": [100.0]}), summary_from({"a": [150.0]}),
                               _loss([]), _loss([]), older="x").iloc[0]
    # one repetition each: the prior's within-night sd stands in for the campaigns' own
    assert out["median_df"] > 0 and math.isfinite(out["median_ci_low_pct"])
    assert out["verdict"] == "inconclusive"
    refused = rp.compare_campaigns(summary_from({"a": [100.0]}), summary_from({"a": [150.0]}),
                                   _loss([]), _loss([]), older="x", prior=None).iloc[0]
    assert refused["verdict"] == "inconclusive" and "not judged" in refused["note"]
    assert math.isnan(refused["median_p"])
