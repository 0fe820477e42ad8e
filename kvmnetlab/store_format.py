"""The result store's on-disk format, declared once (see docs/result-store.md).

- the manifest (``manifest.json``): its version, the keys every reader needs and
  their types, checked by :func:`check_manifest`; :func:`read_manifest` reads,
  upgrades and checks it, and every reader (the store, analysis, the store check)
  goes through it;
- every data table under ``data/``: its columns, with the dtype ingest writes, the
  unit, and what analysis reads (``TABLES``). The collectors declare the tables
  they fill by name from here, ingest writes through :func:`dtypes`, and
  analysis reads and checks the columns marked ``read``.

A folder written in an older format is read through ``UPGRADES``: one function per
version, taking a manifest of version n to version n + 1. A change to what is
written bumps ``FORMAT_VERSION`` and registers the upgrade from the version before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvmnetlab.errors import FormatError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RUN_STATES = ("pending", "done", "failed", "not_run", "skipped")
#: a scenario's status once resolved (``pending`` before)
SCENARIO_STATUSES = ("run", "not_run", "skipped", "failed")

#: version n -> the function taking a manifest of version n to version n + 1 (in place or
#: a new dict; it sets ``format_version``). Empty while there is one version.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


# --------------------------------------------------------------------------- manifest


def upgrade(manifest: dict[str, Any], path: str | Path = MANIFEST) -> dict[str, Any]:
    """``manifest`` brought to ``FORMAT_VERSION`` through ``UPGRADES``, one version at a
    time; a version that is newer, or older with no upgrade registered, is refused."""
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise FormatError(path, "format_version", f"must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise FormatError(path, "format_version", f"is {version}; this kvmnetlab reads "
                          f"version {FORMAT_VERSION} and older")
    while version < FORMAT_VERSION:
        step = UPGRADES.get(version)
        if step is None:
            raise FormatError(path, "format_version", f"is {version}; this kvmnetlab reads "
                              f"version {FORMAT_VERSION} and has no upgrade from {version}")
        manifest = step(manifest)
        if manifest.get("format_version") != version + 1:
            raise AssertionError(f"upgrade from format_version {version} must set "
                                 f"{version + 1}")
        version += 1
    return manifest


def check_manifest(manifest: Any, path: str | Path = MANIFEST, *,
                   campaign: bool = False) -> dict[str, Any]:
    """Check the keys every reader relies on; raise :class:`FormatError` naming the field.

    With ``campaign`` the manifest must also hold ``runs`` and ``files``, as one that a
    campaign resumes or records into does (folders analysed later may lack them).
    """
    if not isinstance(manifest, dict):
        raise FormatError(path, None, "must hold a JSON object")

    def need(key: str, kind: type | tuple[type, ...], what: str) -> Any:
        if key not in manifest:
            raise FormatError(path, key, "missing")
        value = manifest[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise FormatError(path, key, f"must be {what}, got {value!r}")
        return value

    if need("format_version", int, "an integer") != FORMAT_VERSION:
        raise FormatError(path, "format_version", f"is {manifest['format_version']}; expected "
                          f"version {FORMAT_VERSION}")
    need("campaign_id", str, "a string")
    parameters = need("parameters", dict, "an object")
    need("scenarios", dict, "an object")
    if campaign:
        need("runs", list, "a list")
        need("files", dict, "an object")
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
                raise FormatError(path, f"parameters.{key}", f"must be {what}, got {value!r}")
    for key in ("started_at", "finished_at"):
        if manifest.get(key) is not None and not isinstance(manifest[key], str):
            raise FormatError(path, key, f"must be an ISO 8601 string, got {manifest[key]!r}")
    for key in ("lab", "git", "tool_versions", "files"):
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            raise FormatError(path, key, "must be an object")
    for key in ("runs", "order"):
        if manifest.get(key) is not None and not isinstance(manifest[key], list):
            raise FormatError(path, key, "must be a list")
    return manifest


def parse_manifest(text: str, path: str | Path = MANIFEST, *,
                   campaign: bool = False) -> dict[str, Any]:
    """A manifest's text -> the manifest, upgraded to ``FORMAT_VERSION`` and checked."""
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(path, None, f"not valid JSON: line {exc.lineno}, column "
                          f"{exc.colno}: {exc.msg}") from None
    if not isinstance(manifest, dict):
        raise FormatError(path, None, "must hold a JSON object")
    return check_manifest(upgrade(manifest, path), path, campaign=campaign)


