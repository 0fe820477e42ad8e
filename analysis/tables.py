"""The report's tables: pure functions from the campaign's frames to tidy frames.

Every table has one row per manifest scenario (more for Table 1 when several
rates or frame sizes were measured), so a scenario that was skipped, failed or
not run yet still appears, with its status and empty cells. Column names carry
their unit (``_us``, ``_pct``, ``_pp``); the report turns them into headers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.model import samples_by_scenario

_KEYS = ["number", "scenario", "status"]


def _keys(scenarios: pd.DataFrame) -> pd.DataFrame:
    return scenarios[_KEYS].copy()


def _spread(per_rep: pd.DataFrame, by: list[str], value: str, prefix: str) -> pd.DataFrame:
    """Mean, min, max and sample standard deviation (ddof = 1) over repetitions."""
    g = per_rep.groupby(by, observed=True, sort=False)[value]
    return pd.DataFrame(
        {
            f"{prefix}repetitions": g.count(),
            f"{prefix}mean_pct": g.mean(),
            f"{prefix}min_pct": g.min(),
            f"{prefix}max_pct": g.max(),
            f"{prefix}std_pct": g.std(ddof=1),
        }
    ).reset_index()


def ping_loss_per_repetition(ping_summary: pd.DataFrame | None) -> pd.DataFrame:
    """Loss of each (scenario, repetition), pooled over its hosts, in %.

    loss = 100 (sum transmitted - sum received) / sum transmitted. ``flagged`` is 0:
    ping's received never counts more than it sent (duplicates are apart).
    """
    cols = ["scenario", "repetition", "sent", "lost", "loss_pct", "flagged"]
    if ping_summary is None or ping_summary.empty:
        return pd.DataFrame(columns=cols)
    g = ping_summary.assign(scenario=ping_summary["scenario"].astype(str)).groupby(
        ["scenario", "repetition"], sort=False
    )
    per = g[["transmitted", "received"]].sum().reset_index()
    per["sent"] = per["transmitted"]
    per["lost"] = per["transmitted"] - per["received"]
    per["loss_pct"] = 100.0 * per["lost"] / per["sent"].where(per["sent"] > 0)
    per["flagged"] = 0
    return per[cols]


RATE_KEYS = ["backend", "frame_bytes", "rate_pps"]


def rate_loss_per_repetition(rate: pd.DataFrame | None) -> pd.DataFrame:
    """Sender -> counter loss of each (scenario, backend, frame size, rate, repetition), in %.

    loss = 100 sum lost / sum sent over the rows of that repetition. ``flagged``
    counts its rows whose counter saw more frames than were sent (``lost`` null, or
    received > sent): such a repetition has no measurable loss, so its ``lost`` and
    ``loss_pct`` are NaN, never a number that could be averaged.
    """
    cols = ["scenario", *RATE_KEYS, "repetition", "sent", "lost", "loss_pct", "flagged"]
    if rate is None or rate.empty:
        return pd.DataFrame(columns=cols)
    lost = rate["lost"].astype("float64")
    frame = rate.assign(
        scenario=rate["scenario"].astype(str),
        backend=rate["backend"].astype(str),
        lost=lost,
        flagged=(lost.isna() | (rate["received"] > rate["sent"])).astype(np.int64),
    )
    per = (
        frame.groupby(["scenario", *RATE_KEYS, "repetition"], sort=False)[
            ["sent", "lost", "flagged"]
        ]
        .sum()
        .reset_index()
    )
    return _loss_pct(per)[cols]


def _loss_pct(per: pd.DataFrame) -> pd.DataFrame:
    """``lost`` (NaN where flagged) and ``loss_pct`` of summed repetition rows."""
    per["lost"] = per["lost"].astype("float64").where(per["flagged"] == 0)
    per["loss_pct"] = 100.0 * per["lost"] / per["sent"].where(per["sent"] > 0)
    return per


def _measured(per: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group of ``by``: frames sent and lost summed over the repetitions whose loss
    was measurable, and ``flagged_repetitions``, the repetitions that were not."""
    totals = per.loc[per["flagged"] == 0].groupby(by, sort=False)[["sent", "lost"]].sum()
    flagged = (per["flagged"] > 0).groupby([per[c] for c in by], sort=False).sum()
    out = per[by].drop_duplicates().merge(totals.reset_index(), on=by, how="left")
    out["flagged_repetitions"] = out.merge(
        flagged.rename("n").reset_index(), on=by, how="left")["n"].to_numpy(dtype=np.int64)
    return out


