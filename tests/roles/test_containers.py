"""Containers beside the guests (roles/container_lab, kvmnetlab.lab.container_lxc and the
kvmnetlab.lab.container connection).

The pure parts (LXC configuration, cgroup folders, paths inside a container, the role's
filters) are tested as Python. The lab test builds its own namespaces (kvct-hv with the
bridge kvct-br, and the sender kvct-h1 on it at 198.18.1.1/24), never the embedded lab's
kvmnl-* ones, and its own LXC folder, starts two containers through ansible-playbook from
the guests' image (found or built by roles/guest_image), checks them with testinfra
(tests/container_checks.py), pings them from the sender, runs commands and moves files
through the connection (the campaign's kvmnetlab.lab.collect included), applies the role a
second time (changed=0), and tears it all down.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, collection_plugin, playbook, process_running, recap

lxc = collection_plugin("module_util", "container_lxc")
filters = collection_plugin("filter", "container")

HV, BRIDGE, SENDER = "kvct-hv", "kvct-br", "kvct-h1"
CONTAINERS = [
    {"name": "kvct-c1", "index": 1, "data_ip": "198.18.1.21/24", "memory_mb": 256},
    {"name": "kvct-c2", "index": 2, "data_ip": "198.18.1.22/24", "memory_mb": 192},
]
STATE = Path("/var/tmp/kvmnetlab-test-containers")


# --- pure parts ---------------------------------------------------------------------------

def test_config_has_own_namespaces_cgroup_limit_and_data_nic():
    text = lxc.lxc_config(name="kvct-c1", rootfs="/cache/abc", rootfs_mode="overlay",
                          delta="/s/kvct-c1/delta", veth="kvveth-1", mac="52:54:00:18:02:01",
                          data_ip="198.18.1.21/24", memory_mb=256, command=["sleep", "infinity"],
                          net_up="/s/kvct-c1/net-up")
    assert "lxc.rootfs.path = overlay:/cache/abc:/s/kvct-c1/delta" in text
    assert "lxc.cgroup.memory.limit_in_bytes = 268435456" in text
    assert "lxc.cgroup2.memory.max = 268435456" in text
    assert "lxc.net.0.name = data0" in text and "lxc.net.0.veth.pair = kvveth-1" in text
    assert "lxc.net.0.ipv4.address = 198.18.1.21/24" in text
    assert "lxc.net.0.script.up = /s/kvct-c1/net-up" in text
    assert "lxc.execute.cmd = sleep infinity" in text
    assert lxc.config_value(text, "lxc.net.0.veth.pair") == "kvveth-1"
    copy = lxc.lxc_config(name="c", rootfs="/t", rootfs_mode="copy", delta="/s/c/delta",
                          veth="v1", mac="52:54:00:18:02:01", data_ip="10.0.0.1/8",
                          memory_mb=64, command=["sleep", "infinity"], net_up="/h")
    assert "lxc.rootfs.path = dir:/s/c/delta" in copy


@pytest.mark.parametrize("change, message", [
    ({"data_ip": "198.18.1.21"}, "prefix length"),
    ({"veth": "a-very-long-veth-name"}, "15 characters"),
    ({"name": "bad name"}, "container name"),
    ({"rootfs_mode": "zfs"}, "overlay or copy"),
    ({"memory_mb": 4}, "at least 16"),
])
def test_config_refuses_bad_input(change, message):
    args = {"name": "c1", "rootfs": "/t", "rootfs_mode": "overlay", "delta": "/d", "veth": "v",
            "mac": "52:54:00:18:02:01", "data_ip": "198.18.1.21/24", "memory_mb": 256,
            "command": ["sleep", "infinity"], "net_up": "/h", **change}
    with pytest.raises(ValueError, match=message):
        lxc.lxc_config(**args)


def test_net_up_hook_attaches_the_host_end_to_the_bridge():
    assert 'exec ip link set dev "$5" master kvct-br up' in lxc.net_up_script("kvct-br")


MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
PROC_CGROUP = """\
9:name=systemd:/lxc.payload.kvct-c1
4:memory:/lxc.payload.kvct-c1
2:cpuacct:/lxc.payload.kvct-c1
1:cpu:/lxc.payload.kvct-c1
0::/lxc.payload.kvct-c1
"""


def test_cgroup_folders_of_a_process():
    dirs = lxc.cgroup_dirs(PROC_CGROUP, MOUNTINFO)
    assert dirs["cpuacct"] == "/sys/fs/cgroup/cpuacct/lxc.payload.kvct-c1"
    assert dirs["memory"] == "/sys/fs/cgroup/memory/lxc.payload.kvct-c1"
    assert dirs["name=systemd"] == "/sys/fs/cgroup/systemd/lxc.payload.kvct-c1"
    assert dirs["unified"] == "/sys/fs/cgroup/unified/lxc.payload.kvct-c1"
    # a combined cpu,cpuacct hierarchy and a mount whose root is not /
    combined = ("50 31 0:40 /outer /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup "
                "rw,cpu,cpuacct\n")
    got = lxc.cgroup_dirs("3:cpu,cpuacct:/outer/lxc.payload.c\n", combined)
    assert got == {"cpu": "/sys/fs/cgroup/cpu,cpuacct/lxc.payload.c",
                   "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/lxc.payload.c"}


def test_paths_inside_a_container_stay_inside_it(tmp_path):
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "run").mkdir()
    (root / "var").mkdir()
    (root / "bin").symlink_to("usr/bin")
    (root / "var" / "run").symlink_to("/run")  # absolute: must land in root/run
    (root / "var" / "up").symlink_to("../../../..")  # climbs: must stop at root
    assert lxc.resolve_in_root(str(root), "/bin/python3") == str(root / "usr/bin/python3")
    assert lxc.resolve_in_root(str(root), "/var/run/x.pid") == str(root / "run/x.pid")
    assert lxc.resolve_in_root(str(root), "/var/up/etc/passwd") == str(root / "etc/passwd")
    (root / "loop").symlink_to("/loop")
    with pytest.raises(ValueError, match="too many"):
        lxc.resolve_in_root(str(root), "/loop/x")
    with pytest.raises(ValueError, match="absolute"):
        lxc.resolve_in_root(str(root), "relative")


def test_filters_mac_running_reason_hostvars():
    assert filters.container_mac("52:54:00:18:02", 10) == "52:54:00:18:02:0a"
    for bad in (("52:54:00:18", 1), ("53:54:00:18:02", 1), ("52:54:00:18:02", 0)):
        with pytest.raises(Exception):  # noqa: B017 - AnsibleFilterError or ValueError
            filters.container_mac(*bad)
    results = [{"item": CONTAINERS[0], "pid": 42, "runtime": "lxc 5.0.2",
                "cgroup_cpuacct": "/a", "cgroup_memory": "/m"},
               {"item": CONTAINERS[1], "pid": 0, "failed": True}]
    running = filters.container_running(results, CONTAINERS)
    assert running == [{"name": "kvct-c1", "pid": 42, "runtime": "lxc 5.0.2",
                        "data_ip": "198.18.1.21", "cgroup_cpuacct": "/a", "cgroup_memory": "/m"}]
    assert filters.container_reason(results, CONTAINERS) == "not running: kvct-c2"
    assert filters.container_reason(results[:1], CONTAINERS[:1]) == ""
    assert "is 0" in filters.container_reason([], [], count=0)
    [entry] = filters.container_hostvars(running, hypervisor="hv", lxcpath="/l", netns="n")
    assert entry["name"] == "kvct-c1" and entry["group"] == "containers"
    assert entry["vars"]["kvmnetlab_guest_data_ip"] == "198.18.1.21"
    assert entry["vars"]["kvmnetlab_container_pid"] == 42
    assert entry["vars"]["kvmnetlab_shares_kernel"] is True


# --- the lab test -------------------------------------------------------------------------

EXTRA = {
    "netns_lab_namespaces": [HV, SENDER],
    "netns_lab_bridges": [{"ns": HV, "name": BRIDGE}],
    "netns_lab_veths": [{"ns": SENDER, "name": "data1", "address": "198.18.1.1/24",
                         "peer_ns": HV, "peer_name": "kvct-h1p", "peer_bridge": BRIDGE}],
    "container_lab_containers": CONTAINERS,
    "container_lab_count": 2,
    "container_lab_netns": HV,
    "container_lab_data_bridge": BRIDGE,
    "container_lab_state_dir": str(STATE),
}

UP = """\
- name: The test's own namespaces, the guests' image, two containers
  hosts: lab_hypervisor
  gather_facts: false
  roles:
    - role: netns_lab
  tasks:
    - name: Find or build the guests' image
      ansible.builtin.include_role:
        name: guest_image
    - name: Start the containers
      ansible.builtin.include_role:
        name: container_lab
        public: true
    - name: Record what the role published
      ansible.builtin.copy:
        dest: "{record}"
        mode: "0600"
        content: >-
          {{{{ {{'running': container_lab_running, 'reason': container_lab_reason,
               'lxcpath': container_lab_lxcpath, 'rootfs': container_lab_rootfs}}
               | to_nice_json }}}}
    - name: Record each container's inventory variables
      ansible.builtin.copy:
        dest: "{record}.{{{{ item }}}}"
        mode: "0600"
        content: >-
          {{{{ hostvars[item] | dict2items | selectattr('key', 'match', '{keys}')
               | items2dict | to_nice_json }}}}
      loop: "{{{{ groups['containers'] }}}}"
