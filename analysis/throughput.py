"""The throughput search's tables: NDR and PDR, the generator's calibration, RTT under load.

Pure functions from the campaign's frames (data/throughput.parquet,
data/search_trials.parquet, data/rtt_load.parquet; collectors/throughput.py) to
tidy frames, plus the few texts the report shows for them. Every statistic across
repetitions treats the repetition as the unit: a value per repetition first (its
search's NDR, its load point's RTT percentile), then their mean and a Student t
interval. Trials are never pooled across repetitions.

Rates are in frames/s (``_pps``), kilo-frames/s (``_kpps``) or Mbit/s (``_mbps``: the
frames' bits, rate x frame_bytes x 8 / 1e6, frames without CRC, preamble or gap).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.document import num

KINDS = (("ndr", "NDR"), ("pdr", "PDR"))
#: why a search ended, as the report says it
STATUS_TEXT = {
    "found": "found",
    "at_max": "at the maximum searched",
    "generator_limited": "generator-limited",
    "below_min": "below the minimum searched",
    "budget": "out of trials",
}
#: statuses whose rate is a lower bound: nothing failed above it (at_max, generator-limited)
#: or the bounds were not resolved within the granularity when the trials ran out
LOWER_BOUND = frozenset({"at_max", "generator_limited", "budget"})
FELL_SHORT = "generator fell short"
OVERSHOT = "generator overshot"

_KEYS = ["number", "scenario", "status"]


def kpps(pps: float | np.ndarray | pd.Series) -> float | np.ndarray | pd.Series:
    """Frames/s in kilo-frames/s."""
    return pps / 1e3


def mbps(pps: float | np.ndarray | pd.Series, frame_bytes: float | np.ndarray | pd.Series):
    """The frames' bit rate in Mbit/s: rate x frame_bytes x 8 / 1e6 (without CRC, preamble
    and inter-frame gap: the frame as the generator builds it)."""
    return pps * frame_bytes * 8 / 1e6


def mean_ci(values: np.ndarray | pd.Series, confidence: float = 0.95,
            floor: float | None = None) -> tuple[float, float, float]:
    """Mean of the per-repetition ``values`` and its Student t interval (df = n - 1),
    the lower end clipped at ``floor`` when given (a rate or an RTT is never negative).

    NaN values are left out. (NaN, NaN, NaN) without values; the ends are NaN with one.
    """
    y = np.asarray(values, dtype=float)
    y = y[np.isfinite(y)]
    if y.size == 0:
        return math.nan, math.nan, math.nan
    m = float(y.mean())
    if y.size < 2:
        return m, math.nan, math.nan
    half = float(sps.t.ppf(0.5 + confidence / 2, y.size - 1) * y.std(ddof=1)
                 / math.sqrt(y.size))
    low = m - half if floor is None else max(floor, m - half)
    return m, low, m + half


def _text_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    return frame.assign(**{c: frame[c].astype(str) for c in columns if c in frame})


def _position(scenarios: pd.DataFrame) -> dict[str, int]:
    return {name: i for i, name in enumerate(scenarios["scenario"])}


# --------------------------------------------------------------------------- NDR and PDR

RESULT_COLUMNS = ["scenario", "repetition", "host", "backend", "frame_bytes", "rate", "pps",
                  "upper_pps", "status", "min_pps", "max_pps", "pdr_loss_ratio", "granularity"]


def search_results(throughput: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (scenario, repetition, rate): ``rate`` NDR or PDR, ``pps`` its value
    (NaN when the search found none), ``upper_pps`` the lowest rate that failed, ``status``
    why the search ended."""
    if throughput is None or throughput.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    t = _text_columns(throughput, ("scenario", "host", "backend"))
    parts = []
    for kind, label in KINDS:
        part = t[["scenario", "repetition", "host", "backend", "frame_bytes", "min_pps",
                  "max_pps", "pdr_loss_ratio", "granularity"]].copy()
        part["rate"] = label
        part["pps"] = t[f"{kind}_pps"].astype(float)
        part["upper_pps"] = t[f"{kind}_upper_pps"].astype(float)
        part["status"] = t[f"{kind}_status"].astype(str)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["scenario", "frame_bytes", "rate", "repetition"],
                           kind="stable").reset_index(drop=True)[RESULT_COLUMNS]


