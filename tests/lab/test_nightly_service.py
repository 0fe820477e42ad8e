"""The installed schedule runs a real night: roles/nightly writes kvmnetlab-nightly.service
(into pytest's temporary folder, as in tests/roles/test_nightly_role.py), and this test runs that
unit's ExecStart= exactly as systemd would (split like a command line, in its
WorkingDirectory) against the embedded lab. The night must end done, with a campaign, a
report, a catalog row per metric, a dashboard and a status.json.

Builds the embedded lab (network namespaces) as root; guests are skipped (the baseline
scenario only), so it takes a few minutes.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import REPO, ansible_env, extended_marks
from tests.roles.test_nightly_role import one, role_vars, run, unit_settings

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("root_only"),
              *extended_marks("the installed unit's ExecStart runs a night; about 1 min")]

NIGHT_VARS = {"kvmnetlab_scenarios": "baseline", "kvmnetlab_repetitions": 2,
              "kvmnetlab_ping_count": 40, "kvmnetlab_ping_interval_s": 0.01,
              "kvmnetlab_rate_frames": 2000, "kvmnetlab_seed": 5}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nightly_service")
    variables = role_vars(folder, nightly_extra_vars=NIGHT_VARS, nightly_min_free_gib=1,
                          nightly_notify_command=None)
    done, out = run(folder, variables)
    assert done.returncode == 0, out[-4000:]
    service = unit_settings(folder / "systemd" / "kvmnetlab-nightly.service")
    argv = shlex.split(one(service, "Service", "ExecStart"))
    # the unit runs with guests skipped here: the lab of this test has none booted
    argv += ["--skip-tags", "guests", "--night-id", "20261130T013000Z"]
    cwd = one(service, "Service", "WorkingDirectory")
    ran = subprocess.run(argv, cwd=cwd, env=ansible_env(), capture_output=True, text=True,
                         timeout=1800, check=False)
    return folder / "results", argv, ran


def test_execstart_names_the_console_script_and_the_written_config(night):
    _, argv, _ = night
    assert Path(argv[0]).name == "kvmnetlab-nightly" and Path(argv[0]).is_file()
    assert argv[1] == "--config" and Path(argv[2]).is_file()
    assert Path(argv[0]).resolve().is_relative_to(REPO.resolve())


def test_the_night_is_done_with_a_status(night):
    results, _, ran = night
    assert ran.returncode == 0, f"{ran.stdout[-4000:]}\n{ran.stderr[-2000:]}"
    status = json.loads((results / "history" / "status.json").read_text())
    assert status["outcome"] == "done" and status["rc"] == 0, status
    assert status["night"] == status["campaign_id"] == "20261130T013000Z"
    assert status["regressions"] == []
    assert Path(status["runner_artifacts"], "rc").read_text().strip() == "0"
    assert Path(status["report"], "index.html").is_file()
    manifest = json.loads((results / "20261130T013000Z" / "manifest.json").read_text())
    assert [r["status"] for r in manifest["runs"]] == ["done", "done"]


def test_the_catalog_and_the_dashboard_hold_the_night(night):
    results, _, _ = night
    catalog = pd.read_parquet(results / "history" / "nights.parquet")
    rows = catalog.loc[catalog["night"] == "20261130T013000Z"]
    assert set(rows["outcome"]) == {"done"}
    assert set(rows["scenario"]) == {"baseline"}
    assert {"rtt_p50_us", "rtt_p99_us", "ping_loss_pct"} <= set(rows["metric"])
    assert (rows["n_reps"] == 2).all()
    p50 = rows.loc[rows["metric"] == "rtt_p50_us", "value"].item()
    assert 1.0 < p50 < 100_000.0  # µs: a veth round trip, neither zero nor absurd
    page = (results / "history" / "dashboard.html").read_text()
    assert "20261130T013000Z" in page and "<svg" in page
