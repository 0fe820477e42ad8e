"""Keeping a real campaign as test data keeps what the analysis reads, checksums intact."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from analysis.load import load_campaign
from tests.analysis_data import keep

CAMPAIGNS = Path(__file__).resolve().parents[1] / "analysis_data" / "campaigns"


def test_a_kept_campaign_loads_with_matching_checksums(tmp_path):
    dest = tmp_path / "small2"
    kept = keep.keep_campaign(CAMPAIGNS / "small2", dest)
    assert sorted(kept) == sorted(keep.TABLES)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(kept)
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((dest / name).read_bytes()).hexdigest() == entry["sha256"], name
    assert load_campaign(dest).rtt.equals(load_campaign(CAMPAIGNS / "small2").rtt)


def test_keep_refuses_an_existing_destination(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        keep.main([str(CAMPAIGNS / "small2"), str(tmp_path)])
    assert stop.value.code == 2
    assert str(tmp_path) in capsys.readouterr().err
