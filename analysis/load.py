"""Loading layer: read one campaign folder of the result store and validate it.

Only this module brings a campaign in. It gets ``manifest.json`` and the tidy
tables under ``data/`` (docs/result-store.md) from the core, which reads them
(``kvmnetlab.store_format.read_manifest``, ``kvmnetlab.store_read``), checks
what analysis relies on, and hands back a :class:`Campaign`, the data model
every later layer works from. Anything that does not match the format
raises :class:`InputError`, whose message names the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvmnetlab import store_format, store_read
from kvmnetlab.errors import FormatError
from kvmnetlab.store import Store
from kvmnetlab.store_format import RUN_STATES as RUN_STATUSES
from kvmnetlab.store_format import SCENARIO_STATUSES, received_above_sent


class InputError(FormatError):
    """A results folder does not match the result-store format (kvmnetlab.store_format).

    ``path`` is the offending file and ``field`` the column or dotted manifest key.
    """

# The tables analysis reads: those of the format with columns marked ``read``.
TABLES = tuple(name for name in store_format.TABLES if store_format.read_columns(name)[0])
# The independent probes' tables: used only when present and not empty, so a campaign
# collected before them (or without sockperf) loads as before.
PROBE_TABLES = ("fping_rtt", "sockperf")
SOCKPERF_STATISTICS = ("rtt", "half_rtt")
# The throughput search's tables: like rate and costs, used only when present and not empty,
# so a campaign without them loads as before.
SEARCH_TABLES = ("throughput", "search_trials", "rtt_load")
SEARCH_STATUSES = ("found", "at_max", "generator_limited", "below_min", "budget")
TRIAL_PHASES = ("search", "validation", "load")
_CATEGORICAL = ("scenario", "host", "backend", "metric", "unit")


@dataclass(frozen=True)
class Campaign:
    """One campaign as read from its folder: the manifest and its tidy tables.

    A table is ``None`` when the campaign did not collect it. ``scenarios`` has
    one row per manifest scenario, in report order (scenario ``number``, then
    name), whether or not it produced data.
    """

    path: Path
    manifest: dict[str, Any]
    scenarios: pd.DataFrame
    rtt: pd.DataFrame | None = None
    ping_summary: pd.DataFrame | None = None
    rate: pd.DataFrame | None = None
    costs: pd.DataFrame | None = None
    throughput: pd.DataFrame | None = None
    search_trials: pd.DataFrame | None = None
    rtt_load: pd.DataFrame | None = None
    fping_rtt: pd.DataFrame | None = None
    sockperf: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def campaign_id(self) -> str:
        return str(self.manifest["campaign_id"])

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.manifest.get("parameters") or {})

    @property
    def started_at(self) -> str:
        return str(self.manifest.get("started_at") or "")

    @property
    def scenario_order(self) -> list[str]:
        return list(self.scenarios["scenario"])

    @property
    def blocks(self) -> dict[tuple[str, int], int]:
        """(scenario, repetition) -> block, from the manifest's runs (empty before blocks)."""
        out = {}
        for run in self.manifest.get("runs") or []:
            if run.get("block") is not None:
                out[(str(run["scenario"]), int(run["repetition"]))] = int(run["block"])
        return out

    @property
    def controls(self) -> dict[str, str]:
        """A/A control scenario -> the scenario it copies."""
        frame = self.scenarios.loc[self.scenarios["control_of"] != ""]
        return dict(zip(frame["scenario"], frame["control_of"], strict=True))


