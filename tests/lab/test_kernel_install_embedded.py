"""The whole patched-kernel path in an embedded-lab guest that boots through grub (opt-in).

Opt-in (KVMNETLAB_SLOW=1), root only. The hypervisor (localhost, elvis_kernel_build_host)
builds Debian's linux-source-6.1 with the test's marker patch and
tests/kernel_patches/guest-systemd.config as Debian packages (make bindeb-pkg; cached in
.cache/kernel, about 10 min per kernel on 2 cores, two kernels). A guest, kvmnl-g3, boots
through grub from an MBR disk (guest_image_grub_disk, guest boot: disk). Then, with the
role as a user runs it:

0. a kernel built without virtio-blk (the same fragment with CONFIG_VIRTIO_BLK off,
   LOCALVERSION -kvmnetlab-noroot): installed and booted once, it finds no root, the
   initramfs panics and `panic=10` reboots the guest into grub's saved default, the
   pinned distribution kernel; the play fails with "came up as <previous kernel> (the
   new kernel did not boot; grub fell back)";
1. a wrong expected marker: the packages are shipped and installed, grub.cfg is
   regenerated, the running distribution kernel is pinned as grub's saved default, the
   new kernel is booted once (grub-reboot) and comes up, the marker check fails, the
   role reboots the guest and grub's saved default brings the previous kernel back; the
   play fails naming the marker, and the state file says `failed`;
2. the right marker: one-shot boot, `uname -r` and /proc/kvmnetlab_marker verified,
   state `verified`, then grub-set-default;
3. the same run again: changed=0 for the guest and the build host, no reboot (same
   boot id); then the same in check mode: changed=0;
4. a reboot from inside the guest comes back on the new kernel (it is the default now).

testinfra checks the guest after each step. The guest is torn down at the end.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.helpers import KERNEL_CACHE as CACHE
from tests.helpers import KERNEL_MARKER as MARKER
from tests.helpers import KERNEL_PATCHES as PATCHES
from tests.helpers import REPO, flat, lab_guest, playbook, recap, slow_kernel_marks

SSH_CONFIG = "/var/lib/kvmnetlab/local/ssh/config"
GUEST = "kvmnl-g3"
STATE = "/var/lib/kvmnetlab/elvis.json"

pytestmark = slow_kernel_marks("builds two kernels, boots them through grub")

PLAYBOOK = f"""\
- name: The lab
  ansible.builtin.import_playbook: {REPO}/playbooks/lab.yml

- name: A guest that boots through grub
  ansible.builtin.import_playbook: {REPO}/playbooks/guests.yml

- name: Patched kernel in the guest
  hosts: {GUEST}
  gather_facts: false
  roles:
    - role: elvis_kernel
