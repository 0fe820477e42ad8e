"""kvmnetlab.lab.kernel_module as Python, against a fake /proc and /sys/module in tmp_path.

One module loads, reloads and unloads kernel modules for the kvm_host role (vhost_net, whose
problems are recorded, not fatal: ``unavailable: report``) and the pf_ring role (pf_ring.ko
with its parameters, reloaded when they differ; problems fail: ``unavailable: fail``). A
stand-in modprobe changes the fake /proc/modules and sysfs parameters; no host is changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, collection_module

kmod = collection_module("kernel_module")


class Modprobe:
    """A stand-in modprobe over a fake /proc/modules and /sys/module/<name>/parameters."""

    def __init__(self, proc: Path, sysm: Path, known=("vhost_net", "pf_ring"), rc=0):
        self.proc, self.sysm, self.known, self.rc, self.calls = proc, sysm, known, rc, []

    def __call__(self, argv):
        self.calls.append(argv)
        words = [a for a in argv[1:] if not a.startswith("-")]
        name, params = words[0], dict(w.split("=", 1) for w in words[1:])
        if name not in self.known:
            return 1, "", f"modprobe: FATAL: Module {name} not found."
        if self.rc:
            return self.rc, "", f"modprobe: FATAL: Module {name} is in use."
        if "--dry-run" in argv:
            return 0, "", ""
        lines = [line for line in (self.proc / "modules").read_text().splitlines()
                 if line.split()[0] != name]
        folder = self.sysm / name / "parameters"
        if "-r" in argv:
            shutil.rmtree(self.sysm / name, ignore_errors=True)
        else:
            lines.append(f"{name} 36864 0 - Live 0x0")
            folder.mkdir(parents=True, exist_ok=True)
            (self.sysm / name / "initstate").write_text("live\n")  # a loadable module's
            for key, default in {"min_num_slots": "4096", "enable_tx_capture": "Y"}.items():
                if name == "pf_ring":
                    (folder / key).write_text(params.get(key, default) + "\n")
        (self.proc / "modules").write_text("".join(f"{line}\n" for line in lines))
        return 0, "", ""


@pytest.fixture
def host(tmp_path):
    proc, sysm = tmp_path / "proc", tmp_path / "sys/module"
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "modules").write_text("tun 61440 0 - Live 0x0\n")
    sysm.mkdir(parents=True)
    return proc, sysm


def call(host, run, name, **kwargs):
    proc, sysm = host
    return kmod.manage(name, run=run, proc=str(proc), sys_module=str(sysm), **kwargs)


def test_loads_once_and_reports_truthfully(host):
    run = Modprobe(*host)
    checked = call(host, run, "vhost-net", check_mode=True)
    assert (checked["setting"]["status"], checked["setting"]["changed"]) == ("applied", True)
    assert checked["action"] == "load" and checked["loaded"] is True
    assert run.calls == [["modprobe", "--dry-run", "vhost_net"]]
    assert "vhost_net" not in (host[0] / "modules").read_text()
    first = call(host, run, "vhost_net")
    assert (first["setting"]["status"], first["setting"]["changed"],
            first["setting"]["observed"]) == ("applied", True, "loaded")
    second = call(host, run, "vhost_net")
    assert (second["setting"]["status"], second["setting"]["changed"]) == ("already", False)
    assert second["action"] == "none" and len(run.calls) == 2
    gone = call(host, run, "vhost_net", state="absent")
    assert (gone["setting"]["status"], gone["setting"]["observed"]) == ("applied", "not loaded")
    assert gone["action"] == "unload" and gone["loaded"] is False


def test_unavailable_cases(host):
    proc, sysm = host
    (proc / "modules").unlink()
    no_modules = call(host, Modprobe(*host), "vhost_net")
    assert no_modules["setting"]["status"] == "unavailable"
    assert "cannot load modules" in no_modules["setting"]["reason"]
    (proc / "modules").write_text("")
    missing = call(host, Modprobe(*host, known=()), "vhost_net")
    assert missing["setting"]["status"] == "unavailable"
    assert "not found" in missing["setting"]["reason"]
    (proc / "sys/kernel/modules_disabled").write_text("1\n")
    disabled = call(host, Modprobe(*host), "vhost_net")
    assert "disabled" in disabled["setting"]["reason"]
    (sysm / "vhost_net").mkdir()  # built in: /sys/module/<name> without initstate
    builtin = call(host, Modprobe(*host), "vhost_net")
    assert (builtin["setting"]["status"], builtin["setting"]["observed"]) == ("already",
                                                                               "built-in")
    stuck = call(host, Modprobe(*host), "vhost_net", state="absent")
    assert stuck["setting"]["status"] == "unavailable"
    assert "built into" in stuck["setting"]["reason"]


def test_loads_with_params_and_reloads_when_they_differ(host):
    run = Modprobe(*host)
    loaded = call(host, run, "pf_ring", params={"min_num_slots": 8192, "enable_tx_capture": 1})
    assert loaded["action"] == "load" and loaded["setting"]["changed"] is True
    assert run.calls[-1] == ["modprobe", "pf_ring", "enable_tx_capture=1", "min_num_slots=8192"]
    assert loaded["params"] == {"enable_tx_capture": "1", "min_num_slots": "8192"}
    same = call(host, run, "pf_ring", params={"min_num_slots": 8192, "enable_tx_capture": True})
    assert same["action"] == "none" and same["setting"]["changed"] is False
    assert same["mismatched_params"] == []
    calls = len(run.calls)
    refused = call(host, run, "pf_ring", params={"min_num_slots": 4096}, reload=False)
    assert refused["setting"]["status"] == "unavailable" and len(run.calls) == calls
    assert "reload is false" in refused["setting"]["reason"]
    assert refused["mismatched_params"] == ["min_num_slots"]
    reloaded = call(host, run, "pf_ring", params={"min_num_slots": 4096, "quick_mode": 0})
    assert reloaded["action"] == "reload" and reloaded["setting"]["changed"] is True
    assert run.calls[calls:] == [["modprobe", "-r", "pf_ring"],
                                 ["modprobe", "pf_ring", "min_num_slots=4096", "quick_mode=0"]]
    assert reloaded["mismatched_params"] == ["min_num_slots"]
    assert reloaded["unverified_params"] == ["quick_mode"]
    assert reloaded["params"]["min_num_slots"] == "4096"


def test_check_mode_predicts_a_load_that_modprobe_refuses_only_when_failing(host):
    run = Modprobe(*host, known=())
    failing = call(host, run, "pf_ring", check_mode=True, unavailable="fail")
    assert failing["action"] == "load" and failing["setting"]["changed"] is True
    assert failing["warnings"] and "not found" in failing["warnings"][0]
    reporting = call(host, run, "pf_ring", check_mode=True, unavailable="report")
    assert reporting["setting"]["status"] == "unavailable" and reporting["action"] == "none"
    assert "pf_ring" not in (host[0] / "modules").read_text()


def test_a_reload_whose_load_fails_reports_the_module_gone(host):
    run = Modprobe(*host)
    call(host, run, "pf_ring", params={"min_num_slots": 8192})

    def unload_only(argv):
        return run(argv) if "-r" in argv else (1, "", "modprobe: ERROR: bad parameter")

    failed = call(host, unload_only, "pf_ring", params={"min_num_slots": 4096})
    assert failed["setting"]["status"] == "unavailable"
    assert "bad parameter" in failed["setting"]["reason"]
    assert failed["setting"]["changed"] is True and failed["loaded"] is False


@pytest.mark.parametrize(("wanted", "actual", "same"), [
    (4096, "4096", True), (4096, "1024", False), (1, "Y", True), (True, "1", True),
    (0, "N", True), (False, "Y", False), ("abc", "ABC", True)])
def test_same_value(wanted, actual, same):
    assert kmod.same_value(wanted, actual) is same


def test_compare_and_render_params():
    wanted = {"min_num_slots": 8192, "enable_tx_capture": 1, "quick_mode": 0}
    actual = {"min_num_slots": "4096", "enable_tx_capture": "1"}
    assert kmod.compare_params(wanted, actual) == (["min_num_slots"], ["quick_mode"])
    assert kmod.param_args({"b": True, "a": 4096}) == ["a=4096", "b=1"]


def test_the_roles_call_the_one_kernel_module_module():
    """kvm_host records what it cannot load; pf_ring fails on it and reloads its params."""
    vhost = yaml.safe_load((REPO / "roles/kvm_host/tasks/modules.yml").read_text())[0]
    assert vhost["kvmnetlab.lab.kernel_module"]["unavailable"] == "report"
    pf_ring = yaml.safe_load((REPO / "roles/pf_ring/tasks/load.yml").read_text())[0]
    args = pf_ring["kvmnetlab.lab.kernel_module"]
    assert (args["name"], args["unavailable"], args["reload"]) == ("pf_ring", "fail", True)
    assert not (REPO / "collections/ansible_collections/kvmnetlab/lab/plugins/modules"
                / "pf_ring_kmod.py").exists()
