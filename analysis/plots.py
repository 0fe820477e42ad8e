"""Plotting: figures drawn from the statistics' DataFrames, never from raw files.

Uses matplotlib's object API on the Agg canvas (no pyplot, no global state),
so figures can be built in any process, headless. Each ``plot_*`` function
returns a :class:`~matplotlib.figure.Figure`; :func:`save` writes PNG and SVG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

RTT_LABEL = "RTT (µs)"
_PALETTE = matplotlib.colormaps["tab10"].colors


def scenario_colors(order: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per scenario, by its place in the campaign, so all figures agree."""
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(order)}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _plain_log(axis: Any) -> None:
    """Log axis labelled 1, 10, 100 rather than 10^0, 10^1; 2 and 5 too when it spans little."""
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    low, high = axis.get_view_interval()
    if low > 0 and high / low <= 300:
        axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        axis.set_minor_formatter(NullFormatter())


def wants_log_scale(low: Sequence[float], high: Sequence[float], ratio: float = 20.0) -> bool:
    """True when the values span more than ``ratio`` (a linear axis would flatten the low end)."""
    lo = min((v for v in low if v > 0), default=math.nan)
    hi = max(high, default=math.nan)
    return bool(lo > 0 and hi / lo > ratio)


def plot_distributions(
    box: pd.DataFrame,
    *,
    colors: dict[str, tuple[float, float, float]],
    title: str,
    log_y: bool = False,
) -> Figure:
    """Figure 1: one box per scenario, in campaign order.

    ``box`` has one row per scenario with columns scenario, label, n, mean_us,
    p1_us, p25_us, p50_us, p75_us, p99_us (NaN where the scenario has no data,
    which is then shown as an empty, labelled slot): box = p25..p75,
    line = median, whiskers = p1..p99, diamond = mean.
    """
    fig = _figure(max(6.4, 1.5 * len(box) + 3.0), 4.8)
    ax = fig.add_subplot()
    present = box.loc[box["n"] > 0]
    positions = [i for i, n in enumerate(box["n"], start=1) if n > 0]
    stats = [
        {
            "med": r.p50_us, "q1": r.p25_us, "q3": r.p75_us, "whislo": r.p1_us,
            "whishi": r.p99_us, "mean": r.mean_us, "fliers": [],
        }
        for r in present.itertuples()
    ]
    if stats:
        parts = ax.bxp(
            stats, positions=positions, showmeans=True, showfliers=False, patch_artist=True,
            widths=0.55, manage_ticks=False,
            meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black",
                       "markersize": 7},
            medianprops={"color": "black", "linewidth": 2},
        )
        for patch, name in zip(parts["boxes"], present["scenario"], strict=True):
            patch.set_facecolor(colors[name])
            patch.set_alpha(0.75)
        for i, r in zip(positions, present.itertuples(), strict=True):
            ax.annotate(
                f"mean {r.mean_us:.3g}", (i + 0.3, r.mean_us), va="center", fontsize=8,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none",
                      "alpha": 0.8},
            )
    for i, n in enumerate(box["n"], start=1):
        if not n > 0:
            ax.text(i, 0.5, "no data", ha="center", va="center", color="grey", rotation=90,
                    transform=ax.get_xaxis_transform())
    ax.set_xticks(range(1, len(box) + 1), box["label"])
    ax.set_xlim(0.4, len(box) + 0.8)
    if log_y:
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
    ax.set_ylabel(RTT_LABEL + (" — log scale" if log_y else ""))
    ax.set_xlabel("scenario")
    ax.set_title(title)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(
        handles=[
            Patch(facecolor="lightgrey", edgecolor="black", label="p25-p75 (box)"),
            Line2D([], [], color="black", linewidth=2, label="median"),
            Line2D([], [], marker="D", color="black", markerfacecolor="white", linestyle="",
                   label="mean"),
            Line2D([], [], color="black", linewidth=1, label="whiskers: p1 and p99"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
    )
    return fig


def plot_cdf(
    points: pd.DataFrame,
    *,
    order: Sequence[str],
    colors: dict[str, tuple[float, float, float]],
    title: str,
    log_x: bool = False,
    threshold: tuple[str, float] | None = None,
) -> Figure:
    """Figure 2: the empirical CDF of every scenario on one axis.

    ``points`` has columns scenario, rtt_us, cum_prob (from stats.ecdf_points).
    ``threshold`` (label, µs) draws a vertical reference line, e.g. the
    baseline's percentile that closeness is measured against.
    """
    fig = _figure(9.0, 4.8)
    ax = fig.add_subplot()
    present = [name for name in order if (points["scenario"] == name).any()]
    for name in order:
        if name not in present:  # keep its place in the legend
            ax.plot([], [], color=colors[name], linestyle=":", label=f"{name} (no data)")
            continue
        p = points.loc[points["scenario"] == name]
        x = np.concatenate(([p["rtt_us"].iloc[0]], p["rtt_us"].to_numpy()))
        y = np.concatenate(([0.0], p["cum_prob"].to_numpy()))
        # Later curves are drawn thinner, so one lying on an earlier one leaves it visible.
        width = 3.2 - 1.8 * present.index(name) / max(1, len(present) - 1)
        ax.step(x, y, where="post", color=colors[name], linewidth=width, label=name)
    if threshold is not None:
        label, value = threshold
        ax.axvline(value, color="grey", linestyle="--", linewidth=1, label=label)
    if log_x:
        ax.set_xscale("log")
        _plain_log(ax.xaxis)
    ax.set_xlabel(RTT_LABEL + (" — log scale" if log_x else ""))
    ax.set_ylabel("cumulative probability P(RTT ≤ x)")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(which="both", alpha=0.3)
    if order:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    if not present:
        ax.text(0.5, 0.5, "no RTT data", ha="center", va="center", transform=ax.transAxes)
    return fig


_BLOCK_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def plot_repetitions(
    reps: pd.DataFrame,
    typical: pd.DataFrame,
    *,
    order: Sequence[str],
    colors: dict[str, tuple[float, float, float]],
    title: str,
    log_y: bool = False,
) -> Figure:
    """Figure 5: every repetition's median RTT, by scenario, marked by block.

    ``reps`` has columns scenario, repetition, block (nullable) and median_us;
    ``typical`` has scenario, estimate_us, t_low_us, t_high_us (the typical
    median and its interval over repetitions), drawn as a bar with error bars
    beside the points. Points of one block share a marker, so drift common to
    a block shows as markers moving together.
    """
    fig = _figure(max(6.4, 1.4 * len(order) + 3.5), 4.8)
    ax = fig.add_subplot()
    blocks = sorted({int(b) for b in reps["block"].dropna()}) if "block" in reps else []
    for i, name in enumerate(order, start=1):
        r = reps.loc[reps["scenario"] == name]
        t = typical.loc[typical["scenario"] == name]
        if r.empty:
            ax.text(i, 0.5, "no data", ha="center", va="center", color="grey", rotation=90,
                    transform=ax.get_xaxis_transform())
            continue
        if not t.empty and np.isfinite(t["estimate_us"].iloc[0]):
            est = float(t["estimate_us"].iloc[0])
            low, high = float(t["t_low_us"].iloc[0]), float(t["t_high_us"].iloc[0])
            if np.isfinite(low) and np.isfinite(high):
                ax.errorbar([i + 0.22], [est], yerr=[[est - low], [high - est]], color="black",
                            capsize=4, marker="_", markersize=14, linewidth=1.2)
            else:
                ax.plot([i + 0.22], [est], color="black", marker="_", markersize=14)
        n = len(r)
        offsets = np.linspace(-0.18, 0.05, n) if n > 1 else np.zeros(1)
        for off, row in zip(offsets, r.itertuples(), strict=True):
            b = row.block
            marker = _BLOCK_MARKERS[(int(b) - 1) % len(_BLOCK_MARKERS)] if pd.notna(b) else "o"
            ax.plot([i + off], [row.median_us], marker=marker, linestyle="",
                    color=colors[name], markeredgecolor="black", markersize=7)
    ax.set_xticks(range(1, len(order) + 1), list(order), rotation=20, ha="right")
    ax.set_xlim(0.4, len(order) + 0.7)
    if log_y:
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
    ax.set_ylabel("repetition median " + RTT_LABEL + (" — log scale" if log_y else ""))
    ax.set_xlabel("scenario")
    ax.set_title(title)
    ax.grid(axis="y", which="both", alpha=0.3)
    handles = [Line2D([], [], marker=_BLOCK_MARKERS[(b - 1) % len(_BLOCK_MARKERS)],
                      linestyle="", color="grey", markeredgecolor="black", label=f"block {b}")
               for b in blocks]
    if not blocks:
        handles.append(Line2D([], [], marker="o", linestyle="", color="grey",
                              markeredgecolor="black", label="a repetition (no blocks)"))
    handles.append(Line2D([], [], color="black", marker="_", markersize=14,
                          label="typical median, t CI over repetitions"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return fig


def plot_costs(
    costs: pd.DataFrame, *, colors: dict[str, tuple[float, float, float]], title: str
) -> Figure:
    """Per-packet costs: one panel per metric, a bar per scenario (mean), min-max as error bars.

    ``costs`` is tables.costs_table(by_host=False) (rows with no metric are skipped).
    """
    data = costs.dropna(subset=["metric"])
    metrics = list(dict.fromkeys(data["metric"]))
    fig = _figure(max(6.4, 3.6 * len(metrics)), 4.2)
    if not metrics:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no per-packet costs", ha="center", va="center")
        return fig
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        m = data.loc[data["metric"] == metric]
        x = np.arange(len(m))
        err = np.vstack((m["mean"] - m["min"], m["max"] - m["mean"]))
        bars = ax.bar(x, m["mean"], color=[colors[s] for s in m["scenario"]], yerr=err,
                      capsize=4)
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in m["mean"]], padding=2, fontsize=8)
        ax.set_xticks(x, m["scenario"], rotation=30, ha="right")
        units = ", ".join(dict.fromkeys(m["unit"]))
        ax.set_ylabel(units)
        ax.margins(y=0.12)
        ax.set_title(metric, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    return fig


def plot_trend(
    trend: pd.DataFrame, *, colors: dict[str, tuple[float, float, float]], title: str
) -> Figure:
    """Campaign trend: median RTT (with its bootstrap CI) and loss per campaign, per scenario.

    ``trend`` has columns campaign, scenario, median_us, ci_low_us, ci_high_us,
    loss_pct, median_regressed and loss_regressed; campaigns are drawn in the
    order they first appear. A regressed point is ringed in red.
    """
    campaigns = list(dict.fromkeys(trend["campaign"]))
    xpos = {c: i for i, c in enumerate(campaigns)}
    fig = _figure(max(7.5, 1.2 * len(campaigns) + 5.5), 6.4)
    top, bottom = fig.subplots(2, 1, sharex=True)
    names = list(dict.fromkeys(trend["scenario"]))
    handles: list[Any] = []
    ring = {"marker": "o", "markersize": 14, "markerfacecolor": "none", "markeredgecolor": "red",
            "markeredgewidth": 2, "linestyle": ""}
    for k, name in enumerate(names):
        t = trend.loc[trend["scenario"] == name]
        color = colors.get(name, "black")
        if t["median_us"].isna().all() and t["loss_pct"].isna().all():
            handles.append(Line2D([], [], color=color, linestyle=":", label=f"{name} (no data)"))
            continue
        # a small sideways offset per scenario keeps overlapping error bars apart
        x = t["campaign"].map(xpos).to_numpy() + (k - (len(names) - 1) / 2) * 0.03
        yerr = np.vstack((t["median_us"] - t["ci_low_us"], t["ci_high_us"] - t["median_us"]))
        handles.append(
            top.errorbar(x, t["median_us"], yerr=yerr, marker="o", capsize=3, color=color,
                         label=name)
        )
        bottom.plot(x, t["loss_pct"], marker="s", color=color)
        bad = t["median_regressed"].to_numpy(dtype=bool)
        top.plot(x[bad], t["median_us"].to_numpy()[bad], **ring)
        bad = t["loss_regressed"].to_numpy(dtype=bool)
        bottom.plot(x[bad], t["loss_pct"].to_numpy()[bad], **ring)
    if trend[["median_regressed", "loss_regressed"]].to_numpy(dtype=bool).any():
        handles.append(Line2D([], [], label="regressed", **ring))
    top.set_ylabel("median " + RTT_LABEL)
    if wants_log_scale(trend["ci_low_us"].dropna(), trend["ci_high_us"].dropna()):
        top.set_yscale("log")
        _plain_log(top.yaxis)
        top.set_ylabel("median " + RTT_LABEL + " — log scale")
    bottom.set_ylabel("loss (%)")
    bottom.set_xlabel("campaign (oldest → newest)")
    bottom.set_xticks(range(len(campaigns)), campaigns, rotation=20, ha="right")
    bottom.set_xlim(-0.5, len(campaigns) - 0.5)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    top.set_title(title)
    return fig


_PHASE_MARKERS = {"search": "o", "validation": "s"}


def plot_search_trials(
    points: pd.DataFrame,
    results: pd.DataFrame,
    *,
    order: Sequence[str],
    colors: dict[str, tuple[float, float, float]],
    title: str,
    pdr_ratio: float | None = None,
) -> Figure:
    """Figure 6: loss (%) against offered load (kframes/s, log x), one marker per trial.

    ``points`` is throughput.trial_points (the valid search and validation trials:
    scenario, phase, offered_kpps, loss_pct); ``results`` is throughput.search_results
    (scenario, repetition, rate NDR/PDR, pps): each repetition's NDR is marked by a
    dotted and its PDR by a dashed vertical line in the scenario's colour. The loss
    axis is linear up to 0.1 % and logarithmic above (symlog), so that 0, the PDR
    ratio (grey line) and heavy loss are all visible on one axis, 0 to 100 %.
    """
    fig = _figure(9.0, 4.8)
    ax = fig.add_subplot()
    handles: list[Any] = []
    for name in order:
        p = points.loc[points["scenario"] == name]
        r = results.loc[(results["scenario"] == name) & results["pps"].notna()]
        if p.empty and r.empty:
            continue
        color = colors.get(name, "black")
        for phase, marker in _PHASE_MARKERS.items():
            q = p.loc[p["phase"] == phase]
            ax.plot(q["offered_kpps"], q["loss_pct"], marker=marker, linestyle="",
                    color=color, markeredgecolor="black", markersize=6, alpha=0.8)
        for rate, style in (("NDR", ":"), ("PDR", "--")):
            for value in r.loc[r["rate"] == rate, "pps"]:
                ax.axvline(value / 1e3, color=color, linestyle=style, linewidth=1.2, alpha=0.8)
        handles.append(Patch(facecolor=color, edgecolor="black", label=name))
    if pdr_ratio is not None:
        ax.axhline(100 * pdr_ratio, color="grey", linewidth=1)
        handles.append(Line2D([], [], color="grey", label=f"PDR ratio ({100 * pdr_ratio:g} %)"))
    handles += [
        Line2D([], [], marker="o", linestyle="", color="grey", markeredgecolor="black",
               label="search trial"),
        Line2D([], [], marker="s", linestyle="", color="grey", markeredgecolor="black",
               label="validation trial"),
        Line2D([], [], color="black", linestyle=":", label="NDR of a repetition"),
        Line2D([], [], color="black", linestyle="--", label="PDR of a repetition"),
    ]
    ax.set_xscale("log")
    _plain_log(ax.xaxis)
    ax.set_yscale("symlog", linthresh=0.1, linscale=0.5)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylim(-0.01, 120)  # the whole range of a loss, the same in every campaign
    ax.set_xlabel("offered load (kframes/s) — log scale")
    ax.set_ylabel("loss (%) — linear to 0.1, log above")
    ax.set_title(title)
    ax.grid(which="both", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    if points.empty:
        ax.text(0.5, 0.5, "no valid trial", ha="center", va="center", transform=ax.transAxes)
    return fig


def plot_latency_under_load(
    latency: pd.DataFrame,
    *,
    order: Sequence[str],
    colors: dict[str, tuple[float, float, float]],
    title: str,
    log_y: bool = False,
) -> Figure:
    """Figure 7: RTT p50 (solid) and p99 (dashed) against the load, in % of the PDR (0:
    idle, the seed's ping), one pair of lines per scenario, with the t intervals over
    repetitions as error bars.

    ``latency`` is throughput.latency_under_load (scenario, fraction, p50_us,
    p50_ci_low_us, p50_ci_high_us, p99_us, p99_ci_low_us, p99_ci_high_us).
    """
    fig = _figure(9.0, 4.8)
    ax = fig.add_subplot()
    handles: list[Any] = []
    present = [n for n in order if (latency["scenario"] == n).any()]
    for k, name in enumerate(present):
        t = latency.loc[latency["scenario"] == name].sort_values("fraction")
        color = colors.get(name, "black")
        # a small sideways offset per scenario keeps overlapping error bars apart
        x = 100 * t["fraction"].to_numpy(dtype=float) + (k - (len(present) - 1) / 2) * 0.6
        for stat, style, marker in (("p50", "-", "o"), ("p99", "--", "s")):
            y = t[f"{stat}_us"].to_numpy(dtype=float)
            low = t[f"{stat}_ci_low_us"].to_numpy(dtype=float)
            high = t[f"{stat}_ci_high_us"].to_numpy(dtype=float)
            err = np.vstack((np.where(np.isfinite(low), y - low, 0.0),
                             np.where(np.isfinite(high), high - y, 0.0)))
            if log_y:  # a lower end at or below 0 cannot be drawn on a log axis
                err[0] = np.minimum(err[0], np.where(y > 0, y * 0.999, 0.0))
            ax.errorbar(x, y, yerr=err, color=color, linestyle=style, marker=marker,
                        markersize=5, capsize=3, linewidth=1.5)
        handles.append(Patch(facecolor=color, edgecolor="black", label=name))
    handles += [Line2D([], [], color="black", marker="o", label="p50 (median)"),
                Line2D([], [], color="black", linestyle="--", marker="s", label="p99")]
    if log_y:
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
    ax.set_xlabel("load (% of the PDR; 0 = idle, no generated load)")
    ax.set_ylabel(RTT_LABEL + (" — log scale" if log_y else ""))
    ax.set_xlim(-5, 105)
    ax.set_title(title)
    ax.grid(which="both", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    if not present:
        ax.text(0.5, 0.5, "no RTT under load", ha="center", va="center",
                transform=ax.transAxes)
    return fig


def _against_n(ax: Any, summary: pd.DataFrame, metric: str, *, colors: dict[str, Any],
               style: str = "-", marker: str = "o", label: str = "") -> list[Any]:
    """One line per series of ``summary`` (competing.scenario_summary): ``metric`` against
    N (each series moved sideways by a few hundredths of N, so that their error bars do not
    hide each other), with its t interval over repetitions as error bars; the legend
    handles."""
    handles = []
    names = list(colors)
    for series, t in summary.groupby("series", sort=False):
        t = t.sort_values("n")
        # a small sideways offset per series keeps overlapping error bars apart
        shift = (names.index(series) - (len(names) - 1) / 2) * 0.06
        y = t[metric].to_numpy(dtype=float)
        if not np.isfinite(y).any():
            continue
        low = t[f"{metric}_ci_low"].to_numpy(dtype=float)
        high = t[f"{metric}_ci_high"].to_numpy(dtype=float)
        err = np.vstack((np.where(np.isfinite(low), y - low, 0.0),
                         np.where(np.isfinite(high), high - y, 0.0)))
        ax.errorbar(t["n"].to_numpy(dtype=float) + shift, y, yerr=err, color=colors[series],
                    linestyle=style, marker=marker, markersize=5, capsize=3, linewidth=1.5)
        handles.append(Line2D([], [], color=colors[series], linestyle=style, marker=marker,
                              label=f"{series}{label}"))
    return handles


def _reference_line(ax: Any, value: float, style: str, label: str) -> list[Any]:
    if not np.isfinite(value):
        return []
    ax.axhline(value, color="grey", linestyle=style, linewidth=1.2)
    return [Line2D([], [], color="grey", linestyle=style, label=label)]


def _n_axis(ax: Any, summary: pd.DataFrame) -> None:
    ns = sorted({int(n) for n in summary["n"]}) or [1]
    ax.set_xticks(ns)
    ax.set_xlim(min(ns) - 0.5, max(ns) + 0.5)
    ax.set_xlabel("N (guests or containers receiving a flow at once)")
    ax.grid(which="both", alpha=0.3)


def series_colors(series: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per series of the competing figures, in their order."""
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(series)}


def plot_competing(summary: pd.DataFrame, reference: pd.DataFrame, *, title: str,
                   log_y: bool = False) -> Figure:
    """Figure 8: RTT p50 (solid) and p99 (dashed) against N (left) and the loss at the
    fixed offered rate against N (right), one line per series (guests, containers), the
    t intervals over repetitions as error bars; the bare-metal reference as grey
    horizontal lines.

    ``summary`` and ``reference`` are competing.scenario_summary rows (``reference``:
    none or one, the bare-metal scenario).
    """
    fig = _figure(11.0, 4.6)
    rtt_ax, loss_ax = fig.subplots(1, 2)
    colors = series_colors(list(dict.fromkeys(summary["series"])))
    handles = _against_n(rtt_ax, summary, "rtt_p50_us", colors=colors, label=", p50")
    handles += _against_n(rtt_ax, summary, "rtt_p99_us", colors=colors, style="--",
                          marker="s", label=", p99")
    loss = _against_n(loss_ax, summary, "loss_pct", colors=colors)
    if not reference.empty:
        ref = reference.iloc[0]
        handles += _reference_line(rtt_ax, float(ref["rtt_p50_us"]), "-",
                                   f"bare metal ({ref['scenario']}), p50")
        handles += _reference_line(rtt_ax, float(ref["rtt_p99_us"]), "--",
                                   f"bare metal ({ref['scenario']}), p99")
        loss += _reference_line(loss_ax, float(ref["loss_pct"]), "-",
                                f"bare metal ({ref['scenario']})")
    if log_y:
        rtt_ax.set_yscale("log")
        _plain_log(rtt_ax.yaxis)
    rtt_ax.set_ylabel("RTT per repetition: median over its flows (µs)"
                      + (" — log scale" if log_y else ""))
    rtt_ax.set_title("RTT p50 and p99")
    loss_ax.set_ylabel("loss per repetition, all flows (%)")
    loss_ax.set_title("loss at the fixed offered rate")
    for ax, h in ((rtt_ax, handles), (loss_ax, loss)):
        _n_axis(ax, summary)
        if h:
            ax.legend(handles=h, fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    return fig


def plot_competing_cpu(summary: pd.DataFrame, reference: pd.DataFrame, *,
                       title: str) -> Figure:
    """Figure 9: CPU per frame sent against N, one line per series: the hypervisor's host
    CPU (solid), and the guests' QEMU threads or the containers' cgroups (dotted), the t
    intervals over repetitions as error bars; the bare-metal reference's host CPU as a
    grey horizontal line."""
    fig = _figure(9.0, 4.8)
    ax = fig.add_subplot()
    colors = series_colors(list(dict.fromkeys(summary["series"])))
    handles = _against_n(ax, summary, "host_cpu_us_per_frame", colors=colors,
                         label=": host CPU")
    handles += _against_n(ax, summary, "qemu_cpu_us_per_frame", colors=colors, style=":",
                          marker="^", label=": QEMU threads")
    handles += _against_n(ax, summary, "container_cpu_us_per_frame", colors=colors,
                          style=":", marker="v", label=": containers' cgroups")
    if not reference.empty:
        ref = reference.iloc[0]
        handles += _reference_line(ax, float(ref["host_cpu_us_per_frame"]), "-",
                                   f"bare metal ({ref['scenario']}): host CPU")
    ax.set_ylabel("CPU per frame sent, all flows (µs of CPU per frame)")
    _n_axis(ax, summary)
    ax.set_title(title)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    else:
        ax.text(0.5, 0.5, "no per-packet costs", ha="center", va="center",
                transform=ax.transAxes)
    return fig


def save(fig: Figure, directory: Path, name: str) -> dict[str, Path]:
    """Write ``name``.png (150 dpi) and ``name``.svg into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext in ("png", "svg"):
        path = directory / f"{name}.{ext}"
        fig.savefig(path, dpi=150, metadata={"Date": None} if ext == "svg" else None)
        paths[ext] = path
    return paths
