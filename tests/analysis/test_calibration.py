"""Calibration on real campaigns: the verdicts' false-positive rates and power, measured.

The campaigns in tests/analysis_data/campaigns/ were captured on the embedded
lab (CAPTURE.md says how). A/A datasets resample whole repetitions of one
scenario (analysis/calibration.py); A/B datasets multiply one side by a known
shift. A modest number of datasets keeps this test to seconds; the large run
with figures side by side is bench/bench_calibration.py.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats as sps

from analysis import calibration as cal
from analysis import stats
from analysis.cli import main
from analysis.load import load_campaign
from analysis.model import rtt_samples
from tests.helpers import TESTS

DATA = TESTS / "analysis_data" / "campaigns"
QUICKSTART = DATA / "quickstart1"
CALIBRATION = DATA / "calib10"
SMALL = DATA / "small2"
IDENTICAL = ["virtio", "virtio_elvis", "virtio_vpfring", "virtio_elvis_vpfring"]
GUESTS = IDENTICAL
ALPHA = 0.05
DATASETS = 150  # per pool and shift
# The rates are estimated from (pools x DATASETS) datasets; three binomial standard errors of
# a 5 % rate over 600 datasets, sqrt(0.05 * 0.95 / 600) = 0.009, is the stated tolerance.
TOLERANCE = 0.03


def pools() -> dict[str, list]:
    """Real repetitions, one pool per configuration."""
    quick = load_campaign(QUICKSTART)
    by = cal.repetition_pools(quick.rtt, quick.scenario_order)
    out = {"quickstart1: the four guest scenarios (one effective configuration)":
           [x for name in IDENTICAL for x in by[name]]}
    if CALIBRATION.exists():
        calib = load_campaign(CALIBRATION)
        for name, reps in cal.repetition_pools(calib.rtt, calib.scenario_order).items():
            out[f"calib10: {name}"] = reps
    return out


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return cal.calibrate(pools(), repetitions=(3,), shifts=(0.0, 0.10, 1.0),
                         datasets=DATASETS, alpha=ALPHA, seed=2026)


def _rate(results: pd.DataFrame, method: str, shift: float, column: str) -> float:
    rows = results.loc[(results["method"] == method) & (results["shift"] == shift)]
    return float((rows[column] * rows["datasets"]).sum() / rows["datasets"].sum())


def test_pools_are_real_repetitions_drawn_without_replacement(results):
    assert (results["pool_repetitions"] >= 6).all()
    assert not results["with_replacement"].any()


def test_false_positive_rate_of_the_repetition_method(results):
    fpr = _rate(results, "repetition", 0.0, "rate_different")
    pooled = _rate(results, "pooled probes", 0.0, "rate_different")
    print(f"A/A false-positive rate at alpha {ALPHA}: repetition {fpr:.3f}, "
          f"pooled probes {pooled:.3f}")
    assert fpr <= ALPHA + TOLERANCE
    # the replaced method, on the same datasets: why it was replaced
    assert pooled > 4 * ALPHA


def test_equivalence_is_not_claimed_at_the_margin(results):
    # B is 10 % slower: exactly the margin, so 'equivalent' is a false positive
    rate = _rate(results, "repetition", 0.10, "rate_equivalent")
    assert rate <= ALPHA + TOLERANCE


def test_a_large_shift_is_found(results):
    # B twice as slow: the repetition method finds it in most datasets, even with 3
    # repetitions (least often in the baseline's pool, whose repetition medians of about
    # 10 µs vary most at ping's 1 µs resolution)
    assert _rate(results, "repetition", 1.0, "rate_different") >= 0.8
    assert _rate(results, "repetition", 1.0, "rate_equivalent") == 0.0


def test_calibration_is_reproducible():
    pool = next(iter(pools().values()))
    one = cal.calibrate({"p": pool}, shifts=(0.0,), datasets=20, seed=3)
    two = cal.calibrate({"p": pool}, shifts=(0.0,), datasets=20, seed=3)
    pd.testing.assert_frame_equal(one, two)
    assert cal.binomial_se(0.05, 600) == pytest.approx(math.sqrt(0.05 * 0.95 / 600))


# --------------------------------------------------------------------------- the Quickstart


def test_quickstart_reanalysis_finds_no_difference_among_identical_guests(tmp_path):
    """A Quickstart campaign: four guest scenarios with one effective configuration."""
    assert main([str(QUICKSTART), "--out", str(tmp_path / "report")]) == 0
    pairs = pd.read_csv(tmp_path / "report" / "tables" / "pairwise_verdicts.csv")
    among = pairs.loc[pairs["scenario_a"].isin(IDENTICAL) & pairs["scenario_b"].isin(IDENTICAL)]
    assert len(among) == 6
    assert set(among["outcome"]) <= {"equivalent", "inconclusive"}
    inconclusive = among.loc[among["outcome"] == "inconclusive"]
    assert inconclusive["repetitions_to_settle"].notna().all()
    assert (inconclusive["repetitions_to_settle"] > 3).all()
    against = pairs.loc[(pairs["scenario_a"] == "baseline") & pairs["scenario_b"].isin(GUESTS)]
    assert len(against) == 4 and (against["outcome"] == "different").all()
    assert (against["design"] == "paired").all()
    # the summary says these four ran one configuration, and opens the page
    html = (tmp_path / "report" / "index.html").read_text()
    assert html.index("<h2>Summary</h2>") < html.index("<table>")
    assert "ran the same effective configuration" in html


def test_pooled_probes_call_the_identical_guests_different():
    """What the issue reported, on the same campaign: pseudo-replication."""
    quick = load_campaign(QUICKSTART)
    pooled = stats.pairwise_tests(rtt_samples(quick.rtt, quick.scenario_order))
    among = pooled.loc[pooled["scenario_a"].isin(IDENTICAL)
                       & pooled["scenario_b"].isin(IDENTICAL)]
    assert (among["different_mw"] | among["different_ks"]).sum() >= 3


def test_the_control_pair_of_a_real_campaign_is_not_different(tmp_path):
    if not CALIBRATION.exists():
        pytest.skip("no campaign with an A/A control captured")
    campaign = load_campaign(CALIBRATION)
    assert campaign.controls == {"virtio_aa": "virtio"}
    assert main([str(CALIBRATION), "--out", str(tmp_path / "report")]) == 0
    pairs = pd.read_csv(tmp_path / "report" / "tables" / "pairwise_verdicts.csv")
    control = pairs.loc[(pairs["scenario_a"] == "virtio") & (pairs["scenario_b"] == "virtio_aa")]
    assert control["outcome"].iloc[0] != "different"
    md = (tmp_path / "report" / "report.md").read_text()
    assert "a correct method must not find them different" in md


def test_two_campaigns_of_the_same_unchanged_lab_do_not_regress(tmp_path, capsys):
    """quickstart1 and small2: the same lab, nothing changed, half an hour apart."""
    # no history: the prior's between-night sd; nothing regressed, nothing shown unchanged
    assert main([str(SMALL), "--out", str(tmp_path / "a"), "--compare", str(QUICKSTART)]) == 4
    assert main([str(QUICKSTART), "--out", str(tmp_path / "b"), "--compare", str(SMALL)]) == 4
    assert "REGRESSION" not in capsys.readouterr().err
    comparison = pd.read_csv(tmp_path / "a" / "tables" / "comparison.csv")
    assert set(comparison["verdict"]) == {"inconclusive"}
    # +31.5 % with an interval of about -10 % to +93 %: the previous method said "unchanged"
    assert comparison.set_index("scenario").loc["virtio_elvis", "median_ci_low_pct"] < -10
    # the replaced comparison, Mood's median test over pooled probes, calls +31 % significant
    new, old = load_campaign(SMALL), load_campaign(QUICKSTART)
    a, b = (c.rtt.loc[(c.rtt["scenario"] == "virtio_elvis") & c.rtt["answered"], "rtt_us"]
            for c in (new, old))
    assert sps.median_test(a, b).pvalue < 1e-6
    row = comparison.set_index("scenario").loc["virtio_elvis"]
    assert row["median_change_pct"] > 10 and row["median_p_holm"] > 0.05