def table1_loss(
    scenarios: pd.DataFrame,
    ping_summary: pd.DataFrame | None,
    rate: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Table 1: loss % per scenario, mean over repetitions with its spread.

    Without data/rate.parquet the loss is ping's. With it, the loss is the
    sender -> counter loss, one row per (scenario, backend, frame size, rate),
    and ping's mean loss stays beside it as ``ping_loss_mean_pct``. A repetition
    whose counter saw more frames than were sent is counted in
    ``flagged_repetitions`` and left out of ``repetitions``, the loss statistics
    and the frame totals.
    """
    keys = _keys(scenarios)
    ping = ping_loss_per_repetition(ping_summary)
    ping_totals = ping.groupby("scenario", sort=False)[["sent", "lost"]].sum().reset_index()
    ping_stats = _spread(ping, ["scenario"], "loss_pct", "")
    if rate is None:
        out = keys.merge(ping_stats, on="scenario", how="left").merge(
            ping_totals, on="scenario", how="left"
        )
        out.insert(3, "source", "ping")
        out["repetitions"] = out["repetitions"].fillna(0).astype(int)
        return out.rename(columns={"sent": "sent_packets", "lost": "lost_packets"})
    per = rate_loss_per_repetition(rate)
    stats = _spread(per, ["scenario", *RATE_KEYS], "loss_pct", "")
    stats = stats.merge(_measured(per, ["scenario", *RATE_KEYS]), on=["scenario", *RATE_KEYS])
    out = keys.merge(stats, on="scenario", how="left")
    position = {name: i for i, name in enumerate(keys["scenario"])}
    out = (
        out.assign(_position=out["scenario"].map(position))
        .sort_values(["_position", "frame_bytes", "rate_pps"], kind="stable")
        .drop(columns="_position")
        .reset_index(drop=True)
    )
    out.insert(3, "source", "rate")
    out["repetitions"] = out["repetitions"].fillna(0).astype(int)
    out["flagged_repetitions"] = out["flagged_repetitions"].fillna(0).astype(int)
    out = out.rename(columns={"sent": "sent_frames", "lost": "lost_frames"})
    ping_mean = ping_stats.set_index("scenario")["mean_pct"]
    out["ping_loss_mean_pct"] = out["scenario"].map(ping_mean).astype(float)
    return out


def loss_totals(ping_summary: pd.DataFrame | None, rate: pd.DataFrame | None) -> pd.DataFrame:
    """Per scenario: packets sent and lost, pooled over repetitions (and rates, frame sizes).

    From data/rate.parquet when the campaign has it, else from ping. Flagged
    repetitions (more frames counted than sent) are left out of the sums and counted
    in ``flagged_repetitions``.
    """
    per = rate_loss_per_repetition(rate) if rate is not None else ping_loss_per_repetition(
        ping_summary
    )
    out = _measured(per, ["scenario"])
    out["source"] = "rate" if rate is not None else "ping"
    return out


def loss_per_repetition(
    ping_summary: pd.DataFrame | None, rate: pd.DataFrame | None
) -> pd.DataFrame:
    """Loss of each (scenario, repetition) in %: sender -> counter (summed over the rates and
    frame sizes measured) when the campaign has rate data, else ping's.

    Columns scenario, repetition, sent, lost, loss_pct, flagged (rows whose counter
    saw more frames than were sent; ``lost`` and ``loss_pct`` are then NaN, and
    every statistic over repetitions leaves that repetition out).
    """
    if rate is not None:
        per = rate_loss_per_repetition(rate)
        per = per.groupby(["scenario", "repetition"], sort=False)[["sent", "lost", "flagged"]]
        per = _loss_pct(per.sum().reset_index())
        return per[["scenario", "repetition", "sent", "lost", "loss_pct", "flagged"]]
    return ping_loss_per_repetition(ping_summary)


def table2_rtt(
    scenarios: pd.DataFrame, samples: pd.DataFrame, rtt: pd.DataFrame | None
) -> pd.DataFrame:
    """Table 2: RTT mean and sample standard deviation (ddof = 1) per scenario, in µs.

    Over every answered probe of every repetition and host (pooled). ``probes``
    counts all probes, ``n`` the answered ones the statistics use.
    """
    keys = _keys(scenarios)
    groups = samples_by_scenario(samples)
    out = keys.assign(
        n=[groups[s].size if s in groups else 0 for s in keys["scenario"]],
        rtt_mean_us=[groups[s].mean() if s in groups else np.nan for s in keys["scenario"]],
        rtt_std_us=[
            groups[s].std(ddof=1) if s in groups and groups[s].size > 1 else np.nan
            for s in keys["scenario"]
        ],
    )
    probes, repetitions = _probe_counts(rtt, list(keys["scenario"]))
    out["probes"] = probes
    out["repetitions"] = repetitions
    return out[[*_KEYS, "repetitions", "probes", "n", "rtt_mean_us", "rtt_std_us"]]


def _probe_counts(rtt: pd.DataFrame | None, order: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Probes (answered or not) and distinct repetitions per scenario, in ``order``.

    Counted with bincount over category codes: linear in the number of probes,
    with no per-row strings (rtt can hold 10^7 rows).
    """
    if rtt is None or rtt.empty:
        return np.zeros(len(order), dtype=int), np.zeros(len(order), dtype=int)
    codes = rtt["scenario"].astype(pd.CategoricalDtype(order)).cat.codes.to_numpy()
    keep = codes >= 0
    codes = codes[keep].astype(np.int64)
    reps = rtt["repetition"].to_numpy()[keep]
    probes = np.bincount(codes, minlength=len(order))
    width = int(reps.max()) + 1 if reps.size else 1
    seen = np.bincount(codes * width + reps, minlength=len(order) * width) > 0
    return probes, seen.reshape(len(order), width).sum(axis=1)


def costs_table(
    scenarios: pd.DataFrame, costs: pd.DataFrame | None, *, by_host: bool = True
) -> pd.DataFrame:
    """Per-packet costs per scenario and metric: mean over repetitions, min, max, std (ddof = 1).

    ``by_host``: one row per host that reported the metric (data/costs.parquet
    has a ``host`` column; without it the host is empty). Otherwise each
    repetition's values are summed over hosts first: the cost per packet to
    the whole lab.
    """
    keys = _keys(scenarios)
    by = ["metric", "host", "unit"] if by_host else ["metric", "unit"]
    cols = [*_KEYS, *by, "repetitions", "mean", "min", "max", "std"]
    if costs is None or costs.empty:
        return keys.reindex(columns=cols).assign(repetitions=0)
    c = costs.assign(
        scenario=costs["scenario"].astype(str),
        metric=costs["metric"].astype(str),
        unit=costs["unit"].astype(str),
        host=costs["host"].astype(str) if "host" in costs.columns else "",
    )
    per = c.groupby(["scenario", *by, "repetition"], sort=False)["value"].sum()
    g = per.reset_index().groupby(["scenario", *by], sort=False)["value"]
    stats = pd.DataFrame(
        {
            "repetitions": g.count(),
            "mean": g.mean(),
            "min": g.min(),
            "max": g.max(),
            "std": g.std(ddof=1),
        }
    ).reset_index()
    out = keys.merge(stats, on="scenario", how="left")
    out["repetitions"] = out["repetitions"].fillna(0).astype(int)
    return out[cols]


def scenario_overview(scenarios: pd.DataFrame) -> pd.DataFrame:
    """Every scenario with its definition, status, runs and substitutions (compact text)."""
    out = scenarios.drop(columns=["substitutions"]).copy()
    runs = [c for c in scenarios.columns if c.startswith("runs_")]
    out["runs"] = [
        ", ".join(f"{row[c]} {c[len('runs_'):].replace('_', ' ')}" for c in runs if row[c])
        for _, row in scenarios.iterrows()
    ]
    out["substitutions"] = [
        "; ".join(f"{s['knob']}: {_knob(s['requested'])} → {_knob(s['effective'])}" for s in subs)
        for subs in scenarios["substitutions"]
    ]
    return out


def substitutions_table(scenarios: pd.DataFrame) -> pd.DataFrame:
    """One row per substitution the resolver made: scenario, knob, requested, effective, reason."""
    rows = [
        {
            "number": number,
            "scenario": name,
            "knob": s["knob"],
            "requested": _knob(s["requested"]),
            "effective": _knob(s["effective"]),
            "reason": s["reason"],
        }
        for number, name, subs in zip(
            scenarios["number"], scenarios["scenario"], scenarios["substitutions"], strict=True
        )
        for s in subs
    ]
    return pd.DataFrame(
        rows, columns=["number", "scenario", "knob", "requested", "effective", "reason"]
    )


def _knob(value: object) -> str:
    """A knob value as text; null means the knob is not set at all."""
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# What each row of the per-host lab profile means (kvmnetlab/capabilities.py builds
# the profiles from each host's own capability document).
PROFILE_ROWS: tuple[tuple[str, str], ...] = (
    ("reachable", "answered the capability probe"),
    ("probe_error", "why it did not"),
    ("kernel_release", "kernel release (uname -r)"),
    ("modules", "kernel can load modules"),
    ("kvm_device", "/dev/kvm present"),
    ("accel", "accelerator a probe guest booted with (hypervisors; the proof KVM works)"),
    ("accel_reason", "evidence for that accelerator"),
    ("guests_reason", "why no guest runs here (hypervisors; empty: guests run)"),
    ("vhost_net", "/dev/vhost-net present"),
    ("qemu_version", "QEMU version"),
    ("qemu_poll_us", "QEMU's tap netdev accepts poll-us (vhost busy polling)"),
    ("halt_poll_ns_writable", "/sys/module/kvm/parameters/halt_poll_ns writable"),
    ("halt_poll_ns_value", "halt_poll_ns now (ns)"),
    ("pf_ring", "pf_ring.ko loaded"),
    ("pf_ring_version", "PF_RING version"),
    ("pf_ring_min_num_slots", "PF_RING min_num_slots (ring slots)"),
    ("pf_ring_reason", "why PF_RING is not loaded"),
    ("elvis_patched_kernel", "a verified ELVIS-patched kernel is running"),
    ("elvis_reason", "why not"),
    ("cpus_online", "online CPUs (count)"),
    ("isolated_cores", "isolated cores (isolcpus)"),
    ("nohz_full", "nohz_full cores"),
    ("governors", "CPU frequency governors (none: no cpufreq)"),
    ("nics", "data NICs: driver, queues (rx/tx), offloads (ethtool -K names; ? = not reported)"),
    ("kvm_host", "kvm_host settings: status (applied, already, unavailable, ...)"),
)


def _nic_cell(name: str, nic: dict) -> str:
    offloads = nic.get("key_offloads") or {}
    shown = " ".join(f"{k} {'?' if on is None else ('on' if on else 'off')}"
                     for k, on in offloads.items()) or "offloads not reported"
    return (f"{name} ({nic.get('address') or 'named'}): {nic.get('driver') or '?'}, "
            f"{nic.get('rx_queues')}/{nic.get('tx_queues')} queues, {shown}")


def _profile_cell(key: str, value: object) -> str:
    if key == "nics" and isinstance(value, dict):
        return "; ".join(_nic_cell(name, nic) for name, nic in value.items()) or "none described"
    if key == "kvm_host" and isinstance(value, dict):
        return "; ".join(f"{name}: {(s or {}).get('status')}"
                         + (f" ({s['reason']})" if (s or {}).get("reason") else "")
                         for name, s in sorted(value.items())) or "not applied"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "—"
    return str(value)


def lab_profile(profile: dict) -> pd.DataFrame:
    """The lab profile as one row per capability and one column per host.

    A profile written before capabilities were probed per host (a flat mapping) comes
    back as a single ``lab`` column.
    """
    hosts = profile.get("hosts") if isinstance(profile, dict) else None
    if not isinstance(hosts, dict):
        flat = profile or {}
        return pd.DataFrame({"capability": list(flat), "meaning": [""] * len(flat),
                             "lab": [_profile_cell(k, v) for k, v in flat.items()]})
    names = sorted(hosts)
    rows = []
    for key, meaning in PROFILE_ROWS:
        if not any(key in (hosts[h] or {}) for h in names):
            continue
        rows.append({"capability": key, "meaning": meaning,
                     **{h: _profile_cell(key, (hosts[h] or {}).get(key)) for h in names}})
    return pd.DataFrame(rows, columns=["capability", "meaning", *names])


def tool_versions_table(versions: dict) -> pd.DataFrame:
    """``{tool: {host: version}}`` (or the older ``{tool: version}``) as tool, version, hosts."""
    rows = []
    for tool, found in sorted((versions or {}).items()):
        if not isinstance(found, dict):
            rows.append({"tool": tool, "version": str(found), "hosts": ""})
            continue
        by_version: dict[str, list[str]] = {}
        for host, version in sorted(found.items()):
            by_version.setdefault(version or "not installed", []).append(host)
        rows += [{"tool": tool, "version": v, "hosts": ", ".join(hs)}
                 for v, hs in by_version.items()]
    return pd.DataFrame(rows, columns=["tool", "version", "hosts"])
