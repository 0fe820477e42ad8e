"""Background tools cannot outlive a killed run: each has a lifetime, and the preflight's
reaper stops what a killed run left by its recorded PID and start time, never by name.

Real processes (sleep, tcpdump on the loopback where installed) in a real private base.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

sys.path.insert(0, str(REPO / "collections"))
from ansible_collections.kvmnetlab.lab.plugins.module_utils import (
    raw_capture as rc,
)

from collectors import base as plan_base


@pytest.fixture()
def base(tmp_path):
    folder = tmp_path / "private"
    yield str(folder)
    if folder.exists():
        for meta in folder.glob("*/*.meta.json"):
            pid = json.loads(meta.read_text()).get("pid")
            if pid and rc._alive(pid) and rc._same_process(pid, json.loads(meta.read_text())):
                os.kill(pid, signal.SIGKILL)


def wait_gone(pid: int, within_s: float) -> float:
    start = time.monotonic()
    while rc._alive(pid):
        if time.monotonic() - start > within_s:
            pytest.fail(f"pid {pid} still runs after {within_s} s")
        time.sleep(0.05)
    return time.monotonic() - start


def started(base: str, argv: list[str], name: str, lifetime_s: float | None = None):
    run_dir = rc.make_run_dir(base, "c1.virtio.1.h2")
    dest = os.path.join(run_dir, name)
    pid = rc.start_tool(argv, dest, settle_s=0.1, lifetime_s=lifetime_s)
    return run_dir, dest, pid


def test_a_background_tool_ends_with_its_lifetime(base):
    _, dest, pid = started(base, ["sleep", "300"], "sleep.txt", lifetime_s=1)
    meta = json.loads(Path(dest + ".meta.json").read_text())
    assert meta["argv"] == ["sleep", "300"] and meta["lifetime_s"] == 1
    assert meta["launcher"][0] in rc.TIMEOUT_BINS and meta["launcher"][-1] == "1s"
    assert meta["pid_start"] == rc.start_time(pid)
    assert wait_gone(pid, within_s=30) >= 0.5


def test_a_stop_reaches_the_tool_through_its_lifetime_launcher(base):
    if not shutil.which("tcpdump"):
        pytest.skip("tcpdump is not installed")
    _, dest, pid = started(base, ["tcpdump", "-i", "lo", "-w", "-", "-c", "100000", "port", "9"],
                           "lo.pcap", lifetime_s=300)
    assert rc.stop_tool(dest, "INT") is True
    assert not rc._alive(pid)
    meta = json.loads(Path(dest + ".meta.json").read_text())
    assert meta["stopped_by"] == "INT" and meta["killed"] is False
    # tcpdump got the SIGINT (not a kill): it printed its closing statistics
    assert "packets captured" in Path(dest + ".stderr").read_text()


def test_the_reaper_stops_exactly_the_recorded_processes(base):
    run_a, dest_a, pid_a = started(base, ["sleep", "300"], "a.txt")
    _, dest_b, pid_b = started(base, ["sleep", "300"], "b.txt", lifetime_s=600)
    # a record whose PID now names another process (its start time differs): never touched
    _, dest_c, pid_c = started(base, ["sleep", "300"], "c.txt")
    meta_c = json.loads(Path(dest_c + ".meta.json").read_text())
    Path(dest_c + ".meta.json").write_text(json.dumps({**meta_c, "pid_start": "1"}))
    # a tool stopped normally: not a leftover
    _, dest_d, _ = started(base, ["sleep", "300"], "d.txt")
    rc.stop_tool(dest_d, "INT")
    try:
        found = {r["dest"]: r for r in rc.reap(base)}
        assert set(found) == {"a.txt", "b.txt", "c.txt"}
        assert found["a.txt"] == {"run_dir": run_a, "dest": "a.txt", "pid": pid_a,
                                  "tool": "sleep", "stopped": True, "problem": None}
        assert found["b.txt"]["stopped"] is True and found["c.txt"]["stopped"] is False
        assert not rc._alive(pid_a) and not rc._alive(pid_b)
        assert rc._alive(pid_c), "a process the record does not name must not be stopped"
        for dest in (dest_a, dest_b, dest_c):
            assert json.loads(Path(dest + ".meta.json").read_text())["reaped"] is True
        assert rc.reap(base) == []  # each leftover is reaped once
    finally:
        os.kill(pid_c, signal.SIGKILL)


def test_reaping_a_base_that_does_not_exist_finds_nothing(tmp_path):
    assert rc.reap(str(tmp_path / "absent")) == []


def test_the_plan_gives_every_background_start_the_repetitions_time_limits():
    steps = {
        "before": [], "after": [],
        "start": [{"host": "h2", "file": "count.txt", "dest": "count.txt",
                   "argv": ["tcpdump"], "stop_signal": "INT"}],
        "traffic": [{"host": "h1", "file": "load.txt", "dest": "load.txt", "argv": ["trafgen"],
                     "timeout_s": 30}],
        "probe_start": [], "probe": [{"host": "h1", "file": "ping.txt", "dest": "ping.txt",
                                      "argv": ["ping"], "timeout_s": 40}],
    }
    files = {"h1": ["load.txt", "ping.txt"], "h2": ["count.txt"]}
    out = plan_base.calls(steps, files)
    limits = sum(call["timeout_s"] for phase in ("pre", "load", "post", "finish")
                 for call in out[phase])
    starts = [s for phase in ("pre", "load", "post", "finish") for call in out[phase]
              for s in call["steps"] if s["do"] == "start"]
    assert len(starts) == 1
    assert starts[0]["lifetime_s"] == limits + plan_base.LIFETIME_MARGIN_S
    assert limits >= 30 + 40


def test_the_manifest_records_only_hosts_where_leftovers_were_found():
    sys.path.insert(0, str(REPO / "collections"))
    from ansible_collections.kvmnetlab.lab.plugins.filter.campaign import reaped_states

    found = [{"run_dir": "/var/tmp/kvmnetlab/run-x", "dest": "a.pcap", "pid": 7,
              "tool": "tcpdump", "stopped": True, "problem": None}]
    hostvars = {"h1": {"campaign_reap": {"reaped": found}}, "h2": {"campaign_reap": {
        "reaped": []}}, "g1": {}}
    assert reaped_states(hostvars, ["h1", "h2", "g1", "absent"]) == {"h1": {"reaped": found}}


def test_a_tool_that_ignores_the_stop_is_killed_with_its_launcher(base):
    # sh ignores SIGINT here and runs sleep in the foreground: both must go
    _, dest, pid = started(base, ["sh", "-c", "trap '' INT; sleep 300; echo survived"],
                           "stubborn.txt", lifetime_s=600)
    time.sleep(0.3)
    group = [int(p) for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == pid]
    assert len(group) >= 3, group  # timeout, sh, sleep
    with pytest.raises(rc.CaptureError, match="ignored SIGINT"):
        rc.stop_tool(dest, "INT", timeout_s=1.0)
    for member in group:
        wait_gone(member, within_s=10)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
