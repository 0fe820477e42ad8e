"""Trends of the nightly campaigns: from the history's tables to one record per series.

Pure computation, no HTML: :mod:`analysis.dashboard` draws and writes what this
module works out. It reads three frames built from the nightly history (the
catalog of night values, the segments and the change points; their columns are
listed in :func:`trend_summary`), puts every (scenario, metric) series in order
(:func:`prepare`: its nights, values, runs between change points and the trend of
each run) and computes, per series, the trend and its short- and long-term
change (:func:`summarise`, :func:`trend_summary`). Modelled on FD.io CSIT's
trending dashboard.

Time is counted in *recorded nights*: every night in the catalog, whatever its
outcome, in chronological order of its ``night`` string. "The last 7 nights"
are the last 7 recorded nights, ending at the newest one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis import changepoints, history

OUTCOMES = ("done", "failed", "skipped", "refused")
NOT_RUN = ("failed", "skipped", "refused")
CLASSES = ("regression", "progression", "normal")

CATALOG_COLUMNS = tuple(history.COLUMNS)
SEGMENT_COLUMNS = ("night", "segment", "segment_reason")
CHANGE_COLUMNS = tuple(changepoints.DETECT_COLUMNS)
SUMMARY_COLUMNS = (
    "scenario", "metric", "unit", "better", "segment", "last_night", "last_value", "last_sd",
    "last_n_reps", "trend", "trend_since", "trend_nights", "last_vs_trend_pct",
    "short_term_pct", "short_term_reference", "short_term_note", "long_term_pct",
    "long_term_best", "long_term_note", "regressions", "progressions", "classification",
)

# --------------------------------------------------------------------------- direction


def better(metric: str) -> int:
    """+1 when higher values of ``metric`` are better, -1 when lower are (the history's rule)."""
    return history.better(metric)


# --------------------------------------------------------------------------- preparation


def _with_columns(frame: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame() if frame is None else frame.copy()
    for column in columns:
        if column not in frame.columns:
            frame[column] = pd.Series(np.nan, index=frame.index, dtype=object)
    return frame


def missing(x: Any) -> bool:
    if x is None or x is pd.NA:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _pct(new: float, ref: float) -> float:
    """100 · (new - ref) / |ref|; NaN when either is missing or ref is 0."""
    if not (math.isfinite(new) and math.isfinite(ref)) or ref == 0:
        return math.nan
    return 100.0 * (new - ref) / abs(ref)


@dataclass
class Series:
    scenario: str
    metric: str
    unit: str
    better: int
    pos: np.ndarray  # index of each observation's night among the recorded nights
    nights: np.ndarray
    value: np.ndarray
    sd: np.ndarray
    n_reps: np.ndarray
    segment: np.ndarray
    group: np.ndarray  # runs between change points, numbered 0.. in order
    trend: np.ndarray  # mean of the observation's run
    run_start: int  # index of the first observation of the last segment's run
    changes: pd.DataFrame  # this series' change points, with "pos"
    outliers: pd.DataFrame | None = None  # this series' outlier nights, with "pos"


@dataclass
class History:
    nights: np.ndarray  # every recorded night, sorted
    outcomes: pd.DataFrame  # one row per night: night, started_at, campaign_id, outcome, reason
    segment_runs: pd.DataFrame  # segment, first_night, last_night, first_pos, nights, reason
    series: list[Series]
    changes: pd.DataFrame  # every change point, with "pos"
    scenarios: list[str]
    lab_hashes: list[str]
    outliers: pd.DataFrame | None = None  # every outlier night (kind "outlier"), with "pos"

    def pos(self, nights: Any) -> np.ndarray:
        """Index among recorded nights (a night not recorded: the first recorded after it)."""
        return np.searchsorted(self.nights, np.asarray(nights, dtype=object), side="left")


def prepare(
    catalog: pd.DataFrame | None, segments: pd.DataFrame | None, changes: pd.DataFrame | None
) -> History:
    """The history in order: recorded nights, their outcomes, segments, change points, series."""
    cat = _with_columns(catalog, CATALOG_COLUMNS)
    cat = cat.loc[cat["night"].notna()].copy()
    cat["night"] = cat["night"].astype(str)
    cat = cat.sort_values("night", kind="stable")
    nights = np.array(sorted(cat["night"].unique()), dtype=object)
    outcomes = (
        cat.drop_duplicates("night")[["night", "started_at", "campaign_id", "outcome", "reason"]]
        .reset_index(drop=True)
    )
    seg_of_night, segment_runs = _segments(segments, outcomes, nights)
    every = _changes(changes, nights)
    outlier = every["kind"].astype(str) == "outlier"
    ch, out = every.loc[~outlier].reset_index(drop=True), every.loc[outlier].reset_index(drop=True)
    series, scenarios = _all_series(cat, nights, seg_of_night, ch)
    by_series = dict(list(out.groupby(["scenario", "metric"], sort=False)))
    for s in series:
        s.outliers = by_series.get((s.scenario, s.metric), out.iloc[0:0])
    labs = cat["lab_hash"].dropna().astype(str)
    return History(
        nights=nights, outcomes=outcomes, segment_runs=segment_runs, series=series,
        changes=ch, scenarios=scenarios, lab_hashes=list(pd.unique(labs)), outliers=out,
    )


def _segments(
    segments: pd.DataFrame | None, outcomes: pd.DataFrame, nights: np.ndarray
) -> tuple[dict[str, int], pd.DataFrame]:
    """The segment of every done night, and the runs of done nights in one segment.

    A done night absent from ``segments`` takes the one before it.
    """
    seg = _with_columns(segments, SEGMENT_COLUMNS)
    seg = seg.loc[seg["night"].notna()].copy()
    seg["night"] = seg["night"].astype(str)
    seg = seg.drop_duplicates("night", keep="last").set_index("night")
    done = outcomes.loc[outcomes["outcome"] == "done", "night"].reset_index(drop=True)
    done_seg = (
        pd.to_numeric(done.map(seg["segment"]), errors="coerce").ffill().bfill().fillna(0)
        .astype(np.int64)
    )
    seg_of_night = dict(zip(done, done_seg, strict=True))
    runs = []
    if len(done):
        starts = np.flatnonzero(np.r_[True, done_seg.to_numpy()[1:] != done_seg.to_numpy()[:-1]])
        ends = np.r_[starts[1:], len(done)]
        for a, b in zip(starts, ends, strict=True):
            first = done.iloc[a]
            reason = seg["segment_reason"].get(first, None)
            runs.append({
                "segment": int(done_seg.iloc[a]), "first_night": first,
                "last_night": done.iloc[b - 1], "first_pos": int(np.searchsorted(nights, first)),
                "nights": int(b - a), "reason": None if missing(reason) else str(reason),
            })
    segment_runs = pd.DataFrame(
        runs, columns=["segment", "first_night", "last_night", "first_pos", "nights", "reason"]
    )
    return seg_of_night, segment_runs


def _changes(changes: pd.DataFrame | None, nights: np.ndarray) -> pd.DataFrame:
    """The change points and outlier nights (``kind``; missing: a change point) with a
    night, scenario and metric, typed, each with its "pos"."""
    ch = _with_columns(changes, CHANGE_COLUMNS)
    ch["kind"] = ch["kind"].where(ch["kind"].notna(), "change")
    ch["alerting"] = ch["alerting"].where(ch["alerting"].notna(), True).astype(bool)
    ch = ch.loc[ch["night"].notna() & ch["scenario"].notna() & ch["metric"].notna()].copy()
    ch["night"] = ch["night"].astype(str)
    ch["pos"] = np.searchsorted(nights, ch["night"].to_numpy(dtype=object), side="left")
    ch["segment"] = pd.to_numeric(ch["segment"], errors="coerce").fillna(-1).astype(np.int64)
    for column in ("before", "after", "change_pct", "ci_low_pct", "ci_high_pct", "p_value",
                   "q_value", "outlier_z"):
        ch[column] = pd.to_numeric(ch[column], errors="coerce").astype(float)
    return ch.sort_values(["pos", "scenario", "metric"], kind="stable").reset_index(drop=True)


def _all_series(
    cat: pd.DataFrame, nights: np.ndarray, seg_of_night: dict[str, int], ch: pd.DataFrame
) -> tuple[list[Series], list[str]]:
    """One series per (scenario, metric) with a finite value on a done night; the scenarios.

    In the order scenarios, then metrics, first appear in the catalog.
    """
    obs = cat.loc[
        (cat["outcome"] == "done") & cat["scenario"].notna() & cat["metric"].notna()
    ].copy()
    obs["value"] = pd.to_numeric(obs["value"], errors="coerce").astype(float)
    obs = obs.loc[np.isfinite(obs["value"].to_numpy())]
    obs = obs.drop_duplicates(["night", "scenario", "metric"], keep="last")
    obs["scenario"] = obs["scenario"].astype(str)
    obs["metric"] = obs["metric"].astype(str)
    scenarios = list(pd.unique(obs["scenario"]))
    metrics = list(pd.unique(obs["metric"]))
    ch_groups = dict(list(ch.groupby(["scenario", "metric"], sort=False)))
    series = [
        _series(scenario, metric, s, nights, seg_of_night,
                ch_groups.get((scenario, metric), ch.iloc[0:0]))
        for (scenario, metric), s in obs.groupby(["scenario", "metric"], sort=False)
    ]
    series.sort(key=lambda x: (scenarios.index(x.scenario), metrics.index(x.metric)))
    return series, scenarios


def _series(scenario: str, metric: str, s: pd.DataFrame, nights: np.ndarray,
            seg_of_night: dict[str, int], cps: pd.DataFrame) -> Series:
    """One series: its observations, their segments, runs and trends."""
    s_nights = s["night"].to_numpy(dtype=object)
    pos = np.searchsorted(nights, s_nights)
    segment = np.array([seg_of_night[n] for n in s_nights], dtype=np.int64)
    group = _runs(pos, segment, cps)
    value = s["value"].to_numpy(dtype=float)
    trend = (np.bincount(group, weights=value) / np.bincount(group))[group]
    seg_starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
    units = s["unit"].dropna()
    return Series(
        scenario=scenario, metric=metric, unit=str(units.iloc[-1]) if len(units) else "",
        better=better(metric), pos=pos, nights=s_nights, value=value,
        sd=pd.to_numeric(s["sd"], errors="coerce").to_numpy(dtype=float),
        n_reps=pd.to_numeric(s["n_reps"], errors="coerce").to_numpy(dtype=float),
        segment=segment, group=group, trend=trend, run_start=int(seg_starts[-1]),
        changes=cps,
    )


def _runs(pos: np.ndarray, segment: np.ndarray, cps: pd.DataFrame) -> np.ndarray:
    """Run number (0..) of each observation: a new run at every segment start and at every
    change point inside a segment."""
    k = np.zeros(len(pos), dtype=np.int64)
    for s_id in np.unique(segment):
        here = segment == s_id
        cp_pos = np.sort(cps.loc[cps["segment"] == s_id, "pos"].to_numpy(dtype=np.int64))
        k[here] = np.searchsorted(cp_pos, pos[here], side="right")
    new_run = np.r_[True, (segment[1:] != segment[:-1]) | (k[1:] != k[:-1])]
    return np.cumsum(new_run) - 1


# --------------------------------------------------------------------------- the summary


def _summary_row(s: Series, h: History, short_nights: int, long_nights: int) -> dict:
    last = len(s.pos) - 1
    trend_now = float(s.trend[last])
    run_first = int(np.flatnonzero(s.group == s.group[last])[0])
    short, short_ref, notes_short = _short_term(s, h, short_nights)
    long, best, notes_long = _long_term(s, h, long_nights)
    recent, classification = _classify(s, max(0, len(h.nights) - long_nights))
    return {
        "scenario": s.scenario, "metric": s.metric, "unit": s.unit, "better": s.better,
        "segment": int(s.segment[last]), "last_night": s.nights[last],
        "last_value": float(s.value[last]), "last_sd": float(s.sd[last]),
        "last_n_reps": s.n_reps[last], "trend": trend_now, "trend_since": s.nights[run_first],
        "trend_nights": int(last - run_first + 1),
        "last_vs_trend_pct": _pct(float(s.value[last]), trend_now),
        "short_term_pct": short, "short_term_reference": short_ref,
        "short_term_note": "; ".join(x for x in notes_short if x) or None,
        "long_term_pct": long, "long_term_best": best,
        "long_term_note": "; ".join(notes_long) or None,
        "regressions": int((recent["direction"] == "regression").sum()),
        "progressions": int((recent["direction"] == "progression").sum()),
        "classification": classification,
    }


def _short_term(s: Series, h: History, short_nights: int) -> tuple[float, Any, list[str]]:
    """The trend now against the trend of the newest value at or before the night
    ``short_nights`` recorded nights before the newest one, inside the current segment:
    the change in %, the reference night and the notes."""
    n = len(h.nights)
    last = len(s.pos) - 1
    notes: list[str] = []
    short, short_ref = math.nan, None
    ref_pos = n - 1 - short_nights
    i = int(np.searchsorted(s.pos, ref_pos, side="right")) - 1
    if ref_pos < 0:
        notes.append(f"fewer than {short_nights + 1} nights recorded")
    elif i < 0:
        notes.append(f"no value on or before {h.nights[ref_pos]}")
    elif i < s.run_start:
        seg_first_night = s.nights[s.run_start]
        reason = _segment_reason(h, int(s.segment[last]), seg_first_night)
        notes.append(
            f"new segment since {seg_first_night}"
            + (f" ({reason})" if reason else "") + "; not compared across segments"
        )
    else:
        short = _pct(float(s.trend[last]), float(s.trend[i]))
        short_ref = s.nights[i]
        if math.isnan(short):
            notes.append(f"trend on {short_ref} is 0")
    if s.pos[last] < n - short_nights:
        notes.append(f"no value in the last {short_nights} nights")
    return short, short_ref, notes


def _long_term(s: Series, h: History, long_nights: int) -> tuple[float, float, list[str]]:
    """The trend now against the best trend over the last ``long_nights`` nights, within the
    current segment: the change in %, the best trend and the notes."""
    last = len(s.pos) - 1
    notes: list[str] = []
    window_start = max(0, len(h.nights) - long_nights)
    idx = np.arange(len(s.pos))
    in_window = (s.pos >= window_start) & (idx >= s.run_start)
    if not in_window.any():
        in_window = idx == last  # the newest value is older than the window
        notes.append(f"no value in the last {long_nights} nights")
    trends = s.trend[in_window]
    best = float(trends.max() if s.better > 0 else trends.min())
    long = _pct(float(s.trend[last]), best)
    if math.isnan(long) and best == 0:
        notes.append("best trend is 0")
    if ((s.pos >= window_start) & (idx < s.run_start)).any():
        notes.append(f"window limited to the current segment (since {s.nights[s.run_start]})")
    return long, best, notes


def _classify(s: Series, window_start: int) -> tuple[pd.DataFrame, str]:
    """The series' change points from ``window_start`` on, and the direction of the newest
    one in the current segment ("normal" without one)."""
    last = len(s.pos) - 1
    cps = s.changes
    recent = cps.loc[cps["pos"] >= window_start]
    current = recent.loc[
        (recent["segment"] == s.segment[last]) & (recent["pos"] >= s.pos[s.run_start])
        & recent["direction"].isin(["regression", "progression"])
    ]
    return recent, str(current["direction"].iloc[-1]) if len(current) else "normal"


def _segment_reason(h: History, segment: int, first_night: str) -> str | None:
    runs = h.segment_runs
    hit = runs.loc[(runs["segment"] == segment) & (runs["first_night"] == first_night), "reason"]
    return None if hit.empty or missing(hit.iloc[0]) else str(hit.iloc[0])


def summarise(h: History, short_nights: int, long_nights: int) -> pd.DataFrame:
    rows = [_summary_row(s, h, short_nights, long_nights) for s in h.series]
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return frame.astype({
        "better": np.int64, "segment": np.int64, "trend_nights": np.int64,
        "regressions": np.int64, "progressions": np.int64, "last_value": float,
        "last_sd": float, "last_n_reps": "Int64", "trend": float, "last_vs_trend_pct": float,
        "short_term_pct": float, "long_term_pct": float, "long_term_best": float,
    })


def check_windows(short_nights: int, long_nights: int) -> None:
    if int(short_nights) < 1 or int(long_nights) < 1:
        raise ValueError("short_nights and long_nights must be at least 1")


def trend_summary(
    catalog: pd.DataFrame,
    segments: pd.DataFrame,
    changes: pd.DataFrame,
    *,
    short_nights: int = 7,
    long_nights: int = 90,
) -> pd.DataFrame:
    """One row per (scenario, metric): the newest value, the trend and how it moved.

    Inputs (the history's frames): ``catalog`` one row per (night, scenario,
    metric) with night, outcome, scenario, metric, unit, value, sd, n_reps, ...
    (a night that did not run has one row with scenario and metric null);
    ``segments`` one row per done night with its segment; ``changes`` one row
    per change point with scenario, metric, segment, night (the first night
    after the change) and direction. Only done nights with a finite value count.

    Nights are *recorded nights* (every night in the catalog, any outcome) in
    order; "N nights ago" counts recorded nights back from the newest one.

    Columns:

    - ``last_night``, ``last_value``, ``last_sd``, ``last_n_reps``: the newest
      night with a value, its value (the mean over its repetitions of the
      per-repetition statistic), the sd across those repetitions (NaN with one)
      and their number.
    - ``trend``: the mean of the values of the nights since the last change
      point (or since the start of the segment when the segment has none), up
      to the newest: the trend *now*. ``trend_since`` is the first of those
      nights and ``trend_nights`` their number. More generally, the trend at a
      night is the mean of the values of its *run*, the nights between the
      change points (and segment starts) either side of it, as in CSIT.
    - ``last_vs_trend_pct``: 100 · (last value - trend) / |trend|.
    - ``short_term_pct``: 100 · (trend now - trend then) / |trend then|, where
      "then" is the newest night with a value at or before the night
      ``short_nights`` recorded nights before the newest one
      (``short_term_reference``). NaN, with ``short_term_note`` saying why,
      when that night is in an earlier segment or there is no such night.
    - ``long_term_pct``: 100 · (trend now - best) / |best|, where best
      (``long_term_best``) is the best trend at the nights of the last
      ``long_nights`` recorded nights in the current segment: the highest when
      higher is better (``better`` = +1: ndr_pps, pdr_pps), the lowest
      otherwise (-1). It is 0 when the trend now is the best, negative when
      below a higher-is-better best, positive when above a lower-is-better one.
    - ``regressions``, ``progressions``: change points whose first night after
      lies in the last ``long_nights`` recorded nights (every segment).
    - ``classification``: the direction of the newest change point of the
      current segment in that window ("regression" or "progression"),
      "normal" when there is none.

    Rows come in the order scenarios and metrics first appear in the catalog.
    """
    check_windows(short_nights, long_nights)
    return summarise(prepare(catalog, segments, changes), int(short_nights), int(long_nights))


