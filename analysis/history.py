"""Nightly history: every night's summaries in one catalog, cut into comparable segments.

A *night* is one campaign folder written by an unattended run. :func:`night_rows`
reads it (through :func:`analysis.load.load_campaign`) and returns its long-format
rows, one per (scenario, metric). A night's value is a summary of its
repetitions, never of pooled probes: each repetition (status ``done`` in the
manifest's ``runs``) gives one number, and the night reports their night value
(:func:`analysis.replication.night_value`: the geometric mean for RTT
percentiles, as the report's typical median; the mean otherwise), sample sd and
count. :func:`update_catalog` keeps the rows of every night in
``<history>/nights.parquet``, so the history is queried without opening any
campaign folder. :func:`segments` cuts the done nights where the parameters
(``params_hash``) or the lab (``lab_hash``) changed: nights of different segments
are never compared as if they were alike.

Nights that produced no results (failed, skipped, refused) get one row from
:func:`outcome_row`. Metric definitions, units and hashes: docs/analysis.md,
"Nightly history and change points".
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.load import InputError, load_campaign
from analysis.model import rtt_by_repetition
from analysis.replication import night_value, repetition_summary
from kvmnetlab.store import Store

CATALOG = "nights.parquet"
OUTCOMES = ("done", "failed", "skipped", "refused")

# The catalog's columns, in order, with their pandas dtypes ("str": text, null allowed).
# ``context`` holds Python str (or None) in an object column: the rows of a night share one
# string object, so 1 000 nights of ~6 KB contexts cost ~6 MB, not one copy per row; on disk
# it is dictionary-encoded the same way.
COLUMNS: dict[str, str] = {
    "night": "str", "started_at": "str", "campaign_id": "str", "outcome": "str",
    "reason": "str", "scenario": "str", "metric": "str", "unit": "str",
    "value": "float64", "sd": "float64", "n_reps": "int64", "params_hash": "str",
    "lab_hash": "str", "commit": "str", "context": "object",
}

# Metric -> unit. Per-packet costs are added per campaign as "<metric>[<host>]" with the unit
# data/costs.parquet gives them (e.g. "cpu_us_per_packet[kvmnl-h1]", µs of CPU per packet).
METRICS: dict[str, str] = {
    "rtt_p50_us": "µs",
    "rtt_p90_us": "µs",
    "rtt_p99_us": "µs",
    "ping_loss_pct": "%",
    "rate_loss_pct": "%",
    "ndr_pps": "packets/s",
    "pdr_pps": "packets/s",
}
HIGHER_IS_BETTER = frozenset({"ndr_pps", "pdr_pps"})
RTT_PERCENTILES = {"rtt_p50_us": "median_us", "rtt_p90_us": "p90_us", "rtt_p99_us": "p99_us"}

# data/throughput.parquet (kvmnetlab/store_format.py TABLES): one row per (scenario,
# repetition), NDR and PDR in frames/s, null when the search found no rate.
THROUGHPUT_COLUMNS = ("scenario", "repetition", "ndr_pps", "pdr_pps")

# Parameters drawn afresh for every campaign: not part of params_hash, never a difference.
VARYING_PARAMETERS = frozenset({"seed"})
# What a scenario asks for (manifest scenarios.<name>): hashed into params_hash.
REQUESTED_KEYS = ("virtualization", "io_path", "elvis_mode", "capture", "knobs", "collectors",
                  "control_of")
# Host capabilities and state (lab.profile.hosts.<host>) hashed into lab_hash. Versions
# (QEMU, PF_RING, tools) are context, not lab identity: a change of version within a segment
# is what change-point detection attributes a change to.
HASHED_CAPABILITIES = (
    "reachable", "kernel_release", "modules", "kvm_device", "kvm_openable", "accel",
    "vhost_net", "pf_ring", "pf_ring_min_num_slots", "elvis_patched_kernel", "qemu_poll_us",
    "halt_poll_ns_value", "cpus_online", "isolated_cores", "nohz_full", "governors", "nics",
    "kvm_host",
)
HOST_VERSIONS = ("pf_ring_version",)  # QEMU's is in tool_versions, per host
# A host's state that is compared night to night but not hashed: a shaper left on a tap is a
# change to be named by a change point, not a new lab that starts a new segment.
HOST_STATE = ("qdiscs",)
NIC_KEYS = ("driver", "rx_queues", "tx_queues", "key_offloads")
HASH_CHARS = 16


def better(metric: str) -> int:
    """+1 when a higher value of ``metric`` is better (throughput), -1 when lower is better."""
    return 1 if metric in HIGHER_IS_BETTER else -1


# --------------------------------------------------------------------------- frames


def empty() -> pd.DataFrame:
    """A catalog without rows, with every column and its dtype."""
    return typed(pd.DataFrame({c: [] for c in COLUMNS}))


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s catalog columns, in order, each with its dtype."""
    out = {}
    for column, dtype in COLUMNS.items():
        values = frame[column]
        if dtype == "object":  # str or None, each string object kept (and shared) as it is
            array = values.to_numpy(dtype=object, na_value=None)
            values = pd.Series(array, dtype=object)
        elif values.dtype != dtype:
            if dtype == "str":
                values = values.astype(object).where(values.notna(), None)
            values = values.astype(dtype)
        out[column] = values.reset_index(drop=True)
    return pd.DataFrame(out, copy=False)


