"""Trend dashboard of the nightly campaigns: one self-contained HTML page.

Modelled on FD.io CSIT's trending dashboard. The numbers come from
:mod:`analysis.trends` (the series, their runs between change points, and the
per-series summary of :func:`~analysis.trends.trend_summary`); this module only
draws and writes them. :func:`render_dashboard` writes the page with that
summary, one chart per scenario (a subplot per metric, inline SVG), the change
points, the nights that did not run and the definitions of every statistic.

Time is counted in *recorded nights*: every night in the catalog, whatever its
outcome, in chronological order of its ``night`` string.
"""

from __future__ import annotations

import html
import io
import math
import os
import re
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, FuncFormatter, MaxNLocator, ScalarFormatter

from analysis import changepoints, definitions
from analysis.document import DASH, Cell, Grid, Heading, Para, Section, Svg, pvalue, to_html
from analysis.document import num as _num4
from analysis.trends import (
    CATALOG_COLUMNS,
    CHANGE_COLUMNS,
    CLASSES,
    NOT_RUN,
    OUTCOMES,
    SEGMENT_COLUMNS,
    SUMMARY_COLUMNS,
    History,
    Series,
    better,
    check_windows,
    prepare,
    summarise,
    trend_summary,
)
from analysis.trends import missing as _missing

# --------------------------------------------------------------------------- charts

_C_VALUE = "#1f77b4"
_C_TREND = "#ff7f0e"
_C_CHANGE = {"regression": "#d62728", "progression": "#2ca02c"}
_C_SEGMENT = "#555555"
_C_OUTLIER = "#9467bd"
_NOT_RUN_STYLE = {
    "failed": {"marker": "X", "color": "#d62728"},
    "refused": {"marker": "s", "color": "#8c564b"},
    "skipped": {"marker": "o", "color": "#999999"},
}
_LEGEND_CHANGES = 4
_TIP_VALUES = 250
# Layout, inches: a fixed grid (constrained layout measures every artist: slow on long histories).
_FIG_W, _LEFT, _LEGEND_W, _PANEL_H, _GAP, _TOP, _BOTTOM = 12.0, 1.0, 3.1, 2.2, 0.55, 0.6, 1.0
_GROUP_TAG = re.compile(r"<g\b[^>]*>|</g>")
_USE_TAG = re.compile(r"<use\b[^>]*/>")


def num(x: Any) -> str:
    """Four significant digits; large values (packet rates) in full, with thousands separators."""
    if not _missing(x) and abs(float(x)) >= 1e5:
        return f"{float(x):,.0f}"
    return _num4(x)


def _mpl(s: Any) -> str:
    """Data text for matplotlib: never read as mathtext."""
    return str(s).replace("$", r"\$")


def _short(s: str, limit: int) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _pct_text(x: Any) -> str:
    if _missing(x) or not math.isfinite(float(x)):
        return DASH
    x = float(x)
    return f"{0.0 if abs(x) < 0.05 else x:+.1f} %"


def _ci_text(low: Any, high: Any) -> str:
    if _missing(low) or _missing(high):
        return "95 % CI " + DASH
    return f"95 % CI [{_pct_text(low)[:-2]}, {_pct_text(high)[:-2]}] %"


def _with_unit(x: Any, unit: str) -> str:
    return DASH if _missing(x) else f"{num(x)} {unit}".rstrip()


