"""The guest image's customisation (guest_image's tasks/customise.yml, its files and templates)
makes the same tree as the shell script it replaced (tests/fixtures/jinja_baseline/
customise.sh and customise-grub.sh, rendered from templates/customise.sh.j2, see CAPTURE.md).

Fast: both run on the host against a small stand-in of a debootstrapped tree in a temporary
folder; nothing boots and nothing is mounted. The one command that runs inside the tree,
grub-mkimage, goes through a stub chroot that records its arguments. Booting the result is
tests/lab/test_guests.py's (a lab test).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, playbook

BASELINE = REPO / "tests" / "fixtures" / "jinja_baseline"

# Files whose content changed on purpose since the script (kind and mode kept): root has no
# SSH login, and the seed makes the admin user with sudo (guest_image_customise_version 4).
CHANGED_SINCE = {
    "etc/ssh/sshd_config.d/kvmnetlab.conf": ("file", "0o644"),
    "usr/local/sbin/kvmnetlab-seed": ("file", "0o755"),
    "etc/systemd/system/kvmnetlab-seed.service": ("file", "0o644"),
}

STUB_CHROOT = """#!/bin/sh
# Stands in for chroot: records the command and makes the core image it would write.
tree="$1"; shift
echo "$*" > "$tree/chroot-command"
: > "$tree/boot/grub/i386-pc/core.img"
"""

PLAY = """\
- name: Customise a tree with the guest_image role's tasks
  hosts: localhost
  gather_facts: false
  environment:
    PATH: "{{ stub_dir }}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  tasks:
    - name: Customise
      ansible.builtin.include_role:
        name: guest_image
        tasks_from: customise
