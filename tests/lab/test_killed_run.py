"""A campaign killed with SIGKILL leaves its receiver's tcpdump running; the next run's
preflight stops exactly that process (by the PID and start time its run folder recorded)
and says so, and the manifest keeps what it stopped.

On the embedded lab, baseline only (two namespace hosts): the rate test's tcpdump on the
receiver runs for about 20 s, and the campaign is killed in that window (SIGKILL to
ansible-playbook's process group: no rescue, no stop step).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import BIN, REPO, ansible_env, extended_marks, playbook

sys.path.insert(0, str(REPO / "collections"))
from ansible_collections.kvmnetlab.lab.plugins.module_utils import (
    raw_capture as rc,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("root_only"),
              *extended_marks("SIGKILL during tcpdump, then the next preflight; about 2 min")]

BASE = Path("/var/tmp/kvmnetlab")  # campaign_remote_dir's default
PARAMS = {"kvmnetlab_scenarios": "baseline", "kvmnetlab_repetitions": 1,
          "kvmnetlab_ping_count": 50, "kvmnetlab_ping_interval_s": 0.01,
          "kvmnetlab_rate_frames": 200000, "kvmnetlab_rate_pps": 10000,
          "kvmnetlab_search": False, "kvmnetlab_seed": 7}


def args(extra: dict) -> list[str]:
    out = []
    for key, value in extra.items():
        out += ["-e", f"{key}={value}"]
    return out


def running_captures() -> dict[str, dict]:
    """Run folders' background tools recorded as started and not stopped, by meta path."""
    found = {}
    for meta_path in BASE.glob("run-*/*.meta.json"):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if meta.get("pid") and "finished_at" not in meta and meta.get("launcher"):
            found[str(meta_path)] = meta
    return found


def test_the_next_preflight_stops_what_a_killed_campaign_left(tmp_path):
    playbook("site.yml", "--tags", "lab", check=True)
    before = set(running_captures())
    cmd = [str(BIN / "ansible-playbook"), "site.yml", "--skip-tags", "guests",
           *args({**PARAMS, "kvmnetlab_results_dir": tmp_path, "kvmnetlab_campaign_id": "k1"})]
    first = subprocess.Popen(cmd, cwd=REPO, env=ansible_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    left: dict[str, dict] = {}
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not left:
            left = {p: m for p, m in running_captures().items()
                    if p not in before and m["argv"][0] == "tcpdump"}
            time.sleep(0.1)
        assert left, "no tcpdump started within 300 s"
        os.killpg(first.pid, signal.SIGKILL)  # the controller dies: no rescue runs
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    (meta_path, meta), = left.items()
    pid = meta["pid"]
    time.sleep(1)
    assert rc._alive(pid) and rc.start_time(pid) == meta["pid_start"], \
        "the killed campaign's tcpdump should still run"
    # something else runs too: never touched
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        second = playbook("site.yml", "--skip-tags", "guests",
                          extra={**PARAMS, "kvmnetlab_rate_frames": 10000,
                                 "kvmnetlab_results_dir": tmp_path,
                                 "kvmnetlab_campaign_id": "k2"}, check=True)
        assert rc._alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()
    assert not rc._alive(pid), "the leftover tcpdump must be stopped"
    assert f"stopped tcpdump pid {pid} left by a killed run" in second.stdout
    after = json.loads(Path(meta_path).read_text())
    assert after["reaped"] is True and after["stopped_by"] == "INT"
    manifest = json.loads((tmp_path / "k2" / "manifest.json").read_text())
    reaped = [r for state in manifest["host_states"].values() for r in state["reaped"]]
    assert [(r["tool"], r["pid"], r["stopped"]) for r in reaped] == [("tcpdump", pid, True)]
    # the second campaign's own captures were stopped by it, not left behind
    assert not {p for p in running_captures() if p not in before}
