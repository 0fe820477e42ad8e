#!/usr/bin/python
# Copyright: kvmnetlab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start (or remove) one lab container with LXC, its data NIC on a bridge of the lab."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: container_lxc
short_description: One lab container run by LXC, with its own namespaces, cgroups and data NIC
description:
  - Writes the container's LXC configuration under I(lxcpath)/I(name)/ and starts it with
    C(lxc-execute), whose small init (PID 1) runs I(command) (by default C(sleep
    infinity)); it reaps orphans and forwards signals. The container has its own mount, PID,
    UTS, IPC and network namespaces and its own cgroups (C(lxc.payload.NAME)), with the memory
    limit I(memory_mb).
  - Its root file system is the tree I(rootfs) (the guests' debootstrap tree, unpacked once per
    image), under an overlay whose writable layer is I(lxcpath)/I(name)/delta
    (I(rootfs_mode=overlay), mounted by LXC in the container's own mount namespace only), or
    a copy of it there (I(rootfs_mode=copy)).
  - Its data NIC I(data_nic) is one end of a veth pair, with I(mac) and I(data_ip); the other
    end, I(veth), joins I(bridge). LXC and its commands run in the network namespace I(netns)
    (C(nsenter --net), which leaves the host's cgroup mounts visible, unlike C(ip netns
    exec)); with I(netns) empty, in the host's own. The bridge must exist there already.
  - A running container whose configuration is unchanged is left alone (C(changed=false)).
    A changed configuration restarts it when I(restart_on_change) is true.
  - C(state=absent) stops the container with C(lxc-stop) (its halt signal, then SIGKILL after
    I(stop_timeout) seconds) and removes its veth, its cgroups (the ones recorded at start),
    its folder (configuration, writable layer or copy, log) and, once no container is left
    under I(lxcpath), LXC's lock folder for it.
  - Supports check mode.
options:
  name:
    description: Container name (also names its cgroups, C(lxc.payload.NAME)).
    type: str
    required: true
  lxcpath:
    description: LXC's folder of containers (C(lxc-* -P)); one folder per container in it.
    type: path
    required: true
  netns:
    description:
      - Network namespace the runtime runs in, holding I(bridge) and the veth's host end; it
        must exist (C(/run/netns/NAME)). Empty for the host's own network namespace.
      - LXC's command socket is an abstract socket, so C(lxc-info), C(lxc-attach) and
        C(lxc-stop) only find the container from this namespace.
    type: str
    default: ''
  state:
    description: Whether the container runs (C(started)) or is gone (C(absent)).
    type: str
    choices: [started, absent]
    default: started
  rootfs:
    description: The root file system tree (read-only to the containers); required when started.
    type: path
  rootfs_mode:
    description: C(overlay) (a writable layer over I(rootfs)) or C(copy) (a copy of I(rootfs)).
    type: str
    choices: [overlay, copy]
    default: overlay
  bridge:
    description: Bridge in I(netns) the veth's host end joins; required when started.
    type: str
  veth:
    description:
      - Name of the veth's host end (at most 15 characters); required when started.
      - With C(state=absent), default the one in the container's configuration.
    type: str
  mac:
    description: MAC address of the data NIC in the container; required when started.
    type: str
  data_ip:
    description: Address of the data NIC with its prefix length (198.18.1.21/24); required when started.
    type: str
  data_nic:
    description: Name of the data NIC inside the container.
    type: str
    default: data0
  memory_mb:
    description: Memory limit of the container's cgroup, in MiB.
    type: int
    default: 256
  command:
    description: The container's long-running process, run by LXC's init as its only child.
    type: list
    elements: str
    default: [sleep, infinity]
  restart_on_change:
    description: Restart a running container whose configuration changed.
    type: bool
    default: true
  stop_timeout:
    description: Seconds C(lxc-stop) waits after the halt signal before it kills the container.
    type: int
    default: 10
  host:
    description: Name of this host in messages (its inventory name); default the machine's hostname.
    type: str
author:
  - kvmnetlab contributors
"""

EXAMPLES = r"""
- name: Container 1 on the embedded lab's data bridge
  kvmnetlab.lab.container_lxc:
    name: kvmnl-c1
    lxcpath: /var/lib/kvmnetlab/local/containers/lxc
    netns: kvmnl-hv
    rootfs: /var/lib/kvmnetlab/local/containers/rootfs/5a16440997c32086
    bridge: kvbr-data
    veth: kvveth-1d
    mac: 52:54:00:18:02:01
    data_ip: 198.18.1.21/24
    memory_mb: 256