def load_campaign(path: str | Path, *, verify: bool = True) -> Campaign:
    """Read and validate the campaign folder ``path``.

    With ``verify`` the sha256 of every data table that the manifest lists under
    ``files`` is checked. Raises :class:`InputError` on anything malformed.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError(root, None, "not a results folder (no such directory)")
    manifest_path = Store(root).manifest_path
    manifest = _read_manifest(manifest_path)
    scenarios = _scenario_frame(manifest_path, manifest)
    known = set(scenarios["scenario"])
    ran = scenarios.loc[scenarios["status"] == "run", "scenario"].tolist()

    files = manifest.get("files") or {}
    tables: dict[str, pd.DataFrame | None] = {}
    for name in TABLES:
        rel = store_format.table_rel(name)
        file = store_read.table_file(root, name)
        required = rel in files or (name in ("rtt", "ping_summary") and bool(ran))
        if not file.exists():
            if required:
                why = "listed in manifest.json files" if rel in files else (
                    f"scenarios {', '.join(ran)} have status 'run'"
                )
                raise InputError(file, None, f"missing ({why})")
            tables[name] = None
            continue
        if verify:
            try:
                store_read.verify_table(root, name, manifest)
            except FormatError as exc:
                raise InputError(exc.path, exc.field, exc.reason) from None
        tables[name] = _read_table(root, name, known)
        if name in ("rate", "costs", *SEARCH_TABLES, *PROBE_TABLES) and tables[name].empty:
            tables[name] = None  # ingest writes every table; no rows means not collected

    warnings = _consistency_warnings(scenarios, tables)
    return Campaign(
        path=root,
        manifest=manifest,
        scenarios=scenarios,
        rtt=tables["rtt"],
        ping_summary=tables["ping_summary"],
        rate=tables["rate"],
        costs=tables["costs"],
        throughput=tables["throughput"],
        search_trials=tables["search_trials"],
        rtt_load=tables["rtt_load"],
        fping_rtt=tables["fping_rtt"],
        sockperf=tables["sockperf"],
        warnings=warnings,
    )


# --------------------------------------------------------------------------- manifest


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, upgraded to the current format and checked (kvmnetlab.store_format)."""
    try:
        return store_format.read_manifest(path)
    except FormatError as exc:
        raise InputError(exc.path, exc.field, exc.reason) from None


