"""The report's throughput section: NDR/PDR (Table 3), the generator's calibration
(Table 4), the search's trials (Figure 6) and RTT under load (Table 5, Figure 7).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis import plots, tables
from analysis import throughput as search
from analysis.document import (
    Image,
    Para,
    Section,
    Table,
    integer,
    num,
    text,
    whole,
)
from analysis.load import Campaign
from analysis.report_context import Context
from analysis.report_evidence import status_cols

# --------------------------------------------------------------------------- throughput

THROUGHPUT_TITLE = "Throughput (NDR/PDR) and latency under load"


def _search_settings(c: Campaign) -> dict[str, Any]:
    """The search's settings: from its table where each search recorded them, else from
    the campaign parameters (None when neither has them: an older campaign)."""
    p, t = c.parameters, c.throughput
    out = {name: p.get(f"search_{name}") for name in (
        "min_pps", "max_pps", "granularity", "pdr_ratio", "trial_s", "validation_s",
        "validations", "max_trials", "tolerance", "load_s", "load_fractions")}
    if t is not None and not t.empty:
        out.update(min_pps=float(t["min_pps"].min()), max_pps=float(t["max_pps"].max()),
                   granularity=float(t["granularity"].iloc[0]),
                   pdr_ratio=float(t["pdr_loss_ratio"].iloc[0]))
    return out


def _setting(value: Any, fmt: str = "{:g}") -> str:
    if value is None:
        return "not recorded"
    if isinstance(value, list | tuple):
        return ", ".join(fmt.format(v) for v in value)
    return fmt.format(value)


def _settings_text(s: dict[str, Any]) -> str:
    """The search's settings in words, those the campaign recorded."""
    parts = []
    if s["min_pps"] is not None and s["max_pps"] is not None:
        parts.append(f"offered rates from {s['min_pps']:g} to {s['max_pps']:g} frames/s")
    if s["granularity"] is not None:
        parts.append(f"resolved to a relative width of {s['granularity']:g}")
    if s["trial_s"] is not None:
        parts.append(f"trials of {s['trial_s']:g} s")
    if s["validations"] is not None:
        parts.append(f"{s['validations']} validation trial(s)"
                     + (f" of {s['validation_s']:g} s" if s["validation_s"] is not None
                        else "") + " at each rate found")
    if s["max_trials"] is not None:
        parts.append(f"at most {s['max_trials']} trials per search")
    if s["tolerance"] is not None:
        parts.append(f"generator tolerance {100 * s['tolerance']:g} %")
    return ", ".join(parts) if parts else "settings not recorded"


def ndr_pdr(ctx: Context) -> pd.DataFrame | None:
    """Table 3 (with its texts); None when the campaign ran no throughput search."""
    c = ctx.campaign
    if c.throughput is None and c.search_trials is None:
        return None
    return search.ndr_pdr_display(search.ndr_pdr_table(c.scenarios, c.throughput,
                                                      ctx.options.confidence))


def throughput_section(ctx: Context, table: pd.DataFrame | None) -> Section:
    c, o = ctx.campaign, ctx.options
    if table is None:
        return Section(THROUGHPUT_TITLE, [Para(
            "No throughput search in this campaign (data/throughput.parquet and "
            "data/search_trials.parquet absent or empty).")])
    level = f"{100 * o.confidence:g} %"
    s = _search_settings(c)
    pdr_pct = f"{100 * s['pdr_ratio']:g} %" if s["pdr_ratio"] is not None else "the PDR ratio"
    tolerance = (f"{100 * s['tolerance']:g} %" if s["tolerance"] is not None
                 else "the tolerance")
    results = search.search_results(c.throughput)
    ctx.csv(results, "throughput_repetitions")
    blocks: list[Any] = [
        Para(
            "A binary search per scenario and repetition, run after the counter window (so "
            "it never overlaps the load whose per-packet costs Table 1's rate measures), "
            "with the same flow, tools and frame size as Table 1's rate (backend): "
            + _settings_text(s) + ". Every search's value: tables/throughput_repetitions.csv."),
        Table(
            table,
            [*status_cols(), ("frame_bytes", "frame (bytes)", whole),
             ("backend", "backend", text), ("rate", "rate", text),
             ("searches", "searches", integer), ("with_result", "n (with a rate)", integer),
             ("mean_kpps_text", "mean (kframes/s)", text),
             ("ci_kpps_text", f"{level} CI (kframes/s)", text),
             ("mean_mbps_text", "mean (Mbit/s)", text),
             ("ci_mbps_text", f"{level} CI (Mbit/s)", text),
             ("excluded", "left out", text), ("statuses", "how the searches ended", text),
             ("per_repetition", "per repetition (kframes/s)", text)],
            f"Table 3: NDR and PDR (≤ {pdr_pct} loss) per scenario, mean over repetitions",
            ctx.csv(table.drop(columns=["mean_kpps_text", "ci_kpps_text", "mean_mbps_text",
                                        "ci_mbps_text"]), "throughput_ndr_pdr"),
        ),
        ctx.define(
            "search.ndr_no_drop_rate",
            "search.pdr_partial_drop_rate",
            "search.valid_trial",
            "search.mean",
            "search.level_ci",
            "search.kframes_s_mbit_s",
            "search.at_least",
            "search.below_min_left_out",
            granularity=_setting(s['granularity']),
            pdr_pct=pdr_pct,
            tolerance=tolerance,
        ),
    ]
    calibration = search.generator_calibration(c.search_trials, c.throughput)
    if not calibration.empty:
        blocks += [
            Table(
                calibration,
                [("host", "sending host", text), ("backend", "backend", text),
                 ("frame_bytes", "frame (bytes)", whole), ("searches", "searches", integer),
                 ("trials", "trials", integer), ("invalid", "invalid", integer),
                 ("fell_short", "fell short", integer), ("overshot", "overshot", integer),
                 ("other_invalid", "other invalid", integer),
                 ("max_achieved_pps", "max achieved (frames/s)", num),
                 ("generator_max_pps", "limit learned (frames/s)", num),
                 ("searches_limited", "searches limited", integer)],
                "Table 4: generator calibration, per sending host",
                ctx.csv(calibration, "throughput_generator"),
            ),
            ctx.define(
                "search.max_achieved",
                "search.fell_short_overshot",
                "search.other_invalid",
                "search.limit_learned",
                "search.searches_limited",
                tolerance=tolerance,
            ),
        ]
    points = search.trial_points(c.search_trials)
    blocks.append(_trial_figure(ctx, points, results, s["pdr_ratio"]))
    blocks += _latency_blocks(ctx, s, level)
    return Section(THROUGHPUT_TITLE, blocks)


