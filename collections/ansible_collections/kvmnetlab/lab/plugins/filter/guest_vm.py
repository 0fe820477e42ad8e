# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How SSH reaches the lab's guests, and what the inventory records about each guest.

Pure functions used by the guest_vm role (called by FQCN, e.g.
``kvmnetlab.lab.guest_ssh_options``) and unit-tested as Python:

- the embedded lab (``access: netns``): the controller is the hypervisor, and SSH goes into
  the hypervisor's network namespace with ``ip netns exec <ns> socat`` (a ProxyCommand);
- a real lab (``access: jump``): QEMU runs in the KVM host's own network namespace, the KVM
  host has an address on the management bridge, and the controller reaches the guests with
  plain SSH through it (``ProxyJump=<user>@<address>[:<port>]``). The KVM host itself (the
  guest wait runs there) connects directly. When the hypervisor is the controller, no jump.
"""

from __future__ import annotations

import shlex

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only when imported outside Ansible's venv
    AnsibleFilterError = ValueError  # type: ignore[assignment,misc]

ACCESS_MODES = ("netns", "jump")
SIDES = ("controller", "hypervisor")

# Options every connection to a guest uses, after the proxy and the known_hosts file.
COMMON_OPTIONS = (
    ("StrictHostKeyChecking", "yes"),
    ("IdentitiesOnly", "yes"),
    ("ConnectTimeout", "20"),
    ("ServerAliveInterval", "5"),
    ("ServerAliveCountMax", "3"),
)


def netns_proxy_command(netns: str) -> str:
    """ProxyCommand into the hypervisor's network namespace (%h, %p expanded by ssh)."""
    return f"ip netns exec {netns} socat - TCP:%h:%p,connect-timeout=15"


def proxy_jump(host: str, user: str = "", port=None) -> str:
    """``[user@]host[:port]``, with an IPv6 address in brackets."""
    host = str(host or "").strip()
    if not host:
        raise AnsibleFilterError("ProxyJump needs the hypervisor's address (its ansible_host)")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    text = f"{user}@{host}" if user else host
    if port not in (None, "", 22, "22"):
        text += f":{int(port)}"
    return text


def guest_proxy(access: str, *, side: str = "controller", netns: str = "",
                jump: dict | None = None, on_controller: bool = True,
                proxy_command: str = "") -> dict[str, str]:
    """The proxy option SSH needs to reach a guest's management address: {} when direct.

    ``access`` is guest_vm_mgmt_access; ``side`` says who connects: the controller
    (Ansible, humans there) or the hypervisor itself (the guest wait). ``jump`` is
    ``{host, user, port}`` of the hypervisor as the controller's inventory names it;
    ``on_controller`` is true when the hypervisor is the controller machine (its
    connection is local), in which case nothing jumps. A non-empty ``proxy_command``
    overrides the controller's proxy.
    """
    if access not in ACCESS_MODES:
        raise AnsibleFilterError(
            f"guest_vm_mgmt_access must be one of {', '.join(ACCESS_MODES)}, got {access!r}")
    if side not in SIDES:
        raise AnsibleFilterError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    if access == "netns" and not netns:
        raise AnsibleFilterError(
            "guest_vm_mgmt_access is netns but guest_vm_netns is empty: the netns access "
            "enters the hypervisor's namespace (the embedded lab); a real lab uses jump")
    if access == "jump" and netns:
        raise AnsibleFilterError(
            f"guest_vm_mgmt_access is jump but guest_vm_netns is {netns!r}: jumping through "
            "the hypervisor reaches only its own network namespace; use netns, or leave "
            "guest_vm_netns empty")
    if side == "hypervisor":
        return {"ProxyCommand": netns_proxy_command(netns)} if netns else {}
    if proxy_command:
        return {"ProxyCommand": proxy_command}
    if access == "netns":
        if not on_controller:
            raise AnsibleFilterError(
                "guest_vm_mgmt_access is netns, but the hypervisor is not the controller: "
                "`ip netns exec` would run on the controller; a real lab uses jump")
        return {"ProxyCommand": netns_proxy_command(netns)}
    if on_controller:
        return {}
    jump = jump or {}
    return {"ProxyJump": proxy_jump(jump.get("host", ""), jump.get("user") or "",
                                    jump.get("port"))}