def _nans(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def _interleave(*columns: np.ndarray) -> np.ndarray:
    """Columns a, b, ... -> a0, b0, ..., a1, b1, ...: several segments as one NaN-split line."""
    return np.column_stack(columns).ravel()


def _draw_series(
    ax: Any, s: Series, h: History, tips: dict[str, Any], gid: str, *, first: bool
) -> None:
    handles: list[Any] = []
    _draw_values(ax, s, tips, gid, handles)
    _draw_trend(ax, s, handles)
    _draw_segments(ax, h, tips, gid, handles, first=first)
    if len(s.changes):
        _draw_changes(ax, s, tips, gid, handles)
    if s.outliers is not None and len(s.outliers):
        _draw_outliers(ax, s, tips, gid, handles)
    _draw_not_run(ax, h, tips, gid, handles, first=first)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
              frameon=False)
    word = "higher" if s.better > 0 else "lower"
    ax.set_title(_mpl(f"{s.metric} ({s.unit}): {word} is better; trend now "
                      f"{num(s.trend[-1])} {s.unit}"), fontsize=9, loc="left")
    ax.set_ylabel(_mpl(s.unit or "value"))
    if np.nanmax(np.abs(s.value)) >= 1e5:  # packet rates: 1.2 M rather than an offset 1e6
        ax.yaxis.set_major_formatter(EngFormatter(sep=" "))
    else:
        ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    ax.grid(alpha=0.3)


def _draw_values(ax: Any, s: Series, tips: dict[str, Any], gid: str, handles: list[Any]) -> None:
    """Night values and +-sd bars (all bars as one NaN-split line: cheap with many nights)."""
    has_sd = np.isfinite(s.sd)
    if has_sd.any():
        x, v, d = s.pos[has_sd].astype(float), s.value[has_sd], s.sd[has_sd]
        ax.plot(_interleave(x, x, _nans(len(x))), _interleave(v - d, v + d, _nans(len(x))),
                color=_C_VALUE, alpha=0.45, linewidth=0.8, label="± sd across repetitions")
        handles.append(ax.lines[-1])
    # Hover text for the newest values only: it is most of a long history's page size.
    cut = max(0, len(s.pos) - _TIP_VALUES)
    marker = {"linestyle": "none", "marker": "o", "markersize": 3, "color": _C_VALUE,
              "zorder": 3}
    if cut:
        ax.plot(s.pos[:cut], s.value[:cut], **marker)
    (points,) = ax.plot(s.pos[cut:], s.value[cut:], label="night value", gid=f"{gid}-v",
                        **marker)
    handles.insert(0, points)
    tips[f"{gid}-v"] = [
        f"{night}: {num(v)} {s.unit}" + ("" if _missing(d) else f" ± {num(d)} {s.unit} sd")
        + ("" if _missing(r) else f", {int(r)} repetitions")
        for night, v, d, r in zip(
            s.nights[cut:], s.value[cut:], s.sd[cut:], s.n_reps[cut:], strict=True
        )
    ]


def _draw_trend(ax: Any, s: Series, handles: list[Any]) -> None:
    """The trend: each run's mean, drawn across the run."""
    starts = np.flatnonzero(np.r_[True, s.group[1:] != s.group[:-1]])
    ends = np.r_[starts[1:], len(s.pos)] - 1
    t = s.trend[starts]
    ax.plot(_interleave(s.pos[starts] - 0.4, s.pos[ends] + 0.4, _nans(len(t))),
            _interleave(t, t, _nans(len(t))), color=_C_TREND, linewidth=2, zorder=4,
            label="trend (mean between change points)")
    handles.append(ax.lines[-1])


def _draw_segments(ax: Any, h: History, tips: dict[str, Any], gid: str, handles: list[Any],
                   *, first: bool) -> None:
    """Segment boundaries, with their reason (written on the first panel)."""
    bottom = ax.get_xaxis_transform()
    for j, run in enumerate(h.segment_runs.iloc[1:].itertuples(index=False)):
        x = run.first_pos - 0.5
        ax.axvline(x, color=_C_SEGMENT, linewidth=1.2, gid=f"{gid}-s{j}", zorder=1)
        reason = run.reason or "no reason recorded"
        tips[f"{gid}-s{j}"] = f"segment {run.segment} from {run.first_night}: {reason}"
        if first:
            ax.annotate(_mpl(_short(f"segment {run.segment}: {reason}", 48)), (x, 0.97),
                        xycoords=bottom, xytext=(2, 0), textcoords="offset points",
                        rotation=90, va="top", ha="left", fontsize=6, color=_C_SEGMENT,
                        clip_on=True)
    if len(h.segment_runs) > 1:
        handles.append(Line2D([], [], color=_C_SEGMENT, linewidth=1.2,
                              label="segment boundary (reason on the line)"))


