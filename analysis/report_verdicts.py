"""The report's answers: the summary, the seed's claims, the A/A control, the pairwise verdicts.

Sections built from :class:`analysis.report.Analysis` (the repetition-level
statistics of :mod:`analysis.replication`, computed once). Each returns a
:class:`~analysis.document.Section`; every statistic shown is defined beside
it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis import definitions, plots, replication, stats, tables
from analysis.document import (
    Bullets,
    Para,
    Section,
    Table,
    integer,
    num,
    pvalue,
    share,
    text,
)

if TYPE_CHECKING:  # pragma: no cover
    from analysis.report_context import Context as _Context


TIMES = "\u00d7"  # the multiplication sign of a ratio, x1.05


def _level(ctx: _Context) -> str:
    return f"{100 * ctx.options.confidence:g} %"


def _interval(est: float, low: float, high: float) -> str:
    if est is None or (isinstance(est, float) and math.isnan(est)):
        return "—"
    if low is None or math.isnan(low) or math.isnan(high):
        return f"{num(est)} (one repetition: no interval)"
    return f"{num(est)} [{num(low)}, {num(high)}]"


def _ratio_text(ratio: float, low: float, high: float) -> str:
    if ratio is None or math.isnan(ratio):
        return "—"
    if math.isnan(low):
        return f"{TIMES}{ratio:.3g}"
    return f"{TIMES}{ratio:.3g} [{low:.3g}, {high:.3g}]"


def _pair_row(pairs: pd.DataFrame, a: str, b: str) -> tuple[Any, bool] | None:
    """The pairwise row of (a, b) and whether it is stored as (b, a)."""
    hit = pairs.loc[(pairs["scenario_a"] == a) & (pairs["scenario_b"] == b)]
    if not hit.empty:
        return hit.iloc[0], False
    hit = pairs.loc[(pairs["scenario_a"] == b) & (pairs["scenario_b"] == a)]
    if not hit.empty:
        return hit.iloc[0], True
    return None


def _effect(ctx: _Context, row: Any, flipped: bool) -> tuple[float, float, float]:
    """(estimate, low, high) of a relative to b: a ratio (log scale) or a difference in µs."""
    if ctx.options.margin.scale == "log":
        r, lo, hi = row["ratio"], row["ratio_ci_low"], row["ratio_ci_high"]
        return (1 / r, 1 / hi, 1 / lo) if flipped else (r, lo, hi)
    d, lo, hi = row["diff_us"], row["diff_ci_low_us"], row["diff_ci_high_us"]
    return (-d, -hi, -lo) if flipped else (d, lo, hi)


def _effect_text(ctx: _Context, row: Any, flipped: bool) -> str:
    est, lo, hi = _effect(ctx, row, flipped)
    if ctx.options.margin.scale == "log":
        return _ratio_text(est, lo, hi)
    return _interval(est, lo, hi) + " µs"


def _verdict_text(ctx: _Context, row: Any, flipped: bool) -> str:
    outcome = row["outcome"]
    words = f"{outcome}: {_effect_text(ctx, row, flipped)}"
    if outcome == "equivalent" and row["different"]:
        words += " (a difference smaller than the margin is also detected)"
    if outcome == "inconclusive":
        words += f"; {_settle_text(row)}"
    return words


def _settle_text(row: Any) -> str:
    n = row["repetitions_to_settle"]
    if n is None or pd.isna(n):
        why = row["settles_towards"] or "unknown"
        return f"repetitions to settle ({why})"
    return (f"about {int(n)} repetitions would settle it either way "
            f"({row['settles_towards']})")


def _effect_header(ctx: _Context) -> str:
    if ctx.options.margin.scale == "log":
        return f"ratio a/b [{_level(ctx)} CI]"
    return f"a - b (µs) [{_level(ctx)} CI]"


# --------------------------------------------------------------------------- summary


def summary_section(ctx: _Context, frame: pd.DataFrame) -> Section:
    c, o, r = ctx.campaign, ctx.options, ctx.result
    level = _level(ctx)
    ctx.csv(frame.drop(columns=[k for k in frame.columns if k.endswith("_text")]), "summary")
    with_data = sorted(set(r.reps["scenario"]), key=c.scenario_order.index)
    counts = r.reps.groupby("scenario", sort=False).size()
    reps_text = (f"{counts.min()}" if counts.min() == counts.max()
                 else f"{counts.min()} to {counts.max()}") if not counts.empty else "0"
    blocks = c.blocks
    plan = (f", run in {len(set(blocks.values()))} blocks (each block runs every scenario once, "
            "in an order drawn from the seed)" if blocks else
            ", run in a shuffled order without blocks (compared unpaired)")
    p = f"p{o.percentile:g}"
    blocks_out: list[Any] = [
        Para(f"Campaign {c.campaign_id}: {len(with_data)} scenario(s) with RTT data, "
             f"{reps_text} repetition(s) each{plan}. Every verdict treats the repetition as "
             f"the unit, at alpha = {ctx.alpha:g} with Holm's correction over the pairs of "
             "interest (not those with the baseline or an A/A control, each judged at "
             "alpha); "
             f"equivalence margin {o.margin.describe()}. Baseline: "
             f"{ctx.baseline or 'none'}. The evidence follows; where and how the campaign "
             "ran is at the end."),
        Table(
            frame,
            [("number", "#", integer), ("scenario", "scenario", text),
             ("status", "status", text), ("repetitions", "reps", integer),
             ("median_text", f"typical median RTT (µs) [{level} CI]", text),
             ("mean_text", f"mean RTT (µs) [{level} CI]", text),
             ("p99_us", "p99 (µs)", num), ("loss_mean_pct", "loss (%)", num),
             ("share_text", f"share ≤ baseline {p} [{level} CI]", text),
             ("baseline_text", f"against {ctx.baseline or 'the baseline'}", text)],
            "Each scenario's headline numbers, and its verdict against the baseline",
            "summary",
        ),
    ]
    pairs_frame = _seed_pairs(ctx)
    if not pairs_frame.empty:
        blocks_out.append(Table(
            pairs_frame,
            [("pair", "pair", text), ("why", "the seed study says", text),
             ("verdict", "verdict", text)],
            "Verdicts between the seed study's pairs (claims tested in the next section)",
        ))
    for control, original in c.controls.items():
        found = _pair_row(r.pairs, original, control)
        if found is not None:
            row, flipped = found
            fine = row["outcome"] != "different"
            blocks_out.append(Para(
                f"A/A control: {control} is a copy of {original}, run in the same blocks; a "
                f"correct method must not find them different. Verdict: "
                f"{_verdict_text(ctx, row, flipped)}. "
                + ("As it must be." if fine else
                   "It was found different: the method or the lab lets noise through, and "
                   "every 'different' in this report is in doubt.")))
    if o.compare:
        from analysis.report_comparison import outcome_text

        blocks_out.append(Para(outcome_text(ctx) + " Details: Comparison with earlier "
                               "campaigns."))
    weak = weaknesses(ctx)
    blocks_out += [Para("What weakens these verdicts:"),
                   Bullets(weak or ["nothing found: every scenario ran as requested, every "
                                    "repetition finished and every pair was settled."])]
    blocks_out.append(ctx.define(
        "summary.typical_median_rtt",
        "summary.mean_rtt",
        "summary.p99",
        "summary.loss",
        "summary.share_baseline_p",
        "summary.against_log" if o.margin.scale == "log" else "summary.against_us",
        *definitions.OUTCOMES,
        "outcome.repetitions_to_settle",
    ))
    return Section("Summary", blocks_out)


def headline(ctx: _Context) -> pd.DataFrame:
    """Each scenario's headline numbers and its verdict against the baseline."""
    c, r = ctx.campaign, ctx.result
    out = c.scenarios[["number", "scenario", "status"]].copy()
    counts = r.reps.groupby("scenario", sort=False).size()
    out["repetitions"] = out["scenario"].map(counts).fillna(0).astype(int)
    iv = r.intervals.set_index(["scenario", "statistic"])
    for stat in ("median", "mean"):
        for col in ("estimate_us", "t_low_us", "t_high_us"):
            out[f"{stat}_{col}"] = [iv[col].get((s, stat), np.nan) for s in out["scenario"]]
        out[f"{stat}_text"] = [
            _interval(e, lo, hi) if not math.isnan(e) else "—"
            for e, lo, hi in zip(out[f"{stat}_estimate_us"], out[f"{stat}_t_low_us"],
                                 out[f"{stat}_t_high_us"], strict=True)]
    p99 = stats.percentiles(ctx.samples, (99.0,)).set_index("scenario")["p99_us"]
    out["p99_us"] = out["scenario"].map(p99).astype(float)
    loss = tables.loss_per_repetition(c.ping_summary, c.rate)
    out["loss_mean_pct"] = out["scenario"].map(
        loss.groupby("scenario", sort=False)["loss_pct"].mean()).astype(float)
    close = r.closeness.set_index("scenario")
    for col in ("share", "share_ci_low", "share_ci_high"):
        out[col] = out["scenario"].map(close[col]).astype(float) if not close.empty else np.nan
    out["share_text"] = [
        "—" if math.isnan(s) else share(s) if math.isnan(lo) else
        f"{share(s)} [{share(lo)}, {share(hi)}]"
        for s, lo, hi in zip(out["share"], out["share_ci_low"], out["share_ci_high"],
                             strict=True)]
    texts, outcomes, ratios = [], [], []
    for name in out["scenario"]:
        if name == ctx.baseline:
            texts.append("(the baseline)")
            outcomes.append("")
            ratios.append(np.nan)
            continue
        found = _pair_row(r.pairs, name, ctx.baseline) if ctx.baseline else None
        if found is None:
            texts.append("—")
            outcomes.append("")
            ratios.append(np.nan)
            continue
        row, flipped = found
        texts.append(_verdict_text(ctx, row, flipped))
        outcomes.append(row["outcome"])
        ratios.append(_effect(ctx, row, flipped)[0])
    out["baseline_outcome"] = outcomes
    out["baseline_effect"] = ratios
    out["baseline_text"] = texts
    return out


