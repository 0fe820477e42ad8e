"""kvmnetlab.store_format: the format declared once, and a folder of an older version read.

Fast, no lab. The upgrade path is tried on a real campaign stored in today's format
(tests/analysis_data/campaigns/small2, see its CAPTURE.md): with a version 2 declared and
the upgrade from version 1 registered, the folder, unchanged on disk, is read by the
store, by analysis and by ``python -m analysis``'s entry point.
"""

from __future__ import annotations

import re
import shutil

import pytest

from analysis.cli import main as report_main
from analysis.load import load_campaign
from collectors import base
from kvmnetlab import store_format
from kvmnetlab.errors import FormatError
from kvmnetlab.store import Store
from tests.helpers import REPO, TESTS

STORED = TESTS / "analysis_data" / "campaigns" / "small2"


@pytest.fixture
def stored(tmp_path):
    """A copy of a campaign written by the store in format_version 1."""
    root = tmp_path / STORED.name
    shutil.copytree(STORED, root)
    return root


@pytest.fixture
def version_2(monkeypatch):
    """A format_version 2 whose upgrade from 1 adds a key, as a real bump would."""
    def from_1(manifest):
        return {**manifest, "format_version": 2, "upgraded_from": [1]}

    monkeypatch.setattr(store_format, "FORMAT_VERSION", 2)
    monkeypatch.setattr(store_format, "UPGRADES", {1: from_1})


def test_the_stored_campaign_is_in_the_current_format(stored):
    assert Store(stored).load()["format_version"] == store_format.FORMAT_VERSION == 1
    assert load_campaign(stored).rtt is not None


def test_a_previous_version_is_read_through_its_upgrade(stored, version_2, tmp_path):
    on_disk = (stored / "manifest.json").read_bytes()
    for manifest in (Store(stored).load(), load_campaign(stored).manifest):
        assert manifest["format_version"] == 2 and manifest["upgraded_from"] == [1]
    assert report_main([str(stored), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.md").is_file()
    assert (stored / "manifest.json").read_bytes() == on_disk  # reading changes nothing


def test_a_writer_saves_the_upgraded_manifest(stored, version_2):
    _, changed = Store(stored).update(lambda manifest: None)
    assert changed is False  # an upgrade alone is not written back
    _, changed = Store(stored).update(lambda manifest: manifest.update(finished_at="now"))
    assert changed is True
    assert '"format_version": 2' in (stored / "manifest.json").read_text()


def test_a_version_without_an_upgrade_or_from_the_future_is_refused(stored, monkeypatch):
    monkeypatch.setattr(store_format, "FORMAT_VERSION", 2)
    with pytest.raises(FormatError, match="has no upgrade from 1") as info:
        load_campaign(stored)
    assert info.value.field == "format_version"
    monkeypatch.setattr(store_format, "FORMAT_VERSION", 1)
    text = (stored / "manifest.json").read_text()
    newer = text.replace('"format_version": 1', '"format_version": 3', 1)
    (stored / "manifest.json").write_text(newer)
    with pytest.raises(FormatError, match="is 3; this kvmnetlab reads version 1 and older"):
        Store(stored).load()


def test_every_collector_table_is_declared_by_the_format():
    for name in base.known():
        for table, columns in base.get(name).tables.items():
            assert columns == store_format.dtypes(table), (name, table)
    for table, columns in store_format.TABLES.items():
        for column, spec in columns.items():
            assert spec.read in ("required", "optional", ""), (table, column)
            assert spec.dtype in ("string", "int64", "Int64", "float64", "bool"), (table, column)


def test_the_table_schema_is_declared_once():
    """No second list of a data table's columns: a module naming several of one table's
    columns with their dtypes (``"rtt_us": "float64"``) or as read checks is a copy."""
    pattern = re.compile(r'"(\w+)":\s*(?:"(?:string|int64|Int64|float64|bool)"'
                         r"|_(?:INT|FLOAT|BOOL|STR)\b)")
    columns = {c for table in store_format.TABLES.values() for c in table} - {"unit"}
    found = []
    for top in ("collectors", "analysis", "nightly", "kvmnetlab", "collections", "bench"):
        for path in sorted((REPO / top).rglob("*.py")):
            if path == REPO / "kvmnetlab" / "store_format.py":
                continue
            named = {m.group(1) for m in pattern.finditer(path.read_text(encoding="utf-8"))}
            if len(named & columns) >= 3:
                found.append(f"{path.relative_to(REPO)}: {sorted(named & columns)}")
    assert found == [], found
