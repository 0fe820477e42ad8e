"""Write a campaign folder (manifest.json + data/*.parquet) the way docs/result-store.md says.

The values are small on purpose: the tests check every table cell against
numbers worked out by hand in the test, not against the analysis code.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

NAN = math.nan

SCENARIOS: dict[str, dict[str, Any]] = {
    "base": {
        "number": 1, "title": "bare metal", "virtualization": "none", "io_path": "none",
        "capture": "af_packet", "policy": "fail", "status": "run", "reason": "",
        "substitutions": [],
    },
    "guest": {
        "number": 2, "title": "virtio guest", "virtualization": "kvm", "io_path": "virtio",
        "capture": "af_packet", "policy": "substitute", "status": "run", "reason": "",
        "substitutions": [
            {"knob": "io_path", "requested": "virtio", "effective": "virtio_user",
             "reason": "/dev/vhost-net absent"},
        ],
    },
    "elvis": {
        "number": 3, "title": "virtio + ELVIS", "virtualization": "kvm",
        "io_path": "elvis_upstream", "capture": "af_packet", "policy": "substitute",
        "status": "run", "reason": "",
        "substitutions": [
            {"knob": "io_path", "requested": "elvis_patched", "effective": "elvis_upstream",
             "reason": "no ELVIS patch series supplied"},
        ],
    },
    "pending": {
        "number": 4, "title": "vPF_RING", "virtualization": "kvm", "io_path": "virtio",
        "capture": "vpf_ring", "policy": "skip", "status": "not_run", "reason": "not run yet",
        "substitutions": [],
    },
    "broken": {
        "number": 5, "title": "ELVIS + vPF_RING", "virtualization": "kvm",
        "io_path": "elvis_patched", "capture": "vpf_ring", "policy": "fail", "status": "failed",
        "reason": "guest did not boot", "substitutions": [],
    },
}

# (scenario, repetition, host, rtt_us or NaN for an unanswered probe)
RTT_ROWS = [
    ("base", 1, "h1", 10.0), ("base", 1, "h1", 12.0), ("base", 1, "h1", NAN),
    ("base", 2, "h1", 11.0), ("base", 2, "h1", 13.0),
    ("guest", 1, "h1", 20.0), ("guest", 1, "h1", 30.0),
    ("guest", 2, "h1", 40.0), ("guest", 2, "h1", NAN),
    ("elvis", 1, "h1", 15.0), ("elvis", 1, "h1", 15.0), ("elvis", 1, "h1", 18.0),
    ("elvis", 2, "h1", 12.0),
]

# (scenario, repetition, host, transmitted, received)
PING_ROWS = [
    ("base", 1, "h1", 10, 9), ("base", 1, "h2", 10, 10),
    ("base", 2, "h1", 20, 18),
    ("guest", 1, "h1", 10, 10), ("guest", 2, "h1", 10, 10), ("guest", 3, "h1", 10, 7),
    ("elvis", 1, "h1", 4, 3),
]

# (scenario, repetition, backend, sent, received, frame_bytes, rate_pps)
RATE_ROWS = [
    ("base", 1, "pf_ring", 1000, 990, 64, 1000.0),
    ("base", 2, "pf_ring", 1000, 980, 64, 1000.0),
    ("base", 1, "pf_ring", 100, 100, 1500, 1000.0),
    ("guest", 1, "pf_ring", 1000, 950, 64, 1000.0),
]

# (scenario, repetition, host, metric, value, unit), as collectors.builtin.derive_costs writes
CPU = "µs of CPU per packet"
EXITS = "KVM exits per packet"
COST_ROWS = [
    ("base", 1, "h1", "cpu_us_per_packet", 2.0, CPU),
    ("base", 1, "h2", "cpu_us_per_packet", 1.0, CPU),
    ("base", 2, "h1", "cpu_us_per_packet", 4.0, CPU),
    ("base", 2, "h2", "cpu_us_per_packet", 3.0, CPU),
    ("guest", 1, "h1", "cpu_us_per_packet", 10.0, CPU),
    ("guest", 1, "kvm", "exits_per_packet", 0.5, EXITS),
    ("guest", 2, "kvm", "exits_per_packet", 1.5, EXITS),
]


def manifest(campaign_id: str = "c-test", **overrides: Any) -> dict[str, Any]:
    m = {
        "format_version": 1,
        "campaign_id": campaign_id,
        "started_at": "2025-11-26T09:00:00Z",
        "finished_at": "2025-11-26T09:30:00Z",
        "git": {"commit": "0123abc", "dirty": True},
        "tool_versions": {"ping": "iputils 20221126"},
        "lab": {"name": "local", "profile": {"kvm": False, "vhost_net": False, "accel": "tcg"}},
        "parameters": {"repetitions": 2, "ping_count": 3, "ping_interval_s": 0.2,
                       "ping_payload_bytes": 56, "seed": 11},
        "scenarios": copy.deepcopy(SCENARIOS),
        "order": [],
        "runs": [
            {"scenario": "base", "repetition": 1, "status": "done", "reason": ""},
            {"scenario": "base", "repetition": 2, "status": "done", "reason": ""},
            {"scenario": "broken", "repetition": 1, "status": "failed",
             "reason": "guest did not boot"},
            {"scenario": "pending", "repetition": 1, "status": "not_run", "reason": ""},
        ],
        "files": {},
    }
    m.update(overrides)
    return m


def rtt_frame(rows=RTT_ROWS, scale: float = 1.0) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["scenario", "repetition", "host", "rtt_us"])
    frame["rtt_us"] = frame["rtt_us"] * scale
    frame["seq"] = range(1, len(frame) + 1)
    frame["timestamp_s"] = 1.7e9 + frame["seq"] * 0.2
    frame["answered"] = frame["rtt_us"].notna()
    frame["duplicates"] = 0
    return frame[["scenario", "repetition", "host", "seq", "timestamp_s", "answered", "rtt_us",
                  "duplicates"]]


def ping_frame(rows=PING_ROWS) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["scenario", "repetition", "host", "transmitted",
                                        "received"])
    frame["duplicates"] = 0
    frame["errors"] = 0
    frame["loss_pct"] = 100.0 * (frame["transmitted"] - frame["received"]) / frame["transmitted"]
    frame["interval_s"] = 0.2
    frame["payload_bytes"] = 56
    return frame


def rate_frame(rows=RATE_ROWS, *, legacy: bool = False) -> pd.DataFrame:
    """As ingest writes it: a row that received more than it sent has no loss (``lost``
    null, ``loss_pct`` NaN) and is flagged. ``legacy``: as campaigns ingested before
    the flag were written, without ``excess_frames`` and ``flag`` and with a negative
    ``lost`` on such rows."""
    frame = pd.DataFrame(rows, columns=["scenario", "repetition", "backend", "sent", "received",
                                        "frame_bytes", "rate_pps"])
    frame["lost"] = frame["sent"] - frame["received"]
    frame["loss_pct"] = 100.0 * frame["lost"] / frame["sent"]
    if legacy:
        return frame
    above = frame["received"] > frame["sent"]
    frame["lost"] = frame["lost"].astype("Int64").mask(above)
    frame["loss_pct"] = frame["loss_pct"].mask(above)
    frame["excess_frames"] = (frame["received"] - frame["sent"]).clip(lower=0)
    frame["flag"] = [
        f"received_above_sent: {n} frames more than sent; likely foreign or duplicated "
        "frames matching the flow filter" if n else "" for n in frame["excess_frames"]]
    return frame


def cost_frame(rows=COST_ROWS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["scenario", "repetition", "host", "metric", "value",
                                       "unit"])


def throughput_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (scenario, repetition, ndr_pps, pdr_pps at least) completed to the columns
    collectors/throughput.py writes to data/throughput.parquet: sender h1, trafgen ->
    tcpdump with 60-byte frames, the default search settings; a rate's status is
    ``found``, or ``below_min`` where it is null, unless ``frame`` gives one."""
    from kvmnetlab.store_format import dtypes

    out = frame.copy()
    defaults = {"host": "h1", "backend": "trafgen_tcpdump", "frame_bytes": 60,
                "ndr_upper_pps": NAN, "pdr_upper_pps": NAN, "pdr_loss_ratio": 0.005,
                "granularity": 0.1, "min_pps": 100.0, "max_pps": 200_000.0, "trials": 9,
                "invalid_trials": 0, "generator_max_pps": NAN, "achieved_max_pps": 214_000.0,
                "search_s": 12.5}
    for column, value in defaults.items():
        if column not in out:
            out[column] = value
    for kind in ("ndr", "pdr"):
        if f"{kind}_status" not in out:
            out[f"{kind}_status"] = ["below_min" if pd.isna(v) else "found"
                                     for v in out[f"{kind}_pps"]]
    return out[list(dtypes("throughput"))]


def write_campaign(
    root: Path,
    *,
    manifest_data: dict[str, Any] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
    checksums: bool = True,
) -> Path:
    """Write ``root``/manifest.json and ``root``/data/<name>.parquet for each table."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    m = manifest_data if manifest_data is not None else manifest(root.name)
    if tables is None:
        tables = {"rtt": rtt_frame(), "ping_summary": ping_frame()}
    for name, frame in tables.items():
        path = root / "data" / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        if checksums:
            m.setdefault("files", {})[f"data/{name}.parquet"] = {
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "bytes": path.stat().st_size,
            }
    (root / "manifest.json").write_text(json.dumps(m, indent=2), encoding="utf-8")
    return root
