"""analysis.trends on its own (no page), and the document blocks the dashboard is written with.

The expected runs and trends are worked out here from the constructed values.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import document, trends


def _catalog(values: list[float], nights: list[str]) -> pd.DataFrame:
    rows = [{
        "night": night, "started_at": None, "campaign_id": f"c-{night}", "params_hash": "p",
        "lab_hash": "lab", "commit": "abc", "context": "{}", "outcome": "done", "reason": None,
        "scenario": "virtio", "metric": "rtt_p50_us", "unit": "us", "value": v, "sd": 1.0,
        "n_reps": 3,
    } for night, v in zip(nights, values, strict=True)]
    return pd.DataFrame(rows, columns=list(trends.CATALOG_COLUMNS))


def test_runs_split_at_change_points_and_segment_starts():
    nights = [f"2026110{i}T0215Z" for i in range(1, 10)]
    values = [10.0, 11.0, 12.0, 20.0, 22.0, 24.0, 50.0, 52.0, 54.0]
    segments = pd.DataFrame({"night": nights, "segment": [0] * 6 + [1] * 3,
                             "segment_reason": [None] * 6 + ["lab changed"] + [None] * 2})
    changes = pd.DataFrame([{"scenario": "virtio", "metric": "rtt_p50_us", "unit": "us",
                             "segment": 0, "night": nights[3], "direction": "regression"}])
    h = trends.prepare(_catalog(values, nights), segments, changes)
    (s,) = h.series
    assert list(s.group) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert np.allclose(s.trend, [11.0] * 3 + [22.0] * 3 + [52.0] * 3)
    assert s.run_start == 6
    reasons = h.segment_runs["reason"]
    assert list(h.segment_runs["segment"]) == [0, 1]
    assert pd.isna(reasons.iloc[0]) and reasons.iloc[1] == "lab changed"

    summary = trends.summarise(h, short_nights=2, long_nights=90)
    row = summary.iloc[0]
    assert row["trend"] == 52.0 and row["trend_since"] == nights[6] and row["trend_nights"] == 3
    assert np.isclose(row["last_vs_trend_pct"], 100 * (54.0 - 52.0) / 52.0)
    # The change point lies in an earlier segment: the series is "normal" now.
    assert row["classification"] == "normal" and row["regressions"] == 1
    assert "window limited to the current segment" in row["long_term_note"]


def test_trends_draws_nothing():
    """The computation imports neither the page's renderer nor matplotlib."""
    code = ("import sys, analysis.trends; "
            "print(sorted(m for m in ('matplotlib', 'analysis.document', 'analysis.dashboard')"
            " if m in sys.modules))")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_grid_and_svg_blocks():
    grid = document.Grid(
        ["scenario", "value (us)"],
        [("regression", [document.Cell("a<b", href="#chart-0"), document.Cell("1.5", True)]),
         ("", [document.Cell("c|d"), document.Cell("2", True)])],
        caption="Newest first",
    )
    svg = document.Svg("<svg></svg>", "virtio: rtt (us)", anchor="chart-0")
    note = document.Para(": nothing ran.", strong="No values", css="note")
    sections = [document.Section("", [note]), document.Section("Summary", [grid, svg])]
    page = document.to_html("T", sections, Path("."), css="p{}", viewport=True)
    assert '<meta name="viewport"' in page and "<style>p{}</style>" in page
    assert '<p class="note"><strong>No values</strong>: nothing ran.</p>' in page
    assert page.count("<h2>") == 1
    assert ('<table><caption>Newest first</caption><thead><tr><th>scenario</th>'
            '<th>value (us)</th></tr></thead><tbody><tr class="regression">'
            '<td><a href="#chart-0">a&lt;b</a></td><td class="n">1.5</td></tr>') in page
    assert '<figure id="chart-0"><svg></svg><figcaption>virtio: rtt (us)</figcaption>' in page

    md = document.to_markdown("T", sections)
    assert "**No values**: nothing ran." in md
    assert "| [a<b](#chart-0) | 1.5 |" in md and "| c\\|d | 2 |" in md
    assert "## Summary" in md and md.count("## ") == 1
