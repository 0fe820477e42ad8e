#!/usr/bin/python
# Copyright: kvmnetlab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only probe: one capability document per measuring host or hypervisor."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_capabilities_info
short_description: Describe what a lab host can do (kernel, KVM, vhost-net, PF_RING, QEMU, NICs, tools)
description:
  - Answers with one capability document (C(format_version) 1) describing the host it runs
    on, that is the kernel and whether it can load modules, C(/dev/kvm), C(/dev/vhost-net),
    PF_RING, the ELVIS marker and state, whether QEMU's tap netdev accepts C(poll-us), KVM halt
    polling, isolated cores and CPU frequency governors, the data NICs (driver, queues,
    C(ethtool -i) and C(ethtool -k)), the queueing disciplines (C(tc)) and the versions of the
    measurement tools.
  - It reads, it does not interpret. Multi-line tool output (C(ethtool -i), C(ethtool -k),
    C(/proc/net/pf_ring/info)) is returned verbatim and parsed on the controller; only single
    values (an integer from sysfs, whether a file is a character device) are read here.
  - The QEMU probe starts I(qemu_binary) with C(-machine none -qmp stdio), asks for
    C(query-qmp-schema) and quits; it needs no tap device and no accelerator. It is bounded by
    I(timeout) and the process it started is killed if it does not exit in time.
  - C(kvm.openable) only says that C(/dev/kvm) opens for reading and writing. Whether KVM is
    usable is proved elsewhere, by booting a guest (M(kvmnetlab.lab.guest_accel_probe)).
  - Runs on real machines, on network-namespace hosts (connection C(kvmnetlab.lab.netns)), where
    C(/sys/class/net) shows the namespace's interfaces but the kernel is the machine's, and in
    QEMU guests.
  - Changes nothing, always returns C(changed=false), and runs the same in check mode. Problems
    that do not stop the probe (a state file that is not JSON, a failing C(ethtool)) are
    reported as warnings.
version_added: "0.1.0"
author:
  - kvmnetlab contributors
