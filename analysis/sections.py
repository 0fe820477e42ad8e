"""The report's sections, declared as data, in the order the report shows them.

The answers first (summary, claims, A/A control), the evidence next, the
metadata last. Each section names its title, the function that produces its
DataFrame(s) from the loaded campaign and the statistics computed once
(``data``), the function that lays them out (``render``), its figures and the
definitions it shows (keys of :mod:`analysis.definitions`). ``build_sections``
builds the report by going through ``SECTIONS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from analysis import report_comparison as comparison
from analysis import report_competing as competing
from analysis import report_evidence as evidence
from analysis import report_metadata as metadata
from analysis import report_probes as probes
from analysis import report_throughput as throughput
from analysis import report_verdicts as verdicts
from analysis.definitions import OUTCOMES
from analysis.document import Section
from analysis.report_context import Context

SETTLE = "outcome.repetitions_to_settle"


def _always(ctx: Context) -> bool:
    return True


def _comparing(ctx: Context) -> bool:
    return bool(ctx.options.compare)


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str  # the heading (for the A/A control, the start of each control's heading)
    data: Callable[[Context], Any]  # the DataFrame(s) the section shows
    render: Callable[[Context, Any], Section | list[Section]]
    figures: tuple[str, ...] = ()  # figures/<name>.png|svg
    definitions: tuple[str, ...] = ()  # keys of analysis.definitions.TERMS
    when: Callable[[Context], bool] = _always


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec(
        "summary", "Summary", verdicts.headline, verdicts.summary_section,
        definitions=("summary.typical_median_rtt", "summary.mean_rtt", "summary.p99",
                     "summary.loss", "summary.share_baseline_p", "summary.against_log",
                     "summary.against_us", *OUTCOMES, SETTLE)),
    SectionSpec(
        "claims", "The seed study's claims, tested", verdicts.claims_table,
        verdicts.claims_section,
        definitions=("claims.verdict", "claims.p", "claims.power_now", SETTLE)),
    SectionSpec(
        "control", "A/A control", verdicts.control_pairs, verdicts.control_sections,
        definitions=(*OUTCOMES, SETTLE)),
    SectionSpec(
        "loss", "Table 1 — packet loss per scenario", evidence.loss_table, evidence.loss_section,
        definitions=("loss.loss_of_a_repetition", "loss.flagged_reps", "loss.loss_mean",
                     "loss.backend", "loss.min_max", "loss.std")),
    SectionSpec(
        "rtt", "Table 2 — round-trip time per scenario", evidence.rtt_table,
        evidence.rtt_section, definitions=("rtt.n", "rtt.rtt_mean", "rtt.rtt_std")),
    SectionSpec(
        "probes", probes.PROBES_TITLE, probes.agreement, probes.probes_section,
        definitions=probes.DEFINITIONS),
    SectionSpec(
        "repetitions", "Repetitions and blocks", verdicts.repetition_table,
        verdicts.repetitions_section, figures=("figure5_repetitions",),
        definitions=("repetitions.median_mean_p90_p99", "repetitions.block",
                     "repetitions.share_baseline_p")),
    SectionSpec(
        "figures", "Figures 1 and 2 — RTT distributions", evidence.box_table,
        evidence.figures_section, figures=("figure1_rtt_distributions", "figure2_rtt_cdf")),
    SectionSpec(
        "distribution", "Percentiles and confidence intervals", evidence.percentile_table,
        evidence.distribution_section,
        definitions=("distribution.px", "distribution.median_typical_repetition_median",
                     "distribution.mean", "distribution.t_ci",
                     "distribution.two_level_bootstrap_ci")),
    SectionSpec(
        "closeness", "Closeness to the baseline", evidence.closeness_table,
        evidence.closeness_section,
        definitions=("closeness.share_baseline_p", "closeness.lowest_rep_highest_rep",
                     "closeness.one_minus_d")),
    SectionSpec(
        "pairs", "Pairwise verdicts", verdicts.pair_table, verdicts.pairwise_section,
        definitions=(*OUTCOMES, "pairs.design_blocks", "pairs.typical_a_b", "pairs.effect_log",
                     "pairs.effect_us", "pairs.between_rep_sd", "pairs.difference_p",
                     "pairs.tost_p", "pairs.holm", "pairs.power_now", SETTLE,
                     "pairs.equivalence_group")),
    SectionSpec(
        "costs", "Per-packet costs", evidence.costs_tables, evidence.costs_section,
        figures=("figure3_costs",),
        definitions=("costs.metric", "costs.host", "costs.mean_min_max_std")),
    SectionSpec(
        "throughput", throughput.THROUGHPUT_TITLE, throughput.ndr_pdr,
        throughput.throughput_section,
        figures=("figure6_search_trials", "figure7_rtt_under_load"),
        definitions=("search.ndr_no_drop_rate", "search.pdr_partial_drop_rate",
                     "search.valid_trial", "search.mean", "search.level_ci",
                     "search.kframes_s_mbit_s", "search.at_least", "search.below_min_left_out",
                     "search.max_achieved", "search.fell_short_overshot",
                     "search.other_invalid", "search.limit_learned", "search.searches_limited",
                     "load.latency_under_load", "load.invalid_load_points_left_out",
                     "load.rtt_p50_p99", "load.offered", "load.probe_loss")),
    SectionSpec(
        "competing", competing.COMPETING_TITLE, competing.data, competing.section,
        figures=competing.FIGURES, definitions=competing.DEFINITIONS, when=competing.shown),
    SectionSpec(
        "comparison", "Comparison with earlier campaigns", comparison.compare,
        comparison.comparison_section, figures=("figure4_trend",),
        definitions=("comparison.median_then_now", "comparison.change",
                     "comparison.between_night_sd", "comparison.median_p", "comparison.tost_p",
                     "comparison.loss", "comparison.verdict"),
        when=_comparing),
    SectionSpec(
        "metadata", "Campaign metadata", metadata.scenario_table, metadata.metadata_section),
)


def build_sections(ctx: Context) -> tuple[list[Section], dict[str, Any]]:
    """The report's sections in order, and each shown section's data by key."""
    sections: list[Section] = []
    data: dict[str, Any] = {}
    for spec in SECTIONS:
        if not spec.when(ctx):
            continue
        data[spec.key] = spec.data(ctx)
        built = spec.render(ctx, data[spec.key])
        sections += built if isinstance(built, list) else [built]
    return sections, data
