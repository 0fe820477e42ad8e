# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's LXC containers: their configuration, their cgroups and paths inside them.

Pure functions (standard library only), shared by the kvmnetlab.lab.container_lxc module,
which runs on the container host, and the kvmnetlab.lab.container connection, which runs
on the controller; both are unit-tested as Python.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import shlex

#: LXC's container name, also part of cgroup names (lxc.payload.<name>).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
#: Debian's LXC keeps this many bytes of a veth name (IFNAMSIZ - 1).
IFNAME_MAX = 15


def check_name(name: str) -> str | None:
    """Why ``name`` cannot name a container, or None."""
    if not NAME_RE.match(name or ""):
        return (f"container name {name!r}: 1 to 63 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit")
    return None


def mac_address(prefix: str, index: int) -> str:
    """A stable MAC: ``prefix`` (five octets, e.g. 52:54:00:18:02) and ``index`` (1-255)."""
    octets = str(prefix).split(":")
    if len(octets) != 5 or not all(re.fullmatch(r"[0-9a-fA-F]{2}", o) for o in octets):
        raise ValueError(f"MAC prefix {prefix!r}: five octets such as 52:54:00:18:02")
    if int(octets[0], 16) & 1:
        raise ValueError(f"MAC prefix {prefix!r} is a multicast address")
    index = int(index)
    if not 1 <= index <= 255:
        raise ValueError(f"container index {index}: 1 to 255")
    return ":".join([o.lower() for o in octets] + [f"{index:02x}"])


def interface_address(data_ip: str) -> ipaddress.IPv4Interface:
    """``data_ip`` with its prefix length (198.18.1.21/24); refused without one."""
    text = str(data_ip or "").strip()
    if "/" not in text:
        raise ValueError(f"data_ip {text!r} needs its prefix length, e.g. 198.18.1.21/24")
    try:
        return ipaddress.IPv4Interface(text)
    except ValueError as exc:
        raise ValueError(f"data_ip {text!r}: {exc}") from None


def net_up_script(bridge: str) -> str:
    """The hook LXC runs on the container host once it made the veth pair: the host end
    ($5) joins ``bridge`` and comes up. It runs where the runtime runs (the lab's
    namespace), with netlink only, so no /sys of that namespace is needed."""
    return ("#!/bin/sh\n"
            "# LXC's lxc.net.0.script.up: $1 container, $2 net, $3 up, $4 veth, $5 host end.\n"
            f"exec ip link set dev \"$5\" master {shlex.quote(bridge)} up\n")


def lxc_config(*, name: str, rootfs: str, rootfs_mode: str, delta: str, veth: str,
               mac: str, data_ip: str, memory_mb: int, command: list[str], net_up: str,
               data_nic: str = "data0") -> str:
    """The LXC configuration of one lab container.

    Its own namespaces (mount, PID, UTS, IPC, network) and cgroups (lxc.payload.<name>),
    the memory limit on both cgroup versions (the runtime applies the one the host has),
    one veth whose container end is ``data_nic`` with ``mac`` and ``data_ip`` and whose host
    end ``veth`` joins the bridge through the ``net_up`` hook, no IPv6 (like the guests' data
    NICs: only the measurement's packets and ARP on the link), and ``command`` run by LXC's
    small init (lxc-execute), which reaps orphans and forwards signals.
    """
    problem = check_name(name)
    if problem:
        raise ValueError(problem)
    if not veth or len(veth) > IFNAME_MAX:
        raise ValueError(f"veth name {veth!r}: 1 to {IFNAME_MAX} characters")
    if rootfs_mode not in ("overlay", "copy"):
        raise ValueError(f"rootfs_mode {rootfs_mode!r}: overlay or copy")
    if not command:
        raise ValueError("command: the container's long-running process, e.g. [sleep, infinity]")
    address = interface_address(data_ip)
    memory = int(memory_mb)
    if memory < 16:
        raise ValueError(f"memory_mb {memory}: at least 16 MiB")
    root = f"overlay:{rootfs}:{delta}" if rootfs_mode == "overlay" else f"dir:{delta}"
    limit = memory * 1024 * 1024
    lines = [
        "# Written by kvmnetlab.lab.container_lxc; changes are overwritten.",
        "lxc.include = /usr/share/lxc/config/common.conf",
        "lxc.arch = x86_64",
        f"lxc.uts.name = {name}",
        f"lxc.rootfs.path = {root}",
        f"lxc.cgroup.memory.limit_in_bytes = {limit}",
        f"lxc.cgroup2.memory.max = {limit}",
        "lxc.net.0.type = veth",
        f"lxc.net.0.veth.pair = {veth}",
        f"lxc.net.0.name = {data_nic}",
        f"lxc.net.0.hwaddr = {mac}",
        f"lxc.net.0.ipv4.address = {address.with_prefixlen}",
        "lxc.net.0.flags = up",
        f"lxc.net.0.script.up = {net_up}",
        "lxc.sysctl.net.ipv6.conf.all.disable_ipv6 = 1",
        "lxc.sysctl.net.ipv6.conf.default.disable_ipv6 = 1",
        f"lxc.execute.cmd = {shlex.join(command)}",
    ]
    return "\n".join(lines) + "\n"