def _seed_pairs(ctx: _Context) -> pd.DataFrame:
    rows, seen = [], set()
    for claim in replication.SEED_CLAIMS:
        key = frozenset((claim.a, claim.b))
        if key in seen:
            continue
        seen.add(key)
        found = _pair_row(ctx.result.pairs, claim.a, claim.b)
        if found is None:
            continue
        row, flipped = found
        rows.append({"pair": f"{claim.a} vs {claim.b}", "why": f"{claim.key}: "
                     + claim.statement, "verdict": _verdict_text(ctx, row, flipped)})
    return pd.DataFrame(rows, columns=["pair", "why", "verdict"])


def _subs_text(subs: list[dict]) -> str:
    return ", ".join(f"{s['knob']} → {tables._knob(s['effective'])}" for s in subs)


def _same_configuration(ctx: _Context) -> list[str]:
    """Scenarios that ran the same effective configuration, and how their pairs came out."""
    c, r = ctx.campaign, ctx.result
    out = []
    same = c.scenarios.loc[(c.scenarios["effective"] != "") & (c.scenarios["status"] == "run")]
    for _, group in same.groupby("effective", sort=False):
        if len(group) < 2:
            continue
        names = list(group["scenario"])
        inside = r.pairs.loc[r.pairs["scenario_a"].isin(names)
                             & r.pairs["scenario_b"].isin(names)]
        tally = ", ".join(f"{k} {v}" for k, v in inside["outcome"].value_counts().items())
        out.append(f"{', '.join(names)} ran the same effective configuration on this lab "
                   "(the same knobs after substitution, on the same guest): any difference "
                   "between them is chance, order or drift, and a correct method must not "
                   f"call them different. Among their {len(inside)} pairs: {tally or 'none'}.")
    return out