def read_manifest(path: str | Path, *, campaign: bool = False) -> dict[str, Any]:
    """Read ``path`` (a campaign's manifest.json): upgraded and checked."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError(path, None, "missing: not a campaign folder (no manifest)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(path, None, f"cannot be read: {exc}") from exc
    return parse_manifest(text, path, campaign=campaign)


def dump_manifest(manifest: dict[str, Any]) -> bytes:
    """The bytes of ``manifest.json`` for ``manifest``."""
    return (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()


# --------------------------------------------------------------------------- data tables


@dataclass(frozen=True)
class Column:
    """One column of a data table.

    ``dtype`` is the pandas dtype ingest writes; ``unit`` what a value counts ("" for a
    label, "per row" when a ``unit`` column says); ``read`` whether analysis reads it:
    ``"required"``, ``"optional"`` (folders ingested before it existed lack it) or
    ``""``; ``nullable`` whether a reader accepts a null there.
    """

    dtype: str
    unit: str = ""
    read: str = ""
    nullable: bool = False


def _col(dtype: str, unit: str = "", read: str = "required", nullable: bool = False) -> Column:
    return Column(dtype, unit, read, nullable)


def _kept(dtype: str, unit: str = "") -> Column:
    """A column ingest writes that analysis does not read."""
    return Column(dtype, unit, "")


def _key(host: str = "required", read: str = "required") -> dict[str, Column]:
    """The columns that place a row: scenario, repetition (1-based) and host."""
    return {"scenario": Column("string", "", read), "repetition": Column("int64", "", read),
            "host": Column("string", "", host)}


#: the flow a row belongs to: 1..N where N guests or containers receive N flows at once
#: (collectors.base.plan); 1 for every single-flow run; absent in folders ingested before it
_FLOW = {"flow": _col("int64", "flow number (1-based)", "optional")}

_RTT = {"seq": _kept("int64", "ICMP sequence number"), "timestamp_s": _kept("float64", "s"),
        "answered": _col("bool"), "rtt_us": _col("float64", "µs", nullable=True)}

TABLES: dict[str, dict[str, Column]] = {
    # ping: one row per probe (unanswered ones with a null rtt_us)
    "rtt": {**_key(), **_RTT, "duplicates": _kept("int64", "replies"), **_FLOW},
    # ping: its closing summary, one row per run
    "ping_summary": {
        **_key(), "transmitted": _col("int64", "packets"), "received": _col("int64", "packets"),
        "duplicates": _kept("int64", "packets"), "errors": _kept("int64", "packets"),
        "loss_pct": _col("float64", "%", nullable=True), "interval_s": _kept("float64", "s"),
        "payload_bytes": _kept("int64", "bytes"), **_FLOW},
    # the fixed-rate load: ``lost`` null and ``loss_pct`` NaN where the counter saw more
    # frames than were sent (``excess_frames`` received - sent, else 0; ``flag`` says why)
    "rate": {
        **_key(host=""), "backend": _col("string"), "frame_bytes": _col("int64", "bytes"),
        "rate_pps": _col("float64", "frames/s"), "sent": _col("int64", "frames"),
        "received": _col("int64", "frames"), "lost": _col("Int64", "frames", nullable=True),
        "loss_pct": _col("float64", "%", nullable=True),
        "excess_frames": _col("int64", "frames", "optional"),
        "flag": _col("string", "", "optional"),
        "receiver_host": _col("string", "", "optional"),  # the flow's guest or container
        "receiver_if_rx_packets": _kept("int64", "packets"),
        "receiver_drops": _kept("int64", "packets"), **_FLOW},
    # counter snapshots before and after the load window (cpu, kvm, netdev, qemu_threads)
    "counters": {
        **_key(host="", read=""), "source": _kept("string"), "item": _kept("string"),
        "counter": _kept("string"), "before": _kept("int64", "per row"),
        "after": _kept("int64", "per row"), "delta": _kept("int64", "per row"),
        "unit": _kept("string"), **_FLOW},
    # per-packet costs derived from counters and rate (collectors.builtin.derive_costs)
    "costs": {
        **_key(host="optional"), "metric": _col("string"), "value": _col("float64", "per row"),
        "unit": _col("string")},
    # the throughput search: one row per search
    "throughput": {
        **_key(), "backend": _col("string"), "frame_bytes": _col("int64", "bytes"),
        "ndr_pps": _col("float64", "frames/s", nullable=True),
        "ndr_upper_pps": _col("float64", "frames/s", nullable=True),
        "ndr_status": _col("string"),
        "pdr_pps": _col("float64", "frames/s", nullable=True),
        "pdr_upper_pps": _col("float64", "frames/s", nullable=True),
        "pdr_status": _col("string"), "pdr_loss_ratio": _col("float64", "fraction"),
        "granularity": _col("float64", "fraction"), "min_pps": _col("float64", "frames/s"),
        "max_pps": _col("float64", "frames/s"), "trials": _col("int64", "trials"),
        "invalid_trials": _col("int64", "trials"),
        "generator_max_pps": _col("float64", "frames/s", nullable=True),
        "achieved_max_pps": _col("float64", "frames/s", nullable=True),
        "search_s": _kept("float64", "s")},
    # the throughput search: every trial
    "search_trials": {
        **_key(), "trial": _col("int64", "trial number"), "phase": _col("string"),
        "backend": _col("string"), "frame_bytes": _col("int64", "bytes"),
        "offered_pps": _col("float64", "frames/s"), "duration_s": _col("float64", "s"),
        "frames": _kept("int64", "frames"), "sent": _col("Int64", "frames", nullable=True),
        "sender_time_s": _kept("float64", "s"),
        "achieved_pps": _col("float64", "frames/s", nullable=True),
        "received": _col("Int64", "frames", nullable=True),
        "loss_ratio": _col("float64", "fraction", nullable=True), "valid": _col("bool"),
        "invalid_reason": _col("string"), "receiver_ready_s": _kept("float64", "s"),
        "fraction": _col("float64", "fraction of the PDR", "optional", nullable=True)},
    # the throughput search: RTT probes sent under load
    "rtt_load": {
        **_key(), "fraction": _col("float64", "fraction of the PDR"),
        "offered_pps": _col("float64", "frames/s"), "load_valid": _col("bool"),
        **_RTT, "seq": _col("int64", "ICMP sequence number")},
    # fping beside ping (collectors.builtin.FpingCollector): one row per probe, unanswered
    # ones with a null rtt_us; start_offset_s is fping's start after ping's (NaN alone)
    "fping_rtt": {
        **_key(), "target": _kept("string"), "seq": _kept("int64", "probe number"),
        "answered": _col("bool"), "rtt_us": _col("float64", "µs", nullable=True),
        "interval_s": _kept("float64", "s"), "start_offset_s": _kept("float64", "s"), **_FLOW},
    # sockperf's UDP ping-pong (optional): one row per run; statistic is rtt or half_rtt
    # (RTT/2), as the output says
    "sockperf": {
        **_key(), "target": _kept("string"), "statistic": _col("string"),
        "mps": _kept("int64", "messages/s"), "duration_s": _kept("int64", "s"),
        "observations": _col("int64", "messages"), "dropped": _kept("int64", "messages"),
        "p50_us": _col("float64", "µs per statistic"), "p99_us": _kept("float64", "µs"),
        "avg_us": _kept("float64", "µs"), "min_us": _kept("float64", "µs"),
        "max_us": _kept("float64", "µs"), **_FLOW},
}


def table_rel(table: str) -> str:
    """The path of the tidy table ``table`` in a campaign folder (its key under ``files``)."""
    return f"data/{table}.parquet"


def dtypes(table: str) -> dict[str, str]:
    """Column -> the pandas dtype ingest writes, for ``table``."""
    return {name: column.dtype for name, column in TABLES[table].items()}


def read_columns(table: str) -> tuple[dict[str, Column], dict[str, Column]]:
    """The columns analysis reads from ``table``: (required, optional)."""
    columns = TABLES[table]
    return ({n: c for n, c in columns.items() if c.read == "required"},
            {n: c for n, c in columns.items() if c.read == "optional"})


def received_above_sent(excess: int) -> str:
    """The ``flag`` of a rate row whose counter saw ``excess`` frames more than were sent."""
    return (f"received_above_sent: {excess} frames more than sent; likely foreign or "
            "duplicated frames matching the flow filter")