def rate_text(pps: float, status: str, min_pps: float) -> str:
    """One search's rate in kframes/s as the report shows it: ``≥ x`` when it is a lower
    bound, ``< min`` when even the minimum searched lost, else the value."""
    if pd.notna(pps):
        return ("≥ " if status in LOWER_BOUND else "") + num(kpps(float(pps)))
    if status == "below_min":
        return f"< {num(kpps(float(min_pps)))}"
    return f"no result ({STATUS_TEXT.get(status, status)})"


def status_counts(statuses: pd.Series) -> str:
    """``found in all 5``, or each status with its count: ``generator-limited in 3 of 5,
    found in 2 of 5`` (the most frequent first)."""
    n = len(statuses)
    if n == 0:
        return ""
    counts = statuses.astype(str).value_counts(sort=False)
    if set(counts.index) == {"found"}:
        return f"found in all {n}"
    order = sorted(counts.index, key=lambda s: (-counts[s], list(STATUS_TEXT).index(s)
                                                if s in STATUS_TEXT else len(STATUS_TEXT)))
    return ", ".join(f"{STATUS_TEXT.get(s, s)} in {counts[s]} of {n}" for s in order)


NDR_PDR_COLUMNS = [
    *_KEYS, "frame_bytes", "backend", "rate", "searches", "with_result", "below_min",
    "no_result", "lower_bound", "mean_pps", "ci_low_pps", "ci_high_pps", "mean_kpps",
    "ci_low_kpps", "ci_high_kpps", "mean_mbps", "ci_low_mbps", "ci_high_mbps", "min_pps",
    "max_pps", "pdr_loss_ratio", "statuses", "per_repetition", "censored", "median_low_pps",
    "median_high_pps",
]


def search_bounds(pps: float, status: str, min_pps: float) -> tuple[float, float]:
    """What one search says about its rate, as an interval (frames/s): found, [x, x]; a
    lower bound (:data:`LOWER_BOUND`), [x, inf); below the minimum searched, [0, min);
    no rate at all, [0, inf)."""
    if pd.notna(pps):
        return (float(pps), math.inf) if status in LOWER_BOUND else (float(pps), float(pps))
    if status == "below_min":
        return 0.0, float(min_pps)
    return 0.0, math.inf


def censored_median(bounds: list[tuple[float, float]]) -> tuple[float, float]:
    """Bounds on the median of interval-censored values: every value lies in its [low,
    high], so the median lies between the median of the lows and the median of the
    highs (the order statistics are monotone in each value). Equal bounds: the median
    is known exactly, however many values are censored."""
    if not bounds:
        return math.nan, math.nan
    lows, highs = np.array(bounds, dtype=float).T
    return float(np.median(lows)), float(np.median(highs))


