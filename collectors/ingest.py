"""Turn a campaign's raw files into tidy tables under data/ (controller only).

Each completed run is parsed by the collectors it ran with (recorded in the
manifest). A raw file that does not parse is reported with the parser's
message (file and line): if it belongs to the run's RTT measurement the run is
marked failed, otherwise the collector's error is recorded on the run. A raw
file that is there but cannot be read (a directory, a FIFO, a dangling link,
an I/O error) fails its run whichever collector met it, the reason naming the
file: the store is damaged there, not the tool's output. Any other exception a
collector raises, and a value a table's column cannot hold, fails its run too
(``ingest error: ``, naming the collector and the raw file it read last). raw/ is
never touched, and the other runs still produce data.
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


class _Watched(base.RunFiles):
    """A run's raw files that remember the last one a collector asked for, so that an
    error other than a ParseError still names the file it met."""

    last: Path | None = None

    def path(self, role: str, name: str) -> Path:
        self.last = super().path(role, name)
        return self.last


def _unexpected(name: str, files: _Watched, exc: BaseException) -> str:
    """The message of an exception no parser should raise: the collector, the raw file
    it read last, the exception."""
    where = f"{files.last}: " if files.last is not None else ""
    return f"{name}: {where}{type(exc).__name__}: {exc}"


def _parse_run(store: Store, manifest: dict, run: dict, columns: dict[str, dict[str, str]]
               ) -> tuple[dict[str, list[dict]], dict[str, str], list[str], list[str]]:
    """Every collector of ``run`` on its raw files: (rows per table, errors per collector,
    the collectors that met an unreadable file, those that raised something else than a
    ParseError). A collector's exception stops that collector only."""
    produced: dict[str, list[dict]] = {}
    errors: dict[str, str] = {}
    unreadable: list[str] = []
    broken: list[str] = []
    names = (run.get("context") or {}).get("collectors", [])
    unavailable = manifest["scenarios"][run["scenario"]].get("collectors_unavailable", {})
    for ctx in _contexts(manifest, run):
        files = _Watched(store.root, run_dir(run["scenario"], run["repetition"]), ctx.hosts,
                         flow=ctx.flow)
        for name in names:
            if name in unavailable or name in errors:
                continue
            files.last = None
            try:
                for table, rows in base.get(name).parse(files, ctx).items():
                    flowed = "flow" in columns.get(table, {})
                    produced.setdefault(table, []).extend(
                        {**row, "flow": ctx.flow} if flowed else row for row in rows)
            except UnreadableError as exc:
                unreadable.append(name)
                errors[name] = str(exc)
            except ParseError as exc:
                errors[name] = str(exc)
            except (FileNotFoundError, KeyError) as exc:
                errors[name] = f"{name}: missing raw data: {exc}"
            except OSError as exc:  # a collector that read a raw file on its own
                unreadable.append(name)
                errors[name] = f"{exc.filename}: cannot read: {exc.strerror}"
            except Exception as exc:  # one file never stops an ingest
                broken.append(name)
                errors[name] = _unexpected(name, files, exc)
    return produced, errors, unreadable, broken


def _failure(errors: dict[str, str], unreadable: list[str], broken: list[str]) -> str | None:
    """Why the run failed, or None: a file that cannot be read, the RTT measurement's
    file that does not parse, or any collector's exception other than a ParseError."""
    primary = [n for n in PRIMARY if n in errors and n not in unreadable and n not in broken]
    reasons = []
    if unreadable:
        reasons.append("unreadable raw file: " + "; ".join(errors[n] for n in unreadable))
    if primary:
        reasons.append("parse error: " + "; ".join(errors[n] for n in primary))
    if broken:
        reasons.append("ingest error: " + "; ".join(errors[n] for n in broken))
    return "; ".join(reasons) or None


def _run_frames(produced: dict[str, list[dict]], columns: dict[str, dict[str, str]]
                ) -> dict[str, pd.DataFrame]:
    """The run's rows as its slice of every table, converted on their own: a value a
    column cannot hold fails this run, not the ingest."""
    frames = {}
    for table, rows in produced.items():
        try:
            frames[table] = frame(rows, columns[table])
        except (ValueError, TypeError, OverflowError) as exc:
            raise StoreError(f"table {table}: {type(exc).__name__}: {exc}") from exc
    return frames


def ingest(root: str | Path) -> dict[str, Any]:
    """Parse every completed run of the campaign at ``root``; write data/*.parquet.

    Returns ``{"rows": probes parsed, "failed": [messages], "changed": whether a table or
    the manifest was written}``; the manifest is updated through the store (runs' outcomes,
    the tables' checksums). Tables and manifest already as they would be are left alone.

    Whatever one run's raw files hold fails that run alone (its reason in the manifest
    names the file and, for a parse error, the line); every other run is ingested. Every
    table is built in memory before any is written, each is written atomically
    (temporary file, fsync, rename) and the manifest, which records their checksums, is
    written last.
    """
    store = Store(root)
    manifest = store.load()
    outcomes: dict[tuple[str, int], dict[str, Any]] = {}  # run -> fields to set
    slices: dict[str, list[pd.DataFrame]] = {}
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
        key = (run["scenario"], run["repetition"])
        produced, errors, unreadable, broken = _parse_run(store, manifest, run, columns)
        failed += errors.values()
        reason = _failure(errors, unreadable, broken)
        if reason is None:
            try:
                produced["costs"] = derive_costs(produced.get("counters", []),
                                                 produced.get("rate", []))
                frames = _run_frames(produced, columns)
            except Exception as exc:  # one run never stops an ingest
                message = f"{run_dir(*key)}: {type(exc).__name__}: {exc}"
                failed.append(message)
                reason = f"ingest error: {message}"
        if reason is not None:
            outcomes[key] = {"status": "failed", "reason": reason}
            continue
        outcomes[key] = {"collector_errors": errors}
        for table, part in frames.items():
            slices.setdefault(table, []).append(part)
    tables = {table: _concat(slices.get(table, []), cols) for table, cols in columns.items()}
    written = False
    for table, data in tables.items():
        written |= store.write_table(table, data)

    def record(manifest: dict[str, Any]) -> None:
        for run in manifest["runs"]:
            run.update(outcomes.get((run["scenario"], run["repetition"]), {}))
        for table in columns:
            store.record_derived(manifest, store_format.table_rel(table))

    _, changed = store.update(record)
    return {"rows": len(tables["rtt"]), "failed": failed, "changed": written or changed}


def _concat(parts: list[pd.DataFrame], columns: dict[str, str]) -> pd.DataFrame:
    """The runs' slices of one table, in run order, as one table of ``columns``."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return frame([], columns)
    return pd.concat(parts, ignore_index=True).astype(columns)