def _draw_changes(ax: Any, s: Series, tips: dict[str, Any], gid: str,
                  handles: list[Any]) -> None:
    """Change points: a dotted line before the first night after, a marker at the new level."""
    cps = s.changes
    xs = cps["pos"].to_numpy(dtype=float) - 0.5
    ax.plot(_interleave(xs, xs, _nans(len(xs))), np.tile([0.0, 1.0, np.nan], len(xs)),
            transform=ax.get_xaxis_transform(), color="#444444", linestyle=":", linewidth=1,
            zorder=2)
    for direction, color in _C_CHANGE.items():
        these = cps.loc[cps["direction"] == direction]
        if these.empty:
            continue
        ax.plot(these["pos"], these["after"], linestyle="none", marker="D", markersize=7,
                markerfacecolor="none", markeredgecolor=color, markeredgewidth=1.6,
                zorder=5, gid=f"{gid}-c{direction[0]}")
        tips[f"{gid}-c{direction[0]}"] = [
            f"{direction} from {c.night}: {num(c.before)} → {num(c.after)} {s.unit}, "
            f"{_pct_text(c.change_pct)} ({_ci_text(c.ci_low_pct, c.ci_high_pct)}), "
            f"p = {pvalue(c.p_value)}"
            for c in these.itertuples(index=False)
        ]
    shown = cps.iloc[-_LEGEND_CHANGES:]
    for c in shown.itertuples(index=False):
        color = _C_CHANGE.get(c.direction, "#444444")
        handles.append(Line2D(
            [], [], linestyle=":", color="#444444", marker="D", markerfacecolor="none",
            markeredgecolor=color, markeredgewidth=1.6,
            label=_mpl(f"{c.direction} from {c.night}:\n{_pct_text(c.change_pct)}, "
                       f"{_ci_text(c.ci_low_pct, c.ci_high_pct)}"),
        ))
    if len(cps) > len(shown):
        handles.append(Line2D([], [], linestyle="none",
                              label=f"… {len(cps) - len(shown)} earlier change points: "
                                    "see the table"))


def _draw_outliers(ax: Any, s: Series, tips: dict[str, Any], gid: str,
                   handles: list[Any]) -> None:
    """Outlier nights: a cross on the night's value (never a change point)."""
    out = s.outliers
    ax.plot(out["pos"], out["after"], linestyle="none", marker="x", markersize=8,
            color=_C_OUTLIER, markeredgewidth=1.6, zorder=6, gid=f"{gid}-o")
    tips[f"{gid}-o"] = [
        f"outlier night {o.night}: {num(o.after)} {s.unit} against a local level of "
        f"{num(o.before)} {s.unit} ({_pct_text(o.change_pct)}, robust z {o.outlier_z:+.1f}); "
        "not a change"
        for o in out.itertuples(index=False)
    ]
    handles.append(Line2D([], [], linestyle="none", marker="x", color=_C_OUTLIER,
                          markeredgewidth=1.6,
                          label=f"outlier night ({len(out)}): not a change"))


def _draw_not_run(ax: Any, h: History, tips: dict[str, Any], gid: str, handles: list[Any],
                  *, first: bool) -> None:
    """Nights that did not run, at the bottom of the axis."""
    out = h.outcomes
    for outcome, style in _NOT_RUN_STYLE.items():
        these = out.loc[out["outcome"] == outcome]
        if these.empty:
            continue
        x = h.pos(these["night"].to_numpy(dtype=object))
        ax.plot(x, np.full(len(x), 0.04), transform=ax.get_xaxis_transform(),
                linestyle="none", markersize=6, zorder=6, gid=f"{gid}-n{outcome[0]}", **style)
        tips[f"{gid}-n{outcome[0]}"] = [
            f"{night}: {outcome}" + ("" if _missing(r) else f": {r}")
            for night, r in zip(these["night"], these["reason"], strict=True)
        ]
        if first:
            handles.append(Line2D([], [], linestyle="none", markersize=6,
                                  label=f"{outcome} night ({len(these)})", **style))