def _scenario_frame(path: Path, manifest: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for name, spec in manifest["scenarios"].items():
        where = f"scenarios.{name}"
        if not isinstance(spec, dict):
            raise InputError(path, where, "must be an object")
        status = spec.get("status")
        if status not in SCENARIO_STATUSES:
            raise InputError(
                path,
                f"{where}.status",
                f"must be one of {', '.join(SCENARIO_STATUSES)}, got {status!r}",
            )
        number = spec.get("number")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            raise InputError(path, f"{where}.number", f"must be an integer, got {number!r}")
        subs = spec.get("substitutions") or []
        if not isinstance(subs, list):
            raise InputError(path, f"{where}.substitutions", "must be a list")
        for i, sub in enumerate(subs):
            if not isinstance(sub, dict) or "knob" not in sub:
                raise InputError(
                    path,
                    f"{where}.substitutions[{i}]",
                    "must be an object with knob, requested, effective, reason",
                )
            for key in ("requested", "effective", "reason"):
                if key not in sub:
                    raise InputError(path, f"{where}.substitutions[{i}].{key}", "missing")
        rows.append(
            {
                "scenario": name,
                "number": number,
                "title": spec.get("title") or name,
                "virtualization": spec.get("virtualization"),
                "io_path": spec.get("io_path"),
                "capture": spec.get("capture"),
                "policy": spec.get("policy"),
                "status": status,
                "reason": spec.get("reason") or "",
                "substitutions": [dict(s) for s in subs],
                "resolved_on": _resolved_on(spec.get("resolved")),
                "control_of": spec.get("control_of") or "",
                "effective": _effective(spec.get("resolved")),
            }
        )
    runs = manifest.get("runs") or []
    counts: dict[str, dict[str, int]] = {}
    for i, run in enumerate(runs):
        if not isinstance(run, dict) or run.get("status") not in RUN_STATUSES:
            raise InputError(
                path, f"runs[{i}].status", f"must be one of {', '.join(RUN_STATUSES)}"
            )
        if run.get("scenario") not in manifest["scenarios"]:
            raise InputError(
                path, f"runs[{i}].scenario", f"{run.get('scenario')!r} is not in scenarios"
            )
        block = run.get("block")
        if block is not None and (isinstance(block, bool) or not isinstance(block, int)
                                  or block < 1):
            raise InputError(path, f"runs[{i}].block", f"must be an integer >= 1, got {block!r}")
        per = counts.setdefault(run["scenario"], dict.fromkeys(RUN_STATUSES, 0))
        per[run["status"]] += 1
    frame = pd.DataFrame(
        rows,
        columns=[
            "scenario", "number", "title", "virtualization", "io_path", "capture",
            "policy", "status", "reason", "substitutions", "resolved_on", "control_of",
            "effective",
        ],
    )
    for status in RUN_STATUSES:
        frame[f"runs_{status}"] = [counts.get(s, {}).get(status, 0) for s in frame["scenario"]]
    frame["number"] = frame["number"].astype("Int64")
    order = frame.assign(_n=frame["number"].fillna(10**9)).sort_values(
        ["_n", "scenario"], kind="stable"
    )
    return order.drop(columns="_n").reset_index(drop=True)


def _read_table(root: Path, name: str, known: set[str]) -> pd.DataFrame:
    """The table as the core reads it (kvmnetlab.store_read), its scenarios known and its
    values checked."""
    file = store_read.table_file(root, name)
    try:
        frame = store_read.read_table(root, name, categorical=_CATEGORICAL)
    except FormatError as exc:
        raise InputError(exc.path, exc.field, exc.reason) from None
    unknown = sorted(set(frame["scenario"].cat.categories) - known)
    if unknown:
        raise InputError(
            file, "scenario", f"{', '.join(map(repr, unknown))} not in manifest.json scenarios"
        )
    _check_values(file, name, frame)
    return frame


def _first_bad(file: Path, column: str, mask: Any, message: str) -> None:
    if mask.any():
        row = int(mask.to_numpy().nonzero()[0][0])
        raise InputError(file, column, f"{message} (row {row})")


def _check_values(file: Path, name: str, frame: pd.DataFrame) -> None:
    _first_bad(file, "repetition", frame["repetition"] < 1, "must be >= 1")
    if name == "rtt":
        rtt = frame["rtt_us"]
        answered = frame["answered"]
        _first_bad(file, "rtt_us", answered & ~(rtt >= 0),
                   "answered probe without a finite rtt >= 0")
        _first_bad(file, "rtt_us", answered & (rtt == float("inf")), "infinite")
    elif name == "ping_summary":
        _first_bad(file, "transmitted", frame["transmitted"] < 0, "negative")
        _first_bad(file, "received", frame["received"] < 0, "negative")
    elif name == "rate":
        _first_bad(file, "sent", frame["sent"] < 0, "negative")
        _first_bad(file, "received", frame["received"] < 0, "negative")
        _flag_received_above_sent(file, frame)
    elif name == "costs":
        _first_bad(file, "value", ~np.isfinite(frame["value"]), "not a finite number")
    elif name == "throughput":
        for kind in ("ndr", "pdr"):
            status = frame[f"{kind}_status"]
            _first_bad(file, f"{kind}_status", ~status.isin(SEARCH_STATUSES),
                       f"must be one of {', '.join(SEARCH_STATUSES)}")
            pps = frame[f"{kind}_pps"]
            _first_bad(file, f"{kind}_pps", pps < 0, "negative")
            _first_bad(file, f"{kind}_pps", pps.isna() & status.isin(("found", "at_max")),
                       f"null with {kind}_status found or at_max (a rate that passed)")
        _first_bad(file, "min_pps", ~(frame["min_pps"] > 0), "must be > 0")
    elif name == "search_trials":
        _first_bad(file, "phase", ~frame["phase"].isin(TRIAL_PHASES),
                   f"must be one of {', '.join(TRIAL_PHASES)}")
        _first_bad(file, "offered_pps", ~(frame["offered_pps"] > 0), "must be > 0")
        loss = frame["loss_ratio"]
        _first_bad(file, "loss_ratio", frame["valid"] & ~((loss >= 0) & (loss <= 1)),
                   "a valid trial's loss ratio must be in [0, 1]")
    elif name == "fping_rtt":
        rtt = frame["rtt_us"]
        _first_bad(file, "rtt_us", frame["answered"] & ~((rtt >= 0) & np.isfinite(rtt)),
                   "answered probe without a finite rtt >= 0")
    elif name == "sockperf":
        _first_bad(file, "statistic", ~frame["statistic"].isin(SOCKPERF_STATISTICS),
                   f"must be one of {', '.join(SOCKPERF_STATISTICS)}")
        _first_bad(file, "p50_us", ~((frame["p50_us"] >= 0) & np.isfinite(frame["p50_us"])),
                   "must be a finite number >= 0")
    elif name == "rtt_load":
        rtt = frame["rtt_us"]
        _first_bad(file, "rtt_us", frame["answered"] & ~((rtt >= 0) & np.isfinite(rtt)),
                   "answered probe without a finite rtt >= 0")


def _flag_received_above_sent(file: Path, frame: pd.DataFrame) -> None:
    """A rate row whose counter saw more frames than were sent has no measurable loss.

    ``lost`` becomes a nullable integer, null (and ``loss_pct`` NaN) on those rows,
    with ``excess_frames`` (received - sent, else 0) and ``flag`` beside. Campaigns
    ingested before these columns existed stored a negative loss there: it is
    flagged the same way here, so no consumer ever averages it.
    """
    above = (frame["received"] > frame["sent"]).to_numpy()
    excess = np.where(above, frame["received"] - frame["sent"], 0).astype(np.int64)
    if "excess_frames" in frame:
        _first_bad(file, "excess_frames", frame["excess_frames"] != excess,
                   "is not received - sent where positive, else 0")
    else:
        frame["excess_frames"] = excess
    if "flag" in frame:
        _first_bad(file, "flag", pd.Series(above) == (frame["flag"] == "").to_numpy(),
                   "must be set exactly where received exceeds sent")
    else:
        frame["flag"] = [received_above_sent(int(n)) if n else "" for n in excess]
    lost = frame["lost"].astype("Int64")
    _first_bad(file, "lost", lost.isna() & ~above, "null where received does not exceed sent")
    frame["lost"] = lost.mask(above)
    frame["loss_pct"] = frame["loss_pct"].mask(above)


def _consistency_warnings(
    scenarios: pd.DataFrame, tables: dict[str, pd.DataFrame | None]
) -> list[str]:
    """Things that are legal in the format but worth telling the reader."""
    notes = []
    rtt = tables["rtt"]
    with_rtt = set(rtt["scenario"].unique()) if rtt is not None else set()
    for row in scenarios.itertuples():
        if row.status == "run" and row.scenario not in with_rtt:
            notes.append(
                f"scenario {row.scenario} has status 'run' but no rows in data/rtt.parquet"
            )
        if row.status != "run" and row.scenario in with_rtt:
            notes.append(
                f"scenario {row.scenario} has status {row.status!r} but rows in data/rtt.parquet"
            )
        if row.runs_failed:
            notes.append(f"scenario {row.scenario}: {row.runs_failed} repetition(s) failed")
        if row.runs_pending:
            notes.append(f"scenario {row.scenario}: {row.runs_pending} repetition(s) still "
                         "pending (campaign interrupted or running)")
    rate = tables["rate"]
    if rate is not None and (rate["excess_frames"] > 0).any():
        flagged = rate.loc[rate["excess_frames"] > 0]
        runs = ", ".join(f"{s} repetition {r} ({n} frames more)" for s, r, n in zip(
            flagged["scenario"].astype(str), flagged["repetition"], flagged["excess_frames"],
            strict=True))
        notes.append(
            f"data/rate.parquet: {len(flagged)} row(s) received more frames than were sent "
            f"(foreign or duplicated frames matched the flow filter): {runs}; their loss "
            "cannot be measured, so they are flagged and left out of every loss statistic"
        )
    return notes


def _resolved_on(resolved: Any) -> str:
    """The hosts a scenario was resolved against, as text (empty in older manifests)."""
    hosts = (resolved or {}).get("hosts") if isinstance(resolved, dict) else None
    if not isinstance(hosts, dict):
        return ""
    return ", ".join(f"{role} {host}" for role, host in hosts.items() if host)


def _effective(resolved: Any) -> str:
    """What a scenario ran as on this lab, as text: its effective knobs and serving guest.

    Two scenarios with the same text ran the same configuration on the same guest,
    whatever they requested (empty when the manifest has no resolution). The
    hosts are left out: they follow from the guest.
    """
    if not isinstance(resolved, dict):
        return ""
    knobs = {k: v for k, v in resolved.items() if k != "hosts"}
    return json.dumps(knobs, sort_keys=True, default=str) if knobs else ""
