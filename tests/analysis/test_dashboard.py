"""The trend dashboard: the summary's statistics worked out independently, and the page.

The frames are built here, column for column as the history's schema says;
the expected trends and changes are computed from the constructed values with
plain numpy, not with the dashboard's code.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from analysis import dashboard

SKIP_REASON = "<script>alert(1)</script> lab busy & locked"
FAIL_REASON = "guest did not boot"


def night_names(n: int) -> list[str]:
    return [d.strftime("%Y%m%dT021500Z") for d in pd.date_range("2026-11-01", periods=n)]


def make_catalog(names, values, *, not_run=None, units=None, sd=1.5, n_reps=3):
    """values: {(scenario, metric): one value per night}; not_run: {index: (outcome, reason)}."""
    not_run = not_run or {}
    units = units or {}
    rows = []
    for i, night in enumerate(names):
        base = {
            "night": night, "started_at": f"{night[:4]}-{night[4:6]}-{night[6:8]}T02:15:00Z",
            "campaign_id": f"nightly-{night}", "params_hash": "p1", "lab_hash": "lab-a",
            "commit": "0123abc", "context": "{}",
        }
        if i in not_run:
            outcome, reason = not_run[i]
            rows.append({**base, "outcome": outcome, "reason": reason, "scenario": None,
                         "metric": None, "unit": None, "value": math.nan, "sd": math.nan,
                         "n_reps": 0})
            continue
        for (scenario, metric), v in values.items():
            rows.append({**base, "outcome": "done", "reason": None, "scenario": scenario,
                         "metric": metric, "unit": units.get(metric, "us"),
                         "value": float(v[i]), "sd": sd, "n_reps": n_reps})
    frame = pd.DataFrame(rows, columns=list(dashboard.CATALOG_COLUMNS))
    return frame.astype({"value": "float64", "sd": "float64", "n_reps": "int64"})


def make_segments(names, not_run, starts=None):
    """starts: {index of the first night of a new segment: reason}."""
    starts = starts or {}
    rows, segment = [], 0
    for i, night in enumerate(names):
        if i in starts:
            segment += 1
        if i in (not_run or {}):
            continue
        rows.append({"night": night, "segment": segment,
                     "segment_reason": starts.get(i) if i in starts else None})
    return pd.DataFrame(rows, columns=list(dashboard.SEGMENT_COLUMNS))


def done_mean(values, done, lo, hi):
    """Mean of values[i] for done nights lo <= i < hi."""
    return float(np.mean([values[i] for i in range(lo, hi) if i in done]))


def change_row(scenario, metric, unit, names, at, before, after, direction, segment=0):
    pct = 100 * (after - before) / abs(before)
    return {
        "scenario": scenario, "metric": metric, "unit": unit, "segment": segment,
        "night": names[at], "previous_night": names[at - 1], "before": before, "after": after,
        "change_pct": pct, "ci_low_pct": pct - 3.0, "ci_high_pct": pct + 3.0,
        "p_value": 0.0012, "direction": direction, "differs": "kernel 6.1.0 -> 6.1.1",
    }


N = 30
NOT_RUN = {5: ("skipped", SKIP_REASON), 12: ("failed", FAIL_REASON)}
DONE = {i for i in range(N) if i not in NOT_RUN}


@pytest.fixture
def history():
    rng = np.random.default_rng(7)
    names = night_names(N)
    # virtio rtt (lower is better): 90 until night 9, 100 from 10, 120 from 25.
    rtt = np.r_[np.full(10, 90.0), np.full(15, 100.0), np.full(5, 120.0)] + rng.normal(0, 1, N)
    # virtio ndr (higher is better): 1.0e6 until night 26, 1.2e6 from 27.
    ndr = np.r_[np.full(27, 1.0e6), np.full(3, 1.2e6)] + rng.normal(0, 5e3, N)
    bare = 50.0 + rng.normal(0, 1, N)
    values = {("virtio", "rtt_p50_us"): rtt, ("virtio", "ndr_pps"): ndr,
              ("bare", "rtt_p50_us"): bare}
    catalog = make_catalog(names, values, not_run=NOT_RUN, units={"ndr_pps": "pps"})
    segments = make_segments(names, NOT_RUN)
    g1, g2, g3 = done_mean(rtt, DONE, 0, 10), done_mean(rtt, DONE, 10, 25), done_mean(
        rtt, DONE, 25, N)
    n1, n2 = done_mean(ndr, DONE, 0, 27), done_mean(ndr, DONE, 27, N)
    changes = pd.DataFrame([
        change_row("virtio", "rtt_p50_us", "us", names, 10, g1, g2, "regression"),
        change_row("virtio", "rtt_p50_us", "us", names, 25, g2, g3, "regression"),
        change_row("virtio", "ndr_pps", "pps", names, 27, n1, n2, "progression"),
    ], columns=list(dashboard.CHANGE_COLUMNS))
    return {
        "names": names, "rtt": rtt, "ndr": ndr, "bare": bare, "catalog": catalog,
        "segments": segments, "changes": changes, "g": (g1, g2, g3), "n": (n1, n2),
    }


def row(summary, scenario, metric):
    hit = summary.loc[(summary["scenario"] == scenario) & (summary["metric"] == metric)]
    assert len(hit) == 1
    return hit.iloc[0]


def pct(new, ref):
    return 100 * (new - ref) / abs(ref)


# --------------------------------------------------------------------------- summary


def test_better_rule():
    assert dashboard.better("ndr_pps") == 1
    assert dashboard.better("pdr_pps") == 1
    for metric in ("rtt_p50_us", "rtt_p99_us", "ping_loss_pct", "cpu_us_per_packet[kvmnl-h1]"):
        assert dashboard.better(metric) == -1


def test_step_series_lower_is_better(history):
    h = history
    s = dashboard.trend_summary(h["catalog"], h["segments"], h["changes"])
    assert list(s.columns) == list(dashboard.SUMMARY_COLUMNS)
    assert len(s) == 3
    g1, g2, g3 = h["g"]
    r = row(s, "virtio", "rtt_p50_us")
    assert r["better"] == -1
    assert r["last_night"] == h["names"][-1]
    assert r["last_value"] == pytest.approx(h["rtt"][-1])
    assert r["trend"] == pytest.approx(g3)  # the mean since the last change point
    assert r["trend_since"] == h["names"][25]
    assert r["trend_nights"] == 5
    assert r["last_vs_trend_pct"] == pytest.approx(pct(h["rtt"][-1], g3))
    # 7 nights before the newest is night 22, in the run 10..24.
    assert r["short_term_reference"] == h["names"][22]
    assert r["short_term_pct"] == pytest.approx(pct(g3, g2))
    # Lower is better: the best trend of the last 90 nights is the first run's.
    assert r["long_term_best"] == pytest.approx(g1)
    assert r["long_term_pct"] == pytest.approx(pct(g3, g1))
    assert (r["regressions"], r["progressions"]) == (2, 0)
    assert r["classification"] == "regression"
    assert r["last_sd"] == pytest.approx(1.5)
    assert r["last_n_reps"] == 3


def test_higher_is_better_and_flat(history):
    h = history
    s = dashboard.trend_summary(h["catalog"], h["segments"], h["changes"])
    n1, n2 = h["n"]
    r = row(s, "virtio", "ndr_pps")
    assert r["better"] == 1
    assert r["unit"] == "pps"
    assert r["trend"] == pytest.approx(n2)
    assert r["short_term_pct"] == pytest.approx(pct(n2, n1))
    assert r["long_term_best"] == pytest.approx(n2)  # highest trend: the current one
    assert r["long_term_pct"] == pytest.approx(0.0)
    assert (r["regressions"], r["progressions"]) == (0, 1)
    assert r["classification"] == "progression"

    b = row(s, "bare", "rtt_p50_us")
    assert b["trend"] == pytest.approx(done_mean(h["bare"], DONE, 0, N))
    assert b["trend_nights"] == len(DONE)
    assert b["short_term_pct"] == pytest.approx(0.0)
    assert b["long_term_pct"] == pytest.approx(0.0)
    assert (b["regressions"], b["progressions"]) == (0, 0)
    assert b["classification"] == "normal"
    # Rows in the order the scenarios and metrics first appear.
    assert list(zip(s["scenario"], s["metric"], strict=True)) == [
        ("virtio", "rtt_p50_us"), ("virtio", "ndr_pps"), ("bare", "rtt_p50_us")]


def test_windows(history):
    h = history
    _, g2, g3 = h["g"]
    s = dashboard.trend_summary(h["catalog"], h["segments"], h["changes"],
                                short_nights=3, long_nights=10)
    r = row(s, "virtio", "rtt_p50_us")
    # 3 nights before the newest is night 26: same run as now.
    assert r["short_term_reference"] == h["names"][26]
    assert r["short_term_pct"] == pytest.approx(0.0)
    # The last 10 nights are 20..29: runs 10..24 and 25..29; the lowest is the earlier.
    assert r["long_term_best"] == pytest.approx(g2)
    assert r["long_term_pct"] == pytest.approx(pct(g3, g2))
    assert (r["regressions"], r["progressions"]) == (1, 0)
    # Too few nights for the short term.
    s = dashboard.trend_summary(h["catalog"], h["segments"], h["changes"], short_nights=30)
    r = row(s, "virtio", "rtt_p50_us")
    assert math.isnan(r["short_term_pct"])
    assert "fewer than 31 nights" in r["short_term_note"]


def test_segment_boundary_stops_the_comparisons():
    names = night_names(20)
    rng = np.random.default_rng(3)
    rtt = np.r_[np.full(16, 100.0), np.full(4, 80.0)] + rng.normal(0, 1, 20)
    catalog = make_catalog(names, {("virtio", "rtt_p90_us"): rtt})
    reason = "lab changed: kernel 6.1 -> 6.12"
    segments = make_segments(names, {}, {16: reason})
    for changes in (pd.DataFrame(columns=list(dashboard.CHANGE_COLUMNS)), pd.DataFrame()):
        s = dashboard.trend_summary(catalog, segments, changes)
        r = row(s, "virtio", "rtt_p90_us")
        assert r["segment"] == 1
        assert r["trend"] == pytest.approx(float(np.mean(rtt[16:])))
        assert r["trend_since"] == names[16]
        assert math.isnan(r["short_term_pct"])  # night 12 lies in segment 0
        assert "segment" in r["short_term_note"] and reason in r["short_term_note"]
        assert r["long_term_pct"] == pytest.approx(0.0)  # only segment 1 counts
        assert "current segment" in r["long_term_note"]
        assert r["classification"] == "normal"


def test_empty_summary():
    s = dashboard.trend_summary(pd.DataFrame(columns=list(dashboard.CATALOG_COLUMNS)),
                                pd.DataFrame(), pd.DataFrame())
    assert s.empty and list(s.columns) == list(dashboard.SUMMARY_COLUMNS)


# --------------------------------------------------------------------------- page


def svg_parts(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.S)


def test_page(history, tmp_path):
    h = history
    out = dashboard.render_dashboard(
        h["catalog"], h["segments"], h["changes"], tmp_path / "site" / "index.html",
        title="Nightly <trends>", p_value=0.01, min_segment=4,
    )
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<title>Nightly &lt;trends&gt;</title>" in page

    # Self-contained: no scripts, no external references (xmlns are names, not fetches).
    assert "<script" not in page.lower()
    assert "https://" not in page
    assert re.findall(r'([\w:-]+)="http://', page)
    assert all(a.startswith("xmlns") for a in re.findall(r'([\w:-]+)="http://', page))
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:|//)""", page, flags=re.I)
    assert "<link" not in page and "@import" not in page and "url(http" not in page

    # One chart per scenario.
    svgs = svg_parts(page)
    assert len(svgs) == 2
    charts = "".join(svgs)
    # The change point: its night and its size, in the chart's legend and in the table.
    change = h["changes"].iloc[1]
    size = f"{change['change_pct']:+.1f} %"
    assert change["night"] in charts and size in charts
    table = page[page.index("<h2>Change points</h2>"):page.index("<h2>Nights that did not")]
    assert change["night"] in table and size in table
    assert "kernel 6.1.0 -&gt; 6.1.1" in table
    assert "0.0012" in table

    # The skipped night and its reason, escaped, in the table and as a chart tooltip.
    skipped = h["names"][5]
    not_run = page[page.index("<h2>Nights that did not run</h2>"):page.index("<h2>Segments")]
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; lab busy &amp; locked"
    assert skipped in not_run and "skipped" in not_run and escaped in not_run
    assert h["names"][12] in not_run and FAIL_REASON in not_run
    assert f"<title>{skipped}: skipped: {escaped}</title>" in charts
    assert SKIP_REASON not in page

    # The summary: regressions highlighted, units in the headers.
    assert '<tr class="regression">' in page and '<tr class="progression">' in page
    assert "trend (us)" in page and "trend (pps)" in page

    # The header's counts.
    assert "28 done, 1 failed, 1 skipped, 0 refused" in page
    assert "2 regressions, 1 progressions" in page  # all nights
    assert "1 regressions, 1 progressions" in page  # last 7 nights: nights 25 and 27

    # The definitions, with the detector's settings.
    defs = page[page.index("<h2>Definitions</h2>"):]
    for term in ("Night value", "sd", "Trend", "Short-term change (7 nights)",
                 "Long-term change (90 nights)", "E-divisive"):
        assert term in defs
    assert "p &gt;= 0.01" in defs and "at least 4 nights" in defs