def _add_titles(svg: str, tips: dict[str, Any]) -> str:
    """Give the SVG groups of ``tips`` hover text: one ``<title>`` per marker, or per group."""
    for gid, tip in tips.items():
        start = svg.find(f'<g id="{gid}">')
        if start < 0:
            continue
        open_end = start + len(f'<g id="{gid}">')
        depth, end = 1, len(svg)
        for m in _GROUP_TAG.finditer(svg, open_end):
            depth += -1 if m.group() == "</g>" else 1
            if depth == 0:
                end = m.start()
                break
        body = svg[open_end:end]
        if isinstance(tip, list):
            if body.count("<use ") == len(tip):
                pieces = _USE_TAG.split(body)
                uses = _USE_TAG.findall(body)
                body = pieces[0] + "".join(
                    f"<g><title>{html.escape(t)}</title>{u}</g>{rest}"
                    for t, u, rest in zip(tip, uses, pieces[1:], strict=True)
                )
                svg = svg[:open_end] + body + svg[end:]
                continue
            tip = _short("; ".join(tip), 2000)
        svg = svg[:open_end] + f"<title>{html.escape(tip)}</title>" + svg[open_end:]
    return svg


def _scenario_svg(index: int, scenario: str, series: list[Series], h: History) -> str:
    n = len(series)
    height = _TOP + _BOTTOM + n * _PANEL_H + (n - 1) * _GAP
    fig = Figure(figsize=(_FIG_W, height))
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=_LEFT / _FIG_W, right=1 - _LEGEND_W / _FIG_W,
                        bottom=_BOTTOM / height, top=1 - _TOP / height, hspace=_GAP / _PANEL_H)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    tips: dict[str, Any] = {}
    for j, (ax, s) in enumerate(zip(axes, series, strict=True)):
        _draw_series(ax, s, h, tips, f"k{index}-{j}", first=j == 0)
    last = axes[-1]
    names = h.nights
    last.set_xlim(-0.6, len(names) - 0.4)
    last.xaxis.set_major_locator(MaxNLocator(nbins=9, integer=True))
    last.xaxis.set_major_formatter(FuncFormatter(
        lambda v, _: names[int(v)] if float(v).is_integer() and 0 <= v < len(names) else ""
    ))
    last.tick_params(axis="x", labelrotation=25, labelsize=7)
    last.set_xlabel("night (every recorded night, in order)")
    fig.suptitle(_mpl(scenario), fontsize=11, x=0.01, y=1 - 0.12 / height, ha="left",
                 va="top", fontweight="bold")
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"kvmnl-{index}"}):
        fig.savefig(buf, format="svg", metadata={
            "Creator": None, "Date": None, "Format": None, "Type": None,
        })
    fig.clear()
    svg = buf.getvalue().decode("utf-8")
    svg = svg[svg.index("<svg"):]
    return _add_titles(svg, tips)


