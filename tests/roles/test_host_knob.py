"""The kvm_host role's modules as Python, against fake sysfs/procfs trees in tmp_path.

host_knob (idempotence, check mode, missing and read-only paths, refused writes, a kernel
that grants less than asked), nic_irq_affinity (finding a NIC's IRQs, EIO on some),
cpuidle_limit, kernel_cmdline_info and kvm_host_record (statuses, atomic idempotent
writes). No host is changed. kernel_module has its own tests (test_kernel_module.py).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from ansible_collections.kvmnetlab.lab.plugins.module_utils import host_knob as hk

from tests.helpers import collection_module

irq_mod = collection_module("nic_irq_affinity")
idle_mod = collection_module("cpuidle_limit")
cmdline_mod = collection_module("kernel_cmdline_info")
record_mod = collection_module("kvm_host_record")


def knob(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


# --- values as the kernel shows them ------------------------------------------------------


@pytest.mark.parametrize(("text", "cpus"), [
    ("0", {0}), ("2-3", {2, 3}), ("0,2-4,7", {0, 2, 3, 4, 7}), ("", set()),
    ("0-7:2/4", {0, 1, 4, 5}), (" 1 \n", {1}),
])
def test_cpulist_parses_kernel_forms(text, cpus):
    assert hk.parse_cpulist(text) == frozenset(cpus)


@pytest.mark.parametrize("text", ["a", "3-1", "1,,2", "-1", "1-"])
def test_cpulist_rejects_what_is_not_one(text):
    with pytest.raises(ValueError, match="not a cpu list"):
        hk.parse_cpulist(text)


def test_cpulist_formats_shortest():
    assert hk.format_cpulist({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert hk.format_cpulist(set()) == ""


def test_selected_reads_the_bracketed_choice():
    assert hk.selected("always [madvise] never\n") == "madvise"
    assert hk.selected("performance\n") == "performance"


# --- host_knob ----------------------------------------------------------------------------


def test_write_then_rerun_is_already(tmp_path):
    thp = knob(tmp_path / "enabled", "[always] madvise never\n")

    def kernel(path, value):  # the kernel moves the brackets, as sysfs does
        Path(path).write_text(" ".join(f"[{c}]" if c == value else c
                                       for c in ("always", "madvise", "never")) + "\n")

    first = hk.set_file(str(thp), "never", "selected", writer=kernel)
    assert (first["status"], first["changed"]) == ("applied", True)
    assert (first["before"], first["after"]) == ("always", "never")
    assert thp.read_text() == "always madvise [never]\n"
    second = hk.set_file(str(thp), "never", "selected", writer=kernel)
    assert (second["status"], second["changed"]) == ("already", False)


def test_check_mode_predicts_without_writing(tmp_path):
    gov = knob(tmp_path / "scaling_governor", "powersave\n")
    outcome = hk.set_file(str(gov), "performance", check_mode=True)
    assert (outcome["status"], outcome["changed"]) == ("applied", True)
    assert outcome["after"] == "performance"
    assert gov.read_text() == "powersave\n"


def test_missing_path_is_unavailable_not_an_error(tmp_path):
    entry = hk.set_knob("cpufreq_governor", str(tmp_path / "cpu*/cpufreq/scaling_governor"),
                        "performance", missing_reason="no cpufreq here")
    assert entry["status"] == "unavailable"
    assert entry["reason"] == "no cpufreq here"
    assert entry["changed"] is False
    single = hk.set_knob("halt_poll_ns", str(tmp_path / "halt_poll_ns"), 1, "int")
    assert single["status"] == "unavailable"
    assert "does not exist" in single["reason"]


def test_read_only_file_is_unavailable(tmp_path):
    path = knob(tmp_path / "ro", "0\n", mode=0o444)
    outcome = hk.set_file(str(path), 5, "int")
    assert outcome["status"] == "unavailable"
    assert "read-only" in outcome["reason"]
    assert path.read_text() == "0\n"
    assert hk.set_file(str(path), 5, "int", check_mode=True)["status"] == "unavailable"


def test_refused_write_is_unavailable_with_the_errno(tmp_path):
    path = knob(tmp_path / "smp_affinity_list", "0\n")

    def eio(_path, _value):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    outcome = hk.set_file(str(path), "1", "cpulist", writer=eio)
    assert outcome["status"] == "unavailable" and outcome["changed"] is False
    assert "EIO" in outcome["reason"] and str(path) in outcome["reason"]


def test_every_cpu_gets_the_governor_and_the_knob_aggregates(tmp_path):
    for cpu in (0, 1, 10):
        knob(tmp_path / f"cpu{cpu}/cpufreq/scaling_governor", "powersave\n")
    pattern = str(tmp_path / "cpu[0-9]*/cpufreq/scaling_governor")
    entry = hk.set_knob("cpufreq_governor", pattern, "performance")
    assert entry["status"] == "applied" and entry["observed"] == "performance"
    assert list(entry["files"]) == [str(tmp_path / f"cpu{c}/cpufreq/scaling_governor")
                                    for c in (0, 1, 10)]
    again = hk.set_knob("cpufreq_governor", pattern, "performance")
    assert (again["status"], again["changed"]) == ("already", False)


def test_some_files_refusing_make_the_knob_partial(tmp_path):
    knob(tmp_path / "cpu0/g", "powersave\n")
    knob(tmp_path / "cpu1/g", "powersave\n", mode=0o444)
    entry = hk.set_knob("g", str(tmp_path / "cpu*/g"), "performance")
    assert entry["status"] == "partial"
    assert entry["observed"] == {str(tmp_path / "cpu0/g"): "performance",
                                 str(tmp_path / "cpu1/g"): "powersave"}
    assert "read-only" in entry["reason"]


def test_null_value_leaves_the_knob(tmp_path):
    path = knob(tmp_path / "enabled", "[always] madvise never\n")
    entry = hk.set_knob("thp", str(path), None, "selected")
    assert entry["status"] == "left" and entry["changed"] is False
    assert path.read_text() == "[always] madvise never\n"


def test_fewer_huge_pages_than_asked_is_partial_and_a_rerun_changes_nothing(tmp_path):
    nr = knob(tmp_path / "nr_hugepages", "0\n")

    def kernel(path, value):  # memory for 40 pages only
        Path(path).write_text(f"{min(int(value), 40)}\n")

    first = hk.set_knob("hugepages_2m", str(nr), 64, "int", writer=kernel)
    assert (first["status"], first["changed"], first["observed"]) == ("partial", True, 40)
    assert "40" in first["reason"] and "64" in first["reason"]
    second = hk.set_knob("hugepages_2m", str(nr), 64, "int", writer=kernel)
    assert (second["status"], second["changed"], second["observed"]) == ("partial", False, 40)
    # check mode knows from the earlier grant that a real run would change nothing ...
    checked = hk.set_knob("hugepages_2m", str(nr), 64, "int", check_mode=True, granted=40)
    assert (checked["status"], checked["changed"]) == ("partial", False)
    # ... and without it predicts a change
    assert hk.set_knob("hugepages_2m", str(nr), 64, "int", check_mode=True)["changed"] is True
    # asking for what the kernel holds is "already"
    assert hk.set_knob("hugepages_2m", str(nr), 40, "int")["status"] == "already"


# --- nic_irq_affinity ---------------------------------------------------------------------

INTERRUPTS = """\
           CPU0       CPU1
  0:         86          0   IO-APIC   2-edge      timer
 25:        486          0   PCI-MSI 65537-edge      virtio0-req.0
 27:          0          0   PCI-MSI 262144-edge      virtio2-config
 28:          0          0   PCI-MSI 262145-edge      virtio2-input.0
 29:          0          0   PCI-MSI 262146-edge      virtio2-output.0
 40:          5          0   PCI-MSI 1-edge      eth1-TxRx-0
 41:          5          0   PCI-MSI 2-edge      eth1-TxRx-1
 42:          5          0   PCI-MSI 3-edge      eth10-TxRx-0
