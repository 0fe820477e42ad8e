"""The report's evidence: Tables 1 and 2, Figures 1 and 2, percentiles and intervals,
closeness to the baseline, per-packet costs.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis import plots, stats, tables
from analysis.document import (
    Para,
    Section,
    Table,
    integer,
    num,
    share,
    text,
    whole,
)
from analysis.model import samples_by_scenario
from analysis.report_context import Context

BOX_PERCENTILES = (1.0, 25.0, 50.0, 75.0, 99.0)


def status_cols() -> list[tuple[str, str, Any]]:
    return [("number", "#", integer), ("scenario", "scenario", text), ("status", "status", text)]


# --------------------------------------------------------------------------- tables 1, 2


def loss_table(ctx: Context) -> pd.DataFrame:
    c = ctx.campaign
    return tables.table1_loss(c.scenarios, c.ping_summary, c.rate)


def loss_section(ctx: Context, t1: pd.DataFrame) -> Section:
    c = ctx.campaign
    spread = [
        ("repetitions", "reps", integer),
        ("mean_pct", "loss mean (%)", num),
        ("min_pct", "min (%)", num),
        ("max_pct", "max (%)", num),
        ("std_pct", "std (%)", num),
    ]
    if c.rate is None:
        columns = [*status_cols(), *spread, ("sent_packets", "probes sent", integer),
                   ("lost_packets", "probes lost", integer)]
        source = (
            "Loss measured by ping (data/ping_summary.parquet); sender → counter loss "
            "(data/rate.parquet) was not collected in this campaign."
        )
    else:
        columns = [*status_cols(), ("backend", "backend", text),
                   ("frame_bytes", "frame (bytes)", whole), ("rate_pps", "rate (packets/s)", num),
                   *spread, ("flagged_repetitions", "flagged reps", integer),
                   ("sent_frames", "frames sent", integer),
                   ("lost_frames", "frames lost", integer),
                   ("ping_loss_mean_pct", "ping loss mean (%)", num)]
        source = (
            "Loss measured from sender to counter (data/rate.parquet), one row per backend, "
            "frame size and rate; ping's mean loss is shown beside it."
        )
    return Section(
        "Table 1 — packet loss per scenario",
        [
            Para(source),
            Table(t1, columns, "Table 1: loss (%) per scenario", ctx.csv(t1, "table1_loss")),
            ctx.define(
                "loss.loss_of_a_repetition",
                "loss.flagged_reps",
                "loss.loss_mean",
                "loss.backend",
                "loss.min_max",
                "loss.std",
            ),
        ],
    )


def rtt_table(ctx: Context) -> pd.DataFrame:
    c = ctx.campaign
    return tables.table2_rtt(c.scenarios, ctx.samples, c.rtt)


def rtt_section(ctx: Context, t2: pd.DataFrame) -> Section:
    return Section(
        "Table 2 — round-trip time per scenario",
        [
            Table(
                t2,
                [*status_cols(), ("repetitions", "reps", integer),
                 ("probes", "probes sent", integer), ("n", "n (answered)", integer),
                 ("rtt_mean_us", "RTT mean (µs)", num), ("rtt_std_us", "RTT std (µs)", num)],
                "Table 2: ICMP echo round-trip time (µs) per scenario",
                ctx.csv(t2, "table2_rtt"),
            ),
            ctx.define("rtt.n", "rtt.rtt_mean", "rtt.rtt_std"),
        ],
    )


# --------------------------------------------------------------------------- figures


def box_table(ctx: Context) -> pd.DataFrame:
    """Figure 1's boxes: percentiles per scenario, every scenario with a label."""
    c = ctx.campaign
    box = stats.percentiles(ctx.samples, BOX_PERCENTILES)  # with min_us, max_us
    box = c.scenarios[["scenario", "number", "status"]].merge(box, on="scenario", how="left")
    box["n"] = box["n"].fillna(0).astype(int)
    box["label"] = [
        f"{'' if pd.isna(r.number) else f'{r.number}. '}{r.scenario}\n"
        + (f"(n={r.n:,})" if r.n else f"({r.status})")
        for r in box.itertuples()
    ]
    return box