def known_hosts_name(host: str, port=None) -> str:
    """How known_hosts (and ssh_config's Host line) names a host ssh reaches at ``port``.

    ``host`` for port 22 (or none), else ``[host]:port``, as ssh looks the key up; an IPv6
    address loses the brackets ProxyJump needs.
    """
    host = str(host or "").strip().strip("[]")
    if not host:
        raise AnsibleFilterError("known_hosts_name needs a host")
    if port in (None, "", 22, "22"):
        return host
    return f"[{host}]:{int(port)}"


def guest_ssh_options(proxy: dict, known_hosts: str) -> list[list[str]]:
    """Every ``[option, value]`` of an SSH connection to a guest, in order."""
    if not known_hosts:
        raise AnsibleFilterError("guest_ssh_options needs the lab's known_hosts file")
    return ([[key, str(value)] for key, value in proxy.items()]
            + [["UserKnownHostsFile", known_hosts]]
            + [[key, value] for key, value in COMMON_OPTIONS])


def ssh_option_args(options: list) -> str:
    """``-o Key=Value ...`` for a command line (Ansible's ansible_ssh_common_args)."""
    return " ".join(f"-o {shlex.quote(f'{key}={value}')}" for key, value in options)


def guest_hostvars(guests: list, status: dict, *, hypervisor: str, identity_file: str,
                   ssh_common_args: str, user: str,
                   interpreter: str = "/usr/bin/python3") -> list[dict]:
    """What the inventory records for each guest that is up (status[name].ok), in order.

    Each item is ``{name, vars}``; vars are the host variables add_host gives the guest.
    ``user`` is the guests' admin user (guest_vm_admin_user): root has no SSH login on a
    guest, so plays on guests use become (sudo).
    """
    if not user or user == "root":
        raise AnsibleFilterError(
            f"guest_hostvars: the guests' admin user must be a user other than root, got {user!r}")
    entries = []
    for guest in guests:
        state = status.get(guest["name"]) or {}
        if not state.get("ok"):
            continue
        entries.append({"name": guest["name"], "vars": {
            "ansible_host": guest["mgmt_ip"],
            "ansible_user": user,
            "ansible_ssh_private_key_file": identity_file,
            "ansible_ssh_common_args": ssh_common_args,
            "ansible_python_interpreter": interpreter,
            "kvmnetlab_guest_data_ip": guest.get("data_ip") or "",
            "kvmnetlab_guest_qemu_pid": state.get("pid", 0),
            "kvmnetlab_guest_hypervisor": hypervisor,
            "kvmnetlab_guest_netdev": dict(guest.get("netdev") or {}),
        }})
    return entries


def guest_unavailable_reason(status: dict, *, configured: int, image_ready: bool,
                             check_mode: bool, host: str = "", image: str = "") -> str:
    """Why no guest of this hypervisor is usable; empty when at least one is up."""
    where = f" on {host}" if host else ""
    if configured == 0:
        return f"no guests are configured{where} (guest_vm_guests is empty)"
    if any((state or {}).get("ok") for state in status.values()):
        return ""
    if not image_ready and check_mode:
        return (f"check mode: the guest image{where} is not built yet ({image or 'unset'}), "
                "so no guest was started")
    reasons = "; ".join(f"{name}: {(state or {}).get('reason') or 'down'}"
                        for name, state in sorted(status.items()))
    return f"every guest{where} is down ({reasons or 'none was started'})"


def guest_wait_list(started: list, *, check_mode: bool = False) -> list[dict]:
    """The guests for kvmnetlab.lab.guest_ssh_wait, from the registered loop results of
    kvmnetlab.lab.guest_qemu (loop_var guest_vm_guest): each guest with the ``pid`` its start
    reported, and ``not_started`` (its start's error) when it did not start; in check mode
    a guest that would have been started is not waited for ("check mode: not started")."""
    out = []
    for result in started or []:
        guest = dict(result["guest_vm_guest"])
        waited = result.get("ok") and not (
            check_mode and result.get("action") in ("started", "restarted"))
        guest["pid"] = result.get("pid", 0)
        if not waited:
            guest["not_started"] = result.get("error") or "check mode: not started"
        out.append(guest)
    return out


