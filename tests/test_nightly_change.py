"""Real nights find a real change, and only that one.

kvmnetlab-nightly runs eleven short nights of `baseline` (the bare-metal path between two
network namespaces) and `virtio` (through the embedded lab's QEMU guest) on the embedded
lab. Nights 1-7 run the lab unchanged: that is the history with no change, and after each of
those nights the detector must report no change point at all. From night 8 on, the guest's
QEMU process is capped to a fifth of one CPU through its cgroup (cpu.cfs_quota_us on cgroup
v1, cpu.max on v2): a real change that slows the virtio path and nothing else. After night 11
the detector must report a change for `virtio` at night 8 (+-1) in its RTT, as a regression,
and none for `baseline`.

Opt-in (KVMNETLAB_NIGHTLY=1), root only: it boots the guest (minutes under TCG) and runs the
nights one after another (about 30 min on a 2-core machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.changepoints import detect

pytestmark = [
    pytest.mark.guests,
    pytest.mark.skipif(os.environ.get("KVMNETLAB_NIGHTLY") != "1",
                       reason="opt-in: set KVMNETLAB_NIGHTLY=1 (eleven nights on the embedded "
                              "lab, about 30 min)"),
    pytest.mark.usefixtures("root_only"),
]

REPO = Path(__file__).resolve().parents[1]
NIGHTLY = Path(sys.executable).parent / "kvmnetlab-nightly"
PIDFILE = Path("/var/lib/kvmnetlab/local/guests/kvmnl-g1/qemu.pid")
PARAMS = {"kvmnetlab_scenarios": "baseline,virtio", "kvmnetlab_repetitions": 2,
          "kvmnetlab_ping_count": 60, "kvmnetlab_ping_interval_s": 0.005,
          "kvmnetlab_rate_frames": 1000, "kvmnetlab_seed": 17}
UNCHANGED, CHANGED = 7, 4  # nights; the change starts at night UNCHANGED + 1
CAP = 0.2  # of one CPU
RTT = ("rtt_p50_us", "rtt_p90_us", "rtt_p99_us")


def night_id(k: int) -> str:
    return f"20261201T{k:02d}0000Z"  # sorts chronologically, one per hour


@contextlib.contextmanager
def cpu_cap(pid: int, share: float):
    """Put QEMU (all its threads) into a new cpu cgroup capped at ``share`` of one CPU."""
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").exists():
        group, root = v1 / "kvmnetlab-test-cap", v1
        group.mkdir(exist_ok=True)
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text(str(int(100000 * share)))
    else:  # cgroup v2
        root = Path("/sys/fs/cgroup")
        group = root / "kvmnetlab-test-cap"
        group.mkdir(exist_ok=True)
        (group / "cpu.max").write_text(f"{int(100000 * share)} 100000")
    (group / "cgroup.procs").write_text(str(pid))
    try:
        yield group
    finally:
        with contextlib.suppress(OSError):  # the process may have gone
            (root / "cgroup.procs").write_text(str(pid))
        group.rmdir()


def run_night(config: Path, k: int) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run([str(NIGHTLY), "--config", str(config), "--night-id", night_id(k)],
                          cwd=REPO, capture_output=True, text=True, timeout=3600, check=False)
    print(f"night {k}: exit {done.returncode}\n{done.stdout[-1500:]}\n{done.stderr[-800:]}")
    status_file = config.parent / "results" / night_id(k) / "nightly" / "status.json"
    return done, json.loads(status_file.read_text())


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nightly_change")
    config = tmp / "nightly.yml"
    config.write_text(yaml.safe_dump({"results_dir": str(tmp / "results"),
                                      "extra_vars": PARAMS, "min_free_gib": 1}))
    out = {}
    for k in range(1, UNCHANGED + 1):
        out[k] = run_night(config, k)
    unchanged = pd.read_parquet(tmp / "results" / "history" / "nights.parquet")
    pid = int(PIDFILE.read_text())
    with cpu_cap(pid, CAP) as group:
        for k in range(UNCHANGED + 1, UNCHANGED + CHANGED + 1):
            out[k] = run_night(config, k)
            assert str(pid) in (group / "cgroup.procs").read_text().split(), \
                f"night {k}: the guest's QEMU {pid} left the capped cgroup (restarted?)"
    catalog = pd.read_parquet(tmp / "results" / "history" / "nights.parquet")
    yield out, unchanged, catalog
    subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "site.yml",
                    "--tags", "teardown"], cwd=REPO, capture_output=True, timeout=900,
                   check=False)


def test_every_night_ran(nights):
    out, _, catalog = nights
    for k, (done, status) in out.items():
        assert status["outcome"] == "done", (k, status["reason"], done.stdout[-2000:])
        assert done.returncode in (0, 1), (k, done.returncode)
    done_nights = catalog.loc[catalog["outcome"] == "done", "night"].unique()
    assert len(done_nights) == UNCHANGED + CHANGED


def test_the_unchanged_history_has_no_change_point(nights):
    out, unchanged, _ = nights
    for k in range(1, UNCHANGED + 1):
        done, status = out[k]
        assert done.returncode == 0 and status["regressions"] == [] \
            and status["progressions"] == [], (k, status)
    assert detect(unchanged).empty, detect(unchanged).to_string()


def test_the_cap_is_found_at_its_night_for_virtio_only(nights):
    out, _, catalog = nights
    changes = detect(catalog)
    print(changes.to_string())
    assert not (changes["scenario"] == "baseline").any(), changes.to_string()
    virtio = changes.loc[(changes["scenario"] == "virtio") & changes["metric"].isin(RTT)]
    nights_order = sorted(catalog["night"].unique())
    first = nights_order.index(night_id(UNCHANGED + 1))
    found = [nights_order.index(n) for n in virtio["night"]]
    assert any(abs(i - first) <= 1 for i in found), virtio.to_string()
    assert (virtio["direction"] == "regression").all()
    assert (virtio["change_pct"] > 0).all()
    # the CLI said so: a night after the change exited 1 and named the regression
    flagged = [k for k, (done, s) in out.items() if done.returncode == 1]
    assert flagged and min(flagged) > UNCHANGED, flagged
    reported = [r for k in flagged for r in out[k][1]["regressions"]]
    assert {r["scenario"] for r in reported} == {"virtio"}, reported