def _scenario_weaknesses(row: Any) -> list[str]:
    """A scenario not run, or with repetitions failed or still to run."""
    out = []
    if row.status != "run":
        out.append(f"{row.scenario}: {row.status}"
                   + (f" ({row.reason})" if row.reason else "") + "; no verdict.")
    if row.runs_failed:
        out.append(f"{row.scenario}: {row.runs_failed} repetition(s) failed; its "
                   "verdicts rest on the others.")
    if row.runs_pending:
        out.append(f"{row.scenario}: {row.runs_pending} repetition(s) not run yet.")
    return out


def weaknesses(ctx: _Context) -> list[str]:
    """What weakens the verdicts, in words: substitutions, identical configurations,
    inconclusive pairs, failed or missing repetitions, no blocks, few repetitions."""
    c, r = ctx.campaign, ctx.result
    out = []
    subs = [(row.scenario, row.substitutions) for row in c.scenarios.itertuples()
            if row.substitutions]
    if subs:
        out.append(f"{len(subs)} of {len(c.scenarios)} scenarios ran with substitutions (this "
                   "lab could not honour what they asked for; the table is in the metadata at "
                   "the end): " + "; ".join(
                       f"{name} ({_subs_text(ss)})" for name, ss in subs) + ".")
    out += _same_configuration(ctx)
    inconclusive = r.pairs.loc[r.pairs["outcome"] == "inconclusive"]
    if not inconclusive.empty:
        needed = inconclusive["repetitions_to_settle"].dropna()
        most = (f"; settling them would likely take up to {int(needed.max())} repetitions"
                if not needed.empty else "")
        out.append(f"{len(inconclusive)} of {len(r.pairs)} pairs are inconclusive{most} "
                   "(Pairwise verdicts).")
    out += [w for row in c.scenarios.itertuples() for w in _scenario_weaknesses(row)]
    if not c.blocks:
        out.append("The campaign ran without blocks: scenarios are compared unpaired, so drift "
                   "over the campaign adds to the noise.")
    counts = r.reps.groupby("scenario", sort=False).size()
    if not counts.empty and counts.min() < 5:
        k = int(counts.min())
        t = sps.t.ppf(1 - ctx.alpha / 2, max(k - 1, 1))
        out.append(f"Few repetitions ({k}): an interval over them is ±{t:.2f} standard errors "
                   f"wide (t with df = {max(k - 1, 1)}), so only large differences can be "
                   "shown, and equivalence only when repetitions agree closely.")
    out += [f"Data: {w}" for w in c.warnings]
    return out