def _trial_figure(ctx: Context, points: pd.DataFrame, results: pd.DataFrame,
                  pdr_ratio: float | None) -> Image:
    c = ctx.campaign
    invalid = 0
    if c.search_trials is not None:
        t = c.search_trials
        invalid = int((~t["valid"].astype(bool) & (t["phase"].astype(str) != "load")).sum())
    fig = plots.plot_search_trials(
        points, results, order=c.scenario_order, colors=ctx.colors, pdr_ratio=pdr_ratio,
        title=f"Figure 6 — loss against offered load, every valid trial\n"
              f"campaign {c.campaign_id}")
    csv = ctx.csv(points, "figure6_search_trials")
    return ctx.figure(
        fig, "figure6_search_trials",
        "Figure 6: loss (%) of every valid search (circle) and validation (square) trial "
        "against its offered rate (kframes/s, log scale), all repetitions, coloured by "
        "scenario; dotted lines: each repetition's NDR, dashed: its PDR; grey: the PDR "
        f"ratio. The loss axis is linear below 0.1 % and logarithmic above. {invalid} invalid "
        f"trial(s) are not drawn (no loss is measured on them). Points: tables/{csv}.csv.")


def _latency_blocks(ctx: Context, s: dict[str, Any], level: str) -> list[Any]:
    c, o = ctx.campaign, ctx.options
    if c.rtt_load is None:
        return [Para("RTT under load (data/rtt_load.parquet): not collected in this campaign "
                     "(its searches did not probe RTT under load).")]
    idle_loss = tables.ping_loss_per_repetition(c.ping_summary)
    latency = search.latency_under_load(c.scenarios, c.rtt_load, ctx.result.reps, idle_loss,
                                        o.confidence)
    shown = latency.assign(
        load=["idle (the seed's ping)" if f == 0 else f"{100 * f:g} % of the PDR"
              for f in latency["fraction"]],
        p50_ci=[search.interval_text(lo, hi) for lo, hi in
                zip(latency["p50_ci_low_us"], latency["p50_ci_high_us"], strict=True)],
        p99_ci=[search.interval_text(lo, hi) for lo, hi in
                zip(latency["p99_ci_low_us"], latency["p99_ci_high_us"], strict=True)])
    excluded = int(latency["excluded_invalid"].sum())
    log_y = plots.wants_log_scale(latency["p50_us"].dropna(), latency["p99_us"].dropna())
    fig = plots.plot_latency_under_load(
        latency, order=c.scenario_order, colors=ctx.colors, log_y=log_y,
        title=f"Figure 7 — RTT under load, mean of the repetitions' percentiles\n"
              f"campaign {c.campaign_id}")
    return [
        Table(
            shown,
            [("scenario", "scenario", text), ("load", "load", text),
             ("repetitions", "n (reps)", integer),
             ("excluded_invalid", "invalid load points left out", integer),
             ("offered_kpps", "offered (kframes/s)", num), ("p50_us", "RTT p50 (µs)", num),
             ("p50_ci", f"{level} CI (µs)", text), ("p99_us", "RTT p99 (µs)", num),
             ("p99_ci", f"{level} CI (µs)", text), ("loss_pct", "probe loss (%)", num)],
            "Table 5: RTT under load per scenario and load (fraction of the PDR)",
            ctx.csv(latency, "throughput_rtt_load"),
        ),
        ctx.define(
            "load.latency_under_load",
            "load.invalid_load_points_left_out",
            "load.rtt_p50_p99",
            "load.offered",
            "load.probe_loss",
            ping_interval=_setting(c.parameters.get('ping_interval_s')),
            load_fractions=_setting(s['load_fractions']),
            load_s=_setting(s['load_s']),
            excluded=excluded,
        ),
        ctx.figure(
            fig, "figure7_rtt_under_load",
            "Figure 7: RTT p50 (solid) and p99 (dashed) against the load in % of the PDR "
            "(0: idle, the seed's ping), one colour per scenario; error bars: the "
            f"{level} t interval over repetitions. "
            + ("Logarithmic y axis: the values span more than a factor of 20. " if log_y
               else "")
            + "Numbers: tables/throughput_rtt_load.csv."),
    ]
