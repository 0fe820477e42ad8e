"""virtio guests of the embedded lab, booted for real by playbooks/guests.yml (marker guests).

Runs as root only. Builds (or reuses) the guest image, boots the lab's guests under the
acceleration the probe picks, then checks inside a running guest over its real SSH (host key
checked against the lab's known_hosts) and from the bare-metal host kvmnl-h1, and finally
tears the guests down. The guest's inventory entry records its hypervisor and netdev, and the
hypervisor says no guest is unavailable. The topology comes from playbooks/lab.yml (netns_lab
role) when it is not there yet, and is removed again (playbooks/teardown.yml) only if this
module made it.

KVMNETLAB_GUESTS_NETNS_PREFIX=<p> runs the whole module on a private copy of the topology
(<p>-hv, <p>-h1, made and removed by the test itself) instead of the lab's kvmnl-hv/kvmnl-h1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import (
    REPO,
    adhoc,
    extended_marks,
    namespaces,
    playbook,
    process_running,
    recap,
    sh,
)

pytestmark = [pytest.mark.guests,
              *extended_marks("boots, reuses, checks and tears down the guests; about 2 min")]

STATE_DIR = Path("/var/lib/kvmnetlab/local")
GUEST = "kvmnl-g1"
DATA_IP = "198.18.1.11"
NETDEV = {"vhost": False, "queues": 1, "poll_us": None}  # inventory/local's kvmnl-g1
ADMIN = "kvmnl"  # guest_vm_admin_user: root has no SSH login on a guest
PREFIX = os.environ.get("KVMNETLAB_GUESTS_NETNS_PREFIX", "")
HV = f"{PREFIX}-hv" if PREFIX else "kvmnl-hv"
H1 = f"{PREFIX}-h1" if PREFIX else "kvmnl-h1"
EXTRA = {"guest_vm_netns": HV}


def private_topology() -> None:
    """The topology contract, made by hand (only with KVMNETLAB_GUESTS_NETNS_PREFIX)."""
    for ns in (HV, H1):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", HV, "link", "add", "kvbr-data", "type", "bridge")
    sh("ip", "-n", HV, "link", "set", "kvbr-data", "up")
    sh("ip", "-n", HV, "link", "add", "kvbr-mgmt", "type", "bridge")
    sh("ip", "-n", HV, "addr", "add", "198.19.0.1/24", "dev", "kvbr-mgmt")
    sh("ip", "-n", HV, "link", "set", "kvbr-mgmt", "up")
    sh("ip", "link", "add", "data1", "netns", H1, "type", "veth",
       "peer", "name", "h1-data1", "netns", HV)
    sh("ip", "-n", H1, "addr", "add", "198.18.1.1/24", "dev", "data1")
    sh("ip", "-n", H1, "link", "set", "data1", "up")
    sh("ip", "-n", HV, "link", "set", "h1-data1", "master", "kvbr-data", "up")


def taps() -> list[str]:
    if HV not in namespaces():
        return []
    links = json.loads(sh("ip", "-n", HV, "-j", "link", "show").stdout or "[]")
    return [link["ifname"] for link in links if link["ifname"].startswith("kvtap-")]


@pytest.fixture(scope="module")
def topology(root_only):
    made = False
    if {HV, H1} - namespaces():
        made = True
        if PREFIX:
            private_topology()
        else:
            playbook("playbooks/lab.yml", check=True)
    assert {HV, H1} <= namespaces()
    yield
    if made:
        if PREFIX:
            for ns in (HV, H1):
                sh("ip", "netns", "del", ns, check=False)
        else:
            playbook("playbooks/teardown.yml", check=True)


@pytest.fixture(scope="module")
def first_run(topology):
    done = playbook("playbooks/guests.yml", extra=EXTRA, check=True)
    pidfile = STATE_DIR / "guests" / GUEST / "qemu.pid"
    pids = {p.parent.name: int(p.read_text()) for p in (STATE_DIR / "guests").glob("*/qemu.pid")}
    assert pidfile.exists(), done.stdout[-3000:]
    yield done, pids
    # whatever happened, leave no guest behind
    playbook("playbooks/guests.yml", "--tags", "guests_teardown", extra=EXTRA)


@pytest.fixture(scope="module")
def guest(first_run):
    import testinfra

    return testinfra.get_host(f"ssh://{GUEST}", ssh_config=str(STATE_DIR / "ssh" / "config"))


@pytest.fixture(scope="module")
def guest_root(first_run):
    """The same guest, its commands run through sudo (root-only state)."""
    import testinfra

    return testinfra.get_host(f"ssh://{GUEST}", ssh_config=str(STATE_DIR / "ssh" / "config"),
                              sudo=True)


def test_acceleration_choice_is_recorded(first_run):
    done, _ = first_run
    assert "QEMU acceleration: kvm (" in done.stdout or "QEMU acceleration: tcg (" in done.stdout
    assert "marker" in done.stdout  # the evidence names the console marker that was seen


def test_guest_answers_real_ssh_with_checked_host_key(guest):
    assert guest.run("hostname").stdout.strip() == GUEST
    known = (STATE_DIR / "ssh" / "known_hosts").read_text()
    assert known.count("ssh-ed25519") >= 1


def test_guest_is_reached_as_its_admin_user_who_becomes_root_with_sudo(guest, guest_root):
    assert guest.user().name == ADMIN
    assert guest_root.check_output("id -u") == "0"
    # the seed's sudoers drop-in: checked by visudo, mode 0440, root's
    rules = guest_root.file("/etc/sudoers.d/kvmnetlab-admin")
    assert rules.mode == 0o440 and rules.user == "root"
    assert rules.content_string.strip() == f"{ADMIN} ALL=(ALL:ALL) NOPASSWD: ALL"
    assert guest_root.run("visudo -cq").rc == 0
    # the lab key logs in as the admin user only
    assert not guest_root.file("/root/.ssh/authorized_keys").exists
    assert "permitrootlogin no" in guest_root.check_output("sshd -T").splitlines()


def test_root_ssh_logins_are_refused(first_run):
    done = sh("ssh", "-F", str(STATE_DIR / "ssh" / "config"), "-l", "root", GUEST, "true",
              check=False)
    assert done.returncode == 255, done.stdout + done.stderr
    assert "Permission denied" in done.stderr


def test_data_nic_is_virtio_net(guest_root):
    out = guest_root.check_output("ethtool -i data0")  # /usr/sbin: on root's PATH
    assert "driver: virtio_net" in out.splitlines()


def test_data_nic_has_its_lab_address(guest):
    addrs = guest.interface("data0").addresses
    assert DATA_IP in addrs


def test_h1_pings_the_guest_over_the_data_bridge(first_run):
    done = sh("ip", "netns", "exec", H1, "ping", "-c", "3", "-i", "0.2", "-W", "2", DATA_IP,
              check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 3 received" in done.stdout


# After the guests play: what the campaign reads about each guest and about the hypervisor.
RECORDED = """\
- name: The guests
  ansible.builtin.import_playbook: {repo}/playbooks/guests.yml

