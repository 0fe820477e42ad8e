"""Real nights find a real change, and only that one.

kvmnetlab-nightly runs nine short nights of `baseline` (the bare-metal path between two
network namespaces) and `virtio` (through the embedded lab's QEMU guest) on the embedded
lab. Nights 1-6 run the lab unchanged: that is the history with no change, and after each of
those nights the detector must report no change point at all. From night 7 on, the guest
delays what it sends on its data NIC by 1 ms (`tc qdisc add dev data0 root netem delay 1ms`,
inside the guest: the host kernel has no netem): a real change on the virtio path and nothing
else. After night 9 the detector must report a change for `virtio` at night 7 (+-1) in its
RTT, as a regression, and none for `baseline`.

A CPU cap on the guest's QEMU through its cgroup was tried first and is not such a change:
at a fifth of a CPU QEMU was throttled in most periods, but only while the guest ran Ansible's
modules, never during the 0.3 s of pings, whose RTT stayed as before.

Opt-in (KVMNETLAB_NIGHTLY=1), root only: it boots the guest (minutes under TCG) and runs the
nights one after another (about 30 min on a 2-core machine).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess

import pandas as pd
import pytest
import yaml

from analysis.changepoints import detect
from tests.helpers import playbook, run_night

pytestmark = [
    pytest.mark.guests,
    pytest.mark.skipif(os.environ.get("KVMNETLAB_NIGHTLY") != "1",
                       reason="opt-in: set KVMNETLAB_NIGHTLY=1 (nine nights on the embedded "
                              "lab, about 30 min)"),
    pytest.mark.usefixtures("root_only"),
]

SSH_CONFIG = "/var/lib/kvmnetlab/local/ssh/config"
PARAMS = {"kvmnetlab_scenarios": "baseline,virtio", "kvmnetlab_repetitions": 2,
          "kvmnetlab_ping_count": 60, "kvmnetlab_ping_interval_s": 0.005,
          "kvmnetlab_rate_frames": 1000, "kvmnetlab_seed": 17}
UNCHANGED, CHANGED = 6, 3  # nights; the change starts at night UNCHANGED + 1
DELAY = "1ms"
RTT = ("rtt_p50_us", "rtt_p90_us", "rtt_p99_us")


def night_id(k: int) -> str:
    return f"20261201T{k:02d}0000Z"  # sorts chronologically, one per hour


def in_guest(command: str) -> str:
    """Run a command as root in the guest (its admin user logs in, sudo makes it root)."""
    done = subprocess.run(["ssh", "-F", SSH_CONFIG, "kvmnl-g1", "sudo", "-n", "sh", "-c",
                           shlex.quote(command)], capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout


@contextlib.contextmanager
def guest_delay(delay: str):
    """netem on the guest's data NIC, removed again at the end (the default qdisc returns)."""
    in_guest(f"modprobe sch_netem && tc qdisc replace dev data0 root netem delay {delay}")
    try:
        yield
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            in_guest("tc qdisc del dev data0 root")


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nightly_change")
    config = tmp / "nightly.yml"
    config.write_text(yaml.safe_dump({"results_dir": str(tmp / "results"),
                                      "extra_vars": PARAMS, "min_free_gib": 1}))
    out = {}
    for k in range(1, UNCHANGED + 1):
        out[k] = run_night(config, night_id(k))
    unchanged = pd.read_parquet(tmp / "results" / "history" / "nights.parquet")
    with guest_delay(DELAY):
        for k in range(UNCHANGED + 1, UNCHANGED + CHANGED + 1):
            out[k] = run_night(config, night_id(k))
            assert f"delay {DELAY}" in in_guest("tc qdisc show dev data0"), \
                f"night {k}: the guest's netem delay is gone (guest restarted?)"
    catalog = pd.read_parquet(tmp / "results" / "history" / "nights.parquet")
    yield out, unchanged, catalog
    playbook("site.yml", "--tags", "teardown", timeout=900)


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
    found = detect(unchanged)
    assert not found["alerting"].any(), found.to_string()


def test_the_cap_is_found_at_its_night_for_virtio_only(nights):
    out, _, catalog = nights
    changes = detect(catalog)
    print(changes.to_string())
    changes = changes.loc[changes["kind"] == "change"]  # outlier nights are not changes
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