"""

USE = """\
- name: Through the kvmnetlab.lab.container connection
  hosts: containers
  gather_facts: false
  tasks:
    - name: A command
      ansible.builtin.command: cat /proc/sys/kernel/hostname /proc/self/cgroup
      register: ran
      changed_when: false
    - name: A file in (put_file, not pipelined)
      ansible.builtin.copy:
        content: "{{{{ inventory_hostname }}}}\\n"
        dest: /root/put.txt
        mode: "0644"
    - name: A file out (fetch_file)
      ansible.builtin.fetch:
        src: /root/put.txt
        dest: "{out}/{{{{ inventory_hostname }}}}.txt"
        flat: true
    - name: The campaign's capture, piped to python3 -, its tar fetched
      kvmnetlab.lab.collect:
        base_dir: /var/tmp/kvmnetlab
        steps:
          - {{do: snapshot,
              items: [{{file: net_dev, read: /proc/net/dev}},
                      {{file: addr, argv: [ip, -j, addr]}}]}}
          - {{do: pack, files: [net_dev, addr]}}
        fetch_to: "{out}/{{{{ inventory_hostname }}}}.tar"
      register: collected
    - name: The capture's private run folder is gone once its tar is fetched
      ansible.builtin.stat:
        path: "{{{{ collected.run_dir }}}}"
      register: run_dir
      failed_when: run_dir.stat.exists or collected.removed != collected.run_dir
    - name: Record the command's output
      ansible.builtin.copy:
        content: "{{{{ ran.stdout }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}.ran"
        mode: "0644"
      delegate_to: localhost