# --------------------------------------------------------------------------- claims


def claims_table(ctx: _Context) -> pd.DataFrame:
    return ctx.result.claims


def claims_section(ctx: _Context, claims: pd.DataFrame) -> Section:
    title = "The seed study's claims, tested"
    if claims.empty:
        return Section(title, [Para("This campaign does not hold the seed study's scenarios "
                                    "(scenarios/seed.yml), so its claims are not tested.")])
    frame = claims.copy()
    frame["power_text"] = [
        "—" if pd.isna(p) else f"{p:.0%} ({why})"
        for p, why in zip(frame["power_now"], frame["power_assumes"], strict=True)]
    ctx.csv(claims, "claims")
    return Section(title, [
        Para("Each claim of the study (Portuguese original in the design document), the test "
             "that decides it with the repetition as the unit, the verdict, and the power "
             "behind it: a claim that is 'not settled' with low power says nothing either "
             "way."),
        Table(frame,
              [("claim", "claim", text), ("statement", "statement", text),
               ("verdict", "verdict", text), ("estimate", "estimate", text),
               ("test", "test", text), ("p", "p", pvalue),
               ("p_adjustment", "p adjusted by", text),
               ("power_text", "power now (if …)", text),
               ("repetitions_to_settle", "reps to settle", integer)],
              "The seed study's claims", "claims"),
        ctx.define(
            "claims.verdict",
            "claims.p",
            "claims.power_now",
            "outcome.repetitions_to_settle",
        ),
    ])


# --------------------------------------------------------------------------- control


def control_pairs(ctx: _Context) -> pd.DataFrame:
    """The pairwise verdicts, among them each A/A control's against its original."""
    return ctx.result.pairs


