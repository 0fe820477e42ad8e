"""Change points that survive real nights: autocorrelated nights, outlier nights, the false
discovery rate over a lab's series, alerts only from key metrics above their resolution.

Synthetic catalogs: a lab of scenarios x metrics, each series a level with relative
night-to-night noise (AR(1) with coefficient phi), as analysis.history's catalog holds them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import changepoints as cp
from analysis import history

MS = cp.DEFAULT_MIN_SEGMENT
LEVELS = {"rtt_p50_us": 600.0, "rtt_p99_us": 2000.0, "rate_loss_pct": 80.0, "ndr_pps": 5e4,
          "rtt_p90_us": 900.0, "cpu_us_per_packet[h1]": 150.0}


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    w = rng.standard_normal(n)
    e = np.empty(n)
    e[0] = w[0]
    for t in range(1, n):
        e[t] = phi * e[t - 1] + math.sqrt(1 - phi * phi) * w[t]
    return e


def night(i: int) -> str:
    return f"2026{1 + i // 28:02d}{1 + i % 28:02d}T021500Z"


def lab_catalog(n: int, *, seed: int, phi: float = 0.0, noise: float = 0.05,
                scenarios: int = 4, levels: dict[str, float] | None = None,
                steps: dict[tuple[str, str], tuple[int, float]] | None = None,
                values: dict[tuple[str, str], np.ndarray] | None = None) -> pd.DataFrame:
    """n done nights of ``scenarios`` x ``levels`` series; ``steps`` multiplies a series
    from night k on; ``values`` replaces a series outright."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(scenarios):
        for metric, level in (levels or LEVELS).items():
            key = (f"s{s}", metric)
            x = level * (1 + noise * ar1(rng, n, phi))
            if steps and key in steps:
                k, factor = steps[key]
                x[k:] *= factor
            if values and key in values:
                x = values[key]
            for i in range(n):
                rows.append({"night": night(i), "started_at": None, "campaign_id": night(i),
                             "outcome": "done", "reason": None, "scenario": key[0],
                             "metric": metric, "unit": history.METRICS.get(metric, "µs"),
                             "value": float(x[i]), "sd": math.nan, "n_reps": 3,
                             "params_hash": "p", "lab_hash": "l", "commit": "c",
                             "context": '{"git":{"commit":"c"}}'})
    return history.typed(pd.DataFrame(rows))


def alerts(changes: pd.DataFrame) -> pd.DataFrame:
    return changes.loc[changes["alerting"]]


# --------------------------------------------------------------------------- the statistic


def test_whitened_t_with_phi_0_is_students_t_and_the_max_p_is_calibrated():
    from scipy import stats as sps

    x = np.random.default_rng(0).normal(size=30)
    t, rho, df = cp.whitened_split_stats(x, 0.0, MS)
    for j in (MS, 10, 30 - MS):
        assert t[j - MS] == pytest.approx(abs(sps.ttest_ind(x[:j], x[j:]).statistic), rel=1e-9)
    assert df == 28 and rho.size == t.size - 1 and ((rho > 0) & (rho < 1)).all()
    # the maximum over splits, on AR(1) nights whitened with the true phi: P(p <= 1 %) is
    # about 1 % (0.8-1.5 % simulated over 4 000 series); 800 series here, 3 binomial sd.
    rng = np.random.default_rng(1)
    for phi in (0.0, 0.5):
        p = []
        for _ in range(800):
            t, rho, df = cp.whitened_split_stats(ar1(rng, 40, phi), phi, MS)
            p.append(cp.max_t_p(float(t.max()), rho, df))
        rate = np.mean(np.array(p) <= 0.01)
        assert rate <= 0.01 + 3 * math.sqrt(0.01 * 0.99 / 800), (phi, rate)
        # against a test of the chosen split as if it were the only one (the previous method)
        naive = []
        for _ in range(800):
            x = ar1(rng, 40, phi)
            t, _, _ = cp.whitened_split_stats(x, 0.0, MS)
            naive.append(2 * sps.t.sf(t.max(), 38))
        assert np.mean(np.array(naive) <= 0.01) > 3 * rate + 0.01