- name: Stop and remove it
  kvmnetlab.lab.container_lxc:
    name: kvmnl-c1
    lxcpath: /var/lib/kvmnetlab/local/containers/lxc
    netns: kvmnl-hv
    state: absent
"""

RETURN = r"""
action:
  description: C(started), C(restarted), C(running) (left alone), C(removed) or C(absent) (nothing there).
  returned: always
  type: str
pid:
  description: PID of the container's init as seen on this host (0 when not running).
  returned: always
  type: int
runtime:
  description: The runtime and its version, e.g. C(lxc 5.0.2).
  returned: always
  type: str
cgroups:
  description: >-
    The container's cgroup folders on this host, by controller (C(cpuacct), C(memory), ...;
    C(unified) for cgroup v2). Empty when not running.
  returned: always
  type: dict
cgroup_cpuacct:
  description: Its cpuacct cgroup folder (holding C(cpuacct.usage), ns); '' without cgroup v1 cpuacct.
  returned: always
  type: str
cgroup_memory:
  description: Its memory cgroup folder; '' when not running.
  returned: always
  type: str
veth:
  description: Name of the veth's host end.
  returned: always
  type: str
removed:
  description: What C(state=absent) removed (the container, its veth, cgroup folders, its folder).
  returned: always
  type: list
  elements: str
