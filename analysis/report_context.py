"""What every section of the report shares: the options, the statistics computed once,
and the context the sections are built in (where their tables and figures go).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import definitions, plots, replication, stats
from analysis.document import Definitions, Image
from analysis.load import Campaign
from analysis.model import rtt_by_repetition


class UsageError(ValueError):
    """An analysis option does not fit the campaign (e.g. an unknown baseline)."""


@dataclass(frozen=True)
class Options:
    results: Path
    out: Path | None = None
    margin: stats.Margin = field(default_factory=stats.Margin)
    percentile: float = 90.0
    confidence: float = 0.95
    compare: tuple[Path, ...] = ()
    history: Path | None = None  # nights to estimate the between-night variation from
    prior: bool = True  # without a history, judge by the prior between-night sd (else refuse)
    regression_threshold_pct: float = 10.0
    loss_threshold_pp: float = 1.0
    log_x: bool = False
    baseline: str | None = None
    resamples: int = stats.DEFAULT_RESAMPLES
    seed: int | None = None
    percentiles: tuple[float, ...] = stats.DEFAULT_PERCENTILES


@dataclass
class Analysis:
    """Everything the sections share, computed once: the repetition-level statistics."""

    by_rep: dict[str, dict[int, Any]]
    reps: pd.DataFrame  # replication.repetition_summary
    intervals: pd.DataFrame  # replication.scenario_intervals
    pairs: pd.DataFrame  # replication.pairwise_verdicts
    threshold_us: float  # the baseline's pP
    shares: pd.DataFrame  # replication.closeness_by_repetition
    closeness: pd.DataFrame  # replication.closeness_summary + 1 - D
    claims: pd.DataFrame  # replication.judge_claims


def analyse(campaign: Campaign, o: Options, baseline: str, seed: int) -> Analysis:
    order = campaign.scenario_order
    by_rep = rtt_by_repetition(campaign.rtt, order)
    blocks = campaign.blocks
    reps = replication.repetition_summary(by_rep, blocks)
    intervals = replication.scenario_intervals(by_rep, confidence=o.confidence,
                                               n_resamples=o.resamples, seed=seed)
    pairs = replication.pairwise_verdicts(reps, margin=o.margin, confidence=o.confidence,
                                          order=order, baseline=baseline,
                                          controls=campaign.controls)
    threshold, shares = replication.closeness_by_repetition(by_rep, baseline, o.percentile,
                                                            blocks)
    close = replication.closeness_summary(shares, o.confidence)
    claims = replication.judge_claims(replication.SEED_CLAIMS, pairs, shares, margin=o.margin,
                                      confidence=o.confidence)
    return Analysis(by_rep, reps, intervals, pairs, threshold, shares, close, claims)


@dataclass
class Context:
    campaign: Campaign
    options: Options
    samples: pd.DataFrame
    baseline: str
    colors: dict[str, Any]
    seed: int
    work: Path
    result: Analysis
    cache: dict[str, Any] = field(default_factory=dict)  # data computed once, used twice

    def csv(self, frame: pd.DataFrame, name: str) -> str:
        frame.to_csv(self.work / "tables" / f"{name}.csv", index=False)
        return name

    def figure(self, fig: Any, name: str, caption: str) -> Image:
        paths = plots.save(fig, self.work / "figures", name)
        return Image(paths["png"].relative_to(self.work), caption)

    @property
    def alpha(self) -> float:
        return 1.0 - self.options.confidence

    @property
    def level(self) -> str:
        """The confidence level in words, e.g. '95 %'."""
        return f"{100 * self.options.confidence:g} %"

    def define(self, *keys: str, **facts: Any) -> Definitions:
        """The definitions of ``keys`` (analysis.definitions), with this report's settings."""
        return definitions.define(keys, {**definitions.wording(self.options, self.seed,
                                                                 self.baseline), **facts})
