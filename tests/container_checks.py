"""What a running lab container must be, checked with testinfra on its container host.

``check_container(host, hostvars)`` takes a testinfra host on the machine that runs the
container (``testinfra.get_host("local://")`` on the embedded lab) and the container's
inventory variables as the container_lab role sets them (kvmnetlab_container_pid, _name,
_lxcpath, _netns, _cgroup_cpuacct, _cgroup_memory, kvmnetlab_guest_data_ip), and asserts that
it runs under its runtime, in its own network namespace and cgroups, with its data NIC.
It returns what it read, for further checks.
"""

from __future__ import annotations

import json
import shlex


def _out(host, argv: list[str]) -> str:
    done = host.run(shlex.join(argv))
    assert done.rc == 0, f"{shlex.join(argv)}: rc {done.rc}: {done.stderr}"
    return done.stdout.strip()


def runtime_argv(hostvars: dict, tool: str, *args: str) -> list[str]:
    """An LXC command for the container, run where its runtime runs."""
    netns = hostvars.get("kvmnetlab_container_netns") or ""
    enter = ["nsenter", f"--net=/run/netns/{netns}"] if netns else []
    return [*enter, tool, "-P", hostvars["kvmnetlab_container_lxcpath"], *args]


def net_ns(host, path: str) -> str:
    """The network namespace a /proc/PID/ns/net or /run/netns/NAME file is (its inode)."""
    return _out(host, ["stat", "-L", "-c", "%i", path])


def check_container(host, hostvars: dict, *, memory_mb: int | None = None,
                    mac: str | None = None, data_nic: str = "data0") -> dict:
    name = hostvars["kvmnetlab_container_name"]
    pid = int(hostvars["kvmnetlab_container_pid"])
    netns = hostvars.get("kvmnetlab_container_netns") or ""

    # it runs, and its runtime lists it with that init PID
    assert host.file(f"/proc/{pid}").is_directory, f"{name}: PID {pid} is gone"
    state = host.file(f"/proc/{pid}/stat").content_string.rpartition(")")[2].split()[0]
    assert state != "Z", f"{name}: PID {pid} is a zombie"
    assert name in _out(host, runtime_argv(hostvars, "lxc-ls", "--running", "-1")).split()
    assert _out(host, runtime_argv(hostvars, "lxc-info", "-n", name, "-pH")) == str(pid)

    # its own network namespace: neither the host's nor the one its runtime and bridge are in
    own = net_ns(host, f"/proc/{pid}/ns/net")
    assert own != net_ns(host, "/proc/self/ns/net"), f"{name} shares the host's network namespace"
    if netns:
        assert own != net_ns(host, f"/run/netns/{netns}"), f"{name} shares {netns}'s namespace"
    for kind in ("mnt", "pid", "uts"):
        assert (_out(host, ["readlink", f"/proc/{pid}/ns/{kind}"])
                != _out(host, ["readlink", f"/proc/self/ns/{kind}"])), f"{name}: host's {kind} ns"

    # its own cgroups, the ones the inventory names, and its memory limit
    cpuacct = hostvars["kvmnetlab_container_cgroup_cpuacct"]
    memory = hostvars["kvmnetlab_container_cgroup_memory"]
    own_cgroups = host.file(f"/proc/{pid}/cgroup").content_string
    host_cgroups = host.file("/proc/self/cgroup").content_string
    for folder, controller in ((cpuacct, "cpuacct"), (memory, "memory")):
        assert host.file(folder).is_directory, f"{name}: {controller} cgroup {folder} missing"
        line = next(x for x in own_cgroups.splitlines() if controller in x.split(":")[1].split(","))
        assert folder.endswith(line.split(":", 2)[2]), f"{name}: {folder} vs {line}"
        assert line not in host_cgroups.splitlines(), f"{name} is in the host's {controller} cgroup"
        assert str(pid) in host.file(f"{folder}/cgroup.procs").content_string.split()
    usage = int(host.file(f"{cpuacct}/cpuacct.usage").content_string)
    assert usage > 0, f"{name}: cpuacct.usage is {usage}"
    limit = int(host.file(f"{memory}/memory.limit_in_bytes").content_string)
    if memory_mb is not None:
        assert limit == memory_mb * 1024 * 1024, f"{name}: memory limit {limit} B"

    # its data NIC, seen from inside its network namespace
    links = json.loads(_out(host, ["nsenter", "-t", str(pid), "-n", "ip", "-j", "addr", "show",
                                   "dev", data_nic]))
    assert links, f"{name}: no {data_nic}"
    link = links[0]
    assert "UP" in link["flags"], f"{name}: {data_nic} is down"
    addresses = [a["local"] for a in link.get("addr_info", [])]
    assert hostvars["kvmnetlab_guest_data_ip"] in addresses, f"{name}: {addresses}"
    assert not [a for a in link.get("addr_info", []) if a["family"] == "inet6"], \
        f"{name}: {data_nic} has IPv6 addresses"
    if mac is not None:
        assert link["address"] == mac, f"{name}: MAC {link['address']}"
    return {"pid": pid, "net_ns": own, "cpuacct_usage_ns": usage, "memory_limit": limit,
            "mac": link["address"], "addresses": addresses}