options:
  data_addresses:
    description:
      - IP addresses of the host's data NICs. The interface holding each one (from
        C(ip -j addr show)) is described under C(nics); addresses found on no interface are
        listed in C(missing_addresses).
      - A prefix length (C(198.18.0.1/24)) is accepted and ignored.
    type: list
    elements: str
    default: []
  data_interfaces:
    description:
      - Interface names to describe directly. Names that do not exist on the host are listed in
        C(missing_interfaces).
    type: list
    elements: str
    default: []
  qemu_binary:
    description: QEMU system emulator, a name looked up on C(PATH) (and the sbin folders) or a path.
    type: str
    default: qemu-system-x86_64
  probe_qemu:
    description: Whether to start QEMU to ask whether its tap netdev supports C(poll-us).
    type: bool
    default: true
  elvis_marker_path:
    description:
      - File the lab's ELVIS patch series exposes (for example C(/proc/kvmnetlab_marker)); its
        content, stripped, is returned as C(elvis.marker). Empty for none.
    type: str
    default: ""
  elvis_state_file:
    description: JSON record written by the C(elvis_kernel) role; returned as C(elvis.state).
    type: path
    default: /var/lib/kvmnetlab/elvis.json
  kvm_host_state_file:
    description: JSON record written by the C(kvm_host) role; returned as C(kvm_host.state).
    type: path
    default: /var/lib/kvmnetlab/kvm_host.json
  timeout:
    description: Seconds each command (a tool's version, C(ethtool), the QEMU probe) may take.
    type: int
    default: 20
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Probe a measuring host's capabilities
  kvmnetlab.lab.lab_capabilities_info:
    data_addresses: ["{{ kvmnetlab_data_ip }}"]
  register: lab_capabilities

- name: Probe a hypervisor without starting QEMU, describing its uplink by name
  kvmnetlab.lab.lab_capabilities_info:
    data_interfaces: [enp1s0f0]
    probe_qemu: false
    elvis_marker_path: /proc/kvmnetlab_marker
  register: lab_capabilities

- name: Stop when a data address is not on the host
  ansible.builtin.fail:
    msg: "{{ inventory_hostname }} has no interface with {{ lab_capabilities.capabilities.missing_addresses | join(', ') }}"
  when: lab_capabilities.capabilities.missing_addresses | length > 0
"""

RETURN = r"""
capabilities:
  description:
    - The capability document of the host, C(format_version) 1. Multi-line texts are raw.
    - A value that could not be read is null (or false, or empty, as each key says); the
      document never guesses.
  returned: always
  type: dict
  contains:
    format_version:
      description: Version of this document's layout.
      type: int
      sample: 1
    hostname:
      description: C(os.uname().nodename). Namespace hosts report the machine's name.
      type: str
      sample: lab-h1
    kernel:
      description:
        - C(release) (C(uname -r)), C(cmdline) (C(/proc/cmdline), stripped).
        - C(modules) (bool), true when C(/proc/modules) exists and
          C(/proc/sys/kernel/modules_disabled) is absent or 0; C(modules_reason), empty when
          C(modules) is true, else why not.
      type: dict
      sample: {"release": "6.1.0-37-amd64", "cmdline": "BOOT_IMAGE=/vmlinuz ro quiet",
               "modules": true, "modules_reason": ""}
    kvm:
      description:
        - C(device), C(/dev/kvm) is a character device; C(openable), it opens read-write.
        - Usability is proved by booting a guest, not here.
      type: dict
      sample: {"device": true, "openable": true}
    vhost_net:
      description: C(device), C(/dev/vhost-net) is a character device; C(module_loaded),
        C(/sys/module/vhost_net) exists.
      type: dict
      sample: {"device": false, "module_loaded": false}
    pf_ring:
      description:
        - C(loaded), C(/proc/net/pf_ring/info) exists; C(info), its raw content (empty when
          absent); C(min_num_slots), C(/sys/module/pf_ring/parameters/min_num_slots) or null;
          C(version), C(/sys/module/pf_ring/version) (the module's MODULE_VERSION) or null.
      type: dict
      sample: {"loaded": false, "info": "", "min_num_slots": null, "version": null}
    elvis:
      description:
        - C(marker), the stripped content of I(elvis_marker_path), null when unset or unreadable.
        - C(state), the JSON of I(elvis_state_file), null when absent or not JSON.
      type: dict
      sample: {"marker": null, "state": null}
    kvm_host:
      description: C(state), the JSON of I(kvm_host_state_file), null when absent or not JSON.
      type: dict
      sample: {"state": null}
    qemu:
      description:
        - C(binary), the resolved path (null when absent); C(version), the first line of
          C(--version).
        - C(poll_us), whether the tap netdev accepts C(poll-us) (null when QEMU is absent, the
          probe is off or cannot tell); C(poll_us_evidence), one line saying how that was decided.
      type: dict
      sample: {"binary": "/usr/bin/qemu-system-x86_64",
               "version": "QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)",
               "poll_us": true,
               "poll_us_evidence": "query-qmp-schema: the tap netdev options type has member poll-us"}
    halt_poll_ns:
      description: C(present), C(/sys/module/kvm/parameters/halt_poll_ns) exists; C(writable),
        C(os.access(W_OK)) (false on a read-only C(/sys)); C(value), its integer or null.
      type: dict
      sample: {"present": true, "writable": true, "value": 200000}
    cpus:
      description:
        - C(online), C(SC_NPROCESSORS_ONLN); C(isolated) and C(nohz_full), the stripped content
          of C(/sys/devices/system/cpu/isolated) and C(nohz_full) (empty when absent).
        - C(governors), the sorted unique C(cpufreq/scaling_governor) values (empty without
          cpufreq).
      type: dict
      sample: {"online": 2, "isolated": "", "nohz_full": "", "governors": []}
    nics:
      description:
        - One entry per described interface, keyed by name, with C(address) (the data address
          that selected it, null when named directly), C(driver) (basename of
          C(/sys/class/net/<if>/device/driver), null for virtual devices such as veth),
          C(rx_queues), C(tx_queues), C(ethtool_i) and C(ethtool_k) (raw stdout, null when
          ethtool is missing or fails).
      type: dict
      sample: {"veth0": {"address": "198.18.0.1", "driver": null, "rx_queues": 1,
                         "tx_queues": 1, "ethtool_i": "driver: veth\n...",
                         "ethtool_k": "Features for veth0:\n..."}}
    missing_addresses:
      description: Entries of I(data_addresses) found on no interface (as given).
      type: list
      elements: str
      sample: ["198.18.9.9"]
    missing_interfaces:
      description: Entries of I(data_interfaces) that do not exist on the host.
      type: list
      elements: str
      sample: []
    traffic_control:
      description:
        - The traffic-control setup of every device of the host's network namespace, verbatim,
          parsed on the controller (C(kvmnetlab.traffic_control)), which keeps the devices on
          the data path.
        - C(qdiscs), stdout of C(tc -j qdisc show); C(links), stdout of C(ip -j -d link show)
          (device kinds and bridge masters); C(classes), per device of C(/sys/class/net), stdout
          of C(tc class show dev <if>) where it is not empty (C(tc) prints HTB classes as text
          only); C(error), why any of them is missing (null when none is).
      type: dict
      sample: {"qdiscs": "[{\"kind\":\"tbf\",\"handle\":\"8001:\",\"dev\":\"tap0\",...}]",
               "links": "[{\"ifname\":\"tap0\",...}]", "classes": {}, "error": null}
    tools:
      description:
        - First line of each tool's version output (C(ping), C(ip), C(ethtool), C(fping),
          C(sockperf), C(trafgen), C(tcpdump), C(qemu)), null when the tool is not installed.
        - C(pfcount) and C(pfsend) have no version flag; their path is given instead.
      type: dict
      sample: {"ping": "ping from iputils 20221126", "ethtool": "ethtool version 6.1",
               "pfcount": null, "pfsend": null}
"""

import glob
import ipaddress
import json
import os
import shutil
import stat
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.host_files import read_int, read_text

FORMAT_VERSION = 1

# Tools whose version is asked for, with the flag that prints it.
VERSION_FLAGS = {
    "ping": ["-V"],
    "ip": ["-V"],
    "ethtool": ["--version"],
    "fping": ["-v"],
    "sockperf": ["--version"],
    "trafgen": ["-v"],
    "tcpdump": ["--version"],
}
# Tools without a version flag: their path is reported.
PATH_ONLY_TOOLS = ("pfcount", "pfsend")
# Folders searched after PATH (root's tools live there; a task's PATH may lack them).
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")

# Members that identify QAPI's NetdevTapOptions in query-qmp-schema (type names are masked).
TAP_MEMBERS = frozenset({"vhostforce", "downscript", "vnet_hdr"})

ARGUMENT_SPEC = {
    "data_addresses": {"type": "list", "elements": "str", "default": []},
    "data_interfaces": {"type": "list", "elements": "str", "default": []},
    "qemu_binary": {"type": "str", "default": "qemu-system-x86_64"},
    "probe_qemu": {"type": "bool", "default": True},
    "elvis_marker_path": {"type": "str", "default": ""},
    "elvis_state_file": {"type": "path", "default": "/var/lib/kvmnetlab/elvis.json"},
    "kvm_host_state_file": {"type": "path", "default": "/var/lib/kvmnetlab/kvm_host.json"},
    "timeout": {"type": "int", "default": 20},
}

QMP_INPUT = (
    '{"execute": "qmp_capabilities", "id": "caps"}\n'
    '{"execute": "query-qmp-schema", "id": "schema"}\n'
    '{"execute": "quit", "id": "quit"}\n'
)


# ------------------------------------------------------------------ reading --


def is_char_device(path):
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def can_open_rw(path):
    """Whether ``path`` opens read-write (closed again at once)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def read_json(path, warnings):
    """The JSON in ``path``; None when absent, or (with a warning) unreadable or not JSON."""
    if not os.path.exists(path):
        return None
    text = read_text(path)
    if text is None:
        warnings.append(f"{path}: cannot be read")
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        warnings.append(f"{path}: not JSON ({exc})")
        return None


# ------------------------------------------------------------------ running --
def find_bin(name):
    """Absolute path of ``name`` (a path or a name on PATH and the sbin folders), or None."""
    if "/" in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    dirs += [d for d in SBIN_DIRS if d not in dirs]
    return shutil.which(name, path=os.pathsep.join(dirs))


def run(argv, timeout, executable=None):
    """Run ``argv``; return (rc, stdout, stderr), rc None when it could not run or timed out.

    With ``executable``, ``argv[0]`` is only the name the tool sees (fping prints it).
    """
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        done = subprocess.run(argv, executable=executable, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        return None, "", f"timed out after {timeout} s: {exc}"
    except OSError as exc:
        return None, "", str(exc)
    return (done.returncode, done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"))


def version_line(stdout, stderr, tool=""):
    """The line of a tool's version output to report, or None when it printed nothing.

    The first non-empty line of stdout, then stderr (fping prints there); for sockperf, whose
    banner comes first, the first line that mentions a version.
    """
    lines = [line.strip() for line in (stdout + "\n" + stderr).splitlines() if line.strip()]
    if not lines:
        return None
    if tool == "sockperf":
        for line in lines:
            if "version" in line.lower():
                return line
    return lines[0]


# ------------------------------------------------------------------- kernel --
def kernel_modules(root):
    """(modules, reason): whether the running kernel can load modules, and why not."""
    if not os.path.exists(os.path.join(root, "proc/modules")):
        return False, "kernel built without module support: /proc/modules absent"
    disabled = read_int(os.path.join(root, "proc/sys/kernel/modules_disabled"))
    if disabled:
        return False, f"modules_disabled={disabled}"
    return True, ""


# --------------------------------------------------------------------- NICs --
def address_key(text):
    """The address of ``text`` ("198.18.0.1" or "198.18.0.1/24") as an ipaddress object."""
    return ipaddress.ip_interface(text.strip()).ip


def interfaces_for_addresses(ip_addr_json, addresses):
    """Map data addresses to interfaces using ``ip -j addr show`` output (a parsed list).

    Returns ({ifname: first address, as given, that selected it}, [addresses found nowhere]).
    """
    holders = {}
    for link in ip_addr_json or []:
        for info in link.get("addr_info") or []:
            local = info.get("local")
            if not local:
                continue
            try:
                holders.setdefault(address_key(local), link.get("ifname"))
            except ValueError:
                continue
    found, missing = {}, []
    for address in addresses:
        ifname = holders.get(address_key(address))
        if ifname is None:
            missing.append(address)
        else:
            found.setdefault(ifname, address)
    return found, missing


def describe_nic(root, ifname, address, ethtool, timeout, warnings):
    base = os.path.join(root, "sys/class/net", ifname)
    try:
        driver = os.path.basename(os.readlink(os.path.join(base, "device/driver")))
    except OSError:
        driver = None
    nic = {
        "address": address,
        "driver": driver,
        "rx_queues": len(glob.glob(os.path.join(glob.escape(base), "queues/rx-*"))),
        "tx_queues": len(glob.glob(os.path.join(glob.escape(base), "queues/tx-*"))),
        "ethtool_i": None,
        "ethtool_k": None,
    }
    if ethtool:
        for flag, key in (("-i", "ethtool_i"), ("-k", "ethtool_k")):
            rc, out, err = run([ethtool, flag, ifname], timeout)
            if rc == 0:
                nic[key] = out
            else:
                first = (err.strip().splitlines() or [""])[0]
                warnings.append(f"ethtool {flag} {ifname} failed (rc={rc}): {first}")
    return nic


# --------------------------------------------------------------------- QEMU --
def qmp_replies(text):
    """The JSON objects QEMU printed on its QMP stdio, one per line (other lines skipped)."""
    replies = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            replies.append(json.loads(line))
        except ValueError:
            continue
    return replies


def poll_us_in_schema(schema):
    """(poll_us, evidence) from the list ``query-qmp-schema`` returns.

    Type names are masked in introspection, so the tap netdev options are the object type
    whose members include vhostforce, downscript and vnet_hdr (NetdevTapOptions).
    """
    taps = []
    for entry in schema or []:
        if not isinstance(entry, dict) or entry.get("meta-type") != "object":
            continue
        members = {m.get("name") for m in entry.get("members") or [] if isinstance(m, dict)}
        if members >= TAP_MEMBERS:
            taps.append(members)
    if not taps:
        return None, ("query-qmp-schema has no tap netdev options type (QEMU predates netdev "
                      "introspection, or was built without tap)")
    if any("poll-us" in members for members in taps):
        return True, "query-qmp-schema: the tap netdev options type has member poll-us"
    return False, "query-qmp-schema: the tap netdev options type has no member poll-us"


def probe_poll_us(qemu, timeout):
    """(poll_us, evidence): start ``qemu`` with QMP on stdio, read its schema, quit."""
    argv = [qemu, "-machine", "none", "-nodefaults", "-display", "none", "-no-user-config",
            "-qmp", "stdio"]
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
    except OSError as exc:
        return None, f"could not start {qemu}: {exc}"
    try:
        out, err = proc.communicate(QMP_INPUT.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, f"QMP probe of {qemu} timed out after {timeout} s (killed pid {proc.pid})"
    text = out.decode(errors="replace")
    for reply in qmp_replies(text):
        if reply.get("id") != "schema":
            continue
        if "error" in reply:
            desc = reply["error"].get("desc", reply["error"])
            return None, f"query-qmp-schema refused by {qemu}: {desc}"
        return poll_us_in_schema(reply.get("return"))
    errline = (err.decode(errors="replace").strip().splitlines() or [""])[-1]
    return None, f"no query-qmp-schema reply from {qemu} (rc={proc.returncode}): {errline}"


def describe_qemu(qemu_binary, probe, timeout):
    qemu = {"binary": find_bin(qemu_binary), "version": None, "poll_us": None,
            "poll_us_evidence": ""}
    if qemu["binary"] is None:
        qemu["poll_us_evidence"] = f"{qemu_binary} not found"
        return qemu
    rc, out, err = run([qemu["binary"], "--version"], timeout)
    if rc is not None:
        qemu["version"] = version_line(out, err)
    if probe:
        qemu["poll_us"], qemu["poll_us_evidence"] = probe_poll_us(qemu["binary"], timeout)
    else:
        qemu["poll_us_evidence"] = "not probed (probe_qemu is false)"
    return qemu


# -------------------------------------------------------------------- tools --
def tool_versions(timeout):
    tools = {}
    for tool, flags in VERSION_FLAGS.items():
        path = find_bin(tool)
        if path is None:
            tools[tool] = None
            continue
        rc, out, err = run([tool, *flags], timeout, executable=path)
        line = version_line(out, err, tool)
        tools[tool] = line if line is not None else f"{path} (no version output, rc={rc})"
    for tool in PATH_ONLY_TOOLS:
        tools[tool] = find_bin(tool)
    return tools


# -------------------------------------------------------------------- probe --
def traffic_control(root, timeout):
    """Verbatim ``tc`` and ``ip`` output describing every device's queueing disciplines."""
    out = {"qdiscs": None, "links": None, "classes": {}, "error": None}
    tc, ip = find_bin("tc"), find_bin("ip")
    if tc is None or ip is None:
        out["error"] = "tc or ip (iproute2) not found"
        return out
    errors = []
    for key, argv in (("qdiscs", [tc, "-j", "qdisc", "show"]),
                      ("links", [ip, "-j", "-d", "link", "show"])):
        rc, stdout, stderr = run(argv, timeout)
        if rc == 0:
            out[key] = stdout
        else:
            errors.append(f"{' '.join(argv[1:])} failed (rc={rc}): {stderr.strip()[:200]}")
    try:
        names = sorted(os.listdir(os.path.join(root, "sys/class/net")))
    except OSError as exc:
        names = []
        errors.append(f"/sys/class/net: {exc}")
    for name in names:
        rc, stdout, stderr = run([tc, "class", "show", "dev", name], timeout)
        if rc == 0 and stdout.strip():
            out["classes"][name] = stdout
    out["error"] = "; ".join(errors) or None
    return out


def validate(params):
    """Messages for malformed options (empty when they are fine)."""
    errors = []
    for address in params["data_addresses"]:
        try:
            address_key(address)
        except ValueError:
            errors.append(f"data_addresses: {address!r} is not an IP address")
    for name in params["data_interfaces"]:
        if not name or "/" in name or name in (".", "..") or len(name) > 15:
            errors.append(f"data_interfaces: {name!r} is not an interface name")
    if params["timeout"] < 1:
        errors.append(f"timeout: {params['timeout']} must be at least 1 s")
    return errors


def probe(params, root="/"):
    """Gather the capability document; return (document, warnings). Changes nothing."""
    warnings = []
    timeout = params["timeout"]
    tools = tool_versions(timeout)

    modules, modules_reason = kernel_modules(root)
    cmdline = read_text(os.path.join(root, "proc/cmdline"))

    pf_ring_info = read_text(os.path.join(root, "proc/net/pf_ring/info"))

    marker = None
    if params["elvis_marker_path"]:
        text = read_text(params["elvis_marker_path"])
        if text is None:
            if os.path.exists(params["elvis_marker_path"]):
                warnings.append(f"{params['elvis_marker_path']}: cannot be read")
        else:
            marker = text.strip()

    halt = os.path.join(root, "sys/module/kvm/parameters/halt_poll_ns")
    halt_present = os.path.exists(halt)

    cpu = os.path.join(root, "sys/devices/system/cpu")
    governors = set()
    for path in glob.glob(os.path.join(glob.escape(cpu), "cpu[0-9]*/cpufreq/scaling_governor")):
        value = read_text(path)
        if value is not None and value.strip():
            governors.add(value.strip())

    nics, missing_addresses, missing_interfaces = {}, [], []
    selected = {}
    if params["data_addresses"]:
        ip = find_bin("ip")
        parsed = []
        if ip is None:
            warnings.append("ip (iproute2) not found: no data address can be looked up")
        else:
            rc, out, err = run([ip, "-j", "addr", "show"], timeout)
            try:
                parsed = json.loads(out) if rc == 0 else []
            except ValueError:
                parsed = []
            if rc != 0 or not parsed:
                warnings.append(f"ip -j addr show failed (rc={rc}): {err.strip()[:200]}")
        selected, missing_addresses = interfaces_for_addresses(parsed, params["data_addresses"])
    for name in params["data_interfaces"]:
        if os.path.exists(os.path.join(root, "sys/class/net", name)):
            selected.setdefault(name, None)
        else:
            missing_interfaces.append(name)
    ethtool = find_bin("ethtool")
    for name, address in selected.items():
        nics[name] = describe_nic(root, name, address, ethtool, timeout, warnings)

    qemu = describe_qemu(params["qemu_binary"], params["probe_qemu"], timeout)
    tools["qemu"] = qemu["version"]

    document = {
        "format_version": FORMAT_VERSION,
        "hostname": os.uname().nodename,
        "kernel": {
            "release": os.uname().release,
            "cmdline": (cmdline or "").strip(),
            "modules": modules,
            "modules_reason": modules_reason,
        },
        "kvm": {
            "device": is_char_device(os.path.join(root, "dev/kvm")),
            "openable": can_open_rw(os.path.join(root, "dev/kvm")),
        },
        "vhost_net": {
            "device": is_char_device(os.path.join(root, "dev/vhost-net")),
            "module_loaded": os.path.isdir(os.path.join(root, "sys/module/vhost_net")),
        },
        "pf_ring": {
            "loaded": pf_ring_info is not None,
            "info": pf_ring_info or "",
            "min_num_slots": read_int(
                os.path.join(root, "sys/module/pf_ring/parameters/min_num_slots")),
            "version": (read_text(os.path.join(root, "sys/module/pf_ring/version")) or "").strip()
            or None,
        },
        "elvis": {
            "marker": marker,
            "state": read_json(params["elvis_state_file"], warnings),
        },
        "kvm_host": {
            "state": read_json(params["kvm_host_state_file"], warnings),
        },
        "qemu": qemu,
        "halt_poll_ns": {
            "present": halt_present,
            "writable": halt_present and os.access(halt, os.W_OK),
            "value": read_int(halt) if halt_present else None,
        },
        "cpus": {
            "online": os.sysconf("SC_NPROCESSORS_ONLN"),
            "isolated": (read_text(os.path.join(cpu, "isolated")) or "").strip(),
            "nohz_full": (read_text(os.path.join(cpu, "nohz_full")) or "").strip(),
            "governors": sorted(governors),
        },
        "nics": nics,
        "missing_addresses": missing_addresses,
        "missing_interfaces": missing_interfaces,
        "traffic_control": traffic_control(root, timeout),
        "tools": tools,
    }
    return document, warnings


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    errors = validate(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors))
    document, warnings = probe(module.params)
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, capabilities=document)


if __name__ == "__main__":
    main()
