"""Re-capture every parser fixture on this machine and parse the fresh output.

Runs tests/capture_fixtures.sh into a temporary folder (root, kvfx-* namespaces,
198.19.250.0/24, about 20 s), so a change in a tool's output on the CI machine shows
up as a parser failure rather than as a stale fixture passing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from collectors.parsers import (
    ethtool_features,
    ethtool_info,
    ethtool_stats,
    fping,
    ping,
    proc_interrupts,
    proc_net_dev,
    proc_stat,
    proc_task_stat,
    sockperf,
    sys_net_statistics,
    trafgen,
)
from tests.helpers import TESTS

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("root_only")]

SCRIPT = TESTS / "capture_fixtures.sh"
TOOLS = ("ip", "nft", "ping", "ethtool", "trafgen", "fping", "sockperf")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("capturing needs root (network namespaces)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"tools not installed: {', '.join(missing)}")
    out = tmp_path_factory.mktemp("fixtures")
    done = subprocess.run(
        [str(SCRIPT)],
        env={**os.environ, "KVMNETLAB_FIXTURES_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{SCRIPT} failed:\n{done.stdout}\n{done.stderr}"
    return out


def test_ping(fresh):
    clean = ping.parse(fresh / "ping" / "clean.txt")
    assert clean.summary["transmitted"] == len(clean.probes) == 200
    unanswered = ping.parse(fresh / "ping" / "unanswered.txt")
    assert [p["seq"] for p in unanswered.probes if not p["answered"]] == [4, 7, 8, 9]
    dup = ping.parse(fresh / "ping" / "dup.txt")
    assert dup.summary["duplicates"] > 0
    unreachable = ping.parse(fresh / "ping" / "unreachable.txt")
    assert unreachable.summary["received"] == 0


def test_counters(fresh):
    p = fresh / "procfs"
    assert proc_stat.parse(p / "stat.txt").cpus[0]["cpu"] == "all"
    assert proc_interrupts.parse(p / "interrupts.txt").irqs
    dev = {r["interface"]: r for r in proc_net_dev.parse(p / "net_dev.txt")}
    stats = sys_net_statistics.parse(p / "sys_statistics.txt")
    assert dev["kvfx-va"]["tx_packets"] == stats.counters["tx_packets"] >= 500
    comms = {t["comm"] for t in proc_task_stat.parse(p / "task_stat.txt")}
    assert "a) (b" in comms
    e = fresh / "ethtool"
    assert ethtool_info.parse(e / "veth_i.txt")["driver"] == "veth"
    assert ethtool_features.parse(e / "veth_k.txt").interface == "kvfx-va"
    assert "peer_ifindex" in ethtool_stats.parse(e / "veth_S.txt")


def test_trafgen(fresh):
    assert trafgen.parse(fresh / "trafgen" / "rate.stdout").tx_packets == 10000
    assert trafgen.parse(fresh / "trafgen" / "burst.stdout").tx_packets == 200000


def test_fping_sockperf(fresh):
    assert len(fping.parse(fresh / "fping" / "clean.stderr").samples["198.19.250.2"]) == 20
    assert fping.parse(fresh / "fping" / "unreachable.stderr").samples["198.19.250.9"] == [None] * 4
    assert sockperf.parse(fresh / "sockperf" / "pingpong_full_rtt.stdout").statistic == "rtt"
    latency = sockperf.parse(fresh / "sockperf" / "pingpong_latency.stdout")
    assert latency.statistic == "half_rtt"
