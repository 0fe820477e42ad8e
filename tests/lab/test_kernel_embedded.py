"""End to end on this machine: build a patched kernel with the role, boot it under QEMU TCG.

Opt-in (KVMNETLAB_SLOW=1). The role installs Debian's linux-source-6.1, applies the
test's marker patch (tests/kernel_patches/0001-proc-kvmnetlab-marker.patch), merges
tests/kernel_patches/embedded.config onto `make tinyconfig` + `make kvm_guest.config`,
verifies every option and builds a bzImage (about 3 min on 2 idle cores; cached in
.cache/kernel afterwards, keyed by all inputs). The test then boots that image by
direct kernel boot in a network namespace of its own (kvel-*), with an initramfs made
from the host's static busybox whose init prints `uname -r`, the marker and the
network interfaces to the serial console, and checks the console log.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import KERNEL_CACHE as CACHE
from tests.helpers import KERNEL_MARKER as MARKER
from tests.helpers import KERNEL_PATCHES as PATCHES
from tests.helpers import local_play, slow_kernel_marks

pytestmark = slow_kernel_marks("builds a kernel")

PLAYBOOK = """\
- name: Build the embedded test kernel
  hosts: localhost
  gather_facts: false
  pre_tasks:
    - name: Install what the test boots the kernel with
      ansible.builtin.apt:
        name: [busybox-static, qemu-system-x86]
        state: present
  roles:
    - role: elvis_kernel
  post_tasks:
    - name: Save the build record
      ansible.builtin.copy:
        content: "{{ elvis_kernel_build | to_json }}"
        dest: "{{ facts_out }}"
        mode: "0644"
      changed_when: false
"""

INIT = """\
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "KVMNL uname -r: $(uname -r)"
echo "KVMNL marker: $(cat /proc/kvmnetlab_marker)"
echo "KVMNL interfaces: $(ls /sys/class/net | tr '\\n' ' ')"
reboot -f
"""


def run_role(tmp_path: Path, variables: dict) -> tuple[int, str, dict | None, float]:
    started = time.monotonic()
    done, data = local_play(tmp_path, PLAYBOOK, variables, name="build", timeout=7200)
    return done.returncode, done.stdout + done.stderr, data, time.monotonic() - started


def role_vars(work: Path, fragment: Path) -> dict:
    return {
        "elvis_kernel_mode": "patched",
        "elvis_kernel_install": False,
        "elvis_kernel_source_type": "debian",
        "elvis_kernel_source_package": "linux-source-6.1",
        "elvis_kernel_base_config": "make",
        "elvis_kernel_base_config_targets": ["tinyconfig", "kvm_guest.config"],
        "elvis_kernel_config_fragment": str(fragment),
        "elvis_kernel_patches": [{"path": str(PATCHES / "0001-proc-kvmnetlab-marker.patch")}],
        "elvis_kernel_make_target": "bzImage",
        "elvis_kernel_work_dir": str(work),
        "elvis_kernel_progress_interval": 60,
    }


def newc_archive(files: dict[str, tuple[int, bytes]], nodes: dict[str, tuple[int, int, int]]):
    """A gzip'd cpio (newc) archive: files {path: (mode, data)}, nodes {path: (mode, maj, min)}."""
    out = bytearray()
    ino = 1

    def entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)):
        nonlocal ino
        name_b = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + name_b)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))
        ino += 1

    dirs = sorted({str(Path(p).parent) for p in [*files, *nodes]} - {"."})
    expanded = set()
    for d in dirs:
        parts = Path(d).parts
        for i in range(1, len(parts) + 1):
            expanded.add(str(Path(*parts[:i])))
    for d in sorted(expanded):
        entry(d, stat.S_IFDIR | 0o755)
    for path, (mode, data) in files.items():
        entry(path, mode, data)
    for path, (mode, major, minor) in nodes.items():
        entry(path, mode, rdev=(major, minor))
    entry("TRAILER!!!", 0)
    return gzip.compress(bytes(out))


def busybox_initramfs(path: Path) -> None:
    busybox = Path("/bin/busybox")
    assert busybox.exists(), "busybox-static was not installed"
    applets = ["sh", "mount", "echo", "uname", "cat", "ls", "tr", "reboot"]
    files = {"bin/busybox": (stat.S_IFREG | 0o755, busybox.read_bytes()),
             "init": (stat.S_IFREG | 0o755, INIT.encode())}
    for applet in applets:
        files[f"bin/{applet}"] = (stat.S_IFLNK | 0o777, b"busybox")
    for d in ("proc", "sys"):
        files[f"{d}/.keep"] = (stat.S_IFREG | 0o644, b"")
    nodes = {"dev/console": (stat.S_IFCHR | 0o600, 5, 1)}
    path.write_bytes(newc_archive(files, nodes))


@pytest.fixture
def netns():
    name = f"kvel-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_patched_kernel_builds_and_boots_with_its_marker(tmp_path, netns):
    rc, out, build, build_s = run_role(tmp_path, role_vars(CACHE, PATCHES / "embedded.config"))
    assert rc == 0, out[-6000:]
    release = build["kernel_release"]
    assert release.endswith("-kvmnetlab")
    image = Path(build["image"])
    assert image.stat().st_size > 500_000

    rc, out, again, cached_s = run_role(tmp_path, role_vars(CACHE, PATCHES / "embedded.config"))
    assert rc == 0, out[-6000:]
    assert re.search(r"localhost\s+:\s+ok=\d+\s+changed=0\s", out), out[-3000:]
    assert again["key"] == build["key"]

    initrd = tmp_path / "initrd.gz"
    busybox_initramfs(initrd)
    console = tmp_path / "console.log"
    qemu = ["ip", "netns", "exec", netns, "qemu-system-x86_64", "-accel", "tcg", "-m", "256",
            "-nodefaults", "-display", "none", "-no-reboot",
            "-serial", f"file:{console}",
            "-kernel", str(image), "-initrd", str(initrd),
            "-append", "console=ttyS0 panic=-1",
            "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]
    started = time.monotonic()
    proc = subprocess.run(qemu, capture_output=True, text=True, timeout=180)
    boot_s = time.monotonic() - started
    log = console.read_text(errors="replace") if console.exists() else ""
    assert proc.returncode == 0, proc.stderr + log[-3000:]
    assert f"KVMNL uname -r: {release}" in log, log[-3000:]
    assert f"KVMNL marker: {MARKER}" in log, log[-3000:]
    assert re.search(r"KVMNL interfaces: .*\beth0\b", log), log[-3000:]
    print(f"\nkernel {release}: role run {build_s:.1f} s (make {build['build_seconds']} s "
          f"when it compiled), cached rerun {cached_s:.1f} s, "
          f"TCG boot to init and reboot {boot_s:.1f} s")


def test_unknown_option_fails_against_the_real_kconfig_tree(tmp_path):
    fragment = tmp_path / "unknown.config"
    fragment.write_text((PATCHES / "embedded.config").read_text()
                        + "CONFIG_KVMNETLAB_NO_SUCH_OPTION=y\n")
    work = tmp_path / "work"
    try:
        rc, out, _, elapsed = run_role(tmp_path, role_vars(work, fragment))
        assert rc != 0
        assert (f"{fragment}:24: CONFIG_KVMNETLAB_NO_SUCH_OPTION is unknown to Kconfig"
                in out), out[-4000:]
        assert "CONFIG_VIRTIO_NET" not in out.split("unknown to Kconfig")[0][-300:]
        assert not list(work.glob("*/build.json"))
        print(f"\nunknown option reported after {elapsed:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
