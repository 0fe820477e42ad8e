"""Variation between nights: across campaigns, the night (the campaign) is the unit.

Repetitions of one campaign share that night's conditions (the host's load, where
the guest's threads landed, the build under test), so two campaigns of an
unchanged lab differ by more than their repetitions' spread says. A campaign's
value of a metric is one draw of the night:

    y_night = mu + b_night + mean over its R repetitions of e_rep,
    b ~ (0, sigma_b^2) between nights,  e ~ (0, sigma_w^2) between repetitions,

so the difference of two campaigns' values has the variance
2 sigma_b^2 + s_new^2 / R_new + s_old^2 / R_old, and its standard error and
degrees of freedom follow from that (Welch-Satterthwaite over the three terms:
sigma_b^2 with the history's df, each campaign's repetition variance with R - 1).

Two metrics per scenario, on the scales the report compares them on:

- ``median``: the log of each repetition's median RTT (the night's value is the
  mean of those logs, the log of the geometric mean of repetition medians,
  :func:`analysis.replication.night_value`);
- ``loss``: each repetition's loss in %, compared in percentage points.

sigma_b^2 comes from a **history** (:func:`analysis.nights.read_nights`): either
the nightly driver's catalog ``<dir>/nights.parquet`` (its done nights of the
newest segment, :func:`analysis.history.segments`) or, when the folder has no catalog,
every campaign folder directly inside it (a folder with ``manifest.json``).
Per scenario and metric with at least :data:`MIN_NIGHTS` nights, the
method-of-moments estimate (:func:`components`)

    sigma_b^2 = max(0, var(night values) - mean(s_k^2 / R_k)),   df = nights - 1.

The history's estimate is pooled with the prior's, weighted by their df
(:func:`component_for`). Without a history (or for a scenario the history has
too few nights of), the **prior** :data:`PRIOR` alone is used: the
between-night sd measured on the three campaigns of one unchanged lab stored in
tests/analysis_data/campaigns/
(calib10, quickstart1, small2, every guest scenario of the embedded lab
pooled, as they all resolve to one configuration there), with df = 2 (three
campaigns). ``prior=None`` refuses instead: every comparison is then
inconclusive, and says why.

Pure functions (reading a history: :mod:`analysis.nights`). docs/analysis.md,
"Comparison of campaigns", has the rationale and the measured error rates
(bench/calibration_compare.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

METRICS = ("median", "loss")
# RTTs are positive; a repetition median of 0 µs (below ping's resolution) is taken as this
# before the log, so the log scale never sees 0 (analysis.replication uses the same).
LOG_FLOOR_US = 0.5
MIN_NIGHTS = 3
NIGHT_COLUMNS = ["night", "scenario", "metric", "mean", "within_var", "n_reps"]
COMPONENT_COLUMNS = ["scenario", "metric", "between_sd", "between_df", "nights",
                     "within_sd", "within_df"]


@dataclass(frozen=True)
class Component:
    """The between-night variation of one (scenario, metric), and where it comes from.

    ``between_sd`` on the metric's scale (log µs for ``median``, percentage
    points for ``loss``), ``between_df`` its degrees of freedom (inf: taken as
    known); ``within_sd``/``within_df``: the repetitions' sd, used for a campaign
    with a single repetition; ``source``: ``history`` (and ``nights``) or ``prior``.
    """

    between_sd: float
    between_df: float
    within_sd: float
    within_df: float
    source: str
    nights: int = 0

    def describe(self, metric: str) -> str:
        unit = "log" if metric == "median" else "points"
        where = (f"history of {self.nights} nights" if self.source == "history"
                 else "prior from 3 stored campaigns of one unchanged lab")
        return f"between-night sd {self.between_sd:.3g} ({unit}; {where}, df {self.between_df:g})"


# The prior: between-night and within-campaign sds measured on the three stored campaigns
# of the embedded lab (tests/analysis_data/campaigns/{calib10,quickstart1,small2}; every
# guest scenario pooled; tests/analysis/test_between_nights.py recomputes them).
PRIOR_SOURCE = "tests/analysis_data/campaigns/{calib10,quickstart1,small2}, guest scenarios"
PRIOR: dict[str, Component] = {
    "median": Component(between_sd=0.077, between_df=2.0, within_sd=0.125, within_df=37.0,
                        source="prior"),
    "loss": Component(between_sd=1.05, between_df=2.0, within_sd=2.0, within_df=37.0,
                      source="prior"),
}


# --------------------------------------------------------------------------- nights


def campaign_nights(night: str, reps: pd.DataFrame, loss: pd.DataFrame | None) -> pd.DataFrame:
    """One campaign's night values: per scenario, the mean, variance and count of its
    repetitions' log medians (``reps``: :func:`analysis.replication.repetition_summary`) and
    of their losses (``loss``: scenario, repetition, loss_pct; NaN repetitions left out)."""
    rows = []
    if not reps.empty:
        logs = reps.assign(y=np.log(np.maximum(reps["median_us"].to_numpy(dtype=float),
                                                LOG_FLOOR_US)))
        for name, g in logs.groupby("scenario", sort=False, observed=True):
            rows.append(_night_row(night, str(name), "median", g["y"].to_numpy(dtype=float)))
    if loss is not None and not loss.empty:
        clean = loss.dropna(subset=["loss_pct"])
        for name, g in clean.groupby("scenario", sort=False, observed=True):
            rows.append(_night_row(night, str(name), "loss", g["loss_pct"].to_numpy(dtype=float)))
    return pd.DataFrame(rows, columns=NIGHT_COLUMNS)


def _night_row(night: str, scenario: str, metric: str, y: np.ndarray) -> dict:
    return {"night": night, "scenario": scenario, "metric": metric, "mean": float(y.mean()),
            "within_var": float(y.var(ddof=1)) if y.size > 1 else math.nan, "n_reps": y.size}


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=NIGHT_COLUMNS)
    return pd.concat(frames, ignore_index=True)[NIGHT_COLUMNS]


# --------------------------------------------------------------------------- components


def components(nights: pd.DataFrame, min_nights: int = MIN_NIGHTS) -> pd.DataFrame:
    """Per (scenario, metric) with at least ``min_nights`` nights: the between-night sd
    (method of moments, at least 0), its df (nights - 1), and the pooled sd of repetitions
    within a night with its df."""
    rows = []
    for (name, metric), g in nights.groupby(["scenario", "metric"], sort=False):
        k = len(g)
        if k < min_nights:
            continue
        means = g["mean"].to_numpy(dtype=float)
        v = g["within_var"].to_numpy(dtype=float)
        n = g["n_reps"].to_numpy(dtype=float)
        has = np.isfinite(v) & (n > 1)
        noise = float(np.mean(v[has] / n[has])) if has.any() else 0.0
        between = max(0.0, float(means.var(ddof=1)) - noise)
        wdf = float((n[has] - 1).sum())
        wsd = math.sqrt(float(((n[has] - 1) * v[has]).sum()) / wdf) if wdf > 0 else math.nan
        rows.append({"scenario": str(name), "metric": metric, "between_sd": math.sqrt(between),
                     "between_df": float(k - 1), "nights": k, "within_sd": wsd,
                     "within_df": wdf})
    return pd.DataFrame(rows, columns=COMPONENT_COLUMNS)


def component_for(
    table: pd.DataFrame | None, scenario: str, metric: str,
    prior: dict[str, Component] | None = PRIOR,
) -> Component | None:
    """The between-night variation to judge (scenario, metric) by (None: none is known, the
    comparison cannot be judged).

    With a history row and a prior: the two variances pooled, weighted by their df
    (the prior counts as ``between_df`` nights' worth of evidence, so a short
    history that happens to show no variation does not make the night look
    exactly repeatable); with a history row alone (``prior=None``): the
    history's; without one: the prior's.
    """
    base = prior.get(metric) if prior is not None else None
    if table is not None and not table.empty:
        hit = table.loc[(table["scenario"] == scenario) & (table["metric"] == metric)]
        if not hit.empty:
            r = hit.iloc[0]
            sd, df = float(r["between_sd"]), float(r["between_df"])
            if base is not None:
                var = (df * sd**2 + base.between_df * base.between_sd**2) / (df + base.between_df)
                sd, df = math.sqrt(var), df + base.between_df
            return Component(sd, df, float(r["within_sd"]), float(r["within_df"]), "history",
                             int(r["nights"]))
    return base
