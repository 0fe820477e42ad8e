"""kvmnetlab-nightly on the embedded lab: real nights through site.yml, the history they
build, the dashboard, and retention of the older night's raw files.

Opt-in (KVMNETLAB_NIGHTLY=1), root only: it builds the embedded lab (bare-metal scenario
only, guests skipped) and runs three nights of a small campaign.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.load import load_campaign
from kvmnetlab import lock
from tests.helpers import night_status, run_night

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.environ.get("KVMNETLAB_NIGHTLY") != "1",
                       reason="opt-in: set KVMNETLAB_NIGHTLY=1 (runs three nights on the "
                              "embedded lab)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the embedded lab needs root"),
]

PARAMS = {"kvmnetlab_scenarios": ["baseline"], "kvmnetlab_repetitions": 3,
          "kvmnetlab_ping_count": 40, "kvmnetlab_ping_interval_s": 0.005,
          "kvmnetlab_rate_frames": 2000, "kvmnetlab_seed": 11}


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nightly")
    results = tmp / "results"
    config = tmp / "nightly.yml"
    config.write_text(yaml.safe_dump({
        "results_dir": str(results), "extra_vars": PARAMS, "skip_tags": "guests",
        "keep_raw_nights": 1, "min_free_gib": 1, "p_value": 0.01, "min_segment": 2,
    }))
    runs = {nid: run_night(config, nid)[0] for nid in ("n1", "n2", "n3")}
    return results, runs


def test_each_night_is_done_and_published(nights):
    results, runs = nights
    for nid, done in runs.items():
        assert done.returncode in (0, 1), f"{nid}: {done.stdout[-3000:]}\n{done.stderr}"
        s = night_status(results, nid)
        assert s["outcome"] == "done" and s["rc"] == 0 and s["campaign_id"] == nid
        assert Path(s["report"], "index.html").is_file()
        assert Path(s["runner_artifacts"], "rc").read_text() == "0"
        assert Path(s["runner_artifacts"], "job_events").is_dir()
        assert (done.returncode == 1) == bool(s["regressions"])
        assert "PLAY Preflight - validate the campaign and lock the lab" in done.stdout
    latest = night_status(results, "n3")
    assert json.loads((results / "history" / "status.json").read_text()) == latest
    assert Path(latest["dashboard"]).is_file()


def test_the_lab_lock_is_released(nights):
    lock_file = Path("/run/kvmnetlab/local.lock")
    assert not lock_file.exists() or lock.holder(lock_file) is None


def test_the_catalog_holds_every_night(nights):
    results, _ = nights
    catalog = pd.read_parquet(results / "history" / "nights.parquet")
    done = catalog.loc[catalog["outcome"] == "done"]
    assert set(done["night"]) == {"n1", "n2", "n3"}
    assert set(done["scenario"].dropna()) == {"baseline"}
    assert not (results / "history" / "manifest.json").exists()


def test_only_the_newest_night_keeps_its_raw_files(nights):
    results, _ = nights
    for nid in ("n1", "n2"):
        manifest = json.loads((results / nid / "manifest.json").read_text())
        raw = {rel: e for rel, e in manifest["files"].items() if rel.startswith("raw/")}
        assert raw and all(e["pruned"] is True and len(e["sha256"]) == 64 for e in raw.values())
        assert not any(p.is_file() for p in (results / nid / "raw").rglob("*"))
        assert load_campaign(results / nid).rtt is not None
    manifest = json.loads((results / "n3" / "manifest.json").read_text())
    raw = [rel for rel in manifest["files"] if rel.startswith("raw/")]
    assert raw and all((results / "n3" / rel).is_file() for rel in raw)
    assert not any(manifest["files"][rel].get("pruned") for rel in raw)
