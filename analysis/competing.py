"""Competing guests and containers: N receivers, each with its own flow from one sender.

Pure functions, DataFrames in and DataFrames out. A scenario with ``guests: N`` runs N
guests (or, with virtualization ``container``, N containers) that receive N concurrent
flows inside one counter window; the data tables carry a ``flow`` column (1..N; absent
in folders ingested before it, and then every row is flow 1).

The repetition is the unit: the flows of one repetition share its circumstances, as
its probes do, so each statistic about a scenario first reduces each repetition to one
number (the median over its flows of their p50, the loss over all its flows, Jain's
index over its flows), then summarises those numbers across repetitions: their mean
with a Student t interval (df = R - 1, :func:`analysis.throughput.mean_ci`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.throughput import mean_ci

GUESTS, CONTAINERS, BARE_METAL = "guests", "containers", "bare metal"
KEY = ["scenario", "repetition"]
FLOW_KEY = [*KEY, "flow"]
#: what a series is made of besides its kind: the requested definition, minus its count
SERIES_FIELDS = ("io_path", "capture", "elvis_mode", "knobs")
KIND_COLUMNS = ["scenario", "kind", "n", "series", "acceleration", "runtime"]
FLOW_RATE_COLUMNS = [*FLOW_KEY, "receiver_host", "sent_frames", "received_frames",
                     "lost_frames", "loss_pct", "offered_pps", "duration_s", "throughput_pps",
                     "flagged"]
FLOW_RTT_COLUMNS = [*FLOW_KEY, "probes", "answered", "rtt_p50_us", "rtt_p99_us"]
FLOW_COLUMNS = [*FLOW_KEY, "receiver_host", "sent_frames", "received_frames", "lost_frames",
                "loss_pct", "offered_pps", "duration_s", "throughput_pps", "flagged",
                "probes", "answered", "rtt_p50_us", "rtt_p99_us"]
FAIRNESS_REPETITION_COLUMNS = [*KEY, "flows", "jain"]
FAIRNESS_COLUMNS = ["scenario", "flows", "repetitions", "left_out", "jain_mean",
                    "jain_ci_low", "jain_ci_high"]
#: the per-repetition numbers a scenario is summarised by, their names ending in the unit
METRICS = ("rtt_p50_us", "rtt_p99_us", "loss_pct", "throughput_pps",
           "host_cpu_us_per_frame", "qemu_cpu_us_per_frame", "container_cpu_us_per_frame")
REPETITION_COLUMNS = [*KEY, "flows", *METRICS]
#: costs.parquet's metric and host behind each CPU column (None: the hypervisor's host)
CPU_SOURCES = {"host_cpu_us_per_frame": ("cpu_us_per_packet", None),
               "qemu_cpu_us_per_frame": ("qemu_cpu_us_per_packet", "qemu"),
               "container_cpu_us_per_frame": ("container_cpu_us_per_packet", "containers")}
#: a percentage or a share can never leave these bounds; an interval is clipped to them
FLOORS = {"loss_pct": 0.0, "throughput_pps": 0.0, "rtt_p50_us": 0.0, "rtt_p99_us": 0.0,
          "host_cpu_us_per_frame": 0.0, "qemu_cpu_us_per_frame": 0.0,
          "container_cpu_us_per_frame": 0.0}
#: upper ends an interval is clipped at (a loss is at most 100 %)
CEILINGS = {"loss_pct": 100.0}
ACCELERATION_WORDS = {"kvm": "KVM, hardware-assisted virtualization",
                      "tcg": "TCG, QEMU's software emulation, not KVM",
                      "container": "no guest kernel (containers)",
                      "none": "no virtualization (bare metal)"}


# --------------------------------------------------------------------------- scenarios


def scenario_kind(entry: Mapping[str, Any]) -> tuple[str, int]:
    """(kind, N) of one manifest scenario entry: ``bare metal`` for virtualization
    ``none`` (N = 1), ``containers`` for ``container``, else ``guests``; N is the
    entry's ``guests`` (absent: 1)."""
    virtualization = entry.get("virtualization") or "none"
    if virtualization == "none":
        return BARE_METAL, 1
    n = int(entry.get("guests") or 1)
    return (CONTAINERS if virtualization == "container" else GUESTS), n


