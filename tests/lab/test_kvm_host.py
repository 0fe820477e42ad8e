"""The kvm_host role: its README and argument spec, the host-state snapshot of what it sets,
and the role applied for real to an embedded-lab guest (marker guests).

The guest test boots one guest (kvmnl-g1, 2 vCPUs so that pinning data0's IRQs to CPU 1 is
a real change, 768 MiB) with the project's playbooks, writes a temporary inventory that puts
it in group kvm_host, and runs playbooks/tune.yml against it as a user would:

1. in check mode first: changes are announced, nothing is written;
2. for real: changed > 0, failed = 0; then again: changed = 0; then in check mode: changed = 0;
3. testinfra reads every setting the record calls applied or already back from the guest,
   and the settings the guest cannot honour (no cpufreq, no grub under -kernel, no cpuidle
   driver; halt polling and vhost_net where the guest kernel lacks them) must be recorded
   unavailable with a reason; which ones those are is probed in the guest independently;
4. a stand-in irqbalance (a systemd unit running sleep) is installed and started: the role
   stops and disables it;
5. kvm_host_fail_on_unavailable=true fails the play, naming the host and the settings.

The guest is torn down at the end; the topology too if this module made it. Run it holding
the lab lock: flock /tmp/kvmnl-dev.lock .venv/bin/python -m pytest tests/lab/test_kvm_host.py

Regenerate the role README's option table with:
    .venv/bin/python -m tests.lab.test_kvm_host --write-readme
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import (
    REPO,
    extended,
    flat,
    generated_section,
    lab_guest,
    lab_namespaces,
    option_section,
    playbook,
    recap,
    role_spec,
)

ROLE = REPO / "roles" / "kvm_host"
README = ROLE / "README.md"
BEGIN = "<!-- BEGIN generated from meta/argument_specs.yml by tests/lab/test_kvm_host.py -->"
END = "<!-- END generated -->"

SSH_CONFIG = "/var/lib/kvmnetlab/local/ssh/config"
RECORD = "/var/lib/kvmnetlab/kvm_host.json"
# A guest of its own (index 6), so that it boots fresh rather than reusing another test's.
GUEST, INDEX, MGMT_IP = "kvmnl-g6", 6, "198.19.0.16"
# the guests' admin user (guest_vm_admin_user): tune.yml becomes root; testinfra uses sudo
ADMIN = "kvmnl"
GUESTS_DIR = Path("/var/lib/kvmnetlab/local/guests")
STATUSES = {"applied", "already", "unavailable", "pending_reboot", "partial", "left"}
# kvm_host_data_interfaces is left to its default, the inventory's kvmnetlab_data_interface.
SETTINGS = {
    "kvm_host_cpufreq_governor": "performance",
    "kvm_host_irqbalance": "stopped",
    "kvm_host_irq_cores": "1",
    "kvm_host_isolated_cores": "1",
    "kvm_host_thp": "never",
    "kvm_host_hugepages_2m": 32,
    "kvm_host_vhost_net": True,
    "kvm_host_halt_poll_ns": 100000,
    "kvm_host_max_cstate_latency_us": 10,
}


# --- README generated from the argument spec, defaults in step with it ----------------------


def load_spec() -> dict:
    return role_spec(ROLE)


def readme_section() -> str:
    return option_section(ROLE, BEGIN, END, no_default="`null`")


def test_readme_option_table_matches_the_argument_spec():
    assert generated_section(README.read_text(), BEGIN, END) == readme_section(), (
        "roles/kvm_host/README.md is stale: run .venv/bin/python -m tests.lab.test_kvm_host "
        "--write-readme")


def test_every_default_is_in_the_argument_spec_and_back():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    options = load_spec()["options"]
    assert set(defaults) == set(options)
    for name, value in defaults.items():
        assert name.startswith("kvm_host_"), name
        assert options[name].get("default") == value, name


def test_every_setting_of_the_test_is_a_role_variable():
    assert set(SETTINGS) <= set(load_spec()["options"])


NULLABLE = ("kvm_host_cpufreq_governor", "kvm_host_max_cstate_latency_us", "kvm_host_irq_cores",
            "kvm_host_isolated_cores", "kvm_host_thp", "kvm_host_hugepages_2m",
            "kvm_host_vhost_net", "kvm_host_halt_poll_ns")


def test_argument_spec_takes_null_for_every_setting_and_refuses_bad_types(tmp_path):
    play = tmp_path / "spec.yml"
    play.write_text(yaml.safe_dump([{
        "name": "The role's argument spec", "hosts": "localhost", "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml")],
        "tasks": [{"name": "Validate", "ansible.builtin.validate_argument_spec": {
            "argument_spec": load_spec()["options"]}}]}]))
    nulls = tmp_path / "nulls.json"
    nulls.write_text(json.dumps(dict.fromkeys(NULLABLE)))
    done = playbook(str(play), "-e", f"@{nulls}")
    assert done.returncode == 0, done.stdout[-3000:]
    bad = playbook(str(play), "-e", "kvm_host_hugepages_2m=many")
    assert bad.returncode != 0 and "kvm_host_hugepages_2m" in bad.stdout


# --- the host-state snapshot carries every setting -------------------------------------------


def test_state_snapshot_reads_what_kvm_host_sets_on_every_host():
    from collectors import base

    ctx = base.RunContext("virtio", 1, {"virtualization": "tcg"}, {},
                          {"sender": "h1", "receiver": "g1", "hypervisor": "lab"},
                          {"receiver_if": "data0", "sender_if": "data1"})
    plan = base.plan(ctx, {"state": ["sender", "receiver", "hypervisor"]})
    for group in plan["pre"]:
        items = {i["file"]: i for s in group["steps"] if s["do"] == "snapshot"
                 for i in s["items"]}
        assert items["state.kvm_host.json"]["read"] == [RECORD]
        tuning = items["state.tuning.txt"]
        assert tuning["read_format"] == "grep"
        for path in ("/sys/kernel/mm/transparent_hugepage/enabled",
                     "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
                     "/sys/devices/system/cpu/isolated",
                     "/sys/devices/system/cpu/cpu*/cpuidle/state*/disable",
                     "/proc/irq/*/smp_affinity_list"):
            assert path in tuning["read"], (group["host"], path)
        assert "state.irqbalance.txt" in items
        # the settings land in the raw files fetched from every host
        packed = [s for g in plan["post"] + plan["finish"] if g["host"] == group["host"]
                  for s in g["steps"] if s["do"] == "pack"]
        assert {"state.kvm_host.json", "state.tuning.txt", "state.irqbalance.txt"} \
            <= set(packed[0]["files"])


def test_state_snapshot_of_a_host_without_these_files_does_not_fail(tmp_path):
    sys.path.insert(0, str(REPO / "collections"))
    from ansible_collections.kvmnetlab.lab.plugins.module_utils.raw_capture import snapshot

    from collectors.builtin import HostStateCollector

    absent = str(tmp_path / "absent" / "*")
    (tmp_path / "run").mkdir(mode=0o700)  # the run folder (made by the capture, mkdtemp)
    _, missing = snapshot(str(tmp_path / "run"), [
        {"file": "state.kvm_host.json", "read": [str(tmp_path / "kvm_host.json")]},
        {"file": "state.tuning.txt", "read": [absent, *HostStateCollector.TUNING[:1]],
         "read_format": "grep"},
        {"file": "state.irqbalance.txt", "argv": list(HostStateCollector.IRQBALANCE)},
    ])
    assert missing == ["state.kvm_host.json"]
    assert (tmp_path / "run" / "state.kvm_host.json").read_bytes() == b""
    tuning = (tmp_path / "run" / "state.tuning.txt").read_text()
    assert tuning.startswith("/sys/kernel/mm/transparent_hugepage/enabled:")
    text = (tmp_path / "run" / "state.irqbalance.txt").read_text()
    assert [line.split(":")[0] for line in text.splitlines()[:2]] == ["pid", "active"]


# --- applied for real to an embedded-lab guest ------------------------------------------------


def tune(inventory: Path, *args: str, **over):
    extra = inventory.parent / "tune.json"
    extra.write_text(json.dumps({**SETTINGS, **over}))
    started = time.monotonic()
    done = playbook("-i", str(inventory), "playbooks/tune.yml", "-e", f"@{extra}", *args,
                    timeout=900)
    seconds = time.monotonic() - started
    print(f"tune.yml {' '.join(args) or '(run)'}: {seconds:.0f} s")
    return done, done.stdout + done.stderr


# kvm_host applied to a booted guest: opt-in (KVMNETLAB_EXTENDED=1)
on_a_guest = extended("kvm_host applied to a booted guest; about 5 min in all")


@pytest.fixture(scope="module")
def lab_topology(root_only):
    made = not {"kvmnl-hv", "kvmnl-h1"} <= set(lab_namespaces())
    if made:
        playbook("playbooks/lab.yml", check=True)
    yield
    if made:
        playbook("playbooks/teardown.yml", check=True)


@pytest.fixture(scope="module")
def tuned_guest(lab_topology, tmp_path_factory):
    """The guest booted, the temporary inventory, and the first runs of tune.yml."""
    folder = tmp_path_factory.mktemp("kvm_host")
    guests = folder / "guests.json"
    guests.write_text(json.dumps({"guest_vm_guests": [lab_guest(GUEST, INDEX, vcpus=2)]}))
    if (GUESTS_DIR / GUEST).exists():  # left over by an interrupted run of this module
        playbook("playbooks/guests.yml", "-e", f"@{guests}", "--tags", "guests_teardown",
                 check=True)
    started = time.monotonic()
    try:
        playbook("playbooks/guests.yml", "-e", f"@{guests}", check=True)
        print(f"guest up: {time.monotonic() - started:.0f} s")
        inventory = folder / "inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {"kvm_host": {"hosts": {
            GUEST: {"ansible_host": MGMT_IP, "ansible_user": ADMIN,
                    "ansible_ssh_common_args": f"-F {SSH_CONFIG}",
                    "ansible_python_interpreter": "/usr/bin/python3",
                    # the data NIC, named once as in inventory/lab.example; kvm_host pins its IRQs
                    "kvmnetlab_data_interface": "data0"}}}}}}))
        import testinfra

        host = testinfra.get_host(f"ssh://{GUEST}", ssh_config=SSH_CONFIG, sudo=True)
        runs = {"check_first": tune(inventory, "--check")}
        runs["after_check"] = {
            "record": host.file(RECORD).exists,
            "thp": host.file("/sys/kernel/mm/transparent_hugepage/enabled").content_string}
        runs |= {"first": tune(inventory), "second": tune(inventory),
                 "check": tune(inventory, "--check")}
        yield inventory, runs
    finally:
        playbook("playbooks/guests.yml", "-e", f"@{guests}", "--tags", "guests_teardown")


@pytest.fixture(scope="module")
def guest(tuned_guest):
    import testinfra

    return testinfra.get_host(f"ssh://{GUEST}", ssh_config=SSH_CONFIG, sudo=True)


def record_of(host) -> dict:
    return json.loads(host.file(RECORD).content_string)


def guest_can(host) -> dict[str, bool]:
    """What the guest could honour, probed without the role."""
    cpu = "/sys/devices/system/cpu"
    return {
        "cpufreq_governor": host.file(f"{cpu}/cpu0/cpufreq/scaling_governor").exists,
        "irqbalance": True,
        "irq_affinity": True,
        "isolated_cores": host.file("/etc/default/grub").exists,
        "thp": host.file("/sys/kernel/mm/transparent_hugepage/enabled").exists,
        "hugepages_2m": host.file("/sys/kernel/mm/hugepages/hugepages-2048kB").exists,
        "vhost_net": host.run("modinfo vhost_net").rc == 0,
        "halt_poll_ns": host.file("/sys/module/kvm/parameters/halt_poll_ns").exists,
        "max_cstate_latency_us": host.run(f"ls -d {cpu}/cpu0/cpuidle/state0").rc == 0,
    }


def data0_irqs(host) -> set[str]:
    """data0's IRQs, found the way an administrator would: its virtio device's lines."""
    virtio = Path(host.check_output("readlink -f /sys/class/net/data0/device")).name
    lines = host.file("/proc/interrupts").content_string.splitlines()
    return {line.split(":")[0].strip() for line in lines if f" {virtio}-" in line}


def check_in_guest(host, name: str, entry: dict) -> None:
    """Read back in the guest a setting the record calls applied or already."""
    wanted = entry["requested"]
    if name == "thp":
        text = host.file("/sys/kernel/mm/transparent_hugepage/enabled").content_string
        assert re.search(r"\[(\w+)\]", text).group(1) == wanted
    elif name == "hugepages_2m":
        text = host.file("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages").content_string
        assert int(text) == wanted == entry["observed"]
    elif name == "irq_affinity":
        irqs = data0_irqs(host)
        assert irqs and set(entry["observed"]["data0"]) == irqs
        for irq in irqs:
            assert host.file(f"/proc/irq/{irq}/smp_affinity_list").content_string.strip() == "1"
    elif name == "vhost_net":
        modules = host.file("/proc/modules").content_string.splitlines()
        assert "vhost_net" in {line.split()[0] for line in modules}
        assert host.file("/dev/vhost-net").exists
    elif name == "halt_poll_ns":
        assert int(host.file("/sys/module/kvm/parameters/halt_poll_ns").content_string) == wanted
    elif name == "irqbalance":
        if entry["observed"] == "not installed":
            assert not host.file("/usr/sbin/irqbalance").exists
        else:
            assert host.run("systemctl is-active irqbalance").stdout.strip() != "active"
            assert host.run("systemctl is-enabled irqbalance").stdout.strip() == "disabled"
    elif name == "cpufreq_governor":
        for governor in host.run("cat /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor") \
                .stdout.split():
            assert governor == wanted
    elif name == "isolated_cores":
        assert f"isolcpus={wanted}" in host.file("/proc/cmdline").content_string.split()
    elif name == "max_cstate_latency_us":
        out = host.check_output("grep . /sys/devices/system/cpu/cpu*/cpuidle/state*/latency")
        for line in out.splitlines():
            path, _, latency = line.rpartition(":")
            disable = host.file(path.replace("/latency", "/disable")).content_string.strip()
            assert disable == ("1" if int(latency) > wanted else "0"), path
    else:
        raise AssertionError(f"no check for setting {name}")


@pytest.mark.guests
@on_a_guest
def test_check_mode_on_a_fresh_guest_announces_changes_and_writes_nothing(tuned_guest, guest):
    _, runs = tuned_guest
    done, out = runs["check_first"]
    assert done.returncode == 0, out[-6000:]
    assert recap(out)[GUEST]["changed"] > 0, out[-4000:]
    assert runs["after_check"]["record"] is False
    assert "[never]" not in runs["after_check"]["thp"]


@pytest.mark.guests
@on_a_guest
def test_first_run_changes_then_reruns_change_nothing(tuned_guest):
    _, runs = tuned_guest
    for name in ("first", "second", "check"):
        done, out = runs[name]
        assert done.returncode == 0, f"{name}:\n{out[-6000:]}"
        counts = recap(out)[GUEST]
        assert counts["failed"] == 0 and counts["unreachable"] == 0, f"{name}:\n{out[-4000:]}"
        if name == "first":
            assert counts["changed"] > 0, out[-4000:]
        else:
            assert counts["changed"] == 0, f"{name}:\n{out[-4000:]}"


@pytest.mark.guests
@on_a_guest
def test_record_shape(tuned_guest, guest):
    text = guest.file(RECORD).content_string
    record = json.loads(text)
    assert text == json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert record["format_version"] == 1
    assert set(record["settings"]) == {
        "cpufreq_governor", "irqbalance", "irq_affinity", "isolated_cores", "thp",
        "hugepages_2m", "vhost_net", "halt_poll_ns", "max_cstate_latency_us"}
    for name, entry in record["settings"].items():
        assert set(entry) == {"requested", "status", "observed", "reason"}, name
        assert entry["status"] in STATUSES, name
    assert not re.search(r"20\d\d-\d\d-\d\d", text)  # no timestamp inside


@pytest.mark.guests
@on_a_guest
def test_what_the_record_calls_applied_is_so_in_the_guest(tuned_guest, guest):
    record, can = record_of(guest), guest_can(guest)
    honoured = {n for n, e in record["settings"].items() if e["status"] in ("applied", "already")}
    print("guest honours:", sorted(honoured))
    assert {"thp", "hugepages_2m", "irq_affinity", "irqbalance"} <= honoured
    assert record["settings"]["thp"]["status"] == "applied"  # it was "always" at boot
    for name in sorted(honoured):
        check_in_guest(guest, name, record["settings"][name])
    assert honoured == {name for name, ok in can.items() if ok}


@pytest.mark.guests
@on_a_guest
def test_what_the_guest_cannot_honour_is_recorded_unavailable_with_a_reason(tuned_guest, guest):
    _, runs = tuned_guest
    record, can = record_of(guest), guest_can(guest)
    cannot = {name for name, ok in can.items() if not ok}
    print("guest cannot honour:", sorted(cannot))
    assert {"cpufreq_governor", "isolated_cores"} <= cannot  # no cpufreq, booted with -kernel
    out = flat(runs["first"][0].stdout)
    for name in sorted(cannot):
        entry = record["settings"][name]
        assert entry["status"] == "unavailable", (name, entry)
        assert entry["reason"].strip(), name
        assert f"{name}: unavailable" in out  # said in the play output too
    assert "no /etc/default/grub" in record["settings"]["isolated_cores"]["reason"]
    assert "cpufreq" in record["settings"]["cpufreq_governor"]["reason"]


@pytest.mark.guests
@on_a_guest
def test_a_running_irqbalance_is_stopped_and_disabled(tuned_guest, guest):
    inventory, _ = tuned_guest
    guest.run_expect([0], "printf '#!/bin/sh\\nexec sleep infinity\\n' > /usr/sbin/irqbalance"
                          " && chmod 755 /usr/sbin/irqbalance")
    guest.run_expect([0], "printf '[Service]\\nExecStart=/usr/sbin/irqbalance\\n"
                          "[Install]\\nWantedBy=multi-user.target\\n'"
                          " > /etc/systemd/system/irqbalance.service"
                          " && systemctl daemon-reload && systemctl enable --now irqbalance")
    assert guest.run("systemctl is-active irqbalance").stdout.strip() == "active"
    done, out = tune(inventory)
    assert done.returncode == 0, out[-6000:]
    assert recap(out)[GUEST]["changed"] > 0, out[-4000:]
    entry = record_of(guest)["settings"]["irqbalance"]
    assert (entry["status"], entry["observed"]) == ("applied", "stopped, disabled")
    check_in_guest(guest, "irqbalance", entry)


@pytest.mark.guests
@on_a_guest
def test_fail_on_unavailable_names_host_setting_and_reason(tuned_guest, guest):
    inventory, _ = tuned_guest
    done, out = tune(inventory, kvm_host_fail_on_unavailable=True)
    assert done.returncode != 0, out[-6000:]
    counts = recap(out)[GUEST]
    assert counts["failed"] == 1 and counts["changed"] == 0, out[-4000:]  # a rerun otherwise
    text = flat(out)
    assert f"kvm_host_fail_on_unavailable: {GUEST} cannot honour" in text, out[-4000:]
    assert "cpufreq_governor: no CPU frequency scaling on this host" in text
    assert "isolated_cores: no /etc/default/grub" in text
    # the record was still written before the play failed
    assert record_of(guest)["settings"]["cpufreq_governor"]["status"] == "unavailable"


# --- opt-in: the kernel command line of a guest that boots through grub ------------------------

GRUB_GUEST, GRUB_INDEX, GRUB_MGMT_IP = "kvmnl-g7", 7, "198.19.0.17"
# Only the isolation, and IRQ cores for a host whose inventory names no data NIC.
GRUB_ONLY = {**dict.fromkeys(NULLABLE), "kvm_host_irqbalance": "leave",
             "kvm_host_isolated_cores": "1", "kvm_host_irq_cores": "1"}


@pytest.fixture
def grub_guest(lab_topology, tmp_path):
    guests = tmp_path / "guests.json"
    guests.write_text(json.dumps({
        "guest_image_grub_disk": True,
        "guest_vm_guests": [lab_guest(GRUB_GUEST, GRUB_INDEX, vcpus=2, boot="disk")]}))
    if (GUESTS_DIR / GRUB_GUEST).exists():
        playbook("playbooks/guests.yml", "-e", f"@{guests}", "--tags", "guests_teardown",
                 check=True)
    try:
        playbook("playbooks/guests.yml", "-e", f"@{guests}", check=True, timeout=3600)
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {"kvm_host": {"hosts": {
            GRUB_GUEST: {"ansible_host": GRUB_MGMT_IP, "ansible_user": ADMIN,
                         "ansible_ssh_common_args": f"-F {SSH_CONFIG}",
                         "ansible_python_interpreter": "/usr/bin/python3"}}}}}}))
        yield inventory
    finally:
        playbook("playbooks/guests.yml", "-e", f"@{guests}", "--tags", "guests_teardown")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("KVMNETLAB_SLOW") != "1",
                    reason="slow: set KVMNETLAB_SLOW=1 (grub disk image, reboots a guest)")
def test_isolated_cores_through_grub_pending_then_rebooted(grub_guest, root_only):
    import testinfra

    def host():
        return testinfra.get_host(f"ssh://{GRUB_GUEST}", ssh_config=SSH_CONFIG, sudo=True)

    def run(*args, **over):
        done, out = tune(grub_guest, *args, **{**GRUB_ONLY, **over})
        assert done.returncode == 0, out[-6000:]
        return recap(out)[GRUB_GUEST], flat(out)

    args = "isolcpus=1 nohz_full=1 rcu_nocbs=1"
    boot_id = host().file("/proc/sys/kernel/random/boot_id").content_string
    # 1. the drop-in and grub.cfg get the isolation; no reboot allowed: pending
    counts, out = run()
    assert counts["changed"] > 0, out[-4000:]
    dropin = host().file("/etc/default/grub.d/kvmnetlab-kvm-host.cfg").content_string
    assert f'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {args}"' in dropin
    assert args in host().file("/boot/grub/grub.cfg").content_string
    entry = record_of(host())["settings"]["isolated_cores"]
    assert entry["status"] == "pending_reboot", entry
    assert entry["reason"] == ("pending reboot: the running kernel's /proc/cmdline lacks "
                               f"{args} (kvm_host_reboot_allowed is false)")
    assert host().file("/proc/sys/kernel/random/boot_id").content_string == boot_id
    irq = record_of(host())["settings"]["irq_affinity"]
    assert irq["status"] == "unavailable" and "no data NIC named" in irq["reason"], irq
    counts, out = run()
    assert counts["changed"] == 0, out[-4000:]
    # 2. reboot allowed: the host comes back isolated
    counts, out = run(kvm_host_reboot_allowed=True)
    assert counts["changed"] > 0, out[-4000:]
    after = host()
    assert after.file("/proc/sys/kernel/random/boot_id").content_string != boot_id
    assert set(args.split()) <= set(after.file("/proc/cmdline").content_string.split())
    assert after.file("/sys/devices/system/cpu/isolated").content_string.strip() == "1"
    entry = record_of(after)["settings"]["isolated_cores"]
    assert (entry["status"], entry["observed"]["isolated"]) == ("applied", "1"), entry
    check_in_guest(after, "isolated_cores", entry)
    # 3. nothing left to do: no second reboot, changed=0, in check mode too
    boot_id = after.file("/proc/sys/kernel/random/boot_id").content_string
    for extra in ((), ("--check",)):
        counts, out = run(*extra, kvm_host_reboot_allowed=True)
        assert counts["changed"] == 0, out[-4000:]
    assert host().file("/proc/sys/kernel/random/boot_id").content_string == boot_id


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-readme"]:
        text = README.read_text()
        README.write_text(text.replace(generated_section(text, BEGIN, END), readme_section()))
    else:
        raise SystemExit("usage: python -m tests.lab.test_kvm_host --write-readme")
