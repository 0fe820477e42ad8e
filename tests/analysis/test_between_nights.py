"""The night as the unit across campaigns: variance components, the prior, the history
readers, and the comparison's error rates on an unchanged lab."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import between_nights as bn
from analysis import calibration as cal
from analysis import history, replication, tables
from analysis import nights as nights_mod
from analysis.load import InputError, load_campaign
from analysis.model import rtt_by_repetition

CAMPAIGNS = Path(__file__).resolve().parents[1] / "analysis_data" / "campaigns"
STORED = ("calib10", "quickstart1", "small2")


def _guest(name: str) -> str:
    return "" if name == "baseline" else "guest"


@pytest.fixture(scope="module")
def stored():
    return [cal.night_inputs(CAMPAIGNS / name) for name in STORED]


def test_the_prior_is_what_the_stored_campaigns_show(stored):
    frames = [bn.campaign_nights(n, *cal.frames_of(v))
              for n, v in cal.night_pools(stored, _guest).items()]
    comp = bn.components(pd.concat(frames)).set_index("metric")
    for metric in bn.METRICS:
        assert comp.loc[metric, "between_sd"] == pytest.approx(
            bn.PRIOR[metric].between_sd, abs=0.005 if metric == "median" else 0.01)
        assert comp.loc[metric, "within_sd"] == pytest.approx(
            bn.PRIOR[metric].within_sd, abs=0.005)
        assert comp.loc[metric, "between_df"] == bn.PRIOR[metric].between_df == 2
    # the between-night variation is real: F = 4.4 on the log medians
    assert comp.loc["median", "between_sd"] > 0.5 * comp.loc["median", "within_sd"]


def test_components_by_the_method_of_moments():
    nights = pd.DataFrame({
        "night": ["n1", "n2", "n3", "n4"], "scenario": "a", "metric": "median",
        "mean": [1.0, 1.2, 0.9, 1.1], "within_var": [0.04, 0.09, 0.01, 0.04],
        "n_reps": [4, 4, 4, 4]})
    row = bn.components(nights).iloc[0]
    expected = np.var([1.0, 1.2, 0.9, 1.1], ddof=1) - np.mean([0.04, 0.09, 0.01, 0.04]) / 4
    assert row["between_sd"] == pytest.approx(math.sqrt(expected))
    assert row["between_df"] == 3 and row["within_df"] == 12
    assert row["within_sd"] == pytest.approx(math.sqrt(np.mean([0.04, 0.09, 0.01, 0.04])))
    assert bn.components(nights.iloc[:2]).empty  # fewer than MIN_NIGHTS
    # never negative: nights closer than their repetitions say
    calm = nights.assign(mean=[1.0, 1.01, 0.99, 1.0])
    assert bn.components(calm).iloc[0]["between_sd"] == 0.0
    # a short calm history is pooled with the prior, weighted by df
    got = bn.component_for(bn.components(calm), "a", "median")
    prior = bn.PRIOR["median"]
    assert got.between_sd == pytest.approx(math.sqrt(2 * prior.between_sd**2 / 5))
    assert got.between_df == 5 and got.source == "history" and got.nights == 4
    assert bn.component_for(bn.components(calm), "a", "median", prior=None).between_sd == 0
    assert bn.component_for(None, "a", "median") == prior
    assert bn.component_for(None, "a", "median", prior=None) is None


def test_history_from_campaign_folders_and_from_the_catalog(tmp_path):
    folders = tmp_path / "campaigns"
    folders.mkdir()
    for name in STORED:
        (folders / name).symlink_to(CAMPAIGNS / name, target_is_directory=True)
    nights, what = nights_mod.read_nights(folders)
    assert "3 campaign folders" in what
    assert set(nights["night"]) == set(STORED)
    virtio = nights.loc[(nights["scenario"] == "virtio") & (nights["metric"] == "median")]
    quick = virtio.set_index("night").loc["quickstart1"]
    c = load_campaign(CAMPAIGNS / "quickstart1")
    reps = replication.repetition_summary(rtt_by_repetition(c.rtt, c.scenario_order))
    medians = reps.loc[reps["scenario"] == "virtio", "median_us"].to_numpy()
    assert quick["mean"] == pytest.approx(math.log(replication.night_value(medians, "log")))
    assert quick["n_reps"] == 3

    # the catalog: three nights of one segment (the same campaign read three times)
    hist = tmp_path / "history"
    rows = pd.concat([history.night_rows(CAMPAIGNS / "quickstart1", night=f"2026112{k}T0100Z")
                      for k in (1, 2, 3)], ignore_index=True)
    history.update_catalog(hist, rows)
    nights, what = nights_mod.read_nights(hist)
    assert "nightly catalog" in what and "3 done nights" in what
    cat = nights.loc[(nights["scenario"] == "virtio") & (nights["metric"] == "median")]
    assert cat["mean"].to_numpy() == pytest.approx([quick["mean"]] * 3)  # one night value
    loss = nights.loc[(nights["scenario"] == "virtio") & (nights["metric"] == "loss")]
    assert loss["mean"].iloc[0] == pytest.approx(84.218333, abs=1e-4)  # the rate test's loss
    assert bn.components(nights).set_index(["scenario", "metric"]).loc[
        ("virtio", "median"), "between_sd"] == 0.0

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"nights\.parquet or campaign folders"):
        nights_mod.read_nights(tmp_path / "empty")


def test_resampled_halves_of_an_unchanged_lab_rarely_regress(stored):
    """Two different nights of the stored lab, R whole repetitions each: the previous chain
    called about a fifth of them regressed; the night as the unit, at most 5 %."""
    pools = cal.night_pools(stored, _guest)
    for r in (5, 10):
        verdicts = [cal.new_chain(new, old).iloc[0]["verdict"]
                    for new, old in cal.resampled_pairs(pools, r, 150, seed=32)]
        assert cal.verdict_rates(verdicts)["regressed"] <= 0.05


def test_a_planted_30_percent_rise_with_a_history_is_regressed():
    model = cal.NightModel(log_median=math.log(600.0), between_sd=0.03, within_sd=0.10,
                           loss_pct=1.0, loss_between_sd=0.2, loss_within_sd=0.3)
    rng = np.random.default_rng(30)
    history_nights = cal.simulated_history(model, 14, 10, rng)
    regressed = 0
    for _ in range(20):
        new = cal.frames_of(cal.simulate_campaign(model, 10, rng, shift=0.30))
        old = cal.frames_of(cal.simulate_campaign(model, 10, rng))
        out = cal.new_chain(new, old, history=history_nights, prior=False).iloc[0]
        regressed += out["verdict"] == "regressed"
        assert out["verdict"] != "unchanged"
    assert regressed >= 18


AA_HISTORY = CAMPAIGNS.parent / "history" / "aa-embedded"


@pytest.mark.skipif(not (AA_HISTORY / history.CATALOG).exists(),
                    reason="the A/A history of the embedded lab is not recorded yet")
def test_the_recorded_aa_history_gives_no_regression(tmp_path):
    """The last night of the recorded A/A history against the one before, with the history's
    own between-night variation: nothing changed, so nothing may regress."""
    found, _ = nights_mod.read_nights(AA_HISTORY)
    assert found["night"].nunique() >= 12
    comps = bn.components(found)
    assert not comps.empty
    folders = sorted(p.parent for p in AA_HISTORY.rglob("manifest.json"))
    if len(folders) < 2:
        pytest.skip("the history keeps no campaign folders")
    new, old = (load_campaign(f) for f in folders[-2:][::-1])
    frames = []
    for c in (new, old):
        reps = replication.repetition_summary(rtt_by_repetition(c.rtt, c.scenario_order))
        frames.append((reps, tables.loss_per_repetition(c.ping_summary, c.rate)))
    out = replication.compare_campaigns(frames[0][0], frames[1][0], frames[0][1], frames[1][1],
                                        older=old.campaign_id, between=comps)
    assert "regressed" not in set(out["verdict"])
