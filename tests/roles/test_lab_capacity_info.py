"""The preflight's capacity check as Python: kvmnetlab.lab.lab_capacity_info (read on the
hypervisor: MemAvailable, online cores, running guests) and kvmnetlab.capacity.refusals
(on the controller: the decision, with the numbers), joined by the lab_capacity filter.
Fast, no lab; the preflight itself is run by tests/core/test_competing.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kvmnetlab import capacity
from tests.helpers import collection_module, collection_plugin

info_mod = collection_module("lab_capacity_info")
campaign_filters = collection_plugin("filter", "campaign")

GUESTS = [{"name": f"g{i}", "memory_mb": 768, "vcpus": 1} for i in range(1, 5)]
DEMAND = {"needs": {"guests": 4, "containers": 0}, "guests": GUESTS, "containers": [],
          "vcpus_per_core": 4, "guest_overhead_mb": 256}


def test_meminfo_is_read_in_mib_or_refused_naming_the_file():
    text = "MemTotal:       16384 kB\nMemFree:  1 kB\nMemAvailable:    2048 kB\n"
    assert info_mod.meminfo_available_mb(text) == 2.0
    with pytest.raises(ValueError, match="/proc/meminfo: no 'MemAvailable: <n> kB' line"):
        info_mod.meminfo_available_mb("MemTotal: 1 kB\n")
    with pytest.raises(ValueError, match="hv:/proc/meminfo"):
        info_mod.meminfo_available_mb("MemAvailable: 12 MB\n", "hv:/proc/meminfo")


def gone_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_running_guests_are_those_whose_pidfile_names_a_live_process(tmp_path):
    for name, text in (("g1", str(os.getpid())), ("g2", str(gone_pid())), ("g3", "garbage"),
                       ("g4", "0")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "qemu.pid").write_text(text + "\n")
    (tmp_path / "g5").mkdir()  # never started: no pidfile
    assert info_mod.running_guests(str(tmp_path)) == ["g1"]
    assert info_mod.running_guests(str(tmp_path), alive=lambda pid: True) == ["g1", "g2", "g4"]
    assert not info_mod.pid_alive(0) and not info_mod.pid_alive(-1)
    assert info_mod.running_guests(str(tmp_path / "absent")) == []
    assert info_mod.running_guests(None) == []


def test_the_module_reads_this_machine_and_changes_nothing(tmp_path):
    """Run as Ansible runs it (arguments as JSON on stdin), in check mode."""
    args = {"ANSIBLE_MODULE_ARGS": {"guests_dir": str(tmp_path), "_ansible_check_mode": True}}
    done = subprocess.run([sys.executable, info_mod.__file__], input=json.dumps(args),
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    result = json.loads(done.stdout)
    assert result["changed"] is False, result
    assert result["cores"] == os.sysconf("SC_NPROCESSORS_ONLN")
    assert 0 < result["available_mb"] < os.sysconf("SC_PAGE_SIZE") * os.sysconf(
        "SC_PHYS_PAGES") / 2**20 + 1
    assert result["running"] == []


def test_refusals_decide_with_the_numbers():
    measured = {"available_mb": 20_000.0, "cores": 2, "running": []}
    assert capacity.refusals(measured, DEMAND, "hv") == []
    short = capacity.refusals({**measured, "available_mb": 3000}, DEMAND, "hv")
    assert short == ["4 guests and 0 containers need 4096 MiB more memory (each guest its "
                     "memory_mb + 256 MiB of QEMU, each container its memory_mb; those "
                     "already running not counted); hv has 3000 MiB available (MemAvailable)"]
    # a running guest's memory is spent already
    assert capacity.refusals({**measured, "available_mb": 3100, "running": ["g1"]},
                             DEMAND, "hv") == []
    one_core = capacity.refusals({**measured, "cores": 1}, {**DEMAND, "vcpus_per_core": "1"},
                                 "hv")
    assert one_core == ["4 guests have 4 vCPUs; hv has 1 cores, and at most 1 vCPUs per core "
                        "(1) are allowed (kvmnetlab_vcpus_per_core)"]


def test_refusals_name_what_is_missing():
    with pytest.raises(ValueError, match="capacity of hv: measured lacks cores, running"):
        capacity.refusals({"available_mb": 1}, DEMAND, "hv")
    with pytest.raises(ValueError, match="demand lacks guest_overhead_mb"):
        capacity.refusals({"available_mb": 1, "cores": 1, "running": []},
                          {k: v for k, v in DEMAND.items() if k != "guest_overhead_mb"}, "hv")


def test_the_filter_passes_the_module_result_to_the_core():
    registered = {"changed": False, "available_mb": 1000.0, "cores": 64, "running": [],
                  "invocation": {"module_args": {"guests_dir": "/x"}}}
    said = campaign_filters.lab_capacity(registered, DEMAND, "hv")
    assert said == capacity.refusals(registered, DEMAND, "hv")
    assert len(said) == 1 and "hv has 1000 MiB available" in said[0]