def figures_section(ctx: Context, box: pd.DataFrame) -> Section:
    c, o = ctx.campaign, ctx.options
    params = c.parameters
    where = f"campaign {c.campaign_id}"
    if "ping_interval_s" in params:
        where += f", ping every {params['ping_interval_s']:g} s"
    log_y = plots.wants_log_scale(box["p1_us"].dropna(), box["p99_us"].dropna())
    fig1 = plots.plot_distributions(
        box, colors=ctx.colors, title=f"Figure 1 — RTT per scenario\n{where}", log_y=log_y
    )
    points = stats.ecdf_points(ctx.samples)
    threshold = None
    if ctx.baseline:
        x = samples_by_scenario(ctx.samples)[ctx.baseline]
        threshold = (
            f"closeness threshold:\np{o.percentile:g} of {ctx.baseline!r}",
            float(stats.quantile_sorted(x, o.percentile / 100)),
        )
    log_x = o.log_x or plots.wants_log_scale(box["min_us"].dropna(), box["max_us"].dropna())
    fig2 = plots.plot_cdf(
        points, order=c.scenario_order, colors=ctx.colors, log_x=log_x, threshold=threshold,
        title=f"Figure 2 — CDF of RTT per scenario\n{where}",
    )
    box_csv = ctx.csv(box.drop(columns="label"), "figure1_box")
    ctx.csv(points, "figure2_cdf_points")
    return Section(
        "Figures 1 and 2 — RTT distributions",
        [
            ctx.figure(
                fig1, "figure1_rtt_distributions",
                "Figure 1: RTT per scenario. Box: 25th to 75th percentile; black line: median; "
                "whiskers: 1st and 99th percentile; white diamond: mean (value printed beside "
                "it); probes beyond the whiskers are not drawn (see the percentile table). "
                + ("Logarithmic y axis: the scenarios differ by more than a factor of 20. "
                   if log_y else "")
                + f"Numbers behind it: tables/{box_csv}.csv.",
            ),
            ctx.figure(
                fig2, "figure2_rtt_cdf",
                "Figure 2: empirical cumulative distribution of RTT per scenario, "
                "P(RTT ≤ x) over all answered probes. A curve further left is faster; "
                "the dashed line is the baseline percentile used for closeness. "
                + (("Logarithmic x axis (--log-x). " if o.log_x else "Logarithmic x axis: the "
                    "scenarios differ by more than a factor of 20. ") if log_x else "")
                + "Points: tables/figure2_cdf_points.csv (exact points of the ECDF).",
            ),
        ],
    )


# --------------------------------------------------------------------------- statistics


def percentile_table(ctx: Context) -> pd.DataFrame:
    return stats.percentiles(ctx.samples, ctx.options.percentiles)


def distribution_section(ctx: Context, pct: pd.DataFrame) -> Section:
    o = ctx.options
    iv = ctx.result.intervals
    pct_cols = [("scenario", "scenario", text), ("n", "n", integer),
                ("min_us", "min (µs)", num)]
    pct_cols += [(stats.percentile_column(p), f"p{p:g} (µs)", num) for p in o.percentiles]
    pct_cols += [("max_us", "max (µs)", num)]
    level = f"{100 * o.confidence:g} %"
    return Section(
        "Percentiles and confidence intervals",
        [
            Para("Percentiles describe one scenario's distribution of single probes, pooled "
                 "over its repetitions: a per-probe statistic, and the right one for that. The "
                 "intervals below are about the scenario, so they treat the repetition as the "
                 "unit."),
            Table(pct, pct_cols, "RTT percentiles per scenario (µs), all answered probes",
                  ctx.csv(pct, "percentiles")),
            ctx.define("distribution.px"),
            Table(
                iv,
                [("scenario", "scenario", text), ("statistic", "statistic", text),
                 ("repetitions", "reps", integer), ("estimate_us", "estimate (µs)", num),
                 ("t_low_us", f"t {level} CI low", num), ("t_high_us", f"t {level} CI high", num),
                 ("boot_low_us", f"two-level bootstrap {level} low", num),
                 ("boot_high_us", f"two-level bootstrap {level} high", num),
                 ("between_rep_sd", "between-repetition sd", num)],
                f"{level} confidence intervals over repetitions (µs)",
                ctx.csv(iv, "intervals"),
            ),
            ctx.define(
                "distribution.median_typical_repetition_median",
                "distribution.mean",
                "distribution.t_ci",
                "distribution.two_level_bootstrap_ci",
            ),
        ],
    )


