"""The report's comparison with earlier campaigns (Figure 4): night against night.

Each campaign is one draw of the night (:mod:`analysis.between_nights`): the
between-night variation comes from ``--history`` when given, else from the
stated prior, and the outcome is regressed, unchanged or inconclusive.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis import between_nights, nights, plots, replication, tables
from analysis.document import (
    Bullets,
    Para,
    Section,
    Table,
    integer,
    num,
    pvalue,
    text,
)
from analysis.load import Campaign, load_campaign
from analysis.model import rtt_by_repetition
from analysis.report_context import Context, Options

# --------------------------------------------------------------------------- comparison


def compare(ctx: Context) -> dict[str, Any]:
    """The comparison with each older campaign, the trend, and what is not like for like
    (computed once per report: the Summary states its outcome)."""
    if "comparison" not in ctx.cache:
        ctx.cache["comparison"] = _compare(ctx)
    return ctx.cache["comparison"]


def history_components(o: Options) -> tuple[pd.DataFrame, str]:
    """The between-night components of ``--history`` (empty without one), and what was read."""
    if o.history is None:
        return pd.DataFrame(columns=between_nights.COMPONENT_COLUMNS), ""
    found, what = nights.read_nights(o.history)
    return between_nights.components(found), what


def _compare(ctx: Context) -> dict[str, Any]:
    c, o = ctx.campaign, ctx.options
    components, history_read = history_components(o)
    prior = between_nights.PRIOR if o.prior else None
    new_loss = tables.loss_per_repetition(c.ping_summary, c.rate)
    trend = [_trend_rows(c, ctx.result.by_rep, new_loss, o)]
    frames, notes = [], []
    for path in o.compare:
        older = load_campaign(path)
        old_by_rep = rtt_by_repetition(older.rtt, older.scenario_order)
        old_summary = replication.repetition_summary(old_by_rep)
        old_loss = tables.loss_per_repetition(older.ping_summary, older.rate)
        frames.append(
            replication.compare_campaigns(
                ctx.result.reps, old_summary, new_loss, old_loss, older=older.campaign_id,
                threshold_pct=o.regression_threshold_pct, loss_threshold_pp=o.loss_threshold_pp,
                confidence=o.confidence, between=components, prior=prior,
            )
        )
        trend.append(_trend_rows(older, old_by_rep, old_loss, o))
        notes += _parameter_differences(c, older)
        if (older.rate is None) != (c.rate is None):
            notes.append(f"{older.campaign_id}: loss sources differ (ping vs rate); loss "
                         "comparison mixes them")
        del older, old_by_rep
    comparison = pd.concat(frames, ignore_index=True)
    # the current campaign's points are flagged when they regressed against any older one
    flags = comparison.groupby("scenario")[["median_regressed", "loss_regressed"]].any()
    for column in flags:
        trend[0][column] = trend[0]["scenario"].map(flags[column]).fillna(False).astype(bool)
    trend_frame = pd.concat(trend, ignore_index=True)
    for column in flags:
        trend_frame[column] = trend_frame[column].fillna(False).astype(bool)
    trend_frame = trend_frame.sort_values(["started_at", "campaign"], kind="stable")
    return {"comparison": comparison, "trend": trend_frame, "olders": frames,
            "notes": notes, "outcome": replication.comparison_outcome(comparison),
            "history": history_read, "components": components}


def outcome_text(ctx: Context) -> str:
    """One sentence for the Summary: the comparison's outcome, and what it rests on."""
    data = compare(ctx)
    comparison, outcome = data["comparison"], data["outcome"]
    olders = ", ".join(dict.fromkeys(comparison["older"].astype(str)))
    counts = comparison["verdict"].value_counts()
    tally = ", ".join(f"{counts[k]} {k}" for k in replication.COMPARISON_VERDICTS
                      if counts.get(k, 0))
    o = ctx.options
    text = (f"Comparison with {olders}: {outcome.upper()} ({tally}; margin "
            f"±{o.regression_threshold_pct:g} % of the typical median, ±"
            f"{o.loss_threshold_pp:g} points of loss). ")
    return text + _rests_on(ctx, data)


def _rests_on(ctx: Context, data: dict[str, Any]) -> str:
    o = ctx.options
    if o.history is not None and not data["components"].empty:
        return (f"The variation between nights comes from the history ({data['history']}), "
                "pooled with the prior.")
    missing = (f"The history given ({data['history']}) has fewer than "
               f"{between_nights.MIN_NIGHTS} nights of these scenarios. "
               if o.history is not None else "No history was given (--history). ")
    if not o.prior:
        return missing + ("Without a history or a prior, the variation between nights is "
                          "unknown: one campaign against another cannot tell a change from "
                          "an ordinary night, so nothing is judged.")
    p = between_nights.PRIOR
    return missing + (
        "The variation between nights is taken from the prior (between-night sd "
        f"{p['median'].between_sd:g} of the log median, {p['loss'].between_sd:g} points of "
        "loss, measured on three stored campaigns of one unchanged lab, df "
        f"{p['median'].between_df:g}): two campaigns cannot tell a change smaller than a few "
        "times that from an ordinary night, and cannot show a change of less than the margin, "
        "so expect 'inconclusive' unless the change is large.")