"""


def debootstrapped(tree: Path) -> Path:
    """What the customisation meets in a fresh bookworm minbase tree, in small."""
    files = {
        "usr/bin/python3": ("#!/bin/true\n", 0o755),
        "etc/fstab": ("# UNCONFIGURED FSTAB FOR BASE SYSTEM\n", 0o644),
        "etc/hostname": ("builder\n", 0o644),
        "etc/hosts": ("127.0.0.1 localhost builder\n", 0o644),
        "etc/machine-id": ("0123456789abcdef0123456789abcdef\n", 0o444),
        "var/lib/dbus/machine-id": ("0123456789abcdef0123456789abcdef\n", 0o444),
        "etc/ssh/ssh_host_ed25519_key": ("private\n", 0o600),
        "etc/ssh/ssh_host_ed25519_key.pub": ("public\n", 0o644),
        "etc/ssh/ssh_host_rsa_key": ("private\n", 0o600),
        "etc/ssh/sshd_config": ("Include /etc/ssh/sshd_config.d/*.conf\n", 0o644),
        "etc/default/keyboard": ("XKBLAYOUT=us\n", 0o644),
        "usr/local/sbin/.keep": ("", 0o644),
        "usr/lib/grub/i386-pc/boot.img": ("boot\n", 0o644),
        "usr/lib/grub/i386-pc/normal.mod": ("mod\n", 0o644),
        "var/cache/apt/archives/python3_3.11.deb": ("deb\n", 0o644),
        "var/cache/apt/archives/lock": ("", 0o640),
        "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages":
            ("Package: x\n", 0o644),
        "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_Release": ("R\n", 0o644),
        "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease": ("R\n", 0o644),
        "var/lib/apt/lists/lock": ("", 0o640),
        "debootstrap/debootstrap.log": ("log\n", 0o644),
        "lib/systemd/system/systemd-networkd.service": ("[Unit]\n", 0o644),
    }
    for rel, (text, mode) in files.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
    wants = tree / "etc/systemd/system/timers.target.wants"
    wants.mkdir(parents=True)
    for timer in ("apt-daily.timer", "fstrim.timer", "e2scrub_all.timer", "man-db.timer"):
        (wants / timer).symlink_to(f"/lib/systemd/system/{timer}")
    return tree


def snapshot(tree: Path) -> dict[str, tuple]:
    """Every path of the tree: its kind, mode and content or link target (no timestamps)."""
    found = {}
    for path in sorted(tree.rglob("*")):
        info = path.lstat()
        rel = str(path.relative_to(tree))
        if stat.S_ISLNK(info.st_mode):
            found[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            found[rel] = ("dir", oct(info.st_mode & 0o7777))
        else:
            found[rel] = ("file", oct(info.st_mode & 0o7777), path.read_bytes())
    return found


@pytest.fixture
def stub_dir(tmp_path) -> Path:
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "chroot").write_text(STUB_CHROOT)
    (stub / "chroot").chmod(0o755)
    return stub


@pytest.mark.parametrize("grub", [False, True], ids=["direct-boot", "grub-disk"])
def test_the_tasks_make_the_tree_the_script_made(tmp_path, stub_dir, grub):
    script = BASELINE / ("customise-grub.sh" if grub else "customise.sh")
    old = debootstrapped(tmp_path / "old")
    env = {**os.environ, "PATH": f"{stub_dir}:{os.environ['PATH']}"}
    subprocess.run(["sh", "-eu", str(script), str(old)], check=True, env=env)

    new = debootstrapped(tmp_path / "new")
    play = tmp_path / "customise.yml"
    play.write_text(PLAY)
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"guest_image_tree": str(new), "guest_image_grub_disk": grub,
                                 "stub_dir": str(stub_dir),
                                 "ansible_python_interpreter": sys.executable}))
    playbook("-i", "localhost,", "-c", "local", str(play), "-e", f"@{extra}", check=True)

    before, after = snapshot(old), snapshot(new)
    assert sorted(before) == sorted(after)
    for rel in before:
        if rel not in CHANGED_SINCE:
            assert after[rel] == before[rel], rel
    # changed since the script, on purpose: guests are reached as an admin user with sudo
    for rel, (kind, mode) in CHANGED_SINCE.items():
        assert after[rel][:2] == before[rel][:2] == (kind, mode), rel
    sshd = after["etc/ssh/sshd_config.d/kvmnetlab.conf"][2].decode().splitlines()
    assert "PermitRootLogin no" in sshd
    assert [line for line in sshd if not line.startswith("PermitRootLogin")] == [
        line for line in before["etc/ssh/sshd_config.d/kvmnetlab.conf"][2].decode().splitlines()
        if not line.startswith("PermitRootLogin")]
    seed = after["usr/local/sbin/kvmnetlab-seed"][2].decode()
    subprocess.run(["sh", "-n"], input=seed, text=True, check=True)
    for line in ('admin="$(cat "$mnt/admin_user")"',
                 'useradd --create-home --user-group --shell /bin/bash "$admin"',
                 'install -m 0600 -o "$admin" -g "$admin" "$mnt/authorized_keys" '
                 '"$home/.ssh/authorized_keys"',
                 "printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\\n' \"$admin\" > \"$rules\"",
                 'chmod 0440 "$rules"', 'visudo -cqf "$rules"',
                 'mv -f "$rules" /etc/sudoers.d/kvmnetlab-admin',
                 "rm -f /root/.ssh/authorized_keys"):
        assert line in [each.strip() for each in seed.splitlines()], line
    assert seed.count("/root/.ssh") == 1  # only to remove root's key
    # what the image must have, whichever way it was made
    assert after["etc/systemd/network/10-kvmnetlab-data0.link"][2] == (
        b"[Match]\nPath=pci-0000:00:10.0\n\n[Link]\nName=data0\n")
    assert after["etc/systemd/system/sysinit.target.wants/kvmnetlab-seed.service"] == (
        "link", "/etc/systemd/system/kvmnetlab-seed.service")
    assert b"mount -t ext4 -o ro /dev/vdb " in after["usr/local/sbin/kvmnetlab-seed"][2]
    assert ("chroot-command" in after) is grub


def test_a_tree_without_python_is_refused(tmp_path, stub_dir):
    tree = tmp_path / "tree"
    tree.mkdir()
    play = tmp_path / "customise.yml"
    play.write_text(PLAY)
    done = playbook("-i", "localhost,", "-c", "local", str(play), "-e",
                    json.dumps({"guest_image_tree": str(tree), "guest_image_grub_disk": False,
                                "stub_dir": str(stub_dir),
                                "ansible_python_interpreter": sys.executable}))
    assert done.returncode != 0
    assert "has no executable usr/bin/python3" in done.stdout