"""

import errno
import json
import os
import shutil
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils import container_lxc as lxc

LOCK_ROOT = "/run/lxc/lock"


class Runtime:
    """LXC's commands, run in the lab's network namespace."""

    def __init__(self, module, lxcpath, netns, host):
        self.module, self.lxcpath, self.netns, self.host = module, lxcpath, netns, host

    def argv(self, tool, *args):
        enter = ["nsenter", f"--net=/run/netns/{self.netns}"] if self.netns else []
        return [*enter, tool, "-P", self.lxcpath, *args]

    def run(self, tool, *args, check=True):
        argv = self.argv(tool, *args)
        rc, out, err = self.module.run_command(argv)
        if check and rc != 0:
            self.module.fail_json(msg=f"{' '.join(argv)} failed on {self.host} (rc={rc}): "
                                  f"{(err or out).strip()[-1500:]}")
        return rc, out, err

    def state(self, name):
        """RUNNING, STOPPED, ... or '' when LXC does not know the container."""
        rc, out, _err = self.run("lxc-info", "-n", name, "-sH", check=False)
        return out.strip() if rc == 0 else ""

    def pid(self, name):
        rc, out, _err = self.run("lxc-info", "-n", name, "-pH", check=False)
        text = out.strip()
        return int(text) if rc == 0 and text.isdigit() else 0

    def version(self):
        rc, out, _err = self.module.run_command(["lxc-start", "--version"])
        return f"lxc {out.strip()}" if rc == 0 else "lxc (version unknown)"


def ip_argv(netns, *args):
    return ["ip", *(["-n", netns] if netns else []), *args]


def where(netns, host):
    space = f"network namespace {netns!r}" if netns else "its own network namespace"
    return f"host {host} ({space})"


def link(module, netns, name):
    """The link as ``ip -j -d link show`` gives it, or None."""
    rc, out, _err = module.run_command(ip_argv(netns, "-j", "-d", "link", "show", "dev", name))
    if rc != 0:
        return None
    links = json.loads(out or "[]")
    return links[0] if links else None


def read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def write(path, text, mode=0o644):
    """Write ``text`` atomically; True when the file changed."""
    if read(path) == text:
        return False
    part = f"{path}.part"
    with open(part, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(part, mode)
    os.replace(part, path)
    return True


def cgroups_of(pid):
    text = read(f"/proc/{pid}/cgroup") or ""
    return lxc.cgroup_dirs(text, read("/proc/self/mountinfo") or "")


def log_tail(path, lines=25):
    text = read(path) or ""
    return "\n".join(text.strip().splitlines()[-lines:])


def remove_cgroup_dir(folder):
    """rmdir a cgroup folder and its children, deepest first; True when it was there."""
    if not os.path.isdir(folder):
        return False
    for current, subdirs, _files in os.walk(folder, topdown=False):
        for sub in subdirs:
            os.rmdir(os.path.join(current, sub))
    os.rmdir(folder)
    return True


def prune_empty(path, stop):
    """Remove ``path`` and its empty parents up to (not including) ``stop``."""
    while path.startswith(stop.rstrip("/") + "/"):
        try:
            os.rmdir(path)
        except OSError:
            return
        path = os.path.dirname(path)


def check_started_params(module, p):
    missing = [key for key in ("rootfs", "bridge", "veth", "mac", "data_ip") if not p[key]]
    if missing:
        module.fail_json(msg=f"state=started needs {', '.join(missing)}")
    if not module.check_mode and not os.path.isdir(os.path.join(p["rootfs"], "usr", "bin")):
        module.fail_json(msg=f"root file system {p['rootfs']} is not a tree (no usr/bin)")


def started(module, runtime, p, result):
    name, netns, host = p["name"], p["netns"] or "", result["host"]
    check_started_params(module, p)
    bridge = link(module, netns, p["bridge"])
    if not bridge or (bridge.get("linkinfo") or {}).get("info_kind") != "bridge":
        module.fail_json(msg=f"bridge {p['bridge']!r} does not exist on {where(netns, host)}; "
                         "it must be made first (netns_lab on the embedded lab)")
    folder = os.path.join(p["lxcpath"], name)
    delta = os.path.join(folder, "delta")
    net_up = os.path.join(folder, "net-up")
    try:
        config = lxc.lxc_config(
            name=name, rootfs=p["rootfs"], rootfs_mode=p["rootfs_mode"], delta=delta,
            veth=p["veth"], mac=p["mac"], data_ip=p["data_ip"], memory_mb=p["memory_mb"],
            command=p["command"], net_up=net_up, data_nic=p["data_nic"])
    except ValueError as exc:
        module.fail_json(msg=f"container {name}: {exc}")
    hook = lxc.net_up_script(p["bridge"])
    differs = read(os.path.join(folder, "config")) != config or read(net_up) != hook
    state = runtime.state(name)
    if state == "RUNNING" and (not differs or not p["restart_on_change"]):
        result["action"] = "running"
        if differs:  # applies at its next start
            result["changed"] = True
            if not module.check_mode:
                write(os.path.join(folder, "config"), config)
                write(net_up, hook, 0o755)
        return
    result["changed"] = True
    result["action"] = "restarted" if state == "RUNNING" else "started"
    if module.check_mode:
        return
    if state == "RUNNING":
        stop(module, runtime, name, p["stop_timeout"])
    os.makedirs(folder, mode=0o700, exist_ok=True)
    write(os.path.join(folder, "config"), config)
    write(net_up, hook, 0o755)
    prepare_rootfs(module, p, delta)
    if link(module, netns, p["veth"]):  # a stale host end of an earlier run
        module.run_command(ip_argv(netns, "link", "del", "dev", p["veth"]), check_rc=True)
    logfile = os.path.join(folder, "lxc.log")
    rc, out, err = module.run_command(runtime.argv(
        "lxc-execute", "-n", name, "-d", "-o", logfile, "-l", "INFO"))
    pid = runtime.pid(name)
    if rc != 0 or not pid or runtime.state(name) != "RUNNING":
        module.fail_json(msg=f"container {name} did not start on {host} (rc={rc}): "
                         f"{(err or out).strip()[-800:]}\n{log_tail(logfile)}")
    record = {"cgroups": cgroups_of(pid)}
    write(os.path.join(folder, "kvmnetlab.json"), json.dumps(record, indent=1) + "\n", 0o600)


def prepare_rootfs(module, p, delta):
    """The container's writable layer (overlay) or its copy of the tree."""
    if os.path.isdir(delta):
        return
    if p["rootfs_mode"] == "overlay":
        os.makedirs(delta, mode=0o755)
        return
    part = f"{delta}.partial"
    if os.path.exists(part):
        shutil.rmtree(part)
    module.run_command(["cp", "-a", "--reflink=auto", p["rootfs"].rstrip("/") + "/.", part],
                       check_rc=True)
    os.replace(part, delta)


def stop(module, runtime, name, timeout):
    runtime.run("lxc-stop", "-n", name, "-t", str(timeout), check=False)
    deadline = time.monotonic() + timeout + 10
    while runtime.state(name) not in ("STOPPED", ""):
        if time.monotonic() > deadline:
            module.fail_json(msg=f"container {name} still runs {timeout + 10} s after lxc-stop")
        time.sleep(0.2)


