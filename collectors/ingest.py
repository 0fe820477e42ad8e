"""Turn a campaign's raw files into tidy tables under data/ (controller only).

Each raw file is parsed by the parser of the tool that wrote it. A file that
does not parse marks its run as failed, with the parser's message (file and
line); nothing in raw/ is touched, and the other runs still produce data.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from collectors.errors import ParseError
from collectors.parsers import ping as ping_parser
from collectors.store import Store, atomic_write_bytes

RTT_COLUMNS = {
    "scenario": "string",
    "repetition": "int64",
    "host": "string",
    "seq": "int64",
    "timestamp_s": "float64",
    "answered": "bool",
    "rtt_us": "float64",
    "duplicates": "int64",
}
SUMMARY_COLUMNS = {
    "scenario": "string",
    "repetition": "int64",
    "host": "string",
    "transmitted": "int64",
    "received": "int64",
    "duplicates": "int64",
    "errors": "int64",
    "loss_pct": "float64",
    "interval_s": "float64",
    "payload_bytes": "int64",
}


def _frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    return frame.astype(columns)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())


def ping_rows(path: Path, scenario: str, repetition: int, host: str,
              parameters: dict[str, Any]) -> tuple[list[dict], dict]:
    """Parse one raw ping file into per-probe rows and one summary row."""
    result = ping_parser.parse(path)
    key = {"scenario": scenario, "repetition": repetition, "host": host}
    probes = [
        {**key, "seq": p["seq"], "timestamp_s": p["timestamp_s"], "answered": p["answered"],
         "rtt_us": p["rtt_us"] if p["rtt_us"] is not None else float("nan"),
         "duplicates": p["duplicates"]}
        for p in result.probes
    ]
    s = result.summary
    summary = {**key, "transmitted": s["transmitted"], "received": s["received"],
               "duplicates": s.get("duplicates", 0), "errors": s.get("errors", 0),
               "loss_pct": (100.0 * (s["transmitted"] - s["received"]) / s["transmitted"]
                            if s["transmitted"] else float("nan")),
               "interval_s": parameters["ping_interval_s"],
               "payload_bytes": parameters["ping_payload_bytes"]}
    return probes, summary


def ingest(root: str | Path) -> dict[str, Any]:
    """Parse every completed run of the campaign at ``root``; write data/*.parquet.

    Returns ``{"rows": n, "failed": [messages]}`` and updates the manifest.
    """
    store = Store(root)
    manifest = store.load()
    probes: list[dict] = []
    summaries: list[dict] = []
    failed: list[str] = []
    for run in manifest["runs"]:
        if run["status"] != "done":
            continue
        base = Path(f"raw/{run['scenario']}/{run['repetition']}")
        files = sorted(rel for rel in manifest["files"]
                       if rel.startswith(base.as_posix() + "/") and rel.endswith("/ping.txt"))
        if not files:
            run.update(status="failed", reason=f"no ping output under {store.root / base}")
            failed.append(run["reason"])
            continue
        for rel in files:
            host = Path(rel).parent.name
            try:
                rows, summary = ping_rows(store.root / rel, run["scenario"], run["repetition"],
                                          host, manifest["parameters"])
            except ParseError as exc:
                run.update(status="failed", reason=f"parse error: {exc}")
                failed.append(str(exc))
                continue
            probes.extend(rows)
            summaries.append(summary)
    data = store.root / "data"
    for name, rows, columns in (("rtt", probes, RTT_COLUMNS),
                                ("ping_summary", summaries, SUMMARY_COLUMNS)):
        write_parquet(_frame(rows, columns), data / f"{name}.parquet")
        store.record_derived(manifest, f"data/{name}.parquet")
    store.save(manifest)
    return {"rows": len(probes), "failed": failed}