def test_segment_reason_on_the_chart(tmp_path):
    names = night_names(12)
    catalog = make_catalog(names, {("virtio", "rtt_p50_us"): np.arange(12.0) + 50})
    reason = "parameters changed (ping_count 200 -> 400, $x)"
    segments = make_segments(names, {}, {6: reason})
    page = dashboard.render_dashboard(catalog, segments, pd.DataFrame(),
                                      tmp_path / "d.html").read_text(encoding="utf-8")
    (svg,) = svg_parts(page)
    assert "segment 1: parameters changed" in svg
    assert f"<title>segment 1 from {names[6]}: {reason.replace('>', '&gt;')}</title>" in svg
    assert "No change points detected." in page


def test_empty_catalog(tmp_path):
    for catalog in (pd.DataFrame(columns=list(dashboard.CATALOG_COLUMNS)), pd.DataFrame()):
        out = dashboard.render_dashboard(catalog, pd.DataFrame(), pd.DataFrame(),
                                         tmp_path / "empty.html")
        page = out.read_text(encoding="utf-8")
        assert "No nights recorded" in page
        assert "<svg" not in page and page.rstrip().endswith("</html>")
        assert "0 nights" in page


def test_only_failed_nights(tmp_path):
    names = night_names(3)
    not_run = {0: ("failed", "ansible: unreachable"), 1: ("refused", "dirty tree"),
               2: ("skipped", "lab busy")}
    catalog = make_catalog(names, {}, not_run=not_run)
    page = dashboard.render_dashboard(catalog, pd.DataFrame(), pd.DataFrame(),
                                      tmp_path / "f.html").read_text(encoding="utf-8")
    assert "No night has produced results yet" in page
    assert "0 done, 1 failed, 1 skipped, 1 refused" in page
    for i, (outcome, reason) in not_run.items():
        assert names[i] in page and reason in page and f'<tr class="{outcome}">' in page
    assert "<svg" not in page