def outcome_row(*, night: str, started_at: str | None, outcome: str, reason: str | None,
                campaign_id: str | None = None) -> pd.DataFrame:
    """One catalog row for a night without results (``failed``, ``skipped``, ``refused``)."""
    _check_night(night)
    if outcome not in OUTCOMES or outcome == "done":
        raise ValueError(f"outcome must be one of failed, skipped, refused, got {outcome!r} "
                         "(a done night's rows come from night_rows)")
    row = dict.fromkeys(COLUMNS)
    row.update(night=night, started_at=started_at, campaign_id=campaign_id, outcome=outcome,
               reason=reason, value=math.nan, sd=math.nan, n_reps=0)
    return typed(pd.DataFrame([row]))


def _check_night(night: Any) -> None:
    if not isinstance(night, str) or not night:
        raise ValueError(f"night must be a non-empty string that sorts chronologically "
                         f"(e.g. 20261130T021500Z), got {night!r}")


# --------------------------------------------------------------------------- one night


def night_rows(campaign_dir: str | Path, *, night: str, outcome: str = "done",
               reason: str | None = None) -> pd.DataFrame:
    """The catalog rows of one night: one per (scenario, metric) the campaign measured.

    ``value`` is the night value (:func:`summarise`) of the night's done repetitions'
    per-repetition statistic, ``sd`` their sample sd (n - 1; NaN with one repetition), ``n_reps``
    their count. Raises :class:`InputError` (file and field named) on a malformed
    folder. A campaign without any result still gives one row (metric null), so
    the night and its context stay in the catalog.
    """
    _check_night(night)
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    campaign = load_campaign(campaign_dir)
    manifest_path = Store(campaign.path).manifest_path
    manifest = campaign.manifest
    done = done_runs(manifest_path, manifest)
    per_rep = pd.concat(
        [
            _rtt_reps(campaign),
            _ping_reps(campaign.ping_summary),
            _rate_reps(campaign.rate),
            _cost_reps(Store(campaign.path).table_path("costs"), campaign.costs),
            _throughput_reps(campaign.throughput),
        ],
        ignore_index=True,
    )
    if done is not None:
        keys = list(zip(per_rep["scenario"], per_rep["repetition"], strict=True))
        per_rep = per_rep.loc[[k in done for k in keys]]
    summary = summarise(per_rep, campaign.scenario_order)
    ctx = context(manifest_path, manifest)
    if summary.empty:
        summary = pd.DataFrame([{"scenario": None, "metric": None, "unit": None,
                                 "value": math.nan, "sd": math.nan, "n_reps": 0}])
    git = manifest.get("git") or {}
    summary = summary.assign(
        night=night, started_at=manifest.get("started_at"), campaign_id=campaign.campaign_id,
        outcome=outcome, reason=reason, params_hash=params_hash(ctx), lab_hash=lab_hash(ctx),
        commit=git.get("commit"),
    )
    text = canonical(ctx)  # one string object, shared by the night's rows
    summary["context"] = pd.Series([text] * len(summary), index=summary.index, dtype=object)
    return typed(summary)


def done_runs(manifest_path: Path, manifest: dict[str, Any]) -> set[tuple[str, int]] | None:
    """(scenario, repetition) of every run with status done; None when the manifest has no
    ``runs`` (campaigns written before runs were recorded: every repetition counts)."""
    runs = manifest.get("runs")
    if not runs:
        return None
    out = set()
    for i, run in enumerate(runs):
        rep = run.get("repetition")
        if isinstance(rep, bool) or not isinstance(rep, int):
            raise InputError(manifest_path, f"runs[{i}].repetition",
                             f"must be an integer, got {rep!r}")
        if run["status"] == "done":
            out.add((str(run["scenario"]), rep))
    return out