def closeness_table(ctx: Context) -> pd.DataFrame | None:
    """Closeness per repetition, summarised, with the pooled 1 - D; None without a baseline."""
    if ctx.result.closeness.empty:
        return None
    pooled = stats.closeness(ctx.samples, ctx.baseline, ctx.options.percentile)
    return ctx.result.closeness.merge(pooled[["scenario", "ks_distance", "ks_similarity"]],
                                      on="scenario", how="left")


def closeness_section(ctx: Context, close: pd.DataFrame | None) -> Section:
    o = ctx.options
    r = ctx.result
    p = f"p{o.percentile:g}"
    if close is None:
        return Section("Closeness to the baseline", [Para("No baseline with RTT data.")])
    level = f"{100 * o.confidence:g} %"
    return Section(
        "Closeness to the baseline",
        [
            Para(f"Baseline: {ctx.baseline}; its {p} over all its probes is "
                 f"{num(r.threshold_us)} µs."),
            Table(
                close,
                [("scenario", "scenario", text), ("repetitions", "reps", integer),
                 ("share", f"share ≤ baseline {p}, mean over reps", share),
                 ("share_ci_low", f"{level} CI low", share),
                 ("share_ci_high", f"{level} CI high", share),
                 ("share_min", "lowest rep", share), ("share_max", "highest rep", share),
                 ("ks_similarity", "1 - D (all probes)", num)],
                "Closeness of each scenario to the baseline",
                ctx.csv(close, "closeness"),
            ),
            ctx.define(
                "closeness.share_baseline_p",
                "closeness.lowest_rep_highest_rep",
                "closeness.one_minus_d",
                threshold_us=num(r.threshold_us),
            ),
        ],
    )


def costs_tables(ctx: Context) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Per-packet costs per host, and summed over hosts; None when not collected."""
    c = ctx.campaign
    if c.costs is None:
        return None
    return (tables.costs_table(c.scenarios, c.costs),
            tables.costs_table(c.scenarios, c.costs, by_host=False))


def costs_section(ctx: Context, frames: tuple[pd.DataFrame, pd.DataFrame] | None) -> Section:
    c = ctx.campaign
    title = "Per-packet costs"
    if frames is None:
        return Section(title, [Para("Per-packet costs (data/costs.parquet): not collected in "
                                    "this campaign.")])
    costs, totals = frames
    ctx.csv(totals, "costs_all_hosts")
    fig = plots.plot_costs(totals, colors=ctx.colors,
                           title=f"Figure 3 — per-packet costs per scenario "
                                 f"(campaign {c.campaign_id})")
    return Section(
        title,
        [
            Table(
                costs,
                [*status_cols(), ("metric", "metric", text), ("host", "host", text),
                 ("unit", "unit", text),
                 ("repetitions", "reps", integer), ("mean", "mean", num), ("min", "min", num),
                 ("max", "max", num), ("std", "std", num)],
                "Per-packet costs per scenario and host (mean over repetitions; unit per row)",
                ctx.csv(costs, "costs"),
            ),
            ctx.define("costs.metric", "costs.host", "costs.mean_min_max_std"),
            ctx.figure(fig, "figure3_costs",
                       "Figure 3: per-packet costs, summed over the hosts that report each "
                       "metric (tables/costs_all_hosts.csv); bar: mean over repetitions, "
                       "error bars: smallest and largest repetition."),
        ],
    )