def has_competition(scenarios: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a campaign's scenarios (manifest ``scenarios``) include N > 1 guests or
    any container: the report's competing section is shown only then."""
    for entry in scenarios.values():
        kind, n = scenario_kind(entry)
        if kind == CONTAINERS or (kind == GUESTS and n > 1):
            return True
    return False


def _series_key(entry: Mapping[str, Any]) -> str:
    return json.dumps({f: entry.get(f) for f in SERIES_FIELDS}, sort_keys=True, default=str)


def _series_label(kind: str, entry: Mapping[str, Any], differing: Iterable[str]) -> str:
    shown = [f"{f} {json.dumps(entry.get(f), sort_keys=True) if f == 'knobs' else entry.get(f)}"
             for f in differing]
    return f"{kind} ({', '.join(shown)})" if shown else kind


def scenario_kinds(scenarios: Mapping[str, Mapping[str, Any]],
                   order: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per scenario of the comparison: its ``kind``, ``n`` (guests or containers
    at once), ``series`` (the line it is drawn on), ``acceleration`` (``resolved.
    virtualization``: what ran) and ``runtime`` (``resolved.container_runtime``).

    Every container scenario is in the comparison; guest scenarios are, in series: the
    scenarios of one kind with the same requested io_path, capture, elvis_mode and knobs
    form a series, and a guest series is in the comparison when one of its scenarios
    runs N > 1 guests (so a one-guest scenario of that configuration is its N = 1
    point). The label names the kind, and the fields that tell its series apart when a
    kind has several. Bare-metal scenarios are left out (see :func:`reference`).
    """
    names = list(order) if order is not None else list(scenarios)
    by_series: dict[tuple[str, str], list[str]] = {}
    for name in names:
        kind = scenario_kind(scenarios[name])[0]
        if kind != BARE_METAL:
            by_series.setdefault((kind, _series_key(scenarios[name])), []).append(name)
    kept = {key: members for key, members in by_series.items()
            if key[0] == CONTAINERS or any(scenario_kind(scenarios[m])[1] > 1 for m in members)}
    rows = []
    for (kind, _key), members in kept.items():
        peers = [m for (k, _), ms in kept.items() if k == kind for m in ms[:1]]
        differing = [f for f in SERIES_FIELDS
                     if len({json.dumps(scenarios[p].get(f), sort_keys=True, default=str)
                             for p in peers}) > 1]
        label = _series_label(kind, scenarios[members[0]], differing)
        for name in members:
            resolved = scenarios[name].get("resolved") or {}
            rows.append({"scenario": name, "kind": kind, "n": scenario_kind(scenarios[name])[1],
                         "series": label, "acceleration": resolved.get("virtualization") or "",
                         "runtime": resolved.get("container_runtime") or ""})
    position = {name: i for i, name in enumerate(names)}
    rows.sort(key=lambda r: position[r["scenario"]])
    return pd.DataFrame(rows, columns=KIND_COLUMNS).astype({"n": "int64"})


def reference(scenarios: Mapping[str, Mapping[str, Any]], with_data: Iterable[str],
              baseline: str = "") -> str:
    """The bare-metal reference: ``baseline`` when it is bare metal, else the first
    bare-metal scenario (in ``with_data`` order) that has data; '' when there is none."""
    bare = [s for s in with_data if s in scenarios
            and scenario_kind(scenarios[s])[0] == BARE_METAL]
    if baseline in bare:
        return baseline
    return bare[0] if bare else ""


# --------------------------------------------------------------------------- per flow


def with_flow(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with an int64 ``flow`` column: as stored, 1 where it is absent (a folder
    ingested before flows) or null."""
    flow = frame["flow"] if "flow" in frame.columns else pd.Series(1, index=frame.index)
    return frame.assign(flow=pd.to_numeric(flow).fillna(1).astype(np.int64))


def flow_rates(rate: pd.DataFrame | None) -> pd.DataFrame:
    """Per (scenario, repetition, flow), from data/rate.parquet: frames sent, received
    and lost, summed over the flow's rows; ``loss_pct`` = 100 · lost / sent (%);
    ``offered_pps``, the offered rate (frames/s; sent / duration when the flow had
    several rows); ``duration_s`` = Σ sent / rate_pps (s); ``throughput_pps`` =
    received / duration_s (frames/s). A flow whose counter saw more frames than were
    sent (``lost`` null, or received > sent) is ``flagged``: its loss and throughput are
    NaN, never numbers. ``receiver_host`` is the flow's guest or container ('' when the
    table does not say)."""
    if rate is None or rate.empty:
        return pd.DataFrame(columns=FLOW_RATE_COLUMNS)
    r = with_flow(rate)
    lost = r["lost"].astype("float64")
    r = r.assign(
        scenario=r["scenario"].astype(str),
        receiver_host=(r["receiver_host"].astype("string").fillna("")
                       if "receiver_host" in r.columns else ""),
        lost=lost, flagged=(lost.isna() | (r["received"] > r["sent"])).astype(np.int64),
        duration_s=r["sent"] / r["rate_pps"].where(r["rate_pps"] > 0))
    g = r.groupby(FLOW_KEY, sort=False)
    out = g[["sent", "received", "lost", "flagged", "duration_s"]].sum(min_count=1)
    out["receiver_host"] = g["receiver_host"].agg(lambda s: ", ".join(dict.fromkeys(s)))
    out = out.reset_index().rename(columns={"sent": "sent_frames",
                                            "received": "received_frames",
                                            "lost": "lost_frames"})
    ok = out["flagged"] == 0
    out["flagged"] = out["flagged"] > 0
    out["lost_frames"] = out["lost_frames"].where(ok)
    out["loss_pct"] = 100.0 * out["lost_frames"] / out["sent_frames"].where(
        out["sent_frames"] > 0)
    out["offered_pps"] = out["sent_frames"] / out["duration_s"]
    out["throughput_pps"] = (out["received_frames"] / out["duration_s"]).where(ok)
    return out[FLOW_RATE_COLUMNS]


def flow_rtt(rtt: pd.DataFrame | None) -> pd.DataFrame:
    """Per (scenario, repetition, flow), from data/rtt.parquet (ping, one row per probe):
    ``probes`` sent, ``answered``, and the p50 and p99 (type 7, linear interpolation)
    of the answered probes' RTT in µs (NaN without an answered probe)."""
    if rtt is None or rtt.empty:
        return pd.DataFrame(columns=FLOW_RTT_COLUMNS)
    # grouped on the stored (categorical) scenario: rtt can hold 10^7 probes
    r = with_flow(rtt[[c for c in [*KEY, "flow", "answered", "rtt_us"] if c in rtt.columns]])
    counts = r.groupby(FLOW_KEY, sort=False, observed=True)["answered"].agg(["size", "sum"])
    counts.columns = ["probes", "answered"]
    good = r.loc[r["answered"] & np.isfinite(r["rtt_us"])]
    q = good.groupby(FLOW_KEY, sort=False, observed=True)["rtt_us"].quantile([0.5, 0.99])
    q = q.unstack().rename(columns={0.5: "rtt_p50_us", 0.99: "rtt_p99_us"})
    out = counts.join(q.reindex(columns=["rtt_p50_us", "rtt_p99_us"]))
    out = out.reset_index()
    out["scenario"] = out["scenario"].astype(str)
    out["answered"] = out["answered"].astype(np.int64)
    return out[FLOW_RTT_COLUMNS]


def flow_results(rate: pd.DataFrame | None, rtt: pd.DataFrame | None,
                 scenarios: Iterable[str] | None = None) -> pd.DataFrame:
    """Every flow of every repetition: :func:`flow_rates` beside :func:`flow_rtt`, one
    row per (scenario, repetition, flow) found in either (only ``scenarios`` when given,
    in that order, then by repetition and flow)."""
    both = flow_rates(rate).merge(flow_rtt(rtt), on=FLOW_KEY, how="outer")
    if scenarios is not None:
        names = list(scenarios)
        both = both.loc[both["scenario"].isin(names)]
        both = both.assign(_p=both["scenario"].map({n: i for i, n in enumerate(names)}))
        both = both.sort_values(["_p", "repetition", "flow"], kind="stable").drop(columns="_p")
    else:
        both = both.sort_values(FLOW_KEY, kind="stable")
    both["receiver_host"] = both["receiver_host"].fillna("")
    both["flagged"] = both["flagged"].fillna(False).astype(bool)
    for column in ("probes", "answered"):
        both[column] = both[column].fillna(0).astype(np.int64)
    return both.reset_index(drop=True)[FLOW_COLUMNS]


def name_receivers(flows: pd.DataFrame, receivers: Mapping[str, list[str]]) -> pd.DataFrame:
    """``flows`` with an empty ``receiver_host`` filled from ``receivers`` (scenario ->
    the manifest's ``resolved.guests`` or ``resolved.containers``, in flow order: flow k
    went to the k-th)."""
    def name(row: Any) -> str:
        if row.receiver_host:
            return row.receiver_host
        names = receivers.get(row.scenario) or []
        return names[row.flow - 1] if 0 < row.flow <= len(names) else ""

    return flows.assign(receiver_host=[name(r) for r in flows.itertuples()])


# --------------------------------------------------------------------------- fairness


def jain_index(x: Iterable[float]) -> float:
    """Jain's fairness index of the flows' throughputs x: (Σx)² / (N · Σx²).

    1 when every flow gets the same, 1/N when one flow gets everything. NaN for fewer
    than two flows (one flow has no one to be fair to), when a value is missing or not
    finite, or when every flow got nothing.
    """
    v = np.asarray(list(x), dtype=float)
    if v.size < 2 or not np.isfinite(v).all() or (v < 0).any():
        return math.nan
    squares = float((v * v).sum())
    return float(v.sum() ** 2 / (v.size * squares)) if squares > 0 else math.nan


def fairness_by_repetition(flows: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, repetition): ``flows`` (with a rate row) and ``jain``, Jain's index
    over their ``throughput_pps`` (NaN with one flow, or a flagged one)."""
    rated = flows.loc[flows["sent_frames"].notna()]
    rows = [{"scenario": s, "repetition": int(r), "flows": len(g),
             "jain": jain_index(g["throughput_pps"])}
            for (s, r), g in rated.groupby(KEY, sort=False)]
    return pd.DataFrame(rows, columns=FAIRNESS_REPETITION_COLUMNS)


def fairness_summary(by_rep: pd.DataFrame, confidence: float = 0.95,
                     scenarios: Iterable[str] | None = None) -> pd.DataFrame:
    """Per scenario: ``flows`` (the most in a repetition), ``repetitions`` with an index,
    ``left_out`` (repetitions of two or more flows without one: a flagged flow), and the
    mean of the repetitions' indices with its Student t interval (df = R - 1), clipped to
    the index's range [1/N, 1]; the ends are NaN with fewer than two repetitions."""
    names = list(scenarios) if scenarios is not None else list(dict.fromkeys(
        by_rep["scenario"]))
    rows = []
    for name in names:
        g = by_rep.loc[by_rep["scenario"] == name]
        flows = int(g["flows"].max()) if not g.empty else 0
        values = g["jain"].to_numpy(dtype=float)
        mean, low, high = mean_ci(values, confidence)
        if flows >= 2:
            low, high = max(low, 1.0 / flows), min(high, 1.0)
        finite = int(np.isfinite(values).sum())
        left_out = int(((g["flows"] >= 2) & ~np.isfinite(values)).sum())
        rows.append({"scenario": name, "flows": flows, "repetitions": finite,
                     "left_out": left_out, "jain_mean": mean, "jain_ci_low": low,
                     "jain_ci_high": high})
    return pd.DataFrame(rows, columns=FAIRNESS_COLUMNS)


# --------------------------------------------------------------------------- scenarios


def cpu_by_repetition(costs: pd.DataFrame | None,
                      hypervisors: Mapping[str, str]) -> pd.DataFrame:
    """Per (scenario, repetition), from data/costs.parquet, in µs of CPU per frame sent
    over all the repetition's flows: ``host_cpu_us_per_frame`` (cpu_us_per_packet of the
    scenario's hypervisor, ``hypervisors[scenario]``; without one, of the only host that
    reported it, else NaN), ``qemu_cpu_us_per_frame`` (all QEMU threads of the run's
    guests) and ``container_cpu_us_per_frame`` (the containers' cpuacct cgroups)."""
    columns = [*KEY, *CPU_SOURCES]
    if costs is None or costs.empty:
        return pd.DataFrame(columns=columns)
    c = costs.assign(scenario=costs["scenario"].astype(str),
                     metric=costs["metric"].astype(str),
                     host=costs["host"].astype(str) if "host" in costs.columns else "")
    out = c[KEY].drop_duplicates().set_index(KEY)
    for column, (metric, host) in CPU_SOURCES.items():
        m = c.loc[c["metric"] == metric]
        if host is None:
            only = m.groupby("scenario")["host"].agg(
                lambda s: s.iloc[0] if s.nunique() == 1 else "").to_dict()
            wanted = {s: hypervisors.get(s) or only.get(s, "") for s in only}
            m = m.loc[m["host"] == m["scenario"].map(wanted)]
        else:
            m = m.loc[m["host"] == host]
        out[column] = m.groupby(KEY)["value"].sum()
    return out.reset_index()[columns]


def repetition_summary(flows: pd.DataFrame, cpu: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (scenario, repetition), the repetition reduced to one number per metric:
    ``rtt_p50_us`` and ``rtt_p99_us``, the median over its flows of each flow's p50 and
    p99 (µs); ``loss_pct`` = 100 · Σ lost / Σ sent over its flows (%; NaN when a flow is
    flagged); ``throughput_pps``, the sum of its flows' throughputs (frames/s); and the
    CPU per frame of :func:`cpu_by_repetition` (µs of CPU per frame)."""
    if flows.empty:
        return pd.DataFrame(columns=REPETITION_COLUMNS)
    rows = []
    for (scenario, repetition), g in flows.groupby(KEY, sort=False):
        rated = g.loc[g["sent_frames"].notna()]
        sent = float(rated["sent_frames"].sum())
        flagged = bool(rated["flagged"].any())
        rows.append({
            "scenario": scenario, "repetition": int(repetition), "flows": len(g),
            "rtt_p50_us": float(g["rtt_p50_us"].median()),
            "rtt_p99_us": float(g["rtt_p99_us"].median()),
            "loss_pct": (100.0 * float(rated["lost_frames"].sum()) / sent
                         if sent > 0 and not flagged else math.nan),
            "throughput_pps": (float(rated["throughput_pps"].sum())
                               if not rated.empty and not flagged else math.nan)})
    out = pd.DataFrame(rows)
    cpu = cpu if cpu is not None and not cpu.empty else pd.DataFrame(
        columns=[*KEY, *CPU_SOURCES])
    cpu = cpu.astype({"scenario": str, "repetition": np.int64})
    out = out.merge(cpu, on=KEY, how="left")
    return out[REPETITION_COLUMNS].astype({c: float for c in METRICS})


def summary_columns(metrics: Iterable[str] = METRICS) -> list[str]:
    """The columns :func:`scenario_summary` gives each metric: its mean, then the ends of
    its interval."""
    return [c for m in metrics for c in (m, f"{m}_ci_low", f"{m}_ci_high")]


def scenario_summary(reps: pd.DataFrame, kinds: pd.DataFrame,
                     confidence: float = 0.95) -> pd.DataFrame:
    """Per scenario of ``kinds`` (:func:`scenario_kinds`, plus any reference row):
    ``repetitions`` (with data), and for every metric of :func:`repetition_summary` the
    mean over repetitions with its Student t interval (df = R - 1; the lower end
    clipped at 0, since none of them can be negative, and a loss's upper end at 100 %).
    Each repetition weighs the same.
    """
    rows = []
    for row in kinds.itertuples(index=False):
        g = reps.loc[reps["scenario"] == row.scenario]
        out = {**row._asdict(), "repetitions": len(g)}
        for metric in METRICS:
            values = g[metric].to_numpy(dtype=float) if metric in g else np.array([])
            mean, low, high = mean_ci(values, confidence, floor=FLOORS[metric])
            if metric in CEILINGS and high == high:  # not NaN
                high = min(high, CEILINGS[metric])
            out[metric], out[f"{metric}_ci_low"], out[f"{metric}_ci_high"] = mean, low, high
        rows.append(out)
    return pd.DataFrame(rows, columns=[*kinds.columns, "repetitions", *summary_columns()])


def flow_summary(flows: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, flow): the receiver, the repetitions it ran in, and the mean over
    those repetitions of its loss (%), throughput (frames/s) and RTT p50 and p99 (µs)."""
    columns = ["scenario", "flow", "receiver_host", "repetitions", "loss_pct",
               "throughput_pps", "rtt_p50_us", "rtt_p99_us"]
    if flows.empty:
        return pd.DataFrame(columns=columns)
    g = flows.groupby(["scenario", "flow"], sort=False)
    out = g[["loss_pct", "throughput_pps", "rtt_p50_us", "rtt_p99_us"]].mean()
    out["repetitions"] = g["repetition"].nunique()
    out["receiver_host"] = g["receiver_host"].agg(
        lambda s: ", ".join(h for h in dict.fromkeys(s) if h))
    return out.reset_index()[columns]


def substitution_summary(substitutions: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """Every substitution of the scenarios ``names`` (``substitutions`` is
    :func:`analysis.tables.substitutions_table`), each (knob, requested, effective) once,
    with the scenarios that had it (comma-joined, in ``names`` order) and the first
    reason given."""
    columns = ["knob", "requested", "effective", "scenarios", "reason"]
    names = list(names)
    subs = substitutions.loc[substitutions["scenario"].isin(names)]
    subs = subs.assign(_p=subs["scenario"].map({n: i for i, n in enumerate(names)}))
    subs = subs.sort_values("_p", kind="stable")
    if subs.empty:
        return pd.DataFrame(columns=columns)
    g = subs.groupby(["knob", "requested", "effective"], sort=False)
    out = g.agg(scenarios=("scenario", lambda s: ", ".join(dict.fromkeys(s))),
                reason=("reason", "first"))
    return out.reset_index()[columns]
