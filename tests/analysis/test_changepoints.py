"""Change points: E-divisive with a t test, on synthetic nightly series and on a catalog of
campaign folders.

Synthetic nights: a level of 100 with Gaussian noise of sd 2 % to 5 % of it (what the mean
of a few repetitions' percentiles varies by from night to night), and steps of +20 %.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis import changepoints as cp
from analysis import history
from tests.analysis.test_history import write_night

P = cp.DEFAULT_P_VALUE
MS = cp.DEFAULT_MIN_SEGMENT


def nights(n: int, sd: float, seed: int, steps: tuple[tuple[int, float], ...] = ()
           ) -> np.ndarray:
    """n nightly values around 100 with relative noise ``sd``; each (k, factor) multiplies the
    nights from k on."""
    x = 100.0 * (1 + np.random.default_rng(seed).normal(0, sd, n))
    for k, factor in steps:
        x[k:] *= factor
    return x


def found_at(changes: list[cp.ChangePoint], where: list[int]) -> bool:
    """Exactly the changes ``where``, each within one night."""
    return len(changes) == len(where) and all(
        abs(c.index - k) <= 1 for c, k in zip(changes, where, strict=True))


# --------------------------------------------------------------------------- the statistic


def test_energy_grid_is_the_e_divisive_statistic():
    x = np.random.default_rng(0).normal(size=60)
    prefix = cp.distance_prefix(x)

    def q(s, tau, kappa):  # Matteson & James (2014), alpha = 1, written out
        a, b = x[s:tau], x[tau:kappa]
        n, m = a.size, b.size
        between = np.abs(a[:, None] - b[None, :]).mean()
        within_a = np.abs(a[:, None] - a[None, :]).sum() / (n * (n - 1))
        within_b = np.abs(b[:, None] - b[None, :]).sum() / (m * (m - 1))
        return m * n / (m + n) * (2 * between - within_a - within_b)

    for s, e, ms in ((0, 60, 3), (7, 31, 2), (10, 26, 4)):
        grid = cp.energy_grid(prefix, s, e, ms)
        for i, tau in enumerate(range(s + ms, e - ms + 1)):
            for j, kappa in enumerate(range(s + 2 * ms, e + 1)):
                want = q(s, tau, kappa) if kappa - tau >= ms else -np.inf
                assert grid[i, j] == pytest.approx(want, rel=1e-9, abs=1e-9)
        row, col = divmod(int(np.argmax(grid)), grid.shape[1])
        assert cp.best_pair(prefix, s, e, ms) == (s + ms + row, s + 2 * ms + col)
    # the search in blocks of rows finds what the whole grid does, on a long interval
    long = np.random.default_rng(1).normal(size=700)
    long[400:] += 0.3
    long[550:] -= 0.6
    prefix = cp.distance_prefix(long)
    grid = cp.energy_grid(prefix, 0, 700, 3)
    row, col = divmod(int(np.argmax(grid)), grid.shape[1])
    assert cp.best_pair(prefix, 0, 700, 3) == (3 + row, 6 + col)


def test_reported_statistics_are_students_p_and_welchs_interval():
    x = np.array([10, 11, 10, 12, 11, 10, 13, 14, 13, 15, 14, 16], dtype=float)
    (change,) = cp.e_divisive(x, p_value=0.01)
    assert change.index == 6
    before, after = x[:6], x[6:]
    assert change.before_mean == pytest.approx(before.mean())
    assert change.after_mean == pytest.approx(after.mean())
    assert change.p_value == pytest.approx(sps.ttest_ind(after, before).pvalue, rel=1e-9)
    welch = sps.ttest_ind(after, before, equal_var=False).confidence_interval(0.95)
    assert (change.ci_low, change.ci_high) == pytest.approx((welch.low, welch.high), rel=1e-9)


def test_constant_nights_and_an_exact_step():
    assert cp.e_divisive(np.full(12, 5.0)) == []
    (change,) = cp.e_divisive(np.r_[np.zeros(6), np.full(6, 2.0)])
    assert (change.index, change.p_value, change.ci_low, change.ci_high) == (6, 0.0, 2.0, 2.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="finite"):
        cp.e_divisive(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="min_segment"):
        cp.e_divisive(np.arange(10.0), min_segment=1)
    with pytest.raises(ValueError, match="p_value"):
        cp.e_divisive(np.arange(10.0), p_value=0)
    assert cp.e_divisive(np.arange(5.0)) == []  # shorter than two segments: nothing to split


# --------------------------------------------------------------------------- synthetic nights


@pytest.mark.parametrize(("k", "after", "sd"), [
    (8, 8, 0.02), (8, 8, 0.05), (12, 12, 0.02), (12, 12, 0.05), (30, 30, 0.02), (30, 30, 0.05),
    (4, 4, 0.02),   # 8 nights in all
    (20, 3, 0.03),  # three nights after the step: as early as min_segment allows
])
def test_one_step_is_one_change_at_its_night(k, after, sd):
    """A +20 % step after k nights: one change at k (±1 night) in at least 90 % of 40 series
    (the simulated rate is 96 % to 100 % for these settings), and its interval covers +20 %
    in most of them."""
    hits, covered, seeds = 0, 0, range(40)
    for seed in seeds:
        changes = cp.e_divisive(nights(k + after, sd, seed, ((k, 1.2),)))
        if found_at(changes, [k]):
            hits += 1
            c = changes[0]
            assert c.p_value < P and c.after_mean > c.before_mean
            covered += c.ci_low <= 0.2 * c.before_mean <= c.ci_high
    assert hits >= 0.9 * len(seeds)
    assert covered >= 0.8 * hits


@pytest.mark.parametrize("n", [8, 20])
def test_flat_nights_false_positive_rate(n):
    """Changes found in n flat nights (sd 3 %), 200 series. What the p-value implies: a
    change between two segments needs p < p_value at one of the n - 2 min_segment + 1
    admissible splits, and the excursion test fires with probability at most p_value, so the
    rate is at most (n - 2 min_segment + 1) p_value, plus p_value when an excursion fits
    (n >= 3 min_segment): 0.003 for 8 nights (exact: no second split fits), 0.016 for 20.
    Asserted: that bound plus three binomial standard errors over 200 series. (Simulated over
    2 000 series: 0.003 and 0.010.)"""
    series = 200
    bound = (n - 2 * MS + 1) * P + (P if n >= 3 * MS else 0.0)
    tolerance = 3 * math.sqrt(bound * (1 - bound) / series)
    rate = np.mean([bool(cp.e_divisive(nights(n, 0.03, seed))) for seed in range(series)])
    assert rate <= bound + tolerance
    # the same test at a careless threshold does find changes in flat nights
    loose = np.mean([bool(cp.e_divisive(nights(n, 0.03, seed), p_value=0.2))
                     for seed in range(series)])
    assert loose > bound + tolerance


def test_one_outlier_night_is_not_a_change_three_are():
    """min_segment 3: one bad night (x1.5 or x0.5) anywhere in 20 is no change; the same
    three nights in a row at the end are."""
    for seed in range(5):
        for where in range(20):
            for factor in (1.5, 0.5):
                x = nights(20, 0.03, seed)
                x[where] *= factor
                assert cp.e_divisive(x) == [], (seed, where, factor)
        x = nights(20, 0.03, seed)
        x[17:] *= 1.5
        assert found_at(cp.e_divisive(x), [17])


@pytest.mark.parametrize(("n", "steps", "sd"), [
    (30, ((10, 1.2), (20, 1.2)), 0.03),      # up, up
    (45, ((15, 1.2), (30, 1 / 1.2)), 0.03),  # a regression, fixed 15 nights later
    (24, ((8, 0.8), (16, 1.25)), 0.02),      # an improvement, lost 8 nights later
    (45, ((20, 1.2), (25, 1 / 1.2)), 0.02),  # five bad nights between twenty good ones
])
def test_two_steps_are_two_changes(n, steps, sd):
    """Both changes (±1 night) in at least 90 % of 40 series (simulated: 96 % to 99 %)."""
    hits = sum(found_at(cp.e_divisive(nights(n, sd, seed, steps)), [k for k, _ in steps])
               for seed in range(40))
    assert hits >= 36


# --------------------------------------------------------------------------- a catalog


def catalog_of(tmp_path, plan, scale_of) -> pd.DataFrame:
    """Write one campaign folder per planned night and record them all."""
    rng = np.random.default_rng(5)
    rows = []
    for i, (night, kw) in enumerate(plan):
        folder = write_night(tmp_path, night, rng, scale=scale_of(i), **kw)
        rows.append(history.night_rows(folder, night=night))
    return history.update_catalog(tmp_path / "history", pd.concat(rows))


def test_detect_on_campaign_folders(tmp_path):
    """12 nights, RTTs 30 % slower from night 6 on, where the commit and QEMU changed; then 8
    nights with another ping count (a new segment) at a third level."""
    plan = [(f"2026110{i}T0215Z" if i < 10 else f"202611{i}T0215Z",
             {} if i < 6 else {"commit": "b" * 40, "qemu": "QEMU emulator version 8.0.0"})
            for i in range(12)]
    plan += [(f"202611{i}T0215Z", {"commit": "b" * 40, "ping_count": 100})
             for i in range(12, 20)]
    catalog = catalog_of(tmp_path, plan, lambda i: 1.0 if i < 6 else (1.3 if i < 12 else 2.0))
    changes = cp.detect(catalog)
    assert list(changes.columns) == list(cp.DETECT_COLUMNS)
    assert changes.dtypes.astype(str).to_dict() == {
        c: ("str" if t == "str" else t) for c, t in cp.DETECT_COLUMNS.items()}

    rtt = changes.loc[changes["metric"] == "rtt_p50_us"].set_index("scenario")
    assert sorted(rtt.index) == ["base", "guest"]  # one change each, none across segments
    for scenario, c in rtt.iterrows():
        assert (c["segment"], c["night"], c["previous_night"]) == (
            0, "20261106T0215Z", "20261105T0215Z")
        assert c["direction"] == "regression" and c["unit"] == "µs"
        assert c["p_value"] < P
        values = catalog.loc[(catalog.scenario == scenario) & (catalog.metric == "rtt_p50_us"),
                             "value"].to_numpy()
        assert c["before"] == pytest.approx(values[:6].mean())
        assert c["after"] == pytest.approx(values[6:12].mean())
        assert c["change_pct"] == pytest.approx(100 * (c["after"] / c["before"] - 1))
        assert c["ci_low_pct"] < c["change_pct"] < c["ci_high_pct"]
        assert c["ci_low_pct"] < 30 < c["ci_high_pct"]
        assert f"commit: {'a' * 12} → {'b' * 12}" in c["differs"]
        assert "hv qemu: QEMU emulator version 7.2.22 → QEMU emulator version 8.0.0" in (
            c["differs"])
    seg = history.segments(catalog)
    assert seg["segment"].tolist() == [0] * 12 + [1] * 8
    assert seg["segment_reason"].iloc[12].startswith("parameters changed (params_hash")


def test_detect_direction_follows_what_is_better_and_nothing_differs():
    """A synthetic catalog: a throughput rise is a progression, an RTT rise a regression; with
    identical contexts the difference is 'nothing recorded differs'."""
    n, k = 16, 8
    rows = []
    for i in range(n):
        night = f"202612{i + 1:02d}"
        for metric, level in (("ndr_pps", 1e6), ("rtt_p99_us", 50.0)):
            value = level * (1.2 if i >= k else 1.0) * (1 + 0.01 * ((i * 7) % 5 - 2))
            rows.append({"night": night, "started_at": None, "campaign_id": night,
                         "outcome": "done", "reason": None, "scenario": "s", "metric": metric,
                         "unit": history.METRICS[metric], "value": value, "sd": math.nan,
                         "n_reps": 1, "params_hash": "p", "lab_hash": "l", "commit": "c",
                         "context": '{"git":{"commit":"c"}}'})
    catalog = history.typed(pd.DataFrame(rows))
    changes = cp.detect(catalog).set_index("metric")
    assert changes.loc["ndr_pps", "direction"] == "progression"
    assert changes.loc["rtt_p99_us", "direction"] == "regression"
    assert (changes["night"] == "20261209").all()
    assert (changes["differs"] == cp.NOTHING_DIFFERS).all()
    # a failed night in between changes nothing, and is never a change night
    failed = history.outcome_row(night="20261208T9", started_at=None, outcome="failed",
                                 reason="x")
    again = cp.detect(pd.concat([catalog, failed], ignore_index=True)).set_index("metric")
    pd.testing.assert_frame_equal(again, changes)
    # too few nights: nothing to detect, and still the columns
    few = cp.detect(catalog.loc[catalog.night < "20261205"])
    assert few.empty and list(few.columns) == list(cp.DETECT_COLUMNS)
