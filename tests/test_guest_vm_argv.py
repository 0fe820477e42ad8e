"""The QEMU command line guest_vm renders, for a guest booted directly and one booted by grub.

Fast: the role's own template (roles/guest_vm/templates/qemu-argv.yml.j2) is rendered by
ansible-playbook with the role's defaults and internal vars; no QEMU runs. The grub path is
booted for real by the opt-in test tests/test_kernel_install_embedded.py.
"""

from __future__ import annotations

import hashlib
import json
import sys

from tests.conftest import REPO, lab_guest, playbook

PLAY = """\
- name: Render the guest_vm command line
  hosts: localhost
  gather_facts: false
  vars_files:
    - {repo}/roles/guest_vm/defaults/main.yml
    - {repo}/roles/guest_vm/vars/main.yml
  tasks:
    - name: Render
      ansible.builtin.copy:
        content: >-
          {{{{ lookup('ansible.builtin.template',
                      '{repo}/roles/guest_vm/templates/qemu-argv.yml.j2') | from_yaml | to_json }}}}
        dest: "{{{{ out }}}}"
        mode: "0644"
"""

GUEST = lab_guest("kvmnl-g7", 7)


def render(tmp_path, guest: dict) -> list[str]:
    play = tmp_path / "render.yml"
    play.write_text(PLAY.format(repo=REPO))
    out = tmp_path / "argv.json"
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({
        "guest_vm_guest": guest, "guest_vm_guests": [guest], "out": str(out),
        "guest_vm_accel": "tcg",
        "ansible_python_interpreter": sys.executable,
        "guest_vm_state_dir": "/srv/lab", "guest_vm_seed_sha1": "ab" * 20,
        "guest_vm_image": "/srv/img/rootfs.ext4", "guest_vm_kernel": "/srv/img/vmlinuz",
        "guest_vm_initrd": "/srv/img/initrd.img", "guest_vm_disk_image": "/srv/img/disk.img"}))
    playbook("-i", "localhost,", "-c", "local", str(play), "-e", f"@{extra}", check=True)
    return json.loads(out.read_text())


def after(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_a_direct_guest_gets_the_image_kernel_and_its_seed_on_the_command_line(tmp_path):
    argv = render(tmp_path, GUEST)
    assert after(argv, "-kernel") == ["/srv/img/vmlinuz"]
    assert after(argv, "-initrd") == ["/srv/img/initrd.img"]
    (append,) = after(argv, "-append")
    assert append.startswith("root=/dev/vda rw console=ttyS0")
    assert "kvmnetlab.seed=abababababab" in append
    overlay = f"disk-{hashlib.sha1(b'/srv/img/rootfs.ext4').hexdigest()[:12]}.qcow2"
    assert f"file=/srv/lab/guests/kvmnl-g7/{overlay},format=qcow2,if=none,id=root" \
        in after(argv, "-drive")
    assert "virtio-blk-pci,drive=root,addr=0x4" in after(argv, "-device")
    assert "-fw_cfg" not in argv


def test_a_disk_guest_boots_its_own_disk_through_the_firmware(tmp_path):
    argv = render(tmp_path, {**GUEST, "boot": "disk"})
    for flag in ("-kernel", "-initrd", "-append"):
        assert flag not in argv
    overlay = f"disk-{hashlib.sha1(b'/srv/img/disk.img').hexdigest()[:12]}.qcow2"
    assert f"file=/srv/lab/guests/kvmnl-g7/{overlay},format=qcow2,if=none,id=root" \
        in after(argv, "-drive")
    assert "virtio-blk-pci,drive=root,addr=0x4,bootindex=0" in after(argv, "-device")
    assert after(argv, "-fw_cfg") == ["name=opt/kvmnetlab/seed,string=abababababab"]
    assert "-no-reboot" not in argv  # the guest must be able to reboot into another kernel