def ndr_pdr_table(scenarios: pd.DataFrame, throughput: pd.DataFrame | None,
                  confidence: float = 0.95) -> pd.DataFrame:
    """NDR and PDR per scenario (and frame size): mean over the repetitions whose search
    found a rate, with its t interval over them (clipped at 0), in frames/s, kframes/s and
    Mbit/s.

    ``censored``, ``median_low_pps``, ``median_high_pps``: the searches whose rate is
    not known exactly (a lower bound, below the minimum, no rate), and the bounds of
    the median over every search (:func:`censored_median`), the summary the report
    shows when any is censored (the mean below leaves censored searches out or
    averages lower bounds). ``searches``: repetitions with a search; ``with_result``:
    those with a rate (the mean's n); ``below_min``: those where even the minimum
    searched lost (shown as ``< min``), ``no_result``: those that ran out of trials
    before any rate passed; both are left out of the mean. ``lower_bound``: at least
    one repetition's rate is a lower bound (:data:`LOWER_BOUND`), so the mean is one
    too.
    Every manifest scenario keeps a row, empty when it has no search.
    """
    keys = scenarios[_KEYS].copy()
    results = search_results(throughput)
    rows = []
    for (name, size, rate), g in results.groupby(["scenario", "frame_bytes", "rate"],
                                                 sort=False):
        g = g.sort_values("repetition")
        has = g["pps"].notna()
        mean, low, high = mean_ci(g.loc[has, "pps"], confidence, floor=0.0)
        below = int((~has & (g["status"] == "below_min")).sum())
        rows.append({
            "scenario": name, "frame_bytes": int(size),
            "backend": ", ".join(dict.fromkeys(g["backend"])), "rate": rate,
            "searches": len(g), "with_result": int(has.sum()), "below_min": below,
            "no_result": int((~has).sum()) - below,
            "lower_bound": bool(g.loc[has, "status"].isin(LOWER_BOUND).any()),
            "mean_pps": mean, "ci_low_pps": low, "ci_high_pps": high,
            "min_pps": float(g["min_pps"].min()), "max_pps": float(g["max_pps"].max()),
            "pdr_loss_ratio": float(g["pdr_loss_ratio"].iloc[0]),
            "statuses": status_counts(g["status"]),
            "per_repetition": "; ".join(
                f"{r.repetition}: {rate_text(r.pps, r.status, r.min_pps)}"
                for r in g.itertuples()),
            "censored": int((g["status"] != "found").sum()),
            **dict(zip(("median_low_pps", "median_high_pps"), censored_median(
                [search_bounds(r.pps, r.status, r.min_pps) for r in g.itertuples()]),
                strict=True)),
        })
    found = pd.DataFrame(rows, columns=[c for c in NDR_PDR_COLUMNS if c not in _KEYS
                                        or c == "scenario"])
    for name in ("mean", "ci_low", "ci_high"):
        pps = found[f"{name}_pps"].astype(float)
        found[f"{name}_kpps"] = kpps(pps)
        found[f"{name}_mbps"] = mbps(pps, found["frame_bytes"].astype(float))
    out = keys.merge(found, on="scenario", how="left")
    position = _position(scenarios)
    out = out.assign(_p=out["scenario"].map(position),
                     _r=out["rate"].map({label: i for i, (_, label) in enumerate(KINDS)}))
    out = out.sort_values(["_p", "frame_bytes", "_r"], kind="stable").drop(columns=["_p", "_r"])
    for column in ("searches", "with_result", "below_min", "no_result", "censored"):
        out[column] = out[column].fillna(0).astype(int)
    out["lower_bound"] = out["lower_bound"].astype("boolean").fillna(False).astype(bool)
    return out.reset_index(drop=True)[NDR_PDR_COLUMNS]


def _in(pps: float, row: pd.Series | object, unit: str) -> float:
    return kpps(pps) if unit == "kpps" else mbps(pps, row.frame_bytes)


def median_text(row: pd.Series | object, unit: str = "kpps") -> str:
    """The censoring-aware summary of a row with censored searches: the median's bounds
    (:func:`censored_median`) in ``unit``: ``median x`` when they agree, ``median ≥ x``
    without an upper bound, ``median < x`` without a lower one, else ``median in [a, b]``."""
    low, high = row.median_low_pps, row.median_high_pps
    if pd.isna(low):
        return num(math.nan)
    if low == high:
        return f"median {num(_in(low, row, unit))}"
    if math.isinf(high):
        return f"median ≥ {num(_in(low, row, unit))}"
    if low == 0:
        return f"median < {num(_in(high, row, unit))}"
    return f"median in [{num(_in(low, row, unit))}, {num(_in(high, row, unit))}]"


