"""Loading layer: read one campaign folder of the result store and validate it.

Only this module touches the file system on the way in. It reads
``manifest.json`` and the tidy tables under ``data/`` (docs/result-store.md),
checks them against the format, and hands back a :class:`Campaign`, the data
model every later layer works from. Anything that does not match the format
raises :class:`InputError`, whose message names the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from collectors.builtin import received_above_sent
from kvmnetlab.errors import StoreError
from kvmnetlab.store import FORMAT_VERSION, MANIFEST, sha256_file
from kvmnetlab.store import RUN_STATES as RUN_STATUSES

SCENARIO_STATUSES = ("run", "not_run", "skipped", "failed")


class InputError(StoreError):
    """A results folder does not match the result-store format.

    ``path`` is the offending file and ``field`` the column or dotted manifest key.
    """

    def __init__(self, path: str | Path, field: str | None, message: str) -> None:
        self.path = str(path)
        self.field = field
        self.reason = message
        where = f"{self.path}: {field}" if field else self.path
        super().__init__(f"{where}: {message}")


# Columns read from each table: name -> (arrow type predicate, description for errors).
_INT = (pa.types.is_integer, "an integer")
_FLOAT = (lambda t: pa.types.is_floating(t) or pa.types.is_integer(t), "a number")
_BOOL = (pa.types.is_boolean, "a boolean")
_STR = (
    lambda t: pa.types.is_string(t)
    or pa.types.is_large_string(t)
    or pa.types.is_string_view(t)
    or (pa.types.is_dictionary(t) and pa.types.is_string(t.value_type)),
    "a string",
)

TABLES: dict[str, dict[str, tuple[Any, str]]] = {
    "rtt": {
        "scenario": _STR,
        "repetition": _INT,
        "host": _STR,
        "answered": _BOOL,
        "rtt_us": _FLOAT,
    },
    "ping_summary": {
        "scenario": _STR,
        "repetition": _INT,
        "host": _STR,
        "transmitted": _INT,
        "received": _INT,
        "loss_pct": _FLOAT,
    },
    "rate": {
        "scenario": _STR,
        "repetition": _INT,
        "backend": _STR,
        "sent": _INT,
        "received": _INT,
        "lost": _INT,
        "loss_pct": _FLOAT,
        "frame_bytes": _INT,
        "rate_pps": _FLOAT,
    },
    "costs": {
        "scenario": _STR,
        "repetition": _INT,
        "metric": _STR,
        "value": _FLOAT,
        "unit": _STR,
    },
    # The throughput search (collectors/throughput.py), when the campaign ran it: one row
    # per search (scenario, repetition), every trial, and the RTT probes sent under load.
    "throughput": {
        "scenario": _STR,
        "repetition": _INT,
        "host": _STR,
        "backend": _STR,
        "frame_bytes": _INT,
        "ndr_pps": _FLOAT,
        "ndr_upper_pps": _FLOAT,
        "ndr_status": _STR,
        "pdr_pps": _FLOAT,
        "pdr_upper_pps": _FLOAT,
        "pdr_status": _STR,
        "pdr_loss_ratio": _FLOAT,
        "granularity": _FLOAT,
        "min_pps": _FLOAT,
        "max_pps": _FLOAT,
        "trials": _INT,
        "invalid_trials": _INT,
        "generator_max_pps": _FLOAT,
        "achieved_max_pps": _FLOAT,
    },
    "search_trials": {
        "scenario": _STR,
        "repetition": _INT,
        "host": _STR,
        "backend": _STR,
        "frame_bytes": _INT,
        "trial": _INT,
        "phase": _STR,
        "offered_pps": _FLOAT,
        "duration_s": _FLOAT,
        "sent": _INT,
        "achieved_pps": _FLOAT,
        "received": _INT,
        "loss_ratio": _FLOAT,
        "valid": _BOOL,
        "invalid_reason": _STR,
    },
    "rtt_load": {
        "scenario": _STR,
        "repetition": _INT,
        "host": _STR,
        "fraction": _FLOAT,
        "offered_pps": _FLOAT,
        "load_valid": _BOOL,
        "seq": _INT,
        "answered": _BOOL,
        "rtt_us": _FLOAT,
    },
}
# The throughput search's tables: like rate and costs, used only when present and not empty,
# so a campaign without them loads as before.
SEARCH_TABLES = ("throughput", "search_trials", "rtt_load")
SEARCH_STATUSES = ("found", "at_max", "generator_limited", "below_min", "budget")
TRIAL_PHASES = ("search", "validation", "load")
# Read when present: the host that reported a per-packet cost; a rate row's excess frames
# and flag (campaigns ingested before they existed lack them: they are worked out on load);
# a trial's fraction of the PDR (load points; campaigns searched before RTT was probed
# under load lack it).
OPTIONAL: dict[str, dict[str, tuple[Any, str]]] = {
    "costs": {"host": _STR},
    "rate": {"excess_frames": _INT, "flag": _STR},
    "search_trials": {"fraction": _FLOAT},
}
_CATEGORICAL = ("scenario", "host", "backend", "metric", "unit")
# Columns where a null (NaN) is legal: an unanswered probe; a loss when nothing was sent, or
# (rate) when the counter saw more frames than were sent, so that no loss can be measured.
NULLABLE = ("rtt_us", "loss_pct", "lost")
# ... and per table: a search's NDR/PDR when even the minimum lost (below_min) or the trials
# ran out first, a bound not found, a generator limit never met; a trial whose tools' closing
# lines are missing (no count, no achieved rate), an invalid trial's loss, a trial that is
# no load point (fraction).
NULLABLE_IN: dict[str, tuple[str, ...]] = {
    "throughput": ("ndr_pps", "ndr_upper_pps", "pdr_pps", "pdr_upper_pps",
                   "generator_max_pps", "achieved_max_pps"),
    "search_trials": ("sent", "achieved_pps", "received", "loss_ratio", "fraction"),
}


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
    manifest_path = root / MANIFEST
    manifest = _read_manifest(manifest_path)
    scenarios = _scenario_frame(manifest_path, manifest)
    known = set(scenarios["scenario"])
    ran = scenarios.loc[scenarios["status"] == "run", "scenario"].tolist()

    files = manifest.get("files") or {}
    tables: dict[str, pd.DataFrame | None] = {}
    for name in TABLES:
        rel = f"data/{name}.parquet"
        file = root / rel
        required = rel in files or (name in ("rtt", "ping_summary") and bool(ran))
        if not file.exists():
            if required:
                why = "listed in manifest.json files" if rel in files else (
                    f"scenarios {', '.join(ran)} have status 'run'"
                )
                raise InputError(file, None, f"missing ({why})")
            tables[name] = None
            continue
        if verify and rel in files:
            _verify_checksum(file, files[rel], manifest_path, rel)
        tables[name] = _read_table(file, name, known)
        if name in ("rate", "costs", *SEARCH_TABLES) and tables[name].empty:
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
        warnings=warnings,
    )


# --------------------------------------------------------------------------- manifest


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, None, "missing: not a campaign folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot be read: {exc}") from exc
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            path, None, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    if not isinstance(manifest, dict):
        raise InputError(path, None, "must hold a JSON object")

    def need(key: str, kind: type | tuple[type, ...], what: str) -> Any:
        if key not in manifest:
            raise InputError(path, key, "missing")
        value = manifest[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise InputError(path, key, f"must be {what}, got {value!r}")
        return value

    version = need("format_version", int, "an integer")
    if version != FORMAT_VERSION:
        raise InputError(
            path, "format_version", f"is {version}; this analysis reads version {FORMAT_VERSION}"
        )
    need("campaign_id", str, "a string")
    parameters = need("parameters", dict, "an object")
    need("scenarios", dict, "an object")
    for key, kind, what in (
        ("repetitions", int, "an integer"),
        ("ping_count", int, "an integer"),
        ("ping_interval_s", (int, float), "a number (seconds)"),
        ("ping_payload_bytes", int, "an integer (bytes)"),
        ("seed", int, "an integer"),
    ):
        if key in parameters and parameters[key] is not None:
            value = parameters[key]
            if isinstance(value, bool) or not isinstance(value, kind):
                raise InputError(path, f"parameters.{key}", f"must be {what}, got {value!r}")
    for key in ("started_at", "finished_at"):
        if manifest.get(key) is not None and not isinstance(manifest[key], str):
            raise InputError(path, key, f"must be an ISO 8601 string, got {manifest[key]!r}")
    for key in ("lab", "git", "tool_versions", "files"):
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            raise InputError(path, key, "must be an object")
    for key in ("runs", "order"):
        if manifest.get(key) is not None and not isinstance(manifest[key], list):
            raise InputError(path, key, "must be a list")
    return manifest


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


def _verify_checksum(file: Path, entry: Any, manifest_path: Path, rel: str) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise InputError(manifest_path, f"files.{rel}.sha256", "missing or not a string")
    if sha256_file(file) != entry["sha256"].lower():
        raise InputError(
            file, None, f"sha256 does not match manifest.json files.{rel} (file changed)"
        )


# --------------------------------------------------------------------------- tables


def _read_table(file: Path, name: str, known: set[str]) -> pd.DataFrame:
    spec = TABLES[name]
    try:
        schema = pq.read_schema(file)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(file, None, f"not a readable Parquet file ({exc})") from exc
    for column, (is_ok, what) in spec.items():
        index = schema.get_field_index(column)
        if index < 0:
            raise InputError(file, column, "column missing")
        if not is_ok(schema.field(index).type):
            raise InputError(
                file, column, f"must be {what}, found Parquet type {schema.field(index).type}"
            )
    optional = {c: t for c, t in OPTIONAL.get(name, {}).items() if c in schema.names}
    for column, (is_ok, what) in optional.items():
        found = schema.field(column).type
        if not is_ok(found):
            raise InputError(file, column, f"must be {what}, found Parquet type {found}")
    columns = [*spec, *optional]
    try:
        table = pq.read_table(
            file,
            columns=columns,
            read_dictionary=[c for c in columns if c in _CATEGORICAL],
        )
    except (OSError, pa.ArrowException) as exc:
        raise InputError(file, None, f"not a readable Parquet file ({exc})") from exc
    for column in columns:
        nullable = column in NULLABLE or column in NULLABLE_IN.get(name, ())
        if not nullable and table.column(column).null_count:
            row = pc.index(pc.is_null(table.column(column)), True).as_py()
            raise InputError(file, column, f"null value (row {row})")
    # self_destruct frees each Arrow column once converted: peak memory ~ one copy, not two
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    for column in columns:
        if column in _CATEGORICAL:
            frame[column] = frame[column].astype("category")
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
