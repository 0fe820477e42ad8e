"""The kvm_host role's outcomes as module results, as Python: what kvm_host_record derives
for irqbalance and the isolated cores from their registered tasks, a knob requested as null
(host_knob's "left"), and nic_irq_affinity on a host that names no data NIC. These outcomes
were Jinja accumulators (set_fact ... combine) in the role's task files; no host is changed.
"""

from __future__ import annotations

import pytest

from tests.helpers import collection_module

record_mod = collection_module("kvm_host_record")
irq_mod = collection_module("nic_irq_affinity")

GRUB = {"defaults": "/etc/default/grub", "update_grub": "/usr/sbin/update-grub", "ok": True}
ARGS = ["isolcpus=1", "nohz_full=1"]


def info(missing=(), grub=GRUB, cpu_problem=""):
    return {"missing": list(missing), "grub": grub, "cpu_problem": cpu_problem,
            "isolated": "" if missing else "1", "nohz_full": "" if missing else "1"}


def cmdline(inf, changed=False, never_rebooted=False, reboot_allowed=True):
    return record_mod.cmdline_outcome(inf, changed, never_rebooted, reboot_allowed)


def test_isolated_cores_in_effect_are_applied_or_already():
    assert cmdline(info(), changed=True) == {
        "status": "applied", "observed": {"isolated": "1", "nohz_full": "1"}, "reason": ""}
    assert cmdline(info())["status"] == "already"


@pytest.mark.parametrize(("grub", "cpu_problem", "status", "reason"), [
    ({"defaults": None, "update_grub": None, "ok": False}, "", "unavailable",
     "no /etc/default/grub on this host: it does not boot through grub (e.g. a guest booted "
     "with QEMU -kernel), so its kernel command line cannot be changed"),
    ({"defaults": "/etc/default/grub", "update_grub": None, "ok": False}, "", "unavailable",
     "update-grub is not installed, so grub.cfg cannot be regenerated"),
    (GRUB, "CPU 5 not online on this host (online: 0-1)", "unavailable",
     "CPU 5 not online on this host (online: 0-1)"),
])
def test_isolated_cores_the_host_cannot_take_are_unavailable_with_the_reason(
        grub, cpu_problem, status, reason):
    outcome = cmdline(info(ARGS, grub, cpu_problem))
    assert (outcome["status"], outcome["reason"]) == (status, reason)
    assert outcome["observed"] == {"isolated": "", "nohz_full": ""}


@pytest.mark.parametrize(("never_rebooted", "reboot_allowed", "why"), [
    (True, True, " (the controller is never rebooted)"),
    (False, False, " (kvm_host_reboot_allowed is false)"),
    (False, True, ""),
])
def test_isolated_cores_waiting_for_a_reboot_say_why_it_was_not_made(
        never_rebooted, reboot_allowed, why):
    outcome = cmdline(info(ARGS), changed=True, never_rebooted=never_rebooted,
                      reboot_allowed=reboot_allowed)
    assert outcome["status"] == "pending_reboot"
    assert outcome["reason"] == ("pending reboot: the running kernel's /proc/cmdline lacks "
                                 "isolcpus=1 nohz_full=1" + why)


def test_irqbalance_outcome():
    assert record_mod.irqbalance_outcome(True, True) == {
        "status": "applied", "observed": "stopped, disabled", "reason": ""}
    assert record_mod.irqbalance_outcome(True, False)["status"] == "already"
    absent = record_mod.irqbalance_outcome(False, False)
    assert (absent["status"], absent["observed"]) == ("already", "not installed")
    assert "no /usr/sbin/irqbalance" in absent["reason"]


def test_derived_outcomes_only_for_requested_settings_without_one():
    facts = {"cmdline": {"before": info(ARGS), "after": info(), "changed": True},
             "irqbalance": {"installed": True, "changed": False}}
    both = record_mod.outcomes({"irqbalance": "stopped", "isolated_cores": "1"},
                               {"thp": None}, **facts)
    assert both == {"irqbalance": record_mod.irqbalance_outcome(True, False),
                    "isolated_cores": cmdline(info(), changed=True)}
    assert record_mod.outcomes({"irqbalance": None, "isolated_cores": None}, {}, **facts) == {}
    # without a reboot the read before is the latest
    no_reboot = {"before": info(ARGS), "after": {"skipped": True, "changed": False}}
    assert record_mod.outcomes({"isolated_cores": "1"}, {}, cmdline=no_reboot)[
        "isolated_cores"]["status"] == "pending_reboot"
    given = {"status": "already", "observed": "x", "reason": ""}
    assert record_mod.outcomes({"irqbalance": "stopped"}, {"irqbalance": given},
                               **facts)["irqbalance"] is given


def test_a_knob_left_as_it_is_is_recorded_as_not_requested():
    left = {"status": "left", "observed": "madvise", "reason": "thp not requested: left as it is",
            "requested": None, "changed": False, "files": {}}
    record = record_mod.build({"thp": None}, {"thp": left}, {})
    assert record == record_mod.build({"thp": None}, {}, {})
    assert record["settings"]["thp"] == {"requested": None, "status": "left", "observed": None,
                                         "reason": "not requested: left as it is"}


def test_every_phase_skipped_records_every_setting_left():
    requested = dict.fromkeys(("cpufreq_governor", "irqbalance", "irq_affinity",
                               "isolated_cores", "thp", "vhost_net"))
    results = record_mod.outcomes(requested, dict.fromkeys(requested),
                                  {"installed": False, "changed": False},
                                  {"before": {"skipped": True}, "after": {"skipped": True}})
    record = record_mod.build(requested, results, {})
    assert {e["status"] for e in record["settings"].values()} == {"left"}


def test_irq_affinity_without_a_data_nic_is_unavailable_with_the_given_reason(tmp_path):
    setting, irqs = irq_mod.pin([], "2-3", False, sys_class_net=str(tmp_path / "net"),
                                proc=str(tmp_path / "proc"), no_interfaces_reason="no data NIC")
    assert setting == {"requested": {"interfaces": [], "cores": "2-3"}, "status": "unavailable",
                       "observed": None, "reason": "no data NIC", "changed": False}
    assert irqs == {}
    record = record_mod.build({"irq_affinity": {"interfaces": [], "cores": "2-3"}},
                              {"irq_affinity": setting}, {})
    assert record["settings"]["irq_affinity"]["reason"] == "no data NIC"