def mean_text(row: pd.Series | object, unit: str = "kpps") -> str:
    """A row of :func:`ndr_pdr_table`'s summary in ``unit`` (kpps or mbps): the mean when
    every search found its rate; when any is censored (a lower bound, below the minimum,
    or no rate), the censoring-aware median (:func:`median_text`) instead, as a mean
    would leave out or understate the censored searches; — without any search."""
    if getattr(row, "censored", 0):
        return median_text(row, unit)
    value = getattr(row, f"mean_{unit}")
    if pd.notna(value):
        return ("≥ " if bool(row.lower_bound) else "") + num(value)
    if row.searches and row.below_min == row.searches:
        low = kpps(row.min_pps) if unit == "kpps" else mbps(row.min_pps, row.frame_bytes)
        return f"< {num(low)}"
    return num(math.nan)


def interval_text(low: float, high: float) -> str:
    """``[low, high]``, or — when there is no interval (fewer than two values)."""
    if pd.isna(low) or pd.isna(high):
        return num(math.nan)
    return f"[{num(low)}, {num(high)}]"


def excluded_text(row: pd.Series | object) -> str:
    """The repetitions left out of a mean, and why: ``1 < min``, ``1 out of trials``."""
    parts = []
    if row.below_min:
        parts.append(f"{row.below_min} < min")
    if row.no_result:
        parts.append(f"{row.no_result} without a rate (out of trials)")
    return ", ".join(parts)