REP_COLUMNS = ["scenario", "repetition", "metric", "unit", "value"]


def _reps(frame: pd.DataFrame, metric: str, unit: str, column: str) -> pd.DataFrame:
    out = pd.DataFrame({"scenario": frame["scenario"].astype(str).to_numpy(),
                        "repetition": frame["repetition"].to_numpy(dtype=np.int64),
                        "metric": metric, "unit": unit,
                        "value": frame[column].to_numpy(dtype=float)})
    return out[REP_COLUMNS]


def _rtt_reps(campaign) -> pd.DataFrame:
    """p50, p90, p99 (type 7) of each repetition's answered probes, pooled over its hosts."""
    summary = repetition_summary(rtt_by_repetition(campaign.rtt, campaign.scenario_order))
    if summary.empty:
        return pd.DataFrame(columns=REP_COLUMNS)
    return pd.concat([_reps(summary, metric, METRICS[metric], column)
                      for metric, column in RTT_PERCENTILES.items()], ignore_index=True)


def _loss(frame: pd.DataFrame | None, sent: str, received: str, metric: str) -> pd.DataFrame:
    """100 (sum sent - sum received) / sum sent over each repetition's rows.

    None when nothing was sent, nor when a row of the repetition counted more than
    it sent (a flagged rate row: ``lost`` null, or received > sent): that loss is not
    measurable, so the repetition is left out of the night's mean and ``n_reps``.
    """
    if frame is None or frame.empty:
        return pd.DataFrame(columns=REP_COLUMNS)
    flagged = frame[received] > frame[sent]
    if "lost" in frame:
        flagged |= frame["lost"].isna()
    sums = (frame.assign(scenario=frame["scenario"].astype(str),
                         _flagged=flagged.astype(np.int64))
            .groupby(["scenario", "repetition"], sort=True, observed=True)
            [[sent, received, "_flagged"]].sum().reset_index())
    sums = sums.loc[(sums[sent] > 0) & (sums["_flagged"] == 0)]
    sums["loss"] = 100.0 * (sums[sent] - sums[received]) / sums[sent]
    return _reps(sums, metric, METRICS[metric], "loss")


def _ping_reps(ping: pd.DataFrame | None) -> pd.DataFrame:
    return _loss(ping, "transmitted", "received", "ping_loss_pct")


def _rate_reps(rate: pd.DataFrame | None) -> pd.DataFrame:
    return _loss(rate, "sent", "received", "rate_loss_pct")


def _cost_reps(path: Path, costs: pd.DataFrame | None) -> pd.DataFrame:
    """``<metric>[<host>]`` per repetition (the mean, should a host report a metric twice)."""
    if costs is None or costs.empty:
        return pd.DataFrame(columns=REP_COLUMNS)
    frame = pd.DataFrame({
        "scenario": costs["scenario"].astype(str).to_numpy(),
        "repetition": costs["repetition"].to_numpy(dtype=np.int64),
        "metric": costs["metric"].astype(str).to_numpy(),
        "unit": costs["unit"].astype(str).to_numpy(),
        "value": costs["value"].to_numpy(dtype=float),
    })
    if "host" in costs:
        frame["metric"] = frame["metric"] + "[" + costs["host"].astype(str).to_numpy() + "]"
    units = frame.groupby("metric")["unit"].unique()
    for metric, found in units.items():
        if len(found) > 1:
            raise InputError(path, "unit", f"metric {metric} has several units: "
                             f"{', '.join(sorted(map(str, found)))}")
    out = frame.groupby(["scenario", "repetition", "metric", "unit"], sort=True)["value"].mean()
    return out.reset_index()[REP_COLUMNS]