- name: What the inventory recorded
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The guest's hypervisor and netdev, the hypervisor's facts
      ansible.builtin.assert:
        that: {that}

- name: Ansible logs in to the guests as their admin user and becomes root with sudo
  hosts: guests
  gather_facts: false
  tasks:
    - name: Who Ansible is, without and with become
      ansible.builtin.command:
        argv: [id, -un]
      become: "{{{{ item }}}}"
      loop: [false, true]
      register: who
      changed_when: false

    - name: The admin user, then root
      ansible.builtin.assert:
        that: who.results | map(attribute='stdout') | list == ['{admin}', 'root']
"""


def recorded_play() -> str:
    guest = f"hostvars[{GUEST!r}]"
    that = [
        f"{guest}.kvmnetlab_guest_hypervisor == 'localhost'",
        f"{guest}.kvmnetlab_guest_netdev == {NETDEV!r}",  # Jinja reads Python's literals
        f"{guest}.kvmnetlab_guest_data_ip == {DATA_IP!r}",
        f"'ProxyCommand=ip netns exec {HV} socat' in {guest}.ansible_ssh_common_args",
        f"{guest}.ansible_ssh_private_key_file == '{STATE_DIR}/ssh/id_ed25519'",
        f"{guest}.ansible_user == {ADMIN!r}",
        "hostvars['localhost'].guest_vm_unavailable_reason == ''",
        "hostvars['localhost'].guest_vm_accel in ['kvm', 'tcg']",
    ]
    return RECORDED.format(repo=REPO, that=json.dumps(that), admin=ADMIN)


def test_second_run_reuses_the_image_and_changes_nothing(first_run, tmp_path):
    image = next((STATE_DIR / "images").glob("*/rootfs.ext4"))
    before = image.stat()
    play = tmp_path / "recorded.yml"
    play.write_text(recorded_play())
    done = playbook(str(play), extra=EXTRA, check=True)
    assert recap(done.stdout)["localhost"]["changed"] == 0, done.stdout[-4000:]
    assert "guest_image : Build |" not in done.stdout
    assert "build_ship : Build |" not in done.stdout
    # the acceleration choice comes from this boot's probe, no probe guest booted again
    assert "(cached: probed at " in done.stdout, done.stdout[-4000:]
    after = image.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_accel_probe_is_cached_per_boot_and_proven_again_when_its_identity_changes(
        first_run, tmp_path):
    image = max((STATE_DIR / "images").glob("*/vmlinuz"), key=lambda p: p.stat().st_mtime)
    args = {"kernel": str(image), "initrd": str(image.parent / "initrd.img"),
            "candidates": ["tcg"], "timeout": 120, "log_dir": str(tmp_path)}

    def probe(**extra):
        done = adhoc("localhost", "kvmnetlab.lab.guest_accel_probe", {**args, **extra},
                     timeout=300)
        assert done[0] == 0, done[1]
        return done[1]

    first = probe()
    assert (first["cached"], first["accel"], first["changed"]) == (False, "tcg", True)
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert first["identity"]["boot_id"] == boot_id
    assert first["identity"]["qemu_version"].startswith("QEMU emulator version")
    second = probe()
    assert second["cached"] is True and second["accel"] == "tcg" and not second["changed"]
    assert "(cached: probed at " in second["reason"]
    assert second["evidence"] == first["evidence"]
    # another boot of the host (or QEMU, or kernel): the probe boots again
    cache = tmp_path / "accel-probe.json"
    record = json.loads(cache.read_text())
    record["identity"]["boot_id"] = "0" * 8 + boot_id[8:]
    cache.write_text(json.dumps(record))
    third = probe()
    assert third["cached"] is False and third["evidence"]["tcg"]["booted"]
    assert json.loads(cache.read_text())["identity"]["boot_id"] == boot_id
    assert probe(cache=False)["cached"] is False


def test_check_mode_on_the_running_lab_changes_nothing(first_run):
    done = playbook("playbooks/guests.yml", "--check", extra=EXTRA, check=True)
    assert recap(done.stdout)["localhost"]["changed"] == 0, done.stdout[-4000:]


def test_teardown_leaves_no_qemu_and_no_tap(first_run):
    _, pids = first_run
    assert pids and taps()
    done = playbook("playbooks/guests.yml", "--tags", "guests_teardown", extra=EXTRA, check=True)
    # the guest powered itself off on the ACPI request (acpid), no signal was needed
    assert f"{GUEST}: QEMU pid {pids[GUEST]} stopped by acpi" in done.stdout, done.stdout[-3000:]
    alive = [pid for pid in pids.values() if process_running(pid)]
    assert alive == [], f"QEMU still running: {alive}"
    assert taps() == []
    assert not (STATE_DIR / "guests" / GUEST).exists()