def ndr_pdr_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`ndr_pdr_table` with the texts the report shows: ``mean_kpps_text``,
    ``ci_kpps_text``, ``mean_mbps_text``, ``ci_mbps_text``, ``excluded``."""
    out = table.copy()
    rows = list(table.itertuples())
    out["mean_kpps_text"] = [mean_text(r, "kpps") if r.searches else num(math.nan)
                             for r in rows]
    out["ci_kpps_text"] = [interval_text(r.ci_low_kpps, r.ci_high_kpps) if not r.censored
                           else num(math.nan) for r in rows]
    out["mean_mbps_text"] = [mean_text(r, "mbps") if r.searches else num(math.nan)
                             for r in rows]
    out["ci_mbps_text"] = [interval_text(r.ci_low_mbps, r.ci_high_mbps) if not r.censored
                           else num(math.nan) for r in rows]
    out["excluded"] = [excluded_text(r) for r in rows]
    return out


# --------------------------------------------------------------------------- the generator

CALIBRATION_COLUMNS = ["host", "backend", "frame_bytes", "searches", "trials", "invalid",
                       "fell_short", "overshot", "other_invalid", "max_achieved_pps",
                       "generator_max_pps", "searches_limited"]


def generator_calibration(trials: pd.DataFrame | None,
                          throughput: pd.DataFrame | None) -> pd.DataFrame:
    """Per sending host (and backend, frame size): what its generator achieved.

    ``max_achieved_pps``: the highest achieved rate (frames sent / the sender's own
    time) over all its trials, valid or not; ``fell_short``, ``overshot``: the trials
    invalid because the generator fell short of the offered rate or overshot it by more
    than the tolerance (their ``invalid_reason``), ``other_invalid`` the other invalid
    trials (more frames counted than sent, a tool's output missing, a tool that failed);
    ``generator_max_pps``: the highest limit a search learned from trials sent flat
    out; ``searches_limited``: the searches whose NDR or PDR is generator-limited.
    """
    if trials is None or trials.empty:
        return pd.DataFrame(columns=CALIBRATION_COLUMNS)
    t = _text_columns(trials, ("scenario", "host", "backend"))
    reason = t["invalid_reason"].fillna("").astype(str)
    valid = t["valid"].astype(bool)
    t = t.assign(invalid=~valid, fell_short=~valid & reason.str.startswith(FELL_SHORT),
                 overshot=~valid & reason.str.startswith(OVERSHOT))
    t["other_invalid"] = t["invalid"] & ~t["fell_short"] & ~t["overshot"]
    by = ["host", "backend", "frame_bytes"]
    g = t.groupby(by, sort=True)
    out = pd.DataFrame({
        "trials": g.size(),
        "invalid": g["invalid"].sum(),
        "fell_short": g["fell_short"].sum(),
        "overshot": g["overshot"].sum(),
        "other_invalid": g["other_invalid"].sum(),
        "max_achieved_pps": g["achieved_pps"].max(),
        "searches": t[[*by, "scenario", "repetition"]].drop_duplicates().groupby(
            by, sort=True).size(),
    }).reset_index()
    if throughput is not None and not throughput.empty:
        s = _text_columns(throughput, ("host", "backend"))
        limited = (s["ndr_status"].astype(str) == "generator_limited") | (
            s["pdr_status"].astype(str) == "generator_limited")
        sg = s.assign(limited=limited).groupby(by, sort=True)
        learned = pd.DataFrame({"generator_max_pps": sg["generator_max_pps"].max(),
                                "searches_limited": sg["limited"].sum()}).reset_index()
        out = out.merge(learned, on=by, how="left")
    else:
        out["generator_max_pps"] = math.nan
        out["searches_limited"] = 0
    for column in ("trials", "invalid", "fell_short", "overshot", "other_invalid", "searches",
                   "searches_limited"):
        out[column] = out[column].fillna(0).astype(int)
    out["max_achieved_pps"] = out["max_achieved_pps"].astype(float)
    out["generator_max_pps"] = out["generator_max_pps"].astype(float)
    return out[CALIBRATION_COLUMNS]


# --------------------------------------------------------------------------- the trials

TRIAL_POINT_COLUMNS = ["scenario", "repetition", "trial", "phase", "offered_pps",
                       "offered_kpps", "loss_pct"]


def trial_points(trials: pd.DataFrame | None) -> pd.DataFrame:
    """The valid search and validation trials: offered rate and loss (%), one row each
    (Figure 6). Invalid trials have no loss; load points are not the search's."""
    if trials is None or trials.empty:
        return pd.DataFrame(columns=TRIAL_POINT_COLUMNS)
    t = _text_columns(trials, ("scenario",))
    keep = t["valid"].astype(bool) & t["phase"].astype(str).isin(("search", "validation"))
    t = t.loc[keep]
    out = t[["scenario", "repetition", "trial", "phase", "offered_pps"]].assign(
        phase=t["phase"].astype(str), offered_kpps=kpps(t["offered_pps"].astype(float)),
        loss_pct=100.0 * t["loss_ratio"].astype(float))
    return out.reset_index(drop=True)[TRIAL_POINT_COLUMNS]


# --------------------------------------------------------------------------- RTT under load

LOAD_POINT_COLUMNS = ["scenario", "repetition", "fraction", "offered_pps", "load_valid",
                      "probes", "answered", "p50_us", "p99_us", "loss_pct"]


def load_points(rtt_load: pd.DataFrame | None) -> pd.DataFrame:
    """One row per load point (scenario, repetition, fraction of the PDR): its offered
    rate, whether its load was valid, its probes, and the p50 and p99 (type 7) of its
    answered probes' RTT, and their loss (%)."""
    if rtt_load is None or rtt_load.empty:
        return pd.DataFrame(columns=LOAD_POINT_COLUMNS)
    r = _text_columns(rtt_load, ("scenario",))
    rows = []
    for (name, rep, fraction), g in r.groupby(["scenario", "repetition", "fraction"],
                                              sort=True):
        answered = g["answered"].to_numpy(dtype=bool)
        x = g["rtt_us"].to_numpy(dtype=float)[answered]
        rows.append({
            "scenario": name, "repetition": int(rep), "fraction": float(fraction),
            "offered_pps": float(g["offered_pps"].mean()),
            "load_valid": bool(g["load_valid"].astype(bool).all()),
            "probes": len(g), "answered": int(answered.sum()),
            "p50_us": float(np.quantile(x, 0.5)) if x.size else math.nan,
            "p99_us": float(np.quantile(x, 0.99)) if x.size else math.nan,
            "loss_pct": 100.0 * (len(g) - int(answered.sum())) / len(g),
        })
    return pd.DataFrame(rows, columns=LOAD_POINT_COLUMNS)


LATENCY_COLUMNS = ["scenario", "fraction", "repetitions", "excluded_invalid",
                   "offered_kpps", "p50_us", "p50_ci_low_us", "p50_ci_high_us", "p99_us",
                   "p99_ci_low_us", "p99_ci_high_us", "loss_pct"]


def latency_under_load(scenarios: pd.DataFrame, rtt_load: pd.DataFrame | None,
                       idle: pd.DataFrame | None = None, idle_loss: pd.DataFrame | None = None,
                       confidence: float = 0.95) -> pd.DataFrame:
    """RTT p50 and p99 (µs) per scenario and load fraction, each the mean over the
    repetitions of that repetition's percentile, with its t interval (clipped at 0); the
    loss of the
    probes (%), the mean of the repetitions' losses; the offered rate (kframes/s), the
    mean of the repetitions' load points.

    Load points whose load was invalid are left out and counted in
    ``excluded_invalid``. ``idle`` (scenario, repetition, median_us, p99_us: the seed's
    ping, replication.repetition_summary) and ``idle_loss`` (scenario, repetition,
    loss_pct) give the row at fraction 0, for the scenarios with load points.
    """
    points = load_points(rtt_load)
    if points.empty:
        return pd.DataFrame(columns=LATENCY_COLUMNS)
    rows = []

    def row(name, fraction, g, excluded, offered):
        p50 = mean_ci(g["p50_us"], confidence, floor=0.0)
        p99 = mean_ci(g["p99_us"], confidence, floor=0.0)
        loss = g["loss_pct"].astype(float)
        return {"scenario": name, "fraction": fraction, "repetitions": len(g),
                "excluded_invalid": excluded, "offered_kpps": offered,
                "p50_us": p50[0], "p50_ci_low_us": p50[1], "p50_ci_high_us": p50[2],
                "p99_us": p99[0], "p99_ci_low_us": p99[1], "p99_ci_high_us": p99[2],
                "loss_pct": float(loss.mean()) if loss.notna().any() else math.nan}

    for name in points["scenario"].drop_duplicates():
        if idle is not None and not idle.empty:
            base = idle.loc[idle["scenario"].astype(str) == name]
            base = base.rename(columns={"median_us": "p50_us"})[["repetition", "p50_us",
                                                                  "p99_us"]]
            if idle_loss is not None and not idle_loss.empty:
                lost = idle_loss.loc[idle_loss["scenario"].astype(str) == name,
                                     ["repetition", "loss_pct"]]
                base = base.merge(lost, on="repetition", how="left")
            else:
                base = base.assign(loss_pct=math.nan)
            if not base.empty:
                rows.append(row(name, 0.0, base, 0, 0.0))
        mine = points.loc[points["scenario"] == name]
        for fraction, g in mine.groupby("fraction", sort=True):
            ok = g.loc[g["load_valid"]]
            offered = float(kpps(ok["offered_pps"].mean())) if len(ok) else math.nan
            rows.append(row(name, float(fraction), ok, int((~g["load_valid"]).sum()), offered))
    out = pd.DataFrame(rows, columns=LATENCY_COLUMNS)
    position = _position(scenarios)
    out = out.assign(_p=out["scenario"].map(position).fillna(len(position)))
    return out.sort_values(["_p", "fraction"], kind="stable").drop(columns="_p").reset_index(
        drop=True)