def _throughput_reps(throughput: pd.DataFrame | None) -> pd.DataFrame:
    """ndr_pps, pdr_pps per repetition from data/throughput.parquet (as load_campaign read
    and checked it), when the campaign has one."""
    if throughput is None or throughput.empty:
        return pd.DataFrame(columns=REP_COLUMNS)
    frame = pd.DataFrame({
        "scenario": throughput["scenario"].astype(str).to_numpy(),
        "repetition": throughput["repetition"].to_numpy(dtype=np.int64),
        "ndr_pps": throughput["ndr_pps"].to_numpy(dtype=float),
        "pdr_pps": throughput["pdr_pps"].to_numpy(dtype=float),
    })
    frame = frame.groupby(["scenario", "repetition"], sort=True)[["ndr_pps", "pdr_pps"]]
    frame = frame.mean().reset_index()
    return pd.concat([_reps(frame, m, METRICS[m], m) for m in ("ndr_pps", "pdr_pps")],
                     ignore_index=True)


def _scale(metric: str) -> str:
    """The scale a metric's night value is taken on (:func:`analysis.replication.night_value`):
    RTT percentiles, positive and multiplicative, on the log scale (a geometric mean, as
    the report's typical median); losses, rates and costs, which may be 0, linear."""
    return "log" if metric in RTT_PERCENTILES else "linear"