def guest_nics(guest: dict, data_bridge: str, mgmt_bridge: str) -> list[dict]:
    """Every NIC of one guest, in order: ``{ifname, tap, bridge, address, mac, kind}``.

    ``data0`` (tap ``kvtap-<index>d``) joins the guest's own ``data_bridge``, else
    ``data_bridge``, and ``mgmt0`` (``kvtap-<index>m``) ``mgmt_bridge``; each item of the
    guest's ``extra_nics`` (``{bridge, ip}``) adds ``data<k>`` (``kvtap-<index>d<k>``) on its
    own bridge, for a host with a second data link. An address may be null: the NIC is left
    without one (an admin enslaves it to a bridge of their own, as on a KVM host whose data
    NIC joins its guests' bridge). Where each NIC sits on the PCI bus, and so which name the
    image gives it, is the guest's layout (guest_vm_layout; see qemu_argv).
    """
    name = guest.get("name", "?")
    index = int(guest["index"])
    extra = guest.get("extra_nics") or []
    nics = [
        {"ifname": "data0", "tap": f"kvtap-{index}d",
         "bridge": guest.get("data_bridge") or data_bridge,
         "address": guest.get("data_ip") or None,
         "mac": f"52:54:00:18:01:{index:02x}", "kind": "data"},
        {"ifname": "mgmt0", "tap": f"kvtap-{index}m", "bridge": mgmt_bridge,
         "address": guest.get("mgmt_ip") or None,
         "mac": f"52:54:00:19:00:{index:02x}", "kind": "mgmt"},
    ]
    for k, nic in enumerate(extra, start=1):
        if not isinstance(nic, dict) or not nic.get("bridge"):
            raise AnsibleFilterError(
                f"guest_vm_guests[{name}].extra_nics[{k - 1}]: needs a bridge (and an ip, or null)")
        nics.append({"ifname": f"data{k}", "tap": f"kvtap-{index}d{k}", "bridge": nic["bridge"],
                     "address": nic.get("ip") or None,
                     "mac": f"52:54:00:18:{k + 1:02x}:{index:02x}", "kind": "data"})
    return nics


def guest_taps(guests: list, data_bridge: str, mgmt_bridge: str) -> list[dict]:
    """Every tap the guests need: ``{guest, name, bridge, multi_queue}``."""
    taps = []
    for guest in guests:
        queues = int((guest.get("netdev") or {}).get("queues") or 1)
        for nic in guest_nics(guest, data_bridge, mgmt_bridge):
            taps.append({"guest": guest["name"], "name": nic["tap"], "bridge": nic["bridge"],
                         "multi_queue": nic["ifname"] == "data0" and queues > 1})
    return taps


def guest_networks(guests: list, data_prefix: int, mgmt_prefix: int) -> list[dict]:
    """The systemd-networkd files of each guest's seed: one per NIC with an address.

    ``{guest, file, ifname, address}``, the address with its prefix length; a NIC without
    an address gets no file (networkd then leaves it unconfigured).
    """
    files = []
    for guest in guests:
        for order, nic in enumerate(guest_nics(guest, "", ""), start=1):
            if not nic["address"]:
                continue
            prefix = mgmt_prefix if nic["kind"] == "mgmt" else data_prefix
            files.append({"guest": guest["name"], "ifname": nic["ifname"],
                          "file": f"{order}0-kvmnetlab-{nic['ifname']}.network",
                          "address": f"{nic['address']}/{int(prefix)}"})
    return files


# --- the QEMU command line ---------------------------------------------------------------------
# What qemu_argv needs besides the guest; each is the role variable guest_vm_<key>.
QEMU_SETTINGS = ("qemu_binary", "machine", "accel", "state_dir", "seed_sha1", "kernel", "initrd",
                 "overlay", "disk_overlay", "root_cache", "kernel_extra_args", "layout")