def control_sections(ctx: _Context, pairs: pd.DataFrame) -> list[Section]:
    out = []
    for control, original in ctx.campaign.controls.items():
        found = _pair_row(pairs, original, control)
        blocks: list[Any] = [Para(
            f"{control} is a copy of {original}'s definition under another name, run in the "
            "same blocks, resolved and stored like any scenario. Nothing distinguishes the "
            "two but chance, so a correct method must not find them different (at alpha = "
            f"{ctx.alpha:g} it may do so in at most {ctx.alpha:.0%} of campaigns).")]
        if found is None:
            blocks.append(Para("Not compared: one of the two has fewer than two repetitions."))
            out.append(Section(f"A/A control: {control}", blocks))
            continue
        row, flipped = found
        frame = pd.DataFrame([row])
        blocks += [
            Table(frame, _pair_columns(ctx), "The control pair", None),
            Para(f"Verdict: {_verdict_text(ctx, row, flipped)}. "
                 + ("Not different, as it must be." if row["outcome"] != "different" else
                    "Found different: distrust every 'different' in this report.")),
        ]
        groups = ctx.result.by_rep
        if original in groups and control in groups:
            a = np.sort(np.concatenate(list(groups[original].values())))
            b = np.sort(np.concatenate(list(groups[control].values())))
            if a.size > 1 and b.size > 1:
                _, p_mw, _, p_ks = stats._mwu_ks(stats._Sorted.of(a), stats._Sorted.of(b))
                blocks.append(Para(
                    "For contrast, the pooled per-probe tests this report no longer uses, "
                    f"which treat all {a.size + b.size:,} probes as independent: Mann-Whitney "
                    f"p = {pvalue(p_mw)}, Kolmogorov-Smirnov p = {pvalue(p_ks)} (no "
                    "correction). Below alpha, they would call an A/A pair different."))
        blocks.append(ctx.define(*definitions.OUTCOMES, "outcome.repetitions_to_settle"))
        out.append(Section(f"A/A control: {control} (a copy of {original})", blocks))
    return out


# --------------------------------------------------------------------------- repetitions


def repetition_table(ctx: _Context) -> pd.DataFrame:
    """Every repetition's summary with its closeness share."""
    r = ctx.result
    return r.reps.merge(r.shares[["scenario", "repetition", "share"]],
                        on=["scenario", "repetition"], how="left")


def repetitions_section(ctx: _Context, reps: pd.DataFrame) -> Section:
    c, o, r = ctx.campaign, ctx.options, ctx.result
    typical = r.intervals.loc[r.intervals["statistic"] == "median"]
    log_y = plots.wants_log_scale(reps["median_us"].dropna(), reps["median_us"].dropna(),
                                  ratio=5.0)
    fig = plots.plot_repetitions(
        reps, typical, order=c.scenario_order, colors=ctx.colors, log_y=log_y,
        title=f"Figure 5 — the median RTT of every repetition\ncampaign {c.campaign_id}"
              + (f", ping every {c.parameters['ping_interval_s']:g} s"
                 if "ping_interval_s" in c.parameters else ""))
    p = f"p{o.percentile:g}"
    return Section("Repetitions and blocks", [
        Para("The unit of every comparison: one row per repetition. A block runs every "
             "scenario once, in a random order; blocks run one after the other."),
        Table(reps,
              [("scenario", "scenario", text), ("repetition", "rep", integer),
               ("block", "block", integer), ("n", "n (answered)", integer),
               ("median_us", "median (µs)", num), ("mean_us", "mean (µs)", num),
               ("p90_us", "p90 (µs)", num), ("p99_us", "p99 (µs)", num),
               ("share", f"share ≤ baseline {p}", share)],
              "Every repetition's summary", ctx.csv(reps, "repetitions")),
        ctx.define(
            "repetitions.median_mean_p90_p99",
            "repetitions.block",
            "repetitions.share_baseline_p",
        ),
        ctx.figure(fig, "figure5_repetitions",
                   "Figure 5: each marker is one repetition's median RTT, its shape the block "
                   "it ran in; the black bar beside them is the typical median (geometric "
                   f"mean of the repetition medians) with its {_level(ctx)} t interval over "
                   "repetitions. Spread between markers of one scenario is what a verdict "
                   "must beat. "
                   + ("Logarithmic y axis: the scenarios differ by more than a factor of 5."
                      if log_y else "")),
    ])