# --------------------------------------------------------------------------- the page

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1250px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.86em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;white-space:nowrap}
tr.regression td{background:#fbe3e0}tr.progression td{background:#e4f3e1}
tr.failed td{background:#fbe3e0}tr.refused td{background:#f3e9e4}tr.skipped td{background:#f0f0f0}
figure{margin:1em 0 2em}figure svg{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.88em;color:#444}dl{font-size:.92em}dt{font-weight:600}
dd{margin:0 0 .5em 1.5em}.kpi td:first-child{font-weight:600}.note{color:#555;font-size:.9em}
"""


def _t(x: Any) -> str:
    """A cell's text: the dash when missing or empty."""
    return DASH if _missing(x) or x == "" else str(x)


def _header(h: History, summary: pd.DataFrame, lab: str | None, short_nights: int) -> Grid:
    n = len(h.nights)
    counts = h.outcomes["outcome"].value_counts()
    ch = h.changes
    recent = ch.loc[ch["pos"] >= n - short_nights]
    regressing = int((summary["classification"] == "regression").sum())
    rows = []
    lab_text = _t(lab if lab else (h.lab_hashes[-1] if h.lab_hashes else None))
    if len(h.lab_hashes) > 1 or (lab and h.lab_hashes):
        lab_text += f" (lab hash {h.lab_hashes[-1]}; {len(h.lab_hashes)} distinct over the history)"
    rows.append(("lab", lab_text))
    rows.append(("nights recorded",
                 f"{n} nights" + (f", {h.nights[0]} to {h.nights[-1]}" if n else "")))
    rows.append(("outcomes (nights)", ", ".join(f"{counts.get(o, 0)} {o}" for o in OUTCOMES)))
    if n:
        newest = h.outcomes.iloc[-1]
        text = f"{newest['night']}: {newest['outcome']}"
        if not _missing(newest["reason"]):
            text += f" ({newest['reason']})"
        rows.append(("newest night", text))
    for label, frame in ((f"change points, all {n} nights", ch),
                         (f"change points, last {short_nights} nights", recent)):
        reg = int((frame["direction"] == "regression").sum())
        prog = int((frame["direction"] == "progression").sum())
        rows.append((label, f"{reg} regressions, {prog} progressions"))
    rows.append(("series classified regression (now)",
                 f"{regressing} of {len(summary)} (scenario, metric) series"))
    return Grid(headers=(), rows=[("", [Cell(k), Cell(v)]) for k, v in rows], css="kpi")


def _summary_row(r: Any, unit: str, chart: str) -> tuple[str, list[Cell]]:
    value = num(r.last_value) + ("" if _missing(r.last_sd) else f" ± {num(r.last_sd)}")
    notes = [x for x in (r.short_term_note, r.long_term_note) if not _missing(x)]
    if r.unit != unit:
        notes.insert(0, f"unit {r.unit}")
    return (r.classification if r.classification != "normal" else "", [
        Cell(_t(r.scenario), href=f"#{chart}"), Cell(_t(r.last_night)), Cell(_t(value), True),
        Cell(_t(None if _missing(r.last_n_reps) else int(r.last_n_reps)), True),
        Cell(_t(num(r.trend)), True), Cell(_t(r.trend_since)),
        Cell(str(r.trend_nights), True),
        Cell(_t(_pct_text(r.last_vs_trend_pct)), True),
        Cell(_t(_pct_text(r.short_term_pct)), True), Cell(_t(_pct_text(r.long_term_pct)), True),
        Cell(str(r.regressions), True), Cell(str(r.progressions), True),
        Cell(_t(r.classification)), Cell(_t("; ".join(notes))),
    ])


def _summary_tables(summary: pd.DataFrame, h: History, short_nights: int,
                    long_nights: int) -> list[Any]:
    """A heading and a table per metric, its unit in the headers."""
    out: list[Any] = []
    chart_of = {name: f"chart-{i}" for i, name in enumerate(h.scenarios)}
    for metric, rows in summary.groupby("metric", sort=False):
        unit = str(rows["unit"].iloc[0])
        word = "higher" if rows["better"].iloc[0] > 0 else "lower"
        headers = [
            "scenario", "last night", f"last value ± sd ({unit})", "repetitions (#)",
            f"trend ({unit})", "trend since", "nights in trend (#)", "last vs trend (%)",
            f"short-term change, {short_nights} nights (%)",
            f"long-term change, {long_nights} nights (%)", "regressions (#)",
            "progressions (#)", "classification", "notes",
        ]
        body = [_summary_row(r, unit, chart_of[r.scenario])
                for r in rows.itertuples(index=False)]
        out.append(Heading(f"{_t(metric)} ({_t(unit)}), {word} is better"))
        out.append(Grid(headers, body))
    return out


def _changes_table(h: History) -> Any:
    ch = h.changes.iloc[::-1]
    if ch.empty:
        return Para("No change points detected.")
    headers = ["scenario", "metric", "first night after", "night before", "segment",
               "before → after", "change (%)", "95 % CI of the change (%)", "p-value",
               "q-value", "direction", "alerts", "what differs"]
    rows = []
    for c in ch.itertuples(index=False):
        unit = "" if _missing(c.unit) else str(c.unit)
        ci = DASH if _missing(c.ci_low_pct) or _missing(c.ci_high_pct) else (
            f"{_pct_text(c.ci_low_pct)[:-2]} to {_pct_text(c.ci_high_pct)}"
        )
        css = c.direction if c.direction in ("regression", "progression") else ""
        rows.append((css, [
            Cell(_t(c.scenario)), Cell(_t(c.metric)), Cell(_t(c.night)),
            Cell(_t(c.previous_night)), Cell(_t(c.segment), True),
            Cell(f"{_with_unit(c.before, unit)} → {_with_unit(c.after, unit)}", True),
            Cell(_t(_pct_text(c.change_pct)), True), Cell(ci, True),
            Cell(_t(pvalue(c.p_value)), True), Cell(_t(pvalue(c.q_value)), True),
            Cell(_t(c.direction)), Cell("yes" if c.alerting else "no"), Cell(_t(c.differs)),
        ]))
    return Grid(headers, rows, "Newest first")


def _outliers_table(h: History) -> Any:
    out = h.outliers.iloc[::-1] if h.outliers is not None else pd.DataFrame()
    if out.empty:
        return Para("No outlier nights.")
    headers = ["scenario", "metric", "night", "segment", "local level → night's value",
               "deviation (%)", "robust z", "direction"]
    rows = []
    for o in out.itertuples(index=False):
        unit = "" if _missing(o.unit) else str(o.unit)
        rows.append(("", [
            Cell(_t(o.scenario)), Cell(_t(o.metric)), Cell(_t(o.night)), Cell(_t(o.segment), True),
            Cell(f"{_with_unit(o.before, unit)} → {_with_unit(o.after, unit)}", True),
            Cell(_t(_pct_text(o.change_pct)), True),
            Cell(DASH if _missing(o.outlier_z) else f"{o.outlier_z:+.1f}", True),
            Cell(_t(o.direction)),
        ]))
    return Grid(headers, rows, "Newest first. A lone night far from its neighbours: never a "
                "change point, never an alert")


def _not_run_table(h: History) -> Any:
    nr = h.outcomes.loc[h.outcomes["outcome"] != "done"].iloc[::-1]
    if nr.empty:
        return Para("Every recorded night ran." if len(h.nights) else "No nights.")
    rows = [(str(r.outcome) if r.outcome in NOT_RUN else "", [
        Cell(_t(r.night)), Cell(_t(r.started_at)), Cell(_t(r.campaign_id)),
        Cell(_t(r.outcome)), Cell(_t(r.reason)),
    ]) for r in nr.itertuples(index=False)]
    return Grid(["night", "started at (UTC)", "campaign", "outcome", "reason"], rows,
                "Newest first")


def _segments_table(h: History) -> Any:
    runs = h.segment_runs
    if runs.empty:
        return Para("No segments: no night produced results.")
    rows = [("", [
        Cell(_t(r.segment), True), Cell(_t(r.first_night)), Cell(_t(r.last_night)),
        Cell(_t(r.nights), True), Cell(_t(r.reason)),
    ]) for r in runs.itertuples(index=False)]
    return Grid(["segment", "first night", "last night", "done nights (#)", "why it started"],
                rows)


def _status(h: History) -> list[Para]:
    """Why the page is empty, when it is."""
    if len(h.nights) == 0:
        return [Para("", strong="No nights recorded yet.")]
    if not h.series and (h.outcomes["outcome"] == "done").any():
        return [Para(": the nights that ran recorded no value of any metric.",
                     strong="No values recorded yet")]
    if not h.series:
        return [Para(": every recorded night failed, was skipped or was refused "
                     "(see below).", strong="No night has produced results yet")]
    return []


_SUMMARY_NOTE = (
    "One table per metric, its unit in the headers. Rows classified regression are red, "
    "progression green. The statistics are defined at the end of the page."
)
_CHARTS_NOTE = (
    "One chart per scenario, one panel per metric, over every recorded night. Blue dots: "
    "night values, with ± 1 sd bars. Orange: the trend (each run's mean between change "
    "points). Diamonds: change points at the level after the change (red regression, green "
    "progression) with a dotted line before the first night after. Grey vertical lines: "
    "segment boundaries, labelled with their reason. Markers at the bottom: nights that did "
    "not run (red cross failed, brown square refused, grey dot skipped). Hover a marker or "
    "line for its night, value or reason."
)


def _charts(h: History) -> list[Any]:
    if not h.series:
        return [Para("No values: no charts.")]
    out: list[Any] = [Para(_CHARTS_NOTE, css="note")]
    for i, scenario in enumerate(h.scenarios):
        series = [s for s in h.series if s.scenario == scenario]
        caption = f"{scenario}: " + ", ".join(f"{s.metric} ({s.unit})" for s in series)
        out.append(Svg(_scenario_svg(i, scenario, series, h), caption, anchor=f"chart-{i}"))
    return out


def _sections(h: History, summary: pd.DataFrame, *, lab: str | None, short_nights: int,
              long_nights: int, p_value: float, min_segment: int,
              fdr: float = changepoints.DEFAULT_FDR) -> list[Section]:
    if summary.empty:
        trend_summary_blocks: list[Any] = [Para("No values: nothing to summarise.")]
    else:
        trend_summary_blocks = [Para(_SUMMARY_NOTE, css="note"),
                                *_summary_tables(summary, h, short_nights, long_nights)]
    settings = {"short_nights": short_nights, "long_nights": long_nights,
                "p_value": p_value, "min_segment": min_segment, "fdr": fdr,
                "key_metrics": ", ".join(sorted(changepoints.KEY_METRICS))}
    return [
        Section("", [_header(h, summary, lab, short_nights), *_status(h)]),
        Section("Trend summary", trend_summary_blocks),
        Section("Trend charts", _charts(h)),
        Section("Change points", [_changes_table(h)]),
        Section("Outlier nights", [_outliers_table(h)]),
        Section("Nights that did not run", [_not_run_table(h)]),
        Section("Segments", [_segments_table(h)]),
        Section("Definitions", [definitions.define(definitions.DASHBOARD, settings,
                                                   definitions.DASHBOARD_TERMS)]),
    ]


def render_dashboard(
    catalog: pd.DataFrame,
    segments: pd.DataFrame,
    changes: pd.DataFrame,
    out_path: str | os.PathLike[str],
    *,
    title: str = "kvmnetlab nightly trends",
    short_nights: int = 7,
    long_nights: int = 90,
    p_value: float = changepoints.DEFAULT_P_VALUE,
    min_segment: int = changepoints.DEFAULT_MIN_SEGMENT,
    lab: str | None = None,
    fdr: float = changepoints.DEFAULT_FDR,
) -> Path:
    """Write the trend dashboard to ``out_path`` (one self-contained HTML file); return it.

    ``p_value``, ``min_segment`` and ``fdr`` are the change-point detector's settings,
    printed in the definitions; pass the ones the change points were found
    with. ``lab`` names the lab in the header (default: the newest lab hash).
    The page holds no script and fetches nothing: the charts are inline SVG.
    """
    check_windows(short_nights, long_nights)
    short_nights, long_nights = int(short_nights), int(long_nights)
    h = prepare(catalog, segments, changes)
    summary = summarise(h, short_nights, long_nights)
    sections = _sections(h, summary, lab=lab, short_nights=short_nights,
                         long_nights=long_nights, p_value=p_value, min_segment=min_segment,
                         fdr=fdr)
    path = Path(out_path)
    page = to_html(title, sections, path.parent, css=_CSS, viewport=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


# The trend computation's names, as the dashboard offered them before it moved.
__all__ = [
    "CATALOG_COLUMNS", "CHANGE_COLUMNS", "CLASSES", "NOT_RUN", "OUTCOMES", "SEGMENT_COLUMNS",
    "SUMMARY_COLUMNS", "better", "num", "render_dashboard", "trend_summary",
]