def comparison_section(ctx: Context, data: dict[str, Any]) -> Section:
    c, o = ctx.campaign, ctx.options
    comparison, trend_frame, frames, notes = (data[k] for k in ("comparison", "trend",
                                                                "olders", "notes"))
    fig = plots.plot_trend(trend_frame, colors=ctx.colors,
                           title=f"Figure 4 — typical median RTT and loss per campaign\n"
                                 f"(regression: median +{o.regression_threshold_pct:g} % or "
                                 f"loss +{o.loss_threshold_pp:g} points, significant)")
    ctx.csv(trend_frame, "trend")
    level = f"{100 * o.confidence:g} %"
    blocks: list[Any] = [
        Para(f"Campaign {c.campaign_id} compared with "
             + ", ".join(f.iloc[0]["older"] for f in frames if not f.empty)
             + ", night against night: repetitions of one campaign share that night's "
               "conditions, so each campaign is one draw of the night, and the standard "
               "error of a change includes the variation between nights. "
             + outcome_text(ctx)),
    ]
    if notes:
        blocks += [Para("Not like for like:"), Bullets(notes)]
    blocks += [
        Table(
            comparison,
            [("scenario", "scenario", text), ("older", "older campaign", text),
             ("repetitions_old", "reps then", integer), ("repetitions_new", "reps now", integer),
             ("median_old_us", "median then (µs)", num), ("median_new_us", "median now (µs)", num),
             ("median_change_pct", "change (%)", num),
             ("median_ci_low_pct", f"{level} CI low (%)", num),
             ("median_ci_high_pct", f"{level} CI high (%)", num),
             ("median_between_sd", "between-night sd (log)", num),
             ("median_p_holm", "p (Holm)", pvalue),
             ("median_p_tost_holm", "TOST p (Holm)", pvalue),
             ("median_outcome", "RTT", text),
             ("loss_old_pct", "loss then (%)", num), ("loss_new_pct", "loss now (%)", num),
             ("loss_change_pp", "change (points)", num),
             ("loss_ci_low_pp", f"{level} CI low (points)", num),
             ("loss_ci_high_pp", f"{level} CI high (points)", num),
             ("loss_between_sd", "between-night sd (points)", num),
             ("loss_p_holm", "p (Holm)", pvalue),
             ("loss_p_tost_holm", "TOST p (Holm)", pvalue), ("loss_outcome", "loss", text),
             ("verdict", "verdict", text), ("note", "note", text)],
            "Change against earlier campaigns",
            ctx.csv(comparison, "comparison"),
        ),
        ctx.define(
            "comparison.median_then_now",
            "comparison.change",
            "comparison.between_night_sd",
            "comparison.median_p",
            "comparison.tost_p",
            "comparison.loss",
            "comparison.verdict",
        ),
        ctx.figure(fig, "figure4_trend",
                   "Figure 4: typical median RTT (geometric mean of repetition medians, with "
                   f"its {level} t interval over repetitions) and mean loss per campaign, oldest "
                   f"to newest by start time; a red ring marks a scenario of {c.campaign_id} "
                   "that regressed against at least one earlier campaign."),
    ]
    return Section("Comparison with earlier campaigns", blocks)


def _trend_rows(
    campaign: Campaign, by_rep: dict, loss: pd.DataFrame, o: Options
) -> pd.DataFrame:
    med = replication.scenario_intervals(by_rep, confidence=o.confidence, bootstrap=False)
    med = med.loc[med["statistic"] == "median"]
    loss_pct = loss.groupby("scenario", sort=False)["loss_pct"].mean()
    out = pd.DataFrame({"scenario": campaign.scenario_order})
    out = out.merge(med[["scenario", "estimate_us", "t_low_us", "t_high_us"]], how="left")
    out = out.rename(columns={"estimate_us": "median_us", "t_low_us": "ci_low_us",
                              "t_high_us": "ci_high_us"})
    out["loss_pct"] = out["scenario"].map(loss_pct).astype(float)
    out.insert(0, "started_at", campaign.started_at)
    out.insert(0, "campaign", campaign.campaign_id)
    return out


def _parameter_differences(new: Campaign, old: Campaign) -> list[str]:
    a, b = new.parameters, old.parameters
    keys = sorted((set(a) | set(b)) - {"seed"})
    return [
        f"{old.campaign_id}: parameter {k} was {b.get(k)!r}, now {a.get(k)!r}"
        for k in keys
        if a.get(k) != b.get(k)
    ]
