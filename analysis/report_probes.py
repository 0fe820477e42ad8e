"""The report's probe agreement section: ping's idle RTT against fping's (and sockperf's,
where the campaign ran it), per scenario, from analysis.probes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis import probes
from analysis.document import Para, Section, Table, integer, num, text
from analysis.report_context import Context
from analysis.report_evidence import status_cols

PROBES_TITLE = "Probe agreement — ping and fping"
DEFINITIONS = ("probes.interleaving", "probes.p50_of_a_repetition", "probes.ping_fping_p50",
               "probes.ratio", "probes.disagree", "probes.sockperf")


def agreement(ctx: Context) -> dict[str, pd.DataFrame]:
    """The per-repetition p50s and the per-scenario table (with number and status)."""
    c = ctx.campaign
    by_rep = probes.agreement_by_repetition(c.rtt, c.fping_rtt)
    table = probes.agreement_table(c.scenario_order, by_rep, c.fping_rtt is not None,
                                   c.sockperf)
    table = c.scenarios[["scenario", "number", "status"]].merge(table, on="scenario",
                                                               how="left")
    table["sockperf_statistic"] = table["sockperf_statistic"].map(
        lambda s: ", ".join(probes.STATISTIC_WORDS.get(p, p) for p in s.split(", ")) if s
        else "")
    return {"repetitions": by_rep, "scenarios": table}


def _facts(ctx: Context) -> dict[str, Any]:
    interval = ctx.campaign.parameters.get("ping_interval_s")
    return {"interval": f"{interval:g} s" if interval else "not recorded",
            "offset": f"{interval / 2:g} s (half an interval)" if interval
            else "half an interval",
            "threshold_pct": 100 * probes.THRESHOLD}


def probes_section(ctx: Context, data: dict[str, pd.DataFrame]) -> Section:
    c = ctx.campaign
    table = data["scenarios"]
    ctx.csv(data["repetitions"], "probe_agreement_repetitions")
    blocks: list[Any] = []
    if c.fping_rtt is None:
        blocks.append(Para(
            "fping was not collected in this campaign (data/fping_rtt.parquet absent or "
            "empty): ping's idle RTT has no independent check here."))
    else:
        flagged = table.loc[table["disagree"].fillna(False).astype(bool), "scenario"].tolist()
        blocks.append(Para(
            "Idle RTT from ping (data/rtt.parquet) and from fping run beside it "
            "(data/fping_rtt.parquet), one p50 per repetition, then the median over "
            "repetitions. "
            + (f"Disagreement above {100 * probes.THRESHOLD:g} %: {', '.join(flagged)}."
               if flagged else
               f"No scenario disagrees by more than {100 * probes.THRESHOLD:g} %.")
            + " Every repetition's p50s: tables/probe_agreement_repetitions.csv."))
    if c.sockperf is None:
        blocks.append(Para("sockperf was not run in this campaign (kvmnetlab_sockperf off)."))
    blocks += [
        Table(
            table,
            [*status_cols(), ("repetitions", "reps", integer),
             ("ping_p50_us", "ping p50 (µs)", num), ("fping_p50_us", "fping p50 (µs)", num),
             ("ratio", "ratio fping/ping", num), ("verdict", "verdict", text),
             ("sockperf_p50_us", "sockperf p50 (µs, UDP)", num),
             ("sockperf_statistic", "sockperf statistic", text)],
            "Probe agreement: idle RTT p50 (µs) per scenario, median over repetitions",
            ctx.csv(table, "probe_agreement"),
        ),
        ctx.define(*DEFINITIONS, **_facts(ctx)),
    ]
    return Section(PROBES_TITLE, blocks)