# --------------------------------------------------------------------------- pairs


def _pair_columns(ctx: _Context) -> list[tuple[str, str, Any]]:
    o = ctx.options
    if o.margin.scale == "log":
        effect = [("ratio", "ratio a/b", num), ("ratio_ci_low", f"{_level(ctx)} CI low", num),
                  ("ratio_ci_high", f"{_level(ctx)} CI high", num)]
        sd = "between-rep sd (log)"
    else:
        effect = [("diff_us", "a - b (µs)", num),
                  ("diff_ci_low_us", f"{_level(ctx)} CI low (µs)", num),
                  ("diff_ci_high_us", f"{_level(ctx)} CI high (µs)", num)]
        sd = "between-rep sd (µs)"
    return [
        ("scenario_a", "a", text), ("scenario_b", "b", text), ("design", "design", text),
        ("pairs", "blocks", integer), ("typical_a_us", "typical a (µs)", num),
        ("typical_b_us", "typical b (µs)", num), *effect,
        ("between_rep_sd", sd, num),
        ("p_difference_holm", "difference p (Holm)", pvalue),
        ("p_tost_holm", "TOST p (Holm)", pvalue), ("outcome", "outcome", text),
        ("repetitions_to_settle", "reps to settle", integer),
        ("settles_towards", "repetitions for 80 % power", text),
        ("family", "Holm family", text),
        ("power_equivalence_now", "power now: equivalence", share),
        ("power_difference_now", "power now: difference of the margin", share),
    ]


def pair_table(ctx: _Context) -> pd.DataFrame:
    return ctx.result.pairs


def pairwise_section(ctx: _Context, pairs: pd.DataFrame) -> Section:
    r, o = ctx.result, ctx.options
    if pairs.empty:
        return Section("Pairwise verdicts", [Para("Fewer than two scenarios with RTT data.")])
    ctx.csv(pairs, "pairwise_verdicts")
    with_data = [s for s in ctx.campaign.scenario_order if s in r.by_rep]
    groups = replication.equivalence_groups(pairs, with_data)
    counts = pairs["outcome"].value_counts()
    tally = ", ".join(f"{counts.get(k, 0)} {k}" for k in replication.OUTCOMES)
    return Section("Pairwise verdicts: different, equivalent or inconclusive", [
        Para(f"Every pair of scenarios with RTT data ({len(pairs)} pairs: {tally}), compared "
             "repetition by repetition."),
        Table(pairs, _pair_columns(ctx),
              f"Pairwise verdicts (alpha = {ctx.alpha:g}, Holm over the pairs of "
              "interest)",
              "pairwise_verdicts"),
        ctx.define(
            *definitions.OUTCOMES,
            "pairs.design_blocks",
            "pairs.typical_a_b",
            "pairs.effect_log" if o.margin.scale == "log" else "pairs.effect_us",
            "pairs.between_rep_sd",
            "pairs.difference_p",
            "pairs.tost_p",
            "pairs.holm",
            "pairs.power_now",
            "outcome.repetitions_to_settle",
            alpha_planning=float(pairs['alpha_planning'].min()),
        ),
        Table(groups,
              [("group", "group", text), ("members", "scenarios", text),
               ("size", "size", integer),
               ("all_pairs_equivalent", "every pair equivalent",
                lambda x: "yes" if x else "no")],
              "Equivalence groups", ctx.csv(groups, "equivalence_groups")),
        ctx.define("pairs.equivalence_group"),
        Para("Why not the probes: earlier reports tested pooled probes (Mann-Whitney, "
             "Kolmogorov-Smirnov, Welch TOST over every probe). With thousands of probes and "
             "real differences between repetitions, those tests call identically configured "
             "scenarios different; the calibration suite (tests/analysis/test_calibration.py, "
             "bench/bench_calibration.py) measures how often, on captured campaigns."),
    ])
