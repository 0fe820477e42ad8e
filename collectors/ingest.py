"""Turn a campaign's raw files into tidy tables under data/ (controller only).

Each completed run is parsed by the collectors it ran with (recorded in the
manifest). A raw file that does not parse is reported with the parser's
message (file and line): if it belongs to the run's RTT measurement the run is
marked failed, otherwise the collector's error is recorded on the run. A raw
file that is there but cannot be read (a directory, a FIFO, a dangling link,
an I/O error) fails its run whichever collector met it, the reason naming the
file: the store is damaged there, not the tool's output. raw/ is never touched,
and the other runs still produce data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from collectors import base
from collectors.builtin import derive_costs
from kvmnetlab import store_format
from kvmnetlab.errors import ParseError, StoreError, UnreadableError
from kvmnetlab.store import Store, run_dir

#: a run whose primary measurement does not parse has failed
PRIMARY = ("ping",)


def frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    """``rows`` as a table of ``columns``; a row without ``flow`` is the first flow's."""
    table = pd.DataFrame(rows, columns=list(columns))
    if "flow" in table:
        table["flow"] = table["flow"].fillna(1)
    return table.astype(columns)


def _contexts(manifest: dict, run: dict) -> list[base.RunContext]:
    """The run's context per flow: the first flow's from ``context``, flows 2..N (several
    guests or containers at once) from ``context.flows``."""
    saved = run.get("context") or {}
    resolved = manifest["scenarios"][run["scenario"]].get("resolved") or {}
    flows = [{"hosts": saved.get("hosts", {}), "endpoint": saved.get("endpoint", {})},
             *(saved.get("flows") or [])]
    return [base.RunContext(scenario=run["scenario"], repetition=int(run["repetition"]),
                            resolved=resolved, parameters=manifest["parameters"],
                            hosts=flow.get("hosts", {}), endpoint=flow.get("endpoint", {}),
                            flow=number, flows=len(flows))
            for number, flow in enumerate(flows, start=1)]


def ingest(root: str | Path) -> dict[str, Any]:
    """Parse every completed run of the campaign at ``root``; write data/*.parquet.

    Returns ``{"rows": probes parsed, "failed": [messages], "changed": whether a table or
    the manifest was written}``; the manifest is updated through the store (runs' outcomes,
    the tables' checksums). Tables and manifest already as they would be are left alone.
    """
    store = Store(root)
    manifest = store.load()
    outcomes: dict[tuple[str, int], dict[str, Any]] = {}  # run -> fields to set
    tables: dict[str, list[dict]] = {}
    # every table of the format is written, empty when no collector filled it
    columns = {name: store_format.dtypes(name) for name in store_format.TABLES}
    for name in base.known():
        undeclared = sorted(set(base.get(name).tables) - set(columns))
        if undeclared:
            raise StoreError(f"collector {name}: tables {', '.join(undeclared)} are not "
                             "declared in kvmnetlab.store_format")
    failed: list[str] = []
    for run in manifest["runs"]:
        if run["status"] != "done":
            continue
        produced: dict[str, list[dict]] = {}
        errors: dict[str, str] = {}
        unreadable: list[str] = []
        names = (run.get("context") or {}).get("collectors", [])
        unavailable = manifest["scenarios"][run["scenario"]].get("collectors_unavailable", {})
        for ctx in _contexts(manifest, run):
            files = base.RunFiles(store.root, run_dir(run["scenario"], run["repetition"]),
                                  ctx.hosts, flow=ctx.flow)
            for name in names:
                if name in unavailable or name in errors:
                    continue
                try:
                    for table, rows in base.get(name).parse(files, ctx).items():
                        flowed = "flow" in columns.get(table, {})
                        produced.setdefault(table, []).extend(
                            {**row, "flow": ctx.flow} if flowed else row for row in rows)
                except UnreadableError as exc:
                    unreadable.append(name)
                    errors[name] = str(exc)
                    failed.append(str(exc))
                except (ParseError, FileNotFoundError, KeyError) as exc:
                    message = str(exc) if isinstance(exc, ParseError) else \
                        f"{name}: missing raw data: {exc}"
                    errors[name] = message
                    failed.append(message)
                except OSError as exc:  # a collector that read a raw file on its own
                    unreadable.append(name)
                    errors[name] = f"{exc.filename}: cannot read: {exc.strerror}"
                    failed.append(errors[name])
        primary = [name for name in PRIMARY if name in errors and name not in unreadable]
        if unreadable or primary:
            reasons = ["unreadable raw file: " + "; ".join(errors[n] for n in unreadable)] \
                if unreadable else []
            reasons += ["parse error: " + "; ".join(errors[n] for n in primary)] if primary \
                else []
            outcomes[(run["scenario"], run["repetition"])] = {
                "status": "failed", "reason": "; ".join(reasons)}
            continue
        outcomes[(run["scenario"], run["repetition"])] = {"collector_errors": errors}
        produced["costs"] = derive_costs(produced.get("counters", []), produced.get("rate", []))
        for table, rows in produced.items():
            tables.setdefault(table, []).extend(rows)
    probes = len(tables.get("rtt", []))
    written = False
    for table, cols in columns.items():
        written |= store.write_table(table, frame(tables.get(table, []), cols))

    def record(manifest: dict[str, Any]) -> None:
        for run in manifest["runs"]:
            run.update(outcomes.get((run["scenario"], run["repetition"]), {}))
        for table in columns:
            store.record_derived(manifest, store_format.table_rel(table))

    _, changed = store.update(record)
    return {"rows": probes, "failed": failed, "changed": written or changed}