def test_pooled_phi_is_unbiased_over_a_labs_series():
    rng = np.random.default_rng(2)
    for phi in (0.0, 0.5):
        estimates = [cp.pooled_phi([cp.segment_residuals(ar1(rng, 40, phi), [])
                                    for _ in range(40)]) for _ in range(30)]
        assert np.mean(estimates) == pytest.approx(phi, abs=0.03)
    assert cp.pooled_phi([[np.zeros(10)]]) == 0.0  # no spread: nothing to estimate


def test_bh_qvalues():
    q = cp.bh_qvalues(np.array([0.01, 0.04, 0.03, 0.5]), 4)
    # p_(k) m / k, then the minimum from the end
    assert q.tolist() == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])
    # the series left out of the list count as p = 1
    assert cp.bh_qvalues(np.array([0.01]), 10).tolist() == pytest.approx([0.1])


# --------------------------------------------------------------------------- a lab's nights


@pytest.mark.parametrize("seed", range(4))
def test_autocorrelated_nights_without_a_change_raise_no_alert(seed):
    """AR(1) nights, phi = 0.5, 40 nights, 24 series: no alert, no change listed. The
    previous method (Student's t, nights taken as independent) finds changes in them."""
    catalog = lab_catalog(40, seed=seed, phi=0.5)
    changes = cp.detect(catalog)
    assert alerts(changes).empty, changes.to_string()
    assert (changes["kind"] != "change").all()
    old = cp.detect(catalog, method=cp.METHOD_STUDENT)
    assert (old["kind"] == "change").all() and old["alerting"].all()


def test_the_previous_method_alerts_on_those_nights():
    """What the test above guards against: over the same four labs, the previous method
    reports changes (it takes correlated nights as independent)."""
    found = sum(len(cp.detect(lab_catalog(40, seed=seed, phi=0.5), method=cp.METHOD_STUDENT))
                for seed in range(4))
    assert found >= 2


@pytest.mark.parametrize("where", [1, 2, 3, 20])
def test_an_outlier_night_is_no_change_and_is_marked(where):
    """One night at 1.5 times the level (10 sd at 5 % noise), ``where`` nights from the end
    (1: the last): never a change, never an alert, and reported as an outlier of that night."""
    n = 40
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        x = 600.0 * (1 + 0.05 * rng.standard_normal(n))
        x[n - where] = 900.0
        catalog = lab_catalog(n, seed=seed, values={("s0", "rtt_p50_us"): x})
        changes = cp.detect(catalog)
        assert alerts(changes).empty, changes.to_string()
        mine = changes.loc[(changes["scenario"] == "s0") & (changes["metric"] == "rtt_p50_us")]
        assert mine["kind"].tolist() == ["outlier"], mine.to_string()
        row = mine.iloc[0]
        assert row["night"] == night(n - where) and row["outlier_z"] > 5
        assert row["direction"] == "regression" and not row["alerting"]
        assert row["after"] == pytest.approx(x[n - where])


def test_three_bad_nights_at_the_end_are_a_change():
    n = 40
    x = 600.0 * (1 + 0.05 * np.random.default_rng(7).standard_normal(n))
    x[n - 3:] *= 1.5
    changes = cp.detect(lab_catalog(n, seed=3, values={("s0", "rtt_p50_us"): x}))
    (row,) = alerts(changes).itertuples()
    assert (row.scenario, row.metric, row.night, row.kind) == ("s0", "rtt_p50_us",
                                                               night(n - 3), "change")


def found_within(catalog_of, k: int, nights: int) -> int | None:
    """The first of ``nights`` nights after the step (1: the step's own night) after which
    detect alerts on s0 rtt_p50_us within two nights of k (where the step is placed is
    uncertain by a night or two at 2 sd); None when none does."""
    for after in range(1, nights + 1):
        changes = alerts(cp.detect(catalog_of(k + after)))
        hit = changes.loc[(changes["scenario"] == "s0") & (changes["metric"] == "rtt_p50_us")]
        if any(abs(NIGHT_INDEX[nt] - k) <= 2 for nt in hit["night"]):
            return after
    return None


