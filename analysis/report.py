"""Assemble the report of one campaign: tables, statistics, figures, and the comparison.

``build_report`` reads a campaign (and, for ``compare``, older ones), runs the
statistics, draws the figures and writes ``<results>/report/`` (or ``out``):
``report.md``, a self-contained ``index.html``, ``tables/*.csv`` and
``figures/*.png|svg``. The whole folder is written next to its final place
and swapped in at the end, so a failed run leaves the previous report intact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis import plots, replication
from analysis.document import to_html, to_markdown
from analysis.load import Campaign, InputError, load_campaign
from analysis.model import rtt_samples, samples_by_scenario
from analysis.report_context import Context, Options, UsageError, analyse
from analysis.report_folder import TargetError, check_target, staged
from analysis.sections import build_sections


@dataclass(frozen=True)
class Outcome:
    out: Path
    comparison: pd.DataFrame

    @property
    def regressed(self) -> pd.DataFrame:
        if self.comparison.empty:
            return self.comparison
        return self.comparison.loc[self.comparison["verdict"] == "regressed"]

    @property
    def comparison_outcome(self) -> str:
        """regressed, inconclusive or unchanged (:func:`replication.comparison_outcome`)."""
        return replication.comparison_outcome(self.comparison)


def choose_baseline(campaign: Campaign, with_data: Sequence[str], requested: str | None) -> str:
    """The requested scenario; else the first with virtualization 'none'; else the first."""
    if requested is not None:
        if requested not in campaign.scenario_order:
            raise UsageError(f"--baseline {requested!r}: no such scenario in the manifest")
        if requested not in with_data:
            raise UsageError(f"--baseline {requested!r}: scenario has no RTT data")
        return requested
    bare = campaign.scenarios.loc[campaign.scenarios["virtualization"] == "none", "scenario"]
    for name in bare:
        if name in with_data:
            return name
    return with_data[0] if with_data else ""


def build_report(options: Options) -> Outcome:
    campaign = load_campaign(options.results)
    out = Path(options.out) if options.out else campaign.path / "report"
    try:
        check_target(out)
    except TargetError as exc:
        raise UsageError(str(exc)) from None
    seed = options.seed if options.seed is not None else int(campaign.parameters.get("seed") or 0)
    order = campaign.scenario_order
    samples = rtt_samples(campaign.rtt, order)
    with_data = list(samples_by_scenario(samples))
    baseline = choose_baseline(campaign, with_data, options.baseline)
    colors = plots.scenario_colors(order)

    with staged(out) as work:
        ctx = Context(campaign, options, samples, baseline, colors, seed, work,
                      analyse(campaign, options, baseline, seed))
        sections, data = build_sections(ctx)
        comparison = data.get("comparison", {}).get(
            "comparison", pd.DataFrame(columns=replication.COMPARISON_COLUMNS))
        title = f"kvmnetlab report — campaign {campaign.campaign_id}"
        (work / "report.md").write_text(to_markdown(title, sections), encoding="utf-8")
        (work / "index.html").write_text(to_html(title, sections, work), encoding="utf-8")
    return Outcome(out, comparison)


__all__ = ["InputError", "Options", "Outcome", "UsageError", "build_report"]