NMI:          0          0   Non-maskable interrupts
"""


def fake_nic_tree(tmp_path: Path) -> tuple[Path, Path]:
    """data0: virtio NIC (virtio2 under PCI 00:10.0, MSI-X 27-29); eth1: vectors in
    /proc/interrupts only; veth0: no device."""
    net, proc = tmp_path / "sys/class/net", tmp_path / "proc"
    pci = tmp_path / "sys/devices/pci0000:00/0000:00:10.0"
    (pci / "virtio2").mkdir(parents=True)
    for irq in (27, 28, 29):
        knob(pci / "msi_irqs" / str(irq), "msix\n")
    for name in ("data0", "eth1", "veth0"):
        knob(net / name / "ifindex", "3\n")
    (net / "data0/device").symlink_to(pci / "virtio2")
    knob(proc / "interrupts", INTERRUPTS)
    for irq in (0, 25, 27, 28, 29, 40, 41, 42):
        knob(proc / f"irq/{irq}/smp_affinity_list", "0-1\n")
    return net, proc


def test_nic_irqs_from_msi_vectors_and_proc_interrupts(tmp_path):
    net, proc = fake_nic_tree(tmp_path)
    text = (proc / "interrupts").read_text()
    assert hk.nic_irqs("data0", str(net), text) == [
        (27, "msi_irqs"), (28, "msi_irqs"), (29, "msi_irqs")]
    assert hk.nic_irqs("eth1", str(net), text) == [
        (40, "/proc/interrupts"), (41, "/proc/interrupts")]  # not eth10's
    assert hk.nic_irqs("veth0", str(net), text) == []


def test_irq_affinity_pins_skips_refusals_and_reruns_clean(tmp_path, monkeypatch):
    net, proc = fake_nic_tree(tmp_path)
    real_write = hk.write_text

    def kernel(path, value):  # IRQ 29 is a managed interrupt: EIO
        if "/irq/29/" in path:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_write(path, value)

    monkeypatch.setattr(hk, "write_text", kernel)
    monkeypatch.setattr(irq_mod, "set_file",
                        lambda *a, **k: hk.set_file(*a, **k, writer=kernel))
    setting, details = irq_mod.pin(["data0", "veth0", "nope"], "1", False, str(net), str(proc))
    assert setting["status"] == "partial" and setting["changed"] is True
    assert setting["observed"] == {"data0": {"27": "1", "28": "1", "29": "0-1"}}
    assert details["data0"]["29"]["status"] == "unavailable"
    assert "IRQ 29" in setting["reason"] and "EIO" in setting["reason"]
    assert "veth0: no IRQ of its own" in setting["reason"]
    assert "nope: no such interface" in setting["reason"]
    assert (proc / "irq/28/smp_affinity_list").read_text() == "1\n"
    assert (proc / "irq/25/smp_affinity_list").read_text() == "0-1\n"  # not the NIC's
    again, _ = irq_mod.pin(["data0"], "1", False, str(net), str(proc))
    assert again["changed"] is False and again["status"] == "partial"
    only_ok, _ = irq_mod.pin(["eth1"], "0-1", True, str(net), str(proc))
    assert only_ok["status"] == "already"
    predicted, _ = irq_mod.pin(["eth1"], "0", True, str(net), str(proc))
    assert predicted["status"] == "applied" and predicted["changed"] is True
    assert (proc / "irq/40/smp_affinity_list").read_text() == "0-1\n"  # check mode


def test_irq_affinity_without_any_irq_is_unavailable(tmp_path):
    net, proc = fake_nic_tree(tmp_path)
    setting, _ = irq_mod.pin(["veth0"], "1", False, str(net), str(proc))
    assert setting["status"] == "unavailable" and setting["reason"]


# --- cpuidle_limit ------------------------------------------------------------------------


def fake_cpuidle(tmp_path: Path, cpus=(0, 1)) -> Path:
    root = tmp_path / "cpu"
    for cpu in cpus:
        for index, (name, latency) in enumerate([("POLL", 0), ("C1", 2), ("C6", 133)]):
            state = root / f"cpu{cpu}/cpuidle/state{index}"
            knob(state / "name", f"{name}\n")
            knob(state / "latency", f"{latency}\n")
            knob(state / "disable", "0\n")
    knob(root / "cpuidle/current_driver", "intel_idle\n")
    return root


def test_cstates_above_the_limit_are_disabled_then_enabled_again(tmp_path):
    root = fake_cpuidle(tmp_path)
    first = idle_mod.limit(10, False, str(root))
    assert (first["status"], first["changed"]) == ("applied", True)
    assert first["observed"]["state2"] == {"name": "C6", "latency_us": 133, "disabled_cpus": "0-1"}
    assert first["observed"]["state1"]["disabled_cpus"] == ""
    assert (root / "cpu1/cpuidle/state2/disable").read_text() == "1\n"
    again = idle_mod.limit(10, False, str(root))
    assert (again["status"], again["changed"]) == ("already", False)
    assert idle_mod.limit(1, True, str(root))["changed"] is True  # C1 would go
    assert (root / "cpu0/cpuidle/state1/disable").read_text() == "0\n"
    relaxed = idle_mod.limit(200, False, str(root))
    assert relaxed["changed"] is True
    assert (root / "cpu0/cpuidle/state2/disable").read_text() == "0\n"


def test_no_cpuidle_is_unavailable(tmp_path):
    root = tmp_path / "cpu"
    knob(root / "cpuidle/current_driver", "none\n")
    (root / "cpu0").mkdir()
    entry = idle_mod.limit(10, False, str(root))
    assert entry["status"] == "unavailable" and "idle driver: none" in entry["reason"]


# --- kernel_cmdline_info ------------------------------------------------------------------


def test_cmdline_info_missing_args_grub_and_cpus(tmp_path):
    knob(tmp_path / "proc/cmdline", "root=/dev/vda ro isolcpus=2-3 quiet\n")
    knob(tmp_path / "sys/devices/system/cpu/online", "0-3\n")
    knob(tmp_path / "sys/devices/system/cpu/isolated", "2-3\n")
    knob(tmp_path / "sys/devices/system/cpu/nohz_full", "(null)\n")
    args = ["isolcpus=2-3", "nohz_full=2-3"]
    found = cmdline_mod.info(args, "2-3", "/etc/default/grub", None, str(tmp_path))
    assert found["missing"] == ["nohz_full=2-3"]
    assert found["grub"] == {"defaults": None, "update_grub": None, "ok": False}
    assert (found["isolated"], found["nohz_full"], found["cpu_problem"]) == ("2-3", "", "")
    knob(tmp_path / "etc/default/grub", "GRUB_DEFAULT=0\n")
    assert cmdline_mod.info(args, "2-3", "/etc/default/grub", "/usr/sbin/update-grub",
                            str(tmp_path))["grub"]["ok"] is True
    assert "not online" in cmdline_mod.cpu_problem("4", "0-3")
    assert "no online CPU for housekeeping" in cmdline_mod.cpu_problem("0-3", "0-3")
    assert "not a cpu list" in cmdline_mod.cpu_problem("x", "0-3")


# --- kvm_host_record ----------------------------------------------------------------------

REQUESTED = {"thp": "never", "hugepages_2m": 64, "cpufreq_governor": "performance",
             "halt_poll_ns": None}


def test_record_shape_statuses_and_left_settings():
    record = record_mod.build(REQUESTED, {
        "thp": {"status": "applied", "observed": "never", "reason": "", "changed": True},
        "hugepages_2m": {"status": "partial", "observed": 40, "reason": "granted 40 of 64"},
        "cpufreq_governor": {"status": "unavailable", "observed": None, "reason": "no cpufreq"},
    }, {})
    assert record["format_version"] == 1
    assert list(record["settings"]) == sorted(REQUESTED)
    assert record["settings"]["thp"] == {"requested": "never", "status": "applied",
                                         "observed": "never", "reason": ""}
    assert record["settings"]["halt_poll_ns"]["status"] == "left"
    assert record["settings"]["hugepages_2m"]["observed"] == 40


def test_record_refuses_bad_outcomes():
    with pytest.raises(record_mod.RecordError, match="thp: status 'done'"):
        record_mod.build({"thp": "never"}, {"thp": {"status": "done"}}, {})
    with pytest.raises(record_mod.RecordError, match="needs a reason"):
        record_mod.build({"thp": "never"}, {"thp": {"status": "unavailable"}}, {})
    with pytest.raises(record_mod.RecordError, match="no outcome"):
        record_mod.build({"thp": "never"}, {}, {})


def test_record_keeps_applied_while_the_value_holds():
    earlier = record_mod.build({"thp": "never"},
                               {"thp": {"status": "applied", "observed": "never"}}, {})
    rerun = record_mod.build({"thp": "never"},
                             {"thp": {"status": "already", "observed": "never"}}, earlier)
    assert rerun == earlier
    other = record_mod.build({"thp": "madvise"},
                             {"thp": {"status": "already", "observed": "madvise"}}, earlier)
    assert other["settings"]["thp"]["status"] == "already"


def test_record_file_is_written_atomically_and_only_on_change(tmp_path):
    path = tmp_path / "state" / "kvm_host.json"
    record = record_mod.build({"thp": "never"},
                              {"thp": {"status": "applied", "observed": "never"}}, {})
    text = record_mod.render(record)
    assert "time" not in text
    record_mod.write_atomically(str(path), text)
    assert json.loads(path.read_text()) == record
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert record_mod.load(str(path)) == (record, text)
    assert [p.name for p in path.parent.iterdir()] == ["kvm_host.json"]  # no temporary left
    assert text == record_mod.render(json.loads(text))  # stable: sorted keys
    assert record_mod.load(str(tmp_path / "absent.json")) == ({}, None)