"""

DOWN = """\
- name: Tear the containers down
  hosts: lab_hypervisor
  gather_facts: false
  tasks:
    - name: Stop and remove them
      ansible.builtin.include_role:
        name: container_lab
        tasks_from: teardown
"""

NETNS_DOWN = """\
- name: Remove the test's namespaces
  hosts: lab_hypervisor
  gather_facts: false
  tasks:
    - name: Remove them
      ansible.builtin.include_role:
        name: netns_lab
        tasks_from: teardown
"""


KEYS = ("^(kvmnetlab_container_|kvmnetlab_guest_|kvmnetlab_shares_kernel$|ansible_connection$"
        "|ansible_python_interpreter$)")


def read_record(record: Path) -> dict:
    """What the up play recorded: the role's facts, and each container's hostvars."""
    data = json.loads(record.read_text())
    data["hostvars"] = {path.name[len(record.name) + 1:]: json.loads(path.read_text())
                        for path in record.parent.glob(record.name + ".*")}
    return data


def run_play(tmp: Path, name: str, text: str, *args: str, **fmt) -> subprocess.CompletedProcess:
    play = tmp / f"{name}.yml"
    play.write_text(text.format(keys=KEYS, **fmt))
    extra = tmp / "extra.json"
    extra.write_text(json.dumps(EXTRA))
    return playbook(str(play), "-e", f"@{extra}", *args, timeout=900)


def cgroup_leftovers() -> list[str]:
    root = Path("/sys/fs/cgroup")
    return sorted(str(p) for p in root.glob("*/lxc.*.kvct-c*"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, LXC)")
    tmp = tmp_path_factory.mktemp("containers")
    record = tmp / "record.json"
    try:
        done = run_play(tmp, "up", UP, record=record)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        data = read_record(record)
        yield {"tmp": tmp, "record": record, "data": data, "first": done}
    finally:
        run_play(tmp, "down", DOWN)
        run_play(tmp, "netns_down", NETNS_DOWN)
        shutil.rmtree(STATE, ignore_errors=True)


@pytest.mark.lab
def test_role_publishes_the_running_containers(lab):
    data = lab["data"]
    assert data["reason"] == ""
    assert [c["name"] for c in data["running"]] == ["kvct-c1", "kvct-c2"]
    assert [c["data_ip"] for c in data["running"]] == ["198.18.1.21", "198.18.1.22"]
    assert all(c["runtime"].startswith("lxc 5.") for c in data["running"])
    hv = data["hostvars"]
    assert sorted(hv) == ["kvct-c1", "kvct-c2"]
    for container in data["running"]:
        got = hv[container["name"]]
        assert got["ansible_connection"] == "kvmnetlab.lab.container"
        assert got["ansible_python_interpreter"] == "/usr/bin/python3"
        assert got["kvmnetlab_guest_data_ip"] == container["data_ip"]
        assert int(got["kvmnetlab_container_pid"]) == container["pid"]
        assert got["kvmnetlab_container_runtime"] == container["runtime"]
        assert got["kvmnetlab_shares_kernel"] is True
        assert got["kvmnetlab_container_hypervisor"] == "localhost"
        assert got["kvmnetlab_container_cgroup_cpuacct"].startswith("/sys/fs/cgroup/")
        assert got["kvmnetlab_container_netns"] == HV
    # the tree comes from the guests' image, unpacked once into the cache
    assert Path(data["rootfs"], "usr/bin/python3").exists()


@pytest.mark.lab
def test_each_container_runs_in_its_own_namespaces_and_cgroups(lab):
    import testinfra

    from tests.container_checks import check_container

    host = testinfra.get_host("local://")
    seen = set()
    for spec in CONTAINERS:
        hostvars = lab["data"]["hostvars"][spec["name"]]
        got = check_container(host, hostvars, memory_mb=spec["memory_mb"],
                              mac=f"52:54:00:18:02:{spec['index']:02x}")
        seen.add(got["net_ns"])
        # the veth's host end is on the test's bridge
        veth = f"kvveth-{spec['index']}"
        master = json.loads(host.check_output(f"ip -n {HV} -j link show dev {veth}"))[0]
        assert master.get("master") == BRIDGE
    assert len(seen) == 2, "the two containers share a network namespace"


@pytest.mark.lab
def test_sender_pings_each_container(lab):
    for container in lab["data"]["running"]:
        done = subprocess.run(["ip", "netns", "exec", SENDER, "ping", "-c", "3", "-i", "0.2",
                               "-W", "2", container["data_ip"]], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert " 0% packet loss" in done.stdout


@pytest.mark.lab
def test_connection_runs_commands_and_moves_files(lab):
    out = lab["tmp"] / "out"
    out.mkdir()
    # the containers as the role adds them, here from an inventory file with their variables
    inventory = lab["tmp"] / "containers.yml"
    inventory.write_text(yaml.safe_dump(
        {"containers": {"hosts": lab["data"]["hostvars"]}}))
    done = run_play(lab["tmp"], "use", USE, "-i", "inventory/local", "-i", str(inventory),
                    out=out)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    for spec in CONTAINERS:
        name = spec["name"]
        ran = (out / f"{name}.ran").read_text().splitlines()
        assert ran[0] == name  # the container's hostname (its UTS namespace)
        # the command ran in the container's cgroups (its cgroup namespace's root)
        assert any(line.endswith(":memory:/") for line in ran), ran
        assert (out / f"{name}.txt").read_text() == f"{name}\n"
        with tarfile.open(out / f"{name}.tar") as tar:
            addr = json.load(tar.extractfile("addr"))
        names = {link["ifname"] for link in addr}
        assert names == {"lo", "data0"}, names
        assert Path(lab["data"]["rootfs"], "root/put.txt").exists() is False  # only its layer


@pytest.mark.lab
def test_second_application_changes_nothing(lab):
    before = {c["name"]: c["pid"] for c in lab["data"]["running"]}
    done = run_play(lab["tmp"], "up", UP, record=lab["record"])
    assert done.returncode == 0, done.stdout[-6000:]
    assert recap(done.stdout)["localhost"]["changed"] == 0, done.stdout[-6000:]
    again = read_record(lab["record"])
    assert {c["name"]: c["pid"] for c in again["running"]} == before


@pytest.mark.lab
def test_teardown_leaves_nothing_behind(lab):
    pids = [c["pid"] for c in lab["data"]["running"]]
    lxcpath = lab["data"]["lxcpath"]
    done = run_play(lab["tmp"], "down", DOWN)
    assert done.returncode == 0, done.stdout[-6000:]
    assert not [pid for pid in pids if process_running(pid)]
    links = subprocess.run(["ip", "-n", HV, "-o", "link"], capture_output=True, text=True).stdout
    assert "kvveth-" not in links
    assert cgroup_leftovers() == []
    assert not Path(lxcpath).exists()
    assert not Path("/run/lxc/lock" + lxcpath).exists()
    listed = subprocess.run(["nsenter", f"--net=/run/netns/{HV}", "lxc-ls", "-P", lxcpath],
                            capture_output=True, text=True).stdout
    assert listed.strip() == ""
    again = run_play(lab["tmp"], "down", DOWN)
    assert recap(again.stdout)["localhost"]["changed"] == 0, again.stdout[-4000:]
    # the cache of unpacked trees stays, like the image cache
    assert Path(lab["data"]["rootfs"], "usr/bin").is_dir()


def test_role_argument_spec_matches_its_defaults():
    role = REPO / "roles" / "container_lab"
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    assert sorted(defaults) == sorted(options)