"""


def guest_vars(ship: Path, marker: str, **over) -> dict:
    return {
        "guest_image_grub_disk": True,
        "guest_vm_guests": [lab_guest(GUEST, 3, boot="disk")],
        "elvis_kernel_mode": "patched",
        "elvis_kernel_build_host": "localhost",
        "elvis_kernel_source_type": "debian",
        "elvis_kernel_source_package": "linux-source-6.1",
        "elvis_kernel_base_config": "make",
        "elvis_kernel_base_config_targets": ["tinyconfig", "kvm_guest.config"],
        "elvis_kernel_config_fragment": str(PATCHES / "guest-systemd.config"),
        "elvis_kernel_patches": [{"path": str(PATCHES / "0001-proc-kvmnetlab-marker.patch")}],
        "elvis_kernel_make_target": "bindeb-pkg",
        "elvis_kernel_work_dir": str(CACHE),
        "elvis_kernel_ship_dir": str(ship),
        "elvis_kernel_marker_path": "/proc/kvmnetlab_marker",
        "elvis_kernel_marker_content": marker,
        "elvis_kernel_reboot_timeout": 600,
        "elvis_kernel_progress_interval": 120,
        **over,
    }


def noroot_fragment(tmp_path: Path) -> Path:
    """The same configuration without virtio-blk: the kernel boots, finds no root, panics."""
    text = (PATCHES / "guest-systemd.config").read_text()
    assert "CONFIG_VIRTIO_BLK=y\n" in text
    fragment = tmp_path / "guest-noroot.config"
    fragment.write_text(text.replace("CONFIG_VIRTIO_BLK=y\n", "# CONFIG_VIRTIO_BLK is not set\n"))
    return fragment


@pytest.fixture
def grub_guest(tmp_path):
    play = tmp_path / "kernel.yml"
    play.write_text(PLAYBOOK)
    teardown = tmp_path / "teardown.json"
    teardown.write_text(json.dumps(guest_vars(tmp_path / "ship", MARKER)))
    yield play
    playbook(f"{REPO}/playbooks/guests.yml", "-e", f"@{teardown}", "--tags", "guests_teardown")


def run(tmp_path: Path, play: Path, marker: str, *args: str, **over):
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(guest_vars(tmp_path / "ship", marker, **over)))
    started = time.monotonic()
    done = playbook(str(play), "-e", f"@{extra}", *args, timeout=7200)
    return done, done.stdout + done.stderr, time.monotonic() - started


def guest():
    testinfra = pytest.importorskip("testinfra")
    return testinfra.get_host(f"ssh://{GUEST}", ssh_config=SSH_CONFIG, sudo=True)


def saved_entry(host) -> str:
    env = host.check_output("grub-editenv list")
    found = re.search(r"^saved_entry=(.*)$", env, re.M)
    return found.group(1) if found else ""


def state(host) -> dict:
    return json.loads(host.file(STATE).content_string)


def test_install_boot_once_verify_then_default(tmp_path, grub_guest):
    # 0. a kernel that cannot mount its root: it panics, panic=10 reboots, grub's saved
    #    default (the pinned running kernel) comes back; the role says so
    console = Path("/var/lib/kvmnetlab/local/guests") / GUEST / "console.log"
    done, out, zeroth_s = run(tmp_path, grub_guest, MARKER,
                              elvis_kernel_config_fragment=str(noroot_fragment(tmp_path)),
                              elvis_kernel_localversion="-kvmnetlab-noroot",
                              elvis_kernel_panic_timeout=10)
    assert done.returncode != 0, out[-6000:]
    host = guest()
    previous = host.check_output("uname -r")
    assert previous.endswith("-cloud-amd64"), previous
    assert re.search(r"the one-shot boot of 6\.1\.\d+-kvmnetlab-noroot came up as "
                     + re.escape(previous) + r" \(the new kernel did not boot; grub fell back\)",
                     flat(out)), out[-6000:]
    log = console.read_text(errors="replace")
    assert re.search(r"Linux version 6\.1\.\d+-kvmnetlab-noroot", log)
    assert "Rebooting automatically due to panic= boot argument" in log, log[-3000:]
    record = state(host)
    assert record["result"] == "failed" and record["running"] == previous
    assert record["kernel_release"].endswith("-kvmnetlab-noroot")
    assert f"gnulinux-{previous}-advanced" in saved_entry(host)

    # 1. wrong marker: boots once, fails the check, returns to the previous kernel
    done, out, first_s = run(tmp_path, grub_guest, "kvmnetlab-elvis-marker 2")
    assert done.returncode != 0, out[-6000:]
    assert ("booted, but /proc/kvmnetlab_marker holds kvmnetlab-elvis-marker 1 instead of "
            "kvmnetlab-elvis-marker 2") in flat(out), out[-6000:]
    host = guest()
    assert host.check_output("uname -r") == previous
    record = state(host)
    assert record["result"] == "failed" and record["previous"] == previous
    release = record["kernel_release"]
    assert release.endswith("-kvmnetlab") and record["running"] == release
    assert record["marker"]["found"] == MARKER
    assert f"gnulinux-{previous}-advanced" in saved_entry(host)
    assert host.package(f"linux-image-{release}").is_installed
    assert host.file(f"/boot/vmlinuz-{release}").exists
    assert not host.file("/proc/kvmnetlab_marker").exists

    # 2. right marker: boots once, verified, made the default
    done, out, second_s = run(tmp_path, grub_guest, MARKER)
    assert done.returncode == 0, out[-6000:]
    host = guest()
    assert host.check_output("uname -r") == release
    assert host.file("/proc/kvmnetlab_marker").content_string.strip() == MARKER
    record = state(host)
    assert record["result"] == "verified" and record["previous"] == previous
    assert f"gnulinux-{release}-advanced" in saved_entry(host)
    assert record["grub_entry"] == saved_entry(host)
    boot_id = host.file("/proc/sys/kernel/random/boot_id").content_string

    # 3. nothing changed: changed=0, no rebuild, no reboot
    done, out, third_s = run(tmp_path, grub_guest, MARKER)
    assert done.returncode == 0, out[-6000:]
    counts = recap(out)
    assert counts[GUEST]["changed"] == 0, out[-4000:]
    assert counts["localhost"]["changed"] == 0, out[-4000:]
    assert "Start in the background" not in out
    assert guest().file("/proc/sys/kernel/random/boot_id").content_string == boot_id
    done, out, check_s = run(tmp_path, grub_guest, MARKER, "--check")
    assert done.returncode == 0, out[-6000:]
    counts = recap(out)
    assert counts[GUEST]["changed"] == 0 and counts["localhost"]["changed"] == 0, out[-4000:]

    # 4. the new kernel is the default: a plain reboot comes back on it
    host.run("systemctl reboot")
    deadline = time.monotonic() + 600
    while True:
        time.sleep(10)
        try:
            host = guest()
            new_id = host.file("/proc/sys/kernel/random/boot_id").content_string
            if new_id != boot_id:
                break
        except Exception:  # the guest is rebooting: SSH fails until it is back
            pass
        assert time.monotonic() < deadline, "the guest did not come back within 600 s"
    assert host.check_output("uname -r") == release
    assert host.file("/proc/kvmnetlab_marker").content_string.strip() == MARKER
    print(f"\nkernel {release}: no-root run {zeroth_s:.0f} s, failed-marker run "
          f"{first_s:.0f} s, verified run {second_s:.0f} s, rerun {third_s:.0f} s, "
          f"check mode {check_s:.0f} s")