def _pci_slot(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 0x20:
        raise AnsibleFilterError(f"{field}: a PCI slot on bus 00 (1 to 0x1f), got {value!r}")
    return value


def guest_layout(layout) -> dict:
    """The guest's virtual hardware, checked: ``{root, seed, nics}``.

    ``root`` and ``seed`` are ``{device, pci_slot, label}`` (the disks, in PCI order so that
    the guest names them ``device``); ``nics`` is a list of ``{name, pci_slot}`` in the
    guest_nics order (data0, mgmt0, then the extra data NICs). Errors name the field under
    guest_vm_layout.
    """
    where = "guest_vm_layout"
    if not isinstance(layout, dict):
        raise AnsibleFilterError(f"{where}: a dict with root, seed and nics, got {layout!r}")
    for disk in ("root", "seed"):
        spec = layout.get(disk)
        if not isinstance(spec, dict):
            raise AnsibleFilterError(f"{where}.{disk}: a dict with device, pci_slot and label")
        _pci_slot(spec.get("pci_slot"), f"{where}.{disk}.pci_slot")
        for key in ("device", "label"):
            if not isinstance(spec.get(key), str) or not spec[key]:
                raise AnsibleFilterError(f"{where}.{disk}.{key}: a non-empty string, "
                                         f"got {spec.get(key)!r}")
    if layout["root"]["pci_slot"] >= layout["seed"]["pci_slot"]:
        raise AnsibleFilterError(f"{where}: the root disk's PCI slot must come before the "
                                 "seed's (the guest names virtio disks in PCI order)")
    nics = layout.get("nics")
    if not isinstance(nics, list) or len(nics) < 2:
        raise AnsibleFilterError(f"{where}.nics: a list of {{name, pci_slot}}, data0 and mgmt0 "
                                 f"first, got {nics!r}")
    for i, nic in enumerate(nics):
        if not isinstance(nic, dict) or not nic.get("name"):
            raise AnsibleFilterError(f"{where}.nics[{i}]: needs a name and a pci_slot")
        _pci_slot(nic.get("pci_slot"), f"{where}.nics[{i}].pci_slot")
    slots = [layout["root"]["pci_slot"], layout["seed"]["pci_slot"]] + [
        nic["pci_slot"] for nic in nics]
    if len(set(slots)) != len(slots):
        raise AnsibleFilterError(f"{where}: two devices share a PCI slot ({slots})")
    return layout


def _count(value, default: int, field: str) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number < 1:
        raise AnsibleFilterError(f"{field}: a positive integer, got {value!r}")
    return number


def qemu_argv(guest: dict, settings: dict) -> list[str]:
    """The QEMU command line of one guest (guest_vm's start phase), one argument per item.

    ``guest`` is one item of guest_vm_guests; ``settings`` holds the role's
    ``guest_vm_<key>`` values for every key of QEMU_SETTINGS (``seed_sha1`` is the sha1 of
    this guest's seed disk, ``overlay`` and ``disk_overlay`` the names of its root overlay for
    a guest booted directly and through grub). Where each disk and NIC sits on the PCI bus
    comes from ``settings.layout`` (guest_layout), which the image's recipe reads too.
    """
    if not isinstance(guest, dict) or not guest.get("name"):
        raise AnsibleFilterError(f"guest_vm_guests: an item needs a name, got {guest!r}")
    name = guest["name"]
    field = f"guest_vm_guests[{name}]"
    missing = [key for key in QEMU_SETTINGS if key not in (settings or {})]
    if missing:
        raise AnsibleFilterError(f"qemu_argv for {name}: settings lack "
                                 + ", ".join(f"{key} (guest_vm_{key})" for key in missing))
    s = settings
    layout = guest_layout(s["layout"])
    index = guest.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= 99:
        raise AnsibleFilterError(f"{field}.index: an integer from 1 to 99, got {index!r}")
    seed = str(s["seed_sha1"] or "")
    if len(seed) < 12:
        raise AnsibleFilterError(f"guest_vm_seed_sha1 of {name}: the seed disk's sha1, "
                                 f"got {seed!r}")
    boot = guest.get("boot") or "direct"
    if boot not in ("direct", "disk"):
        raise AnsibleFilterError(f"{field}.boot: direct or disk, got {boot!r}")
    netdev = guest.get("netdev") or {}
    queues = _count(netdev.get("queues") or None, 1, f"{field}.netdev.queues")
    poll_us = netdev.get("poll_us")
    io_thread = (guest.get("pin") or {}).get("io_thread")
    memory = _count(guest.get("memory_mb"), 768, f"{field}.memory_mb")
    vcpus = _count(guest.get("vcpus"), 1, f"{field}.vcpus")
    disk_boot = boot == "disk"
    folder = f"{s['state_dir']}/guests/{name}"
    root, seed_disk = layout["root"], layout["seed"]
    slots = {nic["name"]: nic["pci_slot"] for nic in layout["nics"]}

    argv = [s["qemu_binary"], "-name", name,
            "-machine", f"{s['machine']},accel={s['accel']}",
            "-cpu", "host" if s["accel"] == "kvm" else "max",
            "-m", str(memory), "-smp", str(vcpus),
            "-nodefaults", "-no-user-config", "-display", "none"]
    if io_thread is not None:
        argv += ["-object", "iothread,id=io0"]
    if disk_boot:
        # grub boots the guest: the seed's fingerprint still enters the command line, so a
        # new seed restarts it
        argv += ["-fw_cfg", f"name=opt/kvmnetlab/seed,string={seed[:12]}"]
    else:
        append = ["root=" + root["device"], "rw", "console=ttyS0", f"kvmnetlab.guest={name}",
                  f"kvmnetlab.seed={seed[:12]}"]
        if s["kernel_extra_args"]:
            append.append(s["kernel_extra_args"])
        argv += ["-kernel", s["kernel"], "-initrd", s["initrd"], "-append", " ".join(append)]
    overlay = s["disk_overlay"] if disk_boot else s["overlay"]
    root_device = ["virtio-blk-pci", "drive=root", f"addr={root['pci_slot']:#x}"]
    if disk_boot:
        root_device.append("bootindex=0")
    if io_thread is not None:
        root_device.append("iothread=io0")
    cache = f",cache={s['root_cache']}" if s["root_cache"] else ""
    argv += ["-drive", f"file={folder}/{overlay},format=qcow2,if=none,id=root{cache}",
             "-device", ",".join(root_device),
             "-drive", f"file={folder}/seed.img,format=raw,if=none,id=seed,readonly=on",
             "-device", f"virtio-blk-pci,drive=seed,addr={seed_disk['pci_slot']:#x}"]
    for nic in guest_nics(guest, "", ""):
        if nic["ifname"] not in slots:
            raise AnsibleFilterError(
                f"{field}: {nic['ifname']} has no PCI slot in guest_vm_layout.nics (at most "
                f"{len(slots) - 2} extra_nics)")
        netdev_id = {"data0": "data", "mgmt0": "mgmt"}.get(nic["ifname"], nic["ifname"])
        tap = [f"tap,id={netdev_id},ifname={nic['tap']},script=no,downscript=no"]
        device = [f"virtio-net-pci,netdev={netdev_id},mac={nic['mac']}",
                  f"addr={slots[nic['ifname']]:#x}"]
        if nic["ifname"] == "data0":
            if netdev.get("vhost"):
                tap.append("vhost=on")
            if queues > 1:
                tap.append(f"queues={queues}")
                device += ["mq=on", f"vectors={2 * queues + 2}"]
            if poll_us is not None:
                tap.append(f"poll-us={poll_us}")
        argv += ["-netdev", ",".join(tap), "-device", ",".join(device)]
    argv += ["-serial", f"file:{folder}/console.log",
             "-qmp", f"unix:{folder}/qmp.sock,server=on,wait=off",
             "-pidfile", f"{folder}/qemu.pid", "-daemonize"]
    return [str(arg) for arg in argv]


class FilterModule:
    """kvmnetlab.lab filters of the guest_vm role."""

    def filters(self):
        return {
            "guest_proxy": guest_proxy,
            "guest_ssh_options": guest_ssh_options,
            "known_hosts_name": known_hosts_name,
            "ssh_option_args": ssh_option_args,
            "guest_hostvars": guest_hostvars,
            "guest_unavailable_reason": guest_unavailable_reason,
            "guest_wait_list": guest_wait_list,
            "guest_nics": guest_nics,
            "guest_taps": guest_taps,
            "guest_networks": guest_networks,
            "guest_layout": guest_layout,
            "qemu_argv": qemu_argv,
        }