NIGHT_INDEX = {night(i): i for i in range(200)}


@pytest.mark.parametrize(("scenarios", "factor", "least"), [(1, 1.10, 12), (4, 1.20, 18)])
def test_a_step_at_five_percent_noise_is_found_within_five_nights(scenarios, factor, least):
    """A step after 30 nights at 5 % noise, in a lab of 6 series (one scenario: +10 %, 2
    sd) or of 24 (+20 %): found within 5 nights in at least ``least`` of 20 labs (these
    seeds: 13 and 20). The more series a lab has, the stricter each one's test: a +10 %
    step in a lab of 47 series is found within 5 nights about half the time
    (docs/analysis.md, "Nightly history and change points")."""
    k, hits = 30, 0
    for seed in range(20):
        full = lab_catalog(k + 5, seed=seed, scenarios=scenarios,
                           steps={("s0", "rtt_p50_us"): (k, factor)})

        def upto(n, full=full):
            return full.loc[full["night"] < night(n)] if n < k + 5 else full

        hits += found_within(upto, k, 5) is not None
    assert hits >= least


def test_many_flat_series_rarely_give_a_change_and_never_an_alert():
    """The false-discovery rate over a lab: 20 labs of 60 flat series (10 scenarios x 6
    metrics), 40 nights. With no change anywhere, BH at ``fdr`` (2.5 %) lists a change in
    a lab with probability at most ``fdr``: at most 3 of 20 labs (2.5 % plus 3 binomial
    sd); the previous method lists changes in more labs than that."""
    new = alerted = old = 0
    for seed in range(20):
        catalog = lab_catalog(40, seed=seed, scenarios=10)
        changes = cp.detect(catalog)
        new += (changes["kind"] == "change").any()
        alerted += changes["alerting"].any()
        old += not cp.detect(catalog, method=cp.METHOD_STUDENT).empty
    assert cp.DEFAULT_FDR == 0.025
    assert new <= 3 and alerted <= new
    assert old > 3


def test_a_change_of_another_metric_is_listed_not_alerting():
    n, k = 40, 30
    catalog = lab_catalog(n, seed=4, steps={("s1", "cpu_us_per_packet[h1]"): (k, 1.3),
                                            ("s1", "rtt_p90_us"): (k, 1.3),
                                            ("s2", "rtt_p99_us"): (k, 1.3)})
    changes = cp.detect(catalog).set_index(["scenario", "metric"])
    for key in (("s1", "cpu_us_per_packet[h1]"), ("s1", "rtt_p90_us")):
        row = changes.loc[key]
        assert row["kind"] == "change" and not row["alerting"] and row["q_value"] <= cp.DEFAULT_FDR
        assert row["night"] == night(k)
    assert changes.loc[("s2", "rtt_p99_us"), "alerting"]
    # and what alerts is configurable
    again = cp.detect(catalog, alert_metrics=frozenset({"rtt_p90_us"})).set_index(
        ["scenario", "metric"])
    assert again.loc[("s1", "rtt_p90_us"), "alerting"]
    assert not again.loc[("s2", "rtt_p99_us"), "alerting"]


def test_a_change_below_the_resolution_does_not_alert():
    """Loss at rate 0 % every night, then one frame in 20 000 lost per repetition (0.005 %,
    below two frames): a change (no spread either side) that does not alert; 0.05 % does."""
    n, k = 30, 24
    tiny = np.r_[np.zeros(k), np.full(n - k, 0.005)]
    real = np.r_[np.zeros(k), np.full(n - k, 0.05)]
    catalog = lab_catalog(n, seed=5, values={("s0", "rate_loss_pct"): tiny,
                                             ("s1", "rate_loss_pct"): real})
    changes = cp.detect(catalog).set_index(["scenario", "metric"])
    assert changes.loc[("s0", "rate_loss_pct"), "kind"] == "change"
    assert changes.loc[("s0", "rate_loss_pct"), "min_change"] == pytest.approx(0.01)
    assert not changes.loc[("s0", "rate_loss_pct"), "alerting"]
    assert changes.loc[("s1", "rate_loss_pct"), "alerting"]