def config_value(text: str, key: str) -> str:
    """The value of ``key`` in an LXC configuration ('' when absent; the last one wins)."""
    found = ""
    for line in (text or "").splitlines():
        left, sep, right = line.partition("=")
        if sep and left.strip() == key:
            found = right.strip()
    return found


def cgroup_mounts(mountinfo: str) -> dict[str, tuple[str, str]]:
    """The cgroup hierarchies of /proc/self/mountinfo: ``{controller: (root, mountpoint)}``.

    cgroup v1 controllers by name (``cpuacct``, ``memory``, ``name=systemd``, ...), the
    cgroup v2 hierarchy as ``""``. The first mount of each wins.
    """
    found: dict[str, tuple[str, str]] = {}
    for line in (mountinfo or "").splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        fstype, options = tail[0], tail[2].split(",")
        if fstype == "cgroup2":
            found.setdefault("", (root, mountpoint))
        elif fstype == "cgroup":
            for option in options:
                if option in ("rw", "ro") or option.startswith(("release_agent=", "clone_")):
                    continue
                found.setdefault(option, (root, mountpoint))
    return found


def _unescape(text: str) -> str:
    """mountinfo's octal escapes (\\040 for a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def cgroup_dirs(proc_cgroup: str, mountinfo: str) -> dict[str, str]:
    """The absolute cgroup folders of a process, from its /proc/PID/cgroup and the reader's
    /proc/self/mountinfo: ``{controller: path}``, ``"unified"`` for the cgroup v2 one.

    A controller whose hierarchy is not mounted here is left out.
    """
    mounts = cgroup_mounts(mountinfo)
    dirs: dict[str, str] = {}
    for line in (proc_cgroup or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _hid, controllers, path = parts
        names = controllers.split(",") if controllers else [""]
        for controller in names:
            if controller not in mounts:
                continue
            root, mountpoint = mounts[controller]
            relative = path
            if root != "/" and (path == root or path.startswith(root.rstrip("/") + "/")):
                relative = path[len(root.rstrip("/")):] or "/"
            folder = posixpath.normpath(mountpoint + "/" + relative.lstrip("/"))
            dirs[controller or "unified"] = folder
    return dirs


def resolve_in_root(root: str, path: str, *, max_links: int = 40) -> str:
    """``path`` as seen by a process whose root is ``root`` (e.g. /proc/PID/root), as a path
    the host can open: symbolic links are followed inside ``root`` (an absolute link starts
    again at ``root``, ``..`` stops at it), so no link in the container leads outside it.

    The last component need not exist (a file about to be written).
    """
    if not str(path).startswith("/"):
        raise ValueError(f"{path!r}: an absolute path inside the container is needed")
    pending = [part for part in str(path).split("/") if part]
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if os.path.islink(candidate):
            links += 1
            if links > max_links:
                raise ValueError(f"{path!r}: too many symbolic links inside {root}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            pending = [p for p in target.split("/") if p] + pending
            continue
        done.append(part)
    return os.path.join(root, *done)