def absent(module, runtime, p, result):
    name, netns = p["name"], p["netns"] or ""
    folder = os.path.join(p["lxcpath"], name)
    config = read(os.path.join(folder, "config")) or ""
    veth = p["veth"] or lxc.config_value(config, "lxc.net.0.veth.pair")
    result["veth"] = veth
    record = json.loads(read(os.path.join(folder, "kvmnetlab.json")) or "{}")
    removed = result["removed"]
    if runtime.state(name) == "RUNNING":
        removed.append(f"container {name}")
    if veth and link(module, netns, veth):
        removed.append(f"veth {veth}")
    leftover = [d for d in (record.get("cgroups") or {}).values() if os.path.isdir(d)]
    removed.extend(f"cgroup {d}" for d in leftover)
    if os.path.isdir(folder):
        removed.append(f"folder {folder}")
    result["changed"] = bool(removed)
    result["action"] = "removed" if removed else "absent"
    if module.check_mode or not removed:
        return
    if f"container {name}" in removed:
        stop(module, runtime, name, p["stop_timeout"])
    if veth and link(module, netns, veth):
        module.run_command(ip_argv(netns, "link", "del", "dev", veth), check_rc=True)
    for each in sorted(leftover, key=len, reverse=True):
        try:
            remove_cgroup_dir(each)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT,):
                module.fail_json(msg=f"cgroup {each} of container {name}: {exc.strerror}")
    if os.path.isdir(folder):
        shutil.rmtree(folder)


def prune_lxcpath(lxcpath):
    """With no container left under ``lxcpath``: LXC's lock folder for it, and its own
    empty pivot cgroups (lxc.pivot, made by the runtime's monitor). True if any was removed."""
    if os.path.isdir(lxcpath) and os.listdir(lxcpath):
        return False
    done = False
    lock = LOCK_ROOT + os.path.abspath(lxcpath)
    if os.path.isdir(lock):
        shutil.rmtree(lock)
        prune_empty(os.path.dirname(lock), LOCK_ROOT)
        done = True
    mounts = lxc.cgroup_mounts(read("/proc/self/mountinfo") or "")
    for _root, mountpoint in set(mounts.values()):
        pivot = os.path.join(mountpoint, "lxc.pivot")
        try:
            os.rmdir(pivot)  # only when empty: another runtime's containers may use it
            done = True
        except OSError:
            pass
    return done


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "lxcpath": {"type": "path", "required": True},
            "netns": {"type": "str", "default": ""},
            "state": {"type": "str", "choices": ["started", "absent"], "default": "started"},
            "rootfs": {"type": "path"},
            "rootfs_mode": {"type": "str", "choices": ["overlay", "copy"], "default": "overlay"},
            "bridge": {"type": "str"},
            "veth": {"type": "str"},
            "mac": {"type": "str"},
            "data_ip": {"type": "str"},
            "data_nic": {"type": "str", "default": "data0"},
            "memory_mb": {"type": "int", "default": 256},
            "command": {"type": "list", "elements": "str", "default": ["sleep", "infinity"]},
            "restart_on_change": {"type": "bool", "default": True},
            "stop_timeout": {"type": "int", "default": 10},
            "host": {"type": "str"},
        },
        supports_check_mode=True,
    )
    p = module.params
    host = p["host"] or socket.gethostname()
    problem = lxc.check_name(p["name"])
    if problem:
        module.fail_json(msg=problem)
    netns = p["netns"] or ""
    if netns and not os.path.exists(f"/run/netns/{netns}"):
        if p["state"] == "started":
            module.fail_json(msg=f"network namespace {netns!r} does not exist on {host}")
        # Removing after the namespace went (its processes with it): clean up from the host's.
        netns = p["netns"] = ""
    if not shutil.which("lxc-execute"):
        module.fail_json(msg=f"LXC is not installed on {host} (lxc-execute not found)")
    runtime = Runtime(module, p["lxcpath"], netns, host)
    result = {"changed": False, "host": host, "action": "", "pid": 0,
              "runtime": runtime.version(), "cgroups": {}, "cgroup_cpuacct": "",
              "cgroup_memory": "", "veth": p["veth"] or "", "removed": []}
    if p["state"] == "started":
        started(module, runtime, p, result)
        pid = 0 if module.check_mode and result["action"] != "running" else runtime.pid(p["name"])
        if pid:
            cgroups = cgroups_of(pid)
            result.update(pid=pid, cgroups=cgroups, cgroup_cpuacct=cgroups.get("cpuacct", ""),
                          cgroup_memory=cgroups.get("memory", ""))
    else:
        absent(module, runtime, p, result)
        if not module.check_mode and prune_lxcpath(p["lxcpath"]):
            result["changed"] = True
    result.pop("host")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