def test_resolution_floors():
    assert cp.resolution_floor("rtt_p50_us", 600.0) == 2.0
    assert cp.resolution_floor("rate_loss_pct", 80.0) == pytest.approx(0.01)
    assert cp.resolution_floor("rate_loss_pct", 80.0, {"rate_frames": 1000}) == pytest.approx(0.2)
    assert cp.resolution_floor("ping_loss_pct", 0.0, {"ping_count": 1000}) == pytest.approx(0.2)
    assert cp.resolution_floor("ndr_pps", 5e4) == pytest.approx(2500.0)
    assert cp.resolution_floor("cpu_us_per_packet[h1]", 150.0) == 0.0


def test_detect_is_deterministic_and_keeps_its_columns():
    catalog = lab_catalog(40, seed=6, steps={("s0", "rtt_p50_us"): (20, 1.3)})
    a, b = cp.detect(catalog), cp.detect(catalog)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(cp.DETECT_COLUMNS)
    assert a["phi"].between(0, cp.MAX_PHI).all()
    with pytest.raises(ValueError, match="method"):
        cp.detect(catalog, method="otava")
    with pytest.raises(ValueError, match="fdr"):
        cp.detect(catalog, fdr=0)


def test_the_dashboard_marks_outliers_and_says_which_changes_alert(tmp_path):
    from analysis import dashboard

    n, k = 40, 30
    x = 600.0 * (1 + 0.05 * np.random.default_rng(9).standard_normal(n))
    x[n - 1] = 900.0
    catalog = lab_catalog(n, seed=8, scenarios=2, values={("s0", "rtt_p50_us"): x},
                          steps={("s1", "rtt_p90_us"): (k, 1.3), ("s1", "rtt_p99_us"): (k, 1.3)})
    changes = cp.detect(catalog)
    assert (changes["kind"] == "outlier").sum() == 1
    page = dashboard.render_dashboard(catalog, history.segments(catalog), changes,
                                      tmp_path / "dashboard.html").read_text()
    outliers = page[page.index("Outlier nights"):]
    assert night(n - 1) in outliers and "→ 900.0 µs" in outliers
    assert "outlier night (1): not a change" in page  # the chart's legend
    table = page[page.index("Change points"):page.index("Outlier nights")]
    assert ">yes<" in table and ">no<" in table  # rtt_p99_us alerts, rtt_p90_us does not


def test_the_resolution_defaults_are_the_declared_parameters():
    from kvmnetlab import parameters

    declared = {key: parameters.BY_KEY[key].default for key in cp.PARAMETER_DEFAULTS}
    assert declared == cp.PARAMETER_DEFAULTS


AA_HISTORY = Path(__file__).resolve().parents[1] / "analysis_data" / "history" / "aa-embedded"


@pytest.mark.skipif(not (AA_HISTORY / history.CATALOG).is_file(),
                    reason="the recorded A/A history is not in the repository yet")
def test_the_recorded_aa_history_raises_no_alert():
    """The lab unchanged for every night of the recorded A/A history: no alerting change."""
    changes = cp.detect(history.read_catalog(AA_HISTORY))
    assert not changes["alerting"].any(), changes.loc[changes["alerting"]].to_string()


def test_the_dashboard_definition_is_a_template_of_the_settings():
    term, text = cp.DEFINITION
    filled = text.format(p_value=0.001, min_segment=3)
    assert term == "Change point" and "{" not in filled
    assert "at least 3 nights" in filled and f"rate of {cp.DEFAULT_FDR:g}" in filled
    assert "Welch" in filled and "Student's pooled t test" in filled
    assert all(metric in filled for metric in cp.KEY_METRICS)
