"""The QEMU command line guest_vm renders, for a guest booted directly and one booted by grub;
how guest_vm's SSH reaches the guests (its filter plugin), as plain Python.

Fast: the role's start-phase expression (the filter kvmnetlab.lab.qemu_argv on guest_vm_qemu)
is rendered by ansible-playbook with the role's defaults and internal vars and the image's
layout; no QEMU runs. tests/roles/test_jinja_baseline.py checks the filter as Python, against what
the template it replaced rendered. The grub path is
booted for real by the opt-in test tests/lab/test_kernel_install_embedded.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.helpers import REPO, lab_guest, playbook, recap

PLAY = """\
- name: Render the guest_vm command line
  hosts: localhost
  gather_facts: false
  vars_files:
    - {repo}/roles/guest_vm/defaults/main.yml
    - {repo}/roles/guest_vm/vars/main.yml
    - {repo}/roles/guest_image/vars/main.yml
  tasks:
    - name: Render
      ansible.builtin.copy:
        content: "{{{{ guest_vm_guest | kvmnetlab.lab.qemu_argv(guest_vm_qemu) | to_json }}}}"
        dest: "{{{{ out }}}}"
        mode: "0644"
"""

GUEST = lab_guest("kvmnl-g7", 7)


def render(tmp_path, guest: dict, **more) -> list[str]:
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
        "guest_vm_initrd": "/srv/img/initrd.img", "guest_vm_disk_image": "/srv/img/disk.img",
        **more}))
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


# --- how SSH reaches the guests (filter plugin kvmnetlab.lab.guest_*) ---------------------------
FILTERS = REPO / "collections/ansible_collections/kvmnetlab/lab/plugins/filter/guest_vm.py"
_spec = importlib.util.spec_from_file_location("guest_vm_filters", FILTERS)
gvf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gvf)

EMBEDDED_ARGS = (
    "-o 'ProxyCommand=ip netns exec kvmnl-hv socat - TCP:%h:%p,connect-timeout=15' "
    "-o UserKnownHostsFile=/var/lib/kvmnetlab/local/ssh/known_hosts "
    "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o ConnectTimeout=20 "
    "-o ServerAliveInterval=5 -o ServerAliveCountMax=3"
)
JUMP = {"host": "192.0.2.10", "user": "labadmin", "port": ""}


def controller_args(access, **kw) -> str:
    known = kw.pop("known_hosts", "/var/lib/kvmnetlab/local/ssh/known_hosts")
    proxy = gvf.guest_proxy(access, side="controller", **kw)
    return gvf.ssh_option_args(gvf.guest_ssh_options(proxy, known))


def test_the_embedded_lab_keeps_its_netns_proxy_exactly():
    assert controller_args("netns", netns="kvmnl-hv", on_controller=True) == EMBEDDED_ARGS
    # the hypervisor itself (the guest wait) also enters the namespace
    assert gvf.guest_proxy("netns", side="hypervisor", netns="kvmnl-hv") == {
        "ProxyCommand": "ip netns exec kvmnl-hv socat - TCP:%h:%p,connect-timeout=15"}


def test_a_real_lab_jumps_through_the_hypervisor_and_never_enters_a_namespace():
    args = controller_args("jump", jump=JUMP, on_controller=False,
                           known_hosts="/var/lib/kvmnetlab/lab/ssh/kvm-host/known_hosts")
    assert args.startswith("-o ProxyJump=labadmin@192.0.2.10 "
                           "-o UserKnownHostsFile=/var/lib/kvmnetlab/lab/ssh/kvm-host/known_hosts ")
    assert "netns" not in args and "ProxyCommand" not in args
    # the hypervisor reaches its guests directly (it has an address on the management bridge)
    assert gvf.guest_proxy("jump", side="hypervisor") == {}


def test_proxy_jump_carries_the_user_and_port_of_the_hypervisor_inventory_entry():
    def jump(**over):
        return gvf.guest_proxy("jump", jump={**JUMP, **over}, on_controller=False)["ProxyJump"]

    assert jump() == "labadmin@192.0.2.10"
    assert jump(port=2222) == "labadmin@192.0.2.10:2222"
    assert jump(port="22") == "labadmin@192.0.2.10"
    assert jump(user="") == "192.0.2.10"
    assert jump(host="2001:db8::10", port=2222) == "labadmin@[2001:db8::10]:2222"


def test_known_hosts_names_a_host_as_ssh_looks_its_key_up():
    assert gvf.known_hosts_name("192.0.2.10") == "192.0.2.10"
    assert gvf.known_hosts_name("192.0.2.10", "22") == "192.0.2.10"
    assert gvf.known_hosts_name("192.0.2.10", 2222) == "[192.0.2.10]:2222"
    assert gvf.known_hosts_name("[2001:db8::10]", "2222") == "[2001:db8::10]:2222"
    with pytest.raises(Exception, match="needs a host"):
        gvf.known_hosts_name("")


def test_jump_from_the_controller_itself_is_direct():
    assert gvf.guest_proxy("jump", jump=JUMP, on_controller=True) == {}


def test_a_proxy_command_override_wins_on_the_controller_only():
    over = "ssh -W %h:%p admin@bastion"
    assert gvf.guest_proxy("jump", jump=JUMP, on_controller=False, proxy_command=over) == {
        "ProxyCommand": over}
    assert gvf.guest_proxy("jump", side="hypervisor", proxy_command=over) == {}


@pytest.mark.parametrize(("access", "kw", "message"), [
    ("netns", {"netns": ""}, "guest_vm_netns is empty"),
    ("netns", {"netns": "kvmnl-hv", "on_controller": False},
     "the hypervisor is not the controller"),
    ("jump", {"netns": "kvmnl-hv"}, "guest_vm_netns is 'kvmnl-hv'"),
    ("jump", {"jump": {"host": ""}, "on_controller": False}, "hypervisor's address"),
    ("socat", {}, "guest_vm_mgmt_access must be one of netns, jump"),
])
def test_impossible_access_settings_are_refused(access, kw, message):
    with pytest.raises(Exception, match=re.escape(message)):
        gvf.guest_proxy(access, **kw)


def test_guest_hostvars_record_the_hypervisor_and_the_netdev_of_each_guest_that_is_up():
    g1, g2 = lab_guest("kvmnl-g1", 1), lab_guest("kvmnl-g2", 2, netdev={"vhost": True, "queues": 4})
    status = {"kvmnl-g1": {"ok": False, "reason": "no SSH"}, "kvmnl-g2": {"ok": True, "pid": 42}}
    (entry,) = gvf.guest_hostvars([g1, g2], status, hypervisor="kvm-host",
                                  identity_file="/c/ssh/kvm-host/id_ed25519",
                                  ssh_common_args="-F /c/ssh/kvm-host/config", user="kvmnl")
    assert entry["name"] == "kvmnl-g2"
    assert entry["vars"] == {
        "ansible_host": "198.19.0.12", "ansible_user": "kvmnl",
        "ansible_ssh_private_key_file": "/c/ssh/kvm-host/id_ed25519",
        "ansible_ssh_common_args": "-F /c/ssh/kvm-host/config",
        "ansible_python_interpreter": "/usr/bin/python3",
        "kvmnetlab_guest_data_ip": "198.18.1.12", "kvmnetlab_guest_qemu_pid": 42,
        "kvmnetlab_guest_hypervisor": "kvm-host",
        "kvmnetlab_guest_netdev": {"vhost": True, "queues": 4}}


@pytest.mark.parametrize("user", ["root", ""])
def test_guests_are_never_reached_as_root(user):
    with pytest.raises(Exception, match="admin user must be a user other than root"):
        gvf.guest_hostvars([lab_guest("kvmnl-g1", 1)], {"kvmnl-g1": {"ok": True}},
                           hypervisor="h", identity_file="/k", ssh_common_args="", user=user)


@pytest.mark.parametrize(("status", "kw", "expected"), [
    ({"g1": {"ok": True}, "g2": {"ok": False, "reason": "x"}}, {}, ""),
    ({}, {"configured": 0}, "no guests are configured on kvm-host (guest_vm_guests is empty)"),
    ({"g1": {"ok": False, "reason": "check mode: not started"}},
     {"image_ready": False, "check_mode": True},
     "check mode: the guest image on kvm-host is not built yet (/img/rootfs.ext4), "
     "so no guest was started"),
    ({"g2": {"ok": False, "reason": "no SSH login"}, "g1": {"ok": False, "reason": "QEMU died"}},
     {}, "every guest on kvm-host is down (g1: QEMU died; g2: no SSH login)"),
])
def test_the_unavailable_reason_says_why_no_guest_is_usable(status, kw, expected):
    args = {"configured": 2, "image_ready": True, "check_mode": False, "host": "kvm-host",
            "image": "/img/rootfs.ext4", **kw}
    assert gvf.guest_unavailable_reason(status, **args) == expected


# --- a hypervisor that is another machine: the controller gets its own copies -------------------
SSH_FILES_PLAY = """\
- name: guest_vm's SSH files for a hypervisor that is not the controller
  hosts: kvm-host
  gather_facts: false
  tasks:
    - name: How SSH reaches the guests
      ansible.builtin.include_role:
        name: guest_vm
        tasks_from: access
    - name: State folders (the role's layout phase makes them)
      ansible.builtin.file:
        path: "{{ item }}"
        state: directory
        mode: "0700"
      loop: ["{{ guest_vm_state_dir }}/ssh", "{{ guest_vm_state_dir }}/guests"]
    - name: Keys
      ansible.builtin.include_role:
        name: guest_vm
        tasks_from: keys
    - name: known_hosts, ssh config and the controller's copies
      ansible.builtin.include_role:
        name: guest_vm
        tasks_from: network
"""


def ssh_g(config, host) -> dict[str, str]:
    """What ``ssh -G -F config host`` resolves (the effective client options, nothing sent)."""
    done = subprocess.run(["ssh", "-G", "-F", str(config), host], capture_output=True, text=True,
                          check=True)
    return dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)


def test_the_controller_gets_the_lab_key_and_known_hosts_of_another_hypervisor(tmp_path):
    """The hypervisor runs locally here, but is treated as another machine (ProxyJump)."""
    state, ctl = tmp_path / "hv-state", tmp_path / "controller" / "ssh" / "kvm-host"
    # the hypervisor's own SSH host key, which the controller pins for the jump
    host_keys = tmp_path / "hv-etc-ssh"
    host_keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kvm-host",
                    "-f", str(host_keys / "ssh_host_ed25519_key")], check=True)
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"kvm-host": {
        "ansible_host": "192.0.2.10", "ansible_port": 2222, "ansible_user": "labadmin",
        "ansible_ssh_private_key_file": "/home/me/.ssh/lab_ed25519",
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "guest_vm_state_dir": str(state), "guest_vm_controller_ssh_dir": str(ctl),
        "guest_vm_guests": [GUEST]}}}}))
    play = tmp_path / "ssh-files.yml"
    play.write_text(SSH_FILES_PLAY)
    # the local connection would make it the controller: say it is another machine
    args = ("-i", str(inventory), str(play), "-e", json.dumps(
        {"guest_vm_on_controller": False, "guest_vm_hypervisor_host_keys_dir": str(host_keys)}))
    done = playbook(*args, check=True)
    assert "ProxyJump'': ''labadmin@192.0.2.10:2222" in done.stdout, done.stdout[-3000:]

    key = ctl / "id_ed25519"
    assert key.read_bytes() == (state / "ssh" / "id_ed25519").read_bytes()
    assert key.stat().st_mode & 0o777 == 0o600
    assert ctl.stat().st_mode & 0o777 == 0o700
    host_key = (state / "guests" / "kvmnl-g7" / "seed" / "ssh_host_ed25519_key.pub").read_text()
    known = (ctl / "known_hosts").read_text()
    assert f"198.19.0.17 {' '.join(host_key.split()[:2])}" in known.splitlines()
    # the hypervisor's key, pinned under the name the jump looks it up by ([host]:port)
    hv_key = (host_keys / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    assert f"[192.0.2.10]:2222 {' '.join(hv_key)}" in known.splitlines()
    assert known.startswith((state / "ssh" / "known_hosts").read_text())
    config = ctl / "config"
    text = config.read_text()
    assert "Host *" not in text
    for line in (f"IdentityFile {ctl}/id_ed25519", f"UserKnownHostsFile {ctl}/known_hosts",
                 "ProxyJump labadmin@192.0.2.10:2222", "StrictHostKeyChecking yes",
                 "User kvmnl"):
        assert f"    {line}\n" in text, text

    # `ssh -F config kvmnl-g7` (and its address): as the admin user, through the hypervisor,
    # host keys checked against the lab's known_hosts
    for name in ("kvmnl-g7", "198.19.0.17"):
        guest = ssh_g(config, name)
        assert guest["hostname"] == "198.19.0.17"
        assert guest["user"] == "kvmnl"
        assert guest["proxyjump"] == "labadmin@[192.0.2.10]:2222"  # as ssh -G prints it
        assert guest["userknownhostsfile"] == f"{ctl}/known_hosts"
        assert guest["stricthostkeychecking"] == "true"
        assert guest["identityfile"] == f"{ctl}/id_ed25519"
    # the jump itself: no jump to itself (no "jumphost loop"), its pinned key checked, as
    # the hypervisor's own user, port and key from the inventory
    jump = ssh_g(config, "192.0.2.10")
    assert "proxyjump" not in jump and "proxycommand" not in jump
    assert jump["user"] == "labadmin" and jump["port"] == "2222"
    assert jump["userknownhostsfile"] == f"{ctl}/known_hosts"
    assert jump["stricthostkeychecking"] == "true"
    assert jump["identityfile"] == "/home/me/.ssh/lab_ed25519"
    # any other host gets none of the lab's options
    other = ssh_g(config, "198.51.100.7")
    assert other["user"] != "kvmnl" and "proxyjump" not in other
    assert f"{ctl}/known_hosts" not in other["userknownhostsfile"]
    # the hypervisor itself reaches its guests directly
    assert "Proxy" not in (state / "ssh" / "config").read_text()
    assert "192.0.2.10" not in (state / "ssh" / "known_hosts").read_text()
    if os.geteuid() == 0:
        jump_hop_reads_the_lab_config(config, f"{ctl}/known_hosts")

    for extra in ((), ("--check",)):
        again = playbook(*args, *extra, check=True)
        assert recap(again.stdout)["kvm-host"]["changed"] == 0, again.stdout[-3000:]


def jump_hop_reads_the_lab_config(config, known_hosts) -> None:
    """Ansible's arguments for a guest (guest_vm_ssh_common_args): ssh hands -F on to the
    ssh it runs for the ProxyJump, so the jump reads the lab's config too (the hypervisor's
    block, its pinned key). Run in an empty network namespace: nothing leaves the machine."""
    proxy = {"ProxyJump": "labadmin@192.0.2.10:2222"}
    args = f"-F {config} " + gvf.ssh_option_args(gvf.guest_ssh_options(proxy, known_hosts))
    done = subprocess.run(["unshare", "--net", "ssh", "-v", *shlex.split(args),
                           "-l", "kvmnl", "198.19.0.17", "true"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 255
    assert (f"Executing proxy command: exec ssh -l labadmin -p 2222 -F {config} -v "
            "-W '[198.19.0.17]:22' 192.0.2.10") in done.stderr, done.stderr
    assert done.stderr.count(f"Reading configuration data {config}") == 2, done.stderr
    assert "connect to host 192.0.2.10 port 2222: Network is unreachable" in done.stderr


def test_a_hypervisor_without_a_host_key_to_pin_is_refused(tmp_path):
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"kvm-host": {
        "ansible_host": "192.0.2.10", "ansible_user": "labadmin",
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "guest_vm_state_dir": str(tmp_path / "state"),
        "guest_vm_controller_ssh_dir": str(tmp_path / "ctl"), "guest_vm_guests": [GUEST]}}}}))
    play = tmp_path / "ssh-files.yml"
    play.write_text(SSH_FILES_PLAY)
    done = playbook("-i", str(inventory), str(play), "-e", json.dumps(
        {"guest_vm_on_controller": False,
         "guest_vm_hypervisor_host_keys_dir": str(tmp_path / "none")}))
    assert done.returncode != 0
    assert "no SSH host key" in done.stdout and "on kvm-host" in done.stdout, done.stdout[-3000:]


def test_a_host_with_a_second_data_link_gets_a_third_nic_and_a_bare_data0(tmp_path):
    """The rehearsal lab's KVM host: data0 without an address (enslaved to its guests' bridge
    by its admin), a second data NIC on another bridge with an address."""
    guest = lab_guest("kvmnl-g7", 7, data_ip=None, data_bridge="rhbr-kvm",
                      extra_nics=[{"bridge": "rhbr-d1", "ip": "198.18.1.1"}])
    argv = render(tmp_path, guest)
    netdevs = after(argv, "-netdev")
    assert netdevs[-1] == "tap,id=data1,ifname=kvtap-7d1,script=no,downscript=no"
    assert "virtio-net-pci,netdev=data1,mac=52:54:00:18:02:07,addr=0x12" in after(argv, "-device")
    taps = gvf.guest_taps([guest], "kvbr-data", "kvbr-mgmt")
    assert [(t["name"], t["bridge"]) for t in taps] == [
        ("kvtap-7d", "rhbr-kvm"), ("kvtap-7m", "kvbr-mgmt"), ("kvtap-7d1", "rhbr-d1")]
    files = gvf.guest_networks([guest], 24, 24)
    assert [(f["file"], f["address"]) for f in files] == [
        ("20-kvmnetlab-mgmt0.network", "198.19.0.17/24"),
        ("30-kvmnetlab-data1.network", "198.18.1.1/24")]


def test_a_plain_guest_keeps_its_two_nics_and_network_files():
    guest = lab_guest("kvmnl-g1", 1)
    assert [n["tap"] for n in gvf.guest_nics(guest, "d", "m")] == ["kvtap-1d", "kvtap-1m"]
    assert [f["file"] for f in gvf.guest_networks([guest], 24, 24)] == [
        "10-kvmnetlab-data0.network", "20-kvmnetlab-mgmt0.network"]


def test_more_extra_nics_than_the_layout_has_slots_or_one_without_a_bridge_is_refused(tmp_path):
    with pytest.raises(AssertionError, match=r"kvmnl-g1\]: data3 has no PCI slot in "
                                             r"guest_vm_layout.nics \(at most 2 extra_nics\)"):
        render(tmp_path, lab_guest("kvmnl-g1", 1, extra_nics=[{"bridge": "b"}] * 3))
    with pytest.raises(gvf.AnsibleFilterError, match=r"extra_nics\[0\]: needs a bridge"):
        gvf.guest_nics(lab_guest("kvmnl-g1", 1, extra_nics=[{"ip": "198.18.2.1"}]), "d", "m")


def test_the_root_disk_cache_mode_is_qemus_default_unless_set(tmp_path):
    overlay = f"disk-{hashlib.sha1(b'/srv/img/rootfs.ext4').hexdigest()[:12]}.qcow2"
    assert f"file=/srv/lab/guests/kvmnl-g7/{overlay},format=qcow2,if=none,id=root" \
        in after(render(tmp_path, GUEST), "-drive")
    assert f"file=/srv/lab/guests/kvmnl-g7/{overlay},format=qcow2,if=none,id=root,cache=unsafe" \
        in after(render(tmp_path, GUEST, guest_vm_root_cache="unsafe"), "-drive")
