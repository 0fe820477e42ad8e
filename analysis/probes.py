"""Probe agreement: ping's idle RTT against fping's, the independent probe beside it.

Pure functions, DataFrames in and DataFrames out. The repetition is the unit: each
tool's RTT is reduced to one p50 per repetition (the median of its answered probes,
µs), and a scenario is shown by the median of those over its repetitions. The ratio
is fping's over ping's; a scenario whose ratio is more than ``threshold`` away from 1
(|fping / ping - 1| > 10 % by default) is flagged. sockperf's UDP ping-pong, where the
campaign ran it, is shown beside them with the statistic its output reported (RTT, or
sockperf's default RTT/2), never compared: it is another protocol.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: |fping / ping - 1| above this is a disagreement
THRESHOLD = 0.10
KEY = ["scenario", "repetition"]
REPETITION_COLUMNS = ["scenario", "repetition", "ping_n", "ping_p50_us", "fping_n",
                      "fping_p50_us", "ratio"]
COLUMNS = ["scenario", "repetitions", "ping_p50_us", "fping_p50_us", "ratio", "disagree",
           "verdict", "sockperf_repetitions", "sockperf_p50_us", "sockperf_statistic"]
NOT_COLLECTED = "fping not collected"
STATISTIC_WORDS = {"rtt": "RTT", "half_rtt": "RTT/2 (one-way latency)"}


def p50_by_repetition(rtt: pd.DataFrame | None, tool: str) -> pd.DataFrame:
    """One row per (scenario, repetition) with answered probes: ``<tool>_n`` (answered
    probes) and ``<tool>_p50_us`` (their median RTT, µs)."""
    columns = [*KEY, f"{tool}_n", f"{tool}_p50_us"]
    if rtt is None or rtt.empty:
        return pd.DataFrame(columns=columns)
    answered = rtt.loc[rtt["answered"] & np.isfinite(rtt["rtt_us"]), [*KEY, "rtt_us"]]
    answered = answered.assign(scenario=answered["scenario"].astype(str))
    grouped = answered.groupby(KEY, observed=True)["rtt_us"]
    out = pd.DataFrame({f"{tool}_n": grouped.size(), f"{tool}_p50_us": grouped.median()})
    return out.reset_index()[columns]


def agreement_by_repetition(rtt: pd.DataFrame | None,
                            fping_rtt: pd.DataFrame | None) -> pd.DataFrame:
    """Per (scenario, repetition): each tool's p50 (µs) and fping's over ping's (``ratio``,
    NaN where fping has no answered probe in that repetition)."""
    ping = p50_by_repetition(rtt, "ping")
    fping = p50_by_repetition(fping_rtt, "fping")
    both = ping.merge(fping, on=KEY, how="outer").sort_values(KEY, kind="stable")
    both["ratio"] = both["fping_p50_us"] / both["ping_p50_us"]
    for column in ("ping_n", "fping_n"):
        both[column] = both[column].fillna(0).astype(int)
    return both.reset_index(drop=True)[REPETITION_COLUMNS]


def disagrees(ratio: float, threshold: float = THRESHOLD) -> bool:
    """Whether fping's p50 is more than ``threshold`` (a fraction) away from ping's (a
    ratio of exactly 1 ± threshold, to rounding, agrees)."""
    return bool(np.isfinite(ratio) and abs(ratio - 1.0) - threshold > 1e-9)


def sockperf_by_scenario(sockperf: pd.DataFrame | None) -> pd.DataFrame:
    """Per scenario: repetitions sockperf ran, the median over them of its p50 (µs), and
    the statistic its output reported (``rtt``, ``half_rtt``, or both, comma-joined)."""
    columns = ["scenario", "sockperf_repetitions", "sockperf_p50_us", "sockperf_statistic"]
    if sockperf is None or sockperf.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    frame = sockperf.assign(scenario=sockperf["scenario"].astype(str))
    for scenario, group in frame.groupby("scenario", sort=False):
        per_rep = group.groupby("repetition")["p50_us"].median()
        rows.append({"scenario": scenario, "sockperf_repetitions": len(per_rep),
                     "sockperf_p50_us": float(per_rep.median()),
                     "sockperf_statistic": ", ".join(sorted(set(group["statistic"])))})
    return pd.DataFrame(rows, columns=columns)


def agreement_table(scenarios: list[str], by_rep: pd.DataFrame, fping_collected: bool,
                    sockperf: pd.DataFrame | None = None,
                    threshold: float = THRESHOLD) -> pd.DataFrame:
    """Per scenario (in ``scenarios`` order): the median over repetitions of each tool's
    p50 (µs), their ratio (fping / ping), ``disagree`` (|ratio - 1| > ``threshold``; NA
    where there is no ratio) and a ``verdict`` in words.

    Where fping has data, both medians are over the repetitions where both tools have
    answered probes (``repetitions`` counts them), so the two numbers describe the same
    repetitions; elsewhere ping's is over all its repetitions (counted instead) and
    fping's is missing (``verdict`` says whether fping was not collected in the
    campaign, or got no reply there).
    """
    rows = []
    for scenario in scenarios:
        reps = by_rep.loc[by_rep["scenario"] == scenario]
        paired = reps.loc[(reps["ping_n"] > 0) & (reps["fping_n"] > 0)]
        ping_only = reps.loc[reps["ping_n"] > 0]
        if not paired.empty:
            ping = float(paired["ping_p50_us"].median())
            fping = float(paired["fping_p50_us"].median())
            ratio = fping / ping if ping > 0 else float("nan")
            flag = disagrees(ratio, threshold)
            verdict = (f"disagree (> {100 * threshold:g} %)" if flag
                       else f"agree (within {100 * threshold:g} %)")
            if not np.isfinite(ratio):
                verdict = "no ratio (ping's p50 is 0)"
            count = len(paired)
        else:
            ping = float(ping_only["ping_p50_us"].median()) if not ping_only.empty \
                else float("nan")
            fping, ratio, flag, count = float("nan"), float("nan"), None, len(ping_only)
            if not fping_collected:
                verdict = NOT_COLLECTED
            elif ping_only.empty:
                verdict = "no RTT data"
            else:
                verdict = "no answered fping probe"
        rows.append({"scenario": scenario, "repetitions": count, "ping_p50_us": ping,
                     "fping_p50_us": fping, "ratio": ratio, "disagree": flag,
                     "verdict": verdict})
    table = pd.DataFrame(rows, columns=COLUMNS[:7])
    table["disagree"] = table["disagree"].astype("boolean")  # NA: nothing to compare
    extra = sockperf_by_scenario(sockperf)
    table = table.merge(extra, on="scenario", how="left")
    table["sockperf_repetitions"] = table["sockperf_repetitions"].fillna(0).astype(int)
    table["sockperf_statistic"] = table["sockperf_statistic"].fillna("")
    return table[COLUMNS]
