"""Reading a campaign's data tables (``data/<table>.parquet``) as the format declares them.

The one reader of those files: analysis (and whatever else wants a campaign's
tables) gets them from here, checked against :mod:`kvmnetlab.store_format`:
each listed table's sha256 against the manifest, the columns analysis reads and
their types, and no null where the format allows none. Errors are
:class:`~kvmnetlab.errors.FormatError` naming the file and the column (or the
manifest key). The manifest itself is read by :func:`store_format.read_manifest`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kvmnetlab import store_format
from kvmnetlab.errors import FormatError
from kvmnetlab.store import Store, sha256_file

# Column type checks by the dtype ingest writes (kvmnetlab.store_format): an Arrow type
# predicate and a description for errors.
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
CHECKS = {"int64": _INT, "Int64": _INT, "float64": _FLOAT, "bool": _BOOL, "string": _STR}


def table_file(root: str | Path, table: str) -> Path:
    """Where the table ``table`` of the campaign at ``root`` is (it may not exist)."""
    return Store(root).table_path(table)


def verify_table(root: str | Path, table: str, manifest: dict[str, Any]) -> None:
    """Check the table's sha256 against the manifest's ``files`` entry, when it has one."""
    store = Store(root)
    rel = store_format.table_rel(table)
    entry = (manifest.get("files") or {}).get(rel)
    if entry is None:
        return
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise FormatError(store.manifest_path, f"files.{rel}.sha256", "missing or not a string")
    file = store.table_path(table)
    if sha256_file(file) != entry["sha256"].lower():
        raise FormatError(
            file, None, f"sha256 does not match manifest.json files.{rel} (file changed)"
        )


def read_table(root: str | Path, table: str, categorical: Iterable[str] = ()) -> pd.DataFrame:
    """The columns of ``table`` marked read (required and, where present, optional), type-
    and null-checked; ``categorical`` columns come back as pandas categories."""
    file = table_file(root, table)
    categorical = tuple(categorical)
    spec, optional = store_format.read_columns(table)
    try:
        schema = pq.read_schema(file)
    except (OSError, pa.ArrowException) as exc:
        raise FormatError(file, None, f"not a readable Parquet file ({exc})") from exc
    for column, declared in spec.items():
        is_ok, what = CHECKS[declared.dtype]
        index = schema.get_field_index(column)
        if index < 0:
            raise FormatError(file, column, "column missing")
        if not is_ok(schema.field(index).type):
            raise FormatError(
                file, column, f"must be {what}, found Parquet type {schema.field(index).type}"
            )
    optional = {c: d for c, d in optional.items() if c in schema.names}
    for column, declared in optional.items():
        is_ok, what = CHECKS[declared.dtype]
        found = schema.field(column).type
        if not is_ok(found):
            raise FormatError(file, column, f"must be {what}, found Parquet type {found}")
    columns = [*spec, *optional]
    try:
        arrow = pq.read_table(
            file,
            columns=columns,
            read_dictionary=[c for c in columns if c in categorical],
        )
    except (OSError, pa.ArrowException) as exc:
        raise FormatError(file, None, f"not a readable Parquet file ({exc})") from exc
    for column in columns:
        if not store_format.TABLES[table][column].nullable and arrow.column(column).null_count:
            row = pc.index(pc.is_null(arrow.column(column)), True).as_py()
            raise FormatError(file, column, f"null value (row {row})")
    # self_destruct frees each Arrow column once converted: peak memory ~ one copy, not two
    frame = arrow.to_pandas(split_blocks=True, self_destruct=True)
    del arrow
    for column in columns:
        if column in categorical:
            frame[column] = frame[column].astype("category")
    return frame