def summarise(per_rep: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per (scenario, metric): the night value (:func:`analysis.replication.night_value`, on
    the metric's scale: :func:`_scale`), sample sd and count of the finite per-repetition values,
    scenarios in report order, metrics in :data:`METRICS` order, then costs by name."""
    per_rep = per_rep.loc[np.isfinite(per_rep["value"].to_numpy(dtype=float))]
    if per_rep.empty:
        return pd.DataFrame(columns=["scenario", "metric", "unit", "value", "sd", "n_reps"])
    grouped = per_rep.groupby(["scenario", "metric", "unit"], sort=False)["value"]
    out = grouped.agg(sd=lambda v: v.std(ddof=1), n_reps="count").reset_index()
    out.insert(3, "value", [night_value(v.to_numpy(dtype=float), _scale(k[1]))
                            for k, v in grouped])
    rank = {m: i for i, m in enumerate(METRICS)}
    place = {s: i for i, s in enumerate(order)}
    out["_s"] = out["scenario"].map(place)
    out["_m"] = out["metric"].map(lambda m: rank.get(m, len(rank)))
    out = out.sort_values(["_s", "_m", "metric"], kind="stable").drop(columns=["_s", "_m"])
    out["n_reps"] = out["n_reps"].astype("int64")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- context, hashes


def canonical(obj: Any) -> str:
    """Compact JSON with sorted keys: the same object always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def _sha(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:HASH_CHARS]


def context(manifest_path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """What describes a night: the campaign's parameters, git state, the lab's hosts
    (capabilities and state, hashed into ``lab_hash``), their PF_RING version, the tool
    versions (manifest ``tool_versions``: tool -> host -> version, kernel and QEMU among
    them), and each scenario's request (hashed into ``params_hash``) and substitutions."""
    git = _object(manifest_path, manifest, "git")
    for key, kind in (("commit", str), ("dirty", bool)):
        if git.get(key) is not None and not isinstance(git[key], kind):
            raise InputError(manifest_path, f"git.{key}", f"must be a {kind.__name__}, got "
                             f"{git[key]!r}")
    hosts, versions = _hosts(manifest_path, manifest)
    state = _host_state(manifest)
    lab = _object(manifest_path, manifest, "lab")
    profile = lab.get("profile") if isinstance(lab.get("profile"), dict) else {}
    roles = profile.get("roles") if isinstance(profile.get("roles"), dict) else {}
    return {
        "git": {"commit": git.get("commit"), "dirty": git.get("dirty")},
        "lab": {"name": lab.get("name"), "kind": lab.get("kind"), "hosts": hosts,
                "declared": profile.get("declared"),
                "guests": roles.get("guests"), "hypervisor": roles.get("hypervisor")},
        "host_versions": versions,
        "host_state": state,
        "tool_versions": manifest.get("tool_versions") or {},
        "parameters": manifest.get("parameters") or {},
        "scenarios": _scenarios(manifest_path, manifest),
    }


def params_hash(ctx: dict[str, Any]) -> str:
    """sha256 (first 16 hex) of the parameters (the seed left out) and each scenario's request."""
    return _sha(_params_identity(ctx))


def lab_hash(ctx: dict[str, Any]) -> str:
    """sha256 (first 16 hex) of the lab's name, kind, declarations, guests and each host's
    capabilities and state (no versions, reasons or times)."""
    return _sha(ctx.get("lab") or {})


def _params_identity(ctx: dict[str, Any]) -> dict[str, Any]:
    params = {k: v for k, v in (ctx.get("parameters") or {}).items()
              if k not in VARYING_PARAMETERS}
    requested = {s: spec.get("requested") for s, spec in (ctx.get("scenarios") or {}).items()}
    return {"parameters": params, "scenarios": requested}


def _object(path: Path, manifest: dict[str, Any], key: str) -> dict[str, Any]:
    value = manifest.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(path, key, "must be an object")
    return value


def _hosts(path: Path, manifest: dict[str, Any]) -> tuple[dict, dict]:
    """host -> hashed capabilities, host -> versions, from lab.profile (a flat mapping in older
    manifests: one pseudo-host ``lab`` with its scalar entries)."""
    profile = (manifest.get("lab") or {}).get("profile")
    if profile is None:
        return {}, {}
    if not isinstance(profile, dict):
        raise InputError(path, "lab.profile", "must be an object")
    if "hosts" not in profile:
        flat = {k: v for k, v in profile.items() if not isinstance(v, dict | list)
                and not k.endswith(("_reason", "_evidence"))}
        return {"lab": flat}, {}
    if not isinstance(profile["hosts"], dict):
        raise InputError(path, "lab.profile.hosts", "must be an object")
    caps, versions = {}, {}
    for host, doc in profile["hosts"].items():
        if not isinstance(doc, dict):
            raise InputError(path, f"lab.profile.hosts.{host}", "must be an object")
        caps[host] = {k: _capability(k, doc[k]) for k in HASHED_CAPABILITIES if k in doc}
        versions[host] = {k: doc[k] for k in HOST_VERSIONS if doc.get(k) is not None}
    return caps, versions


def _host_state(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """host -> the entries of HOST_STATE its profile has (``_hosts`` has checked the types)."""
    profile = (manifest.get("lab") or {}).get("profile")
    hosts = profile.get("hosts") if isinstance(profile, dict) else None
    if not isinstance(hosts, dict):
        return {}
    return {host: {k: doc[k] for k in HOST_STATE if doc.get(k) is not None}
            for host, doc in hosts.items() if isinstance(doc, dict)}


def _capability(key: str, value: Any) -> Any:
    """The part of a capability that is state: NICs' driver, queues, key offloads (no
    addresses); kvm_host settings' requested and observed values (no reasons)."""
    if key == "nics" and isinstance(value, dict):
        return {nic: {k: v.get(k) for k in NIC_KEYS} if isinstance(v, dict) else v
                for nic, v in value.items()}
    if key == "kvm_host" and isinstance(value, dict):
        return {name: {k: s.get(k) for k in ("requested", "observed")}
                if isinstance(s, dict) else s for name, s in value.items()}
    return value


def _scenarios(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, spec in (manifest.get("scenarios") or {}).items():
        knobs = spec.get("knobs")
        if knobs is not None and not isinstance(knobs, dict):
            raise InputError(path, f"scenarios.{name}.knobs", "must be an object")
        subs = [f"{s['knob']}: {s['requested']} → {s['effective']}"
                for s in spec.get("substitutions") or []]
        out[name] = {"requested": {k: spec[k] for k in REQUESTED_KEYS if k in spec},
                     "substitutions": subs}
    return out


# --------------------------------------------------------------------------- differences


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two nights' contexts, as "key: old → new" (the seed left out).

    Keys read as: ``commit``, ``<host> kernel_release``, ``<host> qemu_version``,
    ``<host> <tool>`` (tool versions), ``<host> qdiscs.<device>`` (the queueing disciplines
    on the host's data path, :mod:`kvmnetlab.traffic_control`), ``parameters.<name>``,
    ``<scenario> <knob path>``, ``lab <key>``. A host's change seen twice (its kernel as
    capability and as tool version) is listed once.
    """
    out, seen = [], set()
    for label, host, a, b in _diff_items(old, new):
        if host is not None and (host, a, b) in seen:
            continue
        seen.add((host, a, b))
        out.append(f"{label}: {a} → {b}")
    return out


def _diff_items(old: dict, new: dict) -> Iterable[tuple[str, str | None, str, str]]:
    git_old, git_new = old.get("git") or {}, new.get("git") or {}
    for key in ("commit", "dirty"):
        a, b = git_old.get(key), git_new.get(key)
        if a != b:
            yield key, None, _short(a, key), _short(b, key)
    lab_old, lab_new = old.get("lab") or {}, new.get("lab") or {}
    hosts_old, hosts_new = lab_old.get("hosts") or {}, lab_new.get("hosts") or {}
    for host in _keys(hosts_old, hosts_new):
        for path, a, b in _flat_diff(hosts_old.get(host), hosts_new.get(host)):
            yield f"{host} {path}", host, a, b
    for key in ("name", "kind", "declared", "guests", "hypervisor"):
        for path, a, b in _flat_diff(lab_old.get(key), lab_new.get(key), key):
            yield f"lab {path}", None, a, b
    for key in ("host_versions", "host_state"):
        per_old, per_new = old.get(key) or {}, new.get(key) or {}
        for host in _keys(per_old, per_new):
            for path, a, b in _flat_diff(per_old.get(host), per_new.get(host)):
                yield f"{host} {path}", host, a, b
    tools_old, tools_new = old.get("tool_versions") or {}, new.get("tool_versions") or {}
    for tool in _keys(tools_old, tools_new):
        a, b = tools_old.get(tool), tools_new.get(tool)
        if isinstance(a, dict) or isinstance(b, dict):
            a, b = a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}
            for host in _keys(a, b):
                if a.get(host) != b.get(host):
                    yield f"{host} {tool}", host, _text(a.get(host)), _text(b.get(host))
        elif a != b:
            yield tool, None, _text(a), _text(b)
    params_old = {k: v for k, v in (old.get("parameters") or {}).items()
                  if k not in VARYING_PARAMETERS}
    params_new = {k: v for k, v in (new.get("parameters") or {}).items()
                  if k not in VARYING_PARAMETERS}
    for path, a, b in _flat_diff(params_old, params_new, "parameters"):
        yield path, None, a, b
    scen_old, scen_new = old.get("scenarios") or {}, new.get("scenarios") or {}
    for name in _keys(scen_old, scen_new):
        for path, a, b in _flat_diff(scen_old.get(name), scen_new.get(name)):
            yield f"{name} {path.removeprefix('requested.')}", None, a, b


def _keys(a: dict, b: dict) -> list[str]:
    return sorted(set(a) | set(b), key=str)


def _flat_diff(a: Any, b: Any, prefix: str = "") -> Iterable[tuple[str, str, str]]:
    """(dotted path, old, new) of every leaf that differs; lists are leaves."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in _keys(a, b):
            path = f"{prefix}.{key}" if prefix else str(key)
            yield from _flat_diff(a.get(key, _ABSENT), b.get(key, _ABSENT), path)
    elif a != b:
        yield prefix or "(whole)", _text(a), _text(b)


_ABSENT = object()


def _text(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _short(value: Any, key: str) -> str:
    if key == "commit" and isinstance(value, str):
        return value[:12]
    return _text(value)


# --------------------------------------------------------------------------- the catalog


def read_catalog(history_dir: str | Path) -> pd.DataFrame:
    """The catalog ``history_dir``/nights.parquet (an empty catalog when there is none)."""
    file = Path(history_dir) / CATALOG
    if not file.exists():
        return empty()
    try:
        names = pq.read_schema(file).names
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise InputError(file, missing[0], "column missing")
        table = pq.read_table(file, columns=list(COLUMNS), read_dictionary=["context"])
    except (OSError, pa.ArrowException) as exc:
        raise InputError(file, None, f"not a readable Parquet file ({exc})") from exc
    frame = table.drop_columns(["context"]).to_pandas()
    frame["context"] = pd.Series(_shared_strings(table.column("context")), dtype=object)
    return typed(frame)


def _shared_strings(column: pa.ChunkedArray) -> np.ndarray:
    """A dictionary-encoded string column as an object array: one str object per distinct
    value, shared by its rows; None where null."""
    pieces = []
    for chunk in column.chunks:
        values = np.array([*chunk.dictionary.to_pylist(), None], dtype=object)
        codes = chunk.indices.fill_null(len(values) - 1).to_numpy(zero_copy_only=False)
        pieces.append(values[codes])
    return np.concatenate(pieces) if pieces else np.array([], dtype=object)


def update_catalog(history_dir: str | Path, rows: pd.DataFrame) -> pd.DataFrame:
    """Replace every row of the nights in ``rows``, keep the other nights, sort by night, write
    ``history_dir``/nights.parquet atomically and return the whole catalog."""
    missing = [c for c in COLUMNS if c not in rows]
    if missing:
        raise ValueError(f"rows lack catalog columns: {', '.join(missing)}")
    rows = typed(rows)
    if rows["night"].isna().any():
        raise ValueError("every row needs its night")
    folder = Path(history_dir)
    folder.mkdir(parents=True, exist_ok=True)
    old = read_catalog(folder)
    kept = old.loc[~old["night"].isin(set(rows["night"]))]
    catalog = typed(pd.concat([kept, rows], ignore_index=True)
                    .sort_values("night", kind="stable"))
    _write_atomic(folder / CATALOG, catalog)
    return catalog


def _write_atomic(file: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` to a temporary file beside ``file``, then rename it over ``file``.
    ``context`` is written dictionary-encoded (each night's text once)."""
    codes, uniques = pd.factorize(frame["context"], use_na_sentinel=True)
    context = pa.DictionaryArray.from_arrays(
        pa.array(codes, type=pa.int32(), mask=codes < 0),
        pa.array(list(uniques), type=pa.string()))
    table = pa.Table.from_pandas(frame.drop(columns=["context"]), preserve_index=False)
    table = table.append_column("context", context)
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- segments

SEGMENT_COLUMNS = ["night", "segment", "segment_reason"]


def segments(catalog: pd.DataFrame) -> pd.DataFrame:
    """Per done night, in night order: its ``segment`` (0-based) and ``segment_reason``, why
    that segment started (null for the first). A segment starts whenever ``params_hash`` or
    ``lab_hash`` differs from the previous done night's."""
    done = catalog.loc[catalog["outcome"] == "done", ["night", "params_hash", "lab_hash"]]
    nights = done.loc[~done["night"].duplicated()].sort_values("night", kind="stable")
    contexts = contexts_by_night(catalog, nights["night"])
    columns = [nights[c].to_numpy(dtype=object, na_value=None) for c in nights.columns]
    rows, segment, reason, previous = [], 0, None, None
    for night, params, lab in zip(*columns, strict=True):
        if previous is not None and (params, lab) != previous[1:]:
            segment += 1
            reason = _segment_reason(previous, (night, params, lab), contexts)
        rows.append((night, segment, reason))
        previous = (night, params, lab)
    out = pd.DataFrame(rows, columns=SEGMENT_COLUMNS)
    return out.astype({"night": "str", "segment": "int64", "segment_reason": "str"})


def contexts_by_night(catalog: pd.DataFrame, nights: Iterable[str]) -> dict[str, str | None]:
    """night -> its context text (the first row's), without copying the whole column."""
    wanted = set(nights)
    night = catalog["night"]
    mask = (~night.duplicated()) & night.isin(wanted)
    sub = catalog.loc[mask, ["night", "context"]]
    return dict(zip(sub["night"], sub["context"], strict=True))


def parse_context(text: Any) -> dict[str, Any]:
    """A context text as a dict ({} when null or not a JSON object)."""
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _segment_reason(before: tuple, after: tuple, contexts: dict[str, str | None]) -> str:
    old = parse_context(contexts.get(before[0]))
    new = parse_context(contexts.get(after[0]))
    parts = []
    if before[1] != after[1]:
        what = [f"{path}: {a} → {b}" for path, a, b in
                _flat_diff(_params_identity(old), _params_identity(new))]
        detail = f": {'; '.join(what)}" if what else ""
        parts.append(f"parameters changed (params_hash {_abbrev(before[1])} → "
                     f"{_abbrev(after[1])}){detail}")
    if before[2] != after[2]:
        hosts_old = (old.get("lab") or {}).get("hosts") or {}
        hosts_new = (new.get("lab") or {}).get("hosts") or {}
        what = [f"{host} {path} {a} → {b}" for host in _keys(hosts_old, hosts_new)
                for path, a, b in _flat_diff(hosts_old.get(host), hosts_new.get(host))]
        rest = {k: v for k, v in (old.get("lab") or {}).items() if k != "hosts"}
        rest_new = {k: v for k, v in (new.get("lab") or {}).items() if k != "hosts"}
        what += [f"{path} {a} → {b}" for path, a, b in _flat_diff(rest, rest_new)]
        parts.append("lab changed: " + (", ".join(what) if what else
                                        f"lab_hash {_abbrev(before[2])} → {_abbrev(after[2])}"))
    return "; ".join(parts)


def _abbrev(value: Any) -> str:
    return f"{value[:8]}…" if isinstance(value, str) else "(none)"
