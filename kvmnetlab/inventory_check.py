"""What a real lab's inventory must name before anything runs, checked on the controller.

Pure Python over plain data: the inventory's groups, the variables of each host
that matter (as ``hostvars`` gives them, a variable that is not set is absent)
and the controller's own variables. No host is contacted. The action plugin
``kvmnetlab.lab.lab_inventory_check`` feeds it from the play (playbooks/preflight.yml).

Every problem is one line naming the inventory, the host or group the variable
belongs to, and the variable, e.g.::

    inventory/lab.example: host kvm-host (group lab_hypervisor): guest_vm_data_bridge is missing
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Lab addresses (RFC 2544 benchmarking range): measured traffic never leaves it.
LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")

HYPERVISOR_GROUP = "lab_hypervisor"
BARE_METAL_GROUP = "bare_metal"

# Variables read from each host of a group, and what each one is for (used in messages).
HOST_VARIABLES: dict[str, dict[str, str]] = {
    HYPERVISOR_GROUP: {
        "ansible_host": "the address the controller reaches this host at "
                        "(and jumps through to its guests)",
        "guest_vm_data_bridge": "the bridge on this host the guests' data NICs join",
        "guest_vm_mgmt_bridge": "the bridge on this host the guests' management NICs join "
                                "(this host has an address on it)",
        "guest_vm_guests": "the guests this host runs (name, index, data_ip, mgmt_ip)",
        "guest_vm_netns": "",
        "guest_vm_mgmt_access": "",
        "guest_vm_mgmt_prefix": "",
    },
    BARE_METAL_GROUP: {
        "ansible_host": "the address the controller reaches this host at",
        "kvmnetlab_data_interface": "the NIC on the lab's data link (e.g. enp1s0f0)",
    },
}
# Variables that must be set (the others above are checked only when set).
HOST_REQUIRED: dict[str, tuple[str, ...]] = {
    HYPERVISOR_GROUP: ("ansible_host", "guest_vm_data_bridge", "guest_vm_mgmt_bridge",
                       "guest_vm_guests"),
    BARE_METAL_GROUP: ("ansible_host", "kvmnetlab_data_interface"),
}
# Variables the controller reads for the whole lab (the campaign play runs there).
LAB_VARIABLES: dict[str, str] = {
    "campaign_hypervisor": "the host of group lab_hypervisor whose guests the campaign measures",
    "campaign_endpoints": "who measures what: {bare_metal: {sender, source_address, receiver, "
                          "target_address}, guest: {sender, source_address}}",
}
GUEST_KEYS = ("name", "index", "data_ip", "mgmt_ip")
# A guest's name is its inventory name, its host name and part of file names and of
# comma-separated lists (--limit): letters, digits and '-' only, as a host name label.
GUEST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# guest_vm_mgmt_prefix when the inventory does not set it (roles/guest_vm/defaults/main.yml)
MGMT_PREFIX = 24


def inventory_label(sources: Iterable[str] | str, base: str | None = None) -> str:
    """The inventory source(s) as a user typed them: relative to ``base`` when inside it."""
    if isinstance(sources, str):
        sources = [sources]
    labels = []
    for source in sources:
        text = str(source).rstrip("/")
        if base:
            rel = os.path.relpath(text, base)
            if not rel.startswith(".."):
                text = rel
        labels.append(text)
    return ", ".join(labels) or "inventory"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _ifname_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a Linux interface name, or None."""
    if not isinstance(value, str):
        return f"must be an interface name, got {type(value).__name__} {value!r}"
    if len(value) > 15:
        return f"{value!r} is longer than 15 characters (an interface name)"
    if any(c.isspace() or c in "/:" for c in value) or value in (".", ".."):
        return f"{value!r} is not a valid interface name"
    return None


def _address_problem(value: Any, *, lab_range: bool) -> str | None:
    """Why ``value`` is not an IPv4 address (in the lab range when asked), or None."""
    if not isinstance(value, str):
        return f"must be an IPv4 address, got {type(value).__name__} {value!r}"
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return f"{value!r} is not an IP address (give it without a prefix length)"
    if lab_range and address not in LAB_RANGE:
        return f"{value} is outside the lab range {LAB_RANGE} (RFC 2544)"
    return None


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 99


def _name_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a guest's name, or None."""
    if not isinstance(value, str):
        return f"must be a string, got {value!r}"
    if not GUEST_NAME.fullmatch(value):
        return (f"{value!r} may hold only letters, digits and '-' (a host name: at most 63 "
                "characters, not starting or ending with '-')")
    return None


def _prefix(value: Any) -> int | None:
    """guest_vm_mgmt_prefix as an int from 8 to 30 (a subnet with room for hosts), or None."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 8 <= value <= 30:
        return value
    return None


def _subnet_problem(address: str, subnet: ipaddress.IPv4Network | ipaddress.IPv6Network,
                    declared: str) -> str | None:
    """Why ``address`` is not a host address of ``subnet`` (named as ``declared``), or None."""
    ip = ipaddress.ip_address(address)
    if ip not in subnet:
        return (f"{address} is outside the management subnet {subnet} ({declared}): the "
                "guests and this host share one management bridge")
    if ip in (subnet.network_address, subnet.broadcast_address):
        return f"{address} is not a host address of the management subnet {subnet}"
    return None


class _Report:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: list[str] = []

    def add(self, where: str, variable: str, what: str) -> None:
        self.lines.append(f"{self.source}: {where}: {variable} {what}")


def _where_host(host: str, group: str) -> str:
    return f"host {host} (group {group})"


def _check_guests(report: _Report, where: str, guests: Any,
                  mgmt_prefix: int = MGMT_PREFIX) -> list[dict]:
    """Check one hypervisor's guest_vm_guests; return its well-formed entries.

    The guests' management subnet is that of the first guest's mgmt_ip with
    ``mgmt_prefix`` bits (guest_vm_mgmt_prefix): every other mgmt_ip must be in it."""
    if not isinstance(guests, list):
        report.add(where, "guest_vm_guests",
                   f"must be a list of guests, got {type(guests).__name__}")
        return []
    good = []
    seen: dict[str, dict[Any, int]] = {key: {} for key in GUEST_KEYS}
    subnet, declared = None, ""
    for number, guest in enumerate(guests):
        label = f"guest_vm_guests[{number}]"
        if not isinstance(guest, Mapping):
            report.add(where, label, f"must be a mapping, got {type(guest).__name__}")
            continue
        if _name_problem(guest.get("name")) is None:
            label = f"guest_vm_guests[{number}] ({guest['name']})"
        ok = True
        for key in GUEST_KEYS:
            if _missing(guest.get(key)):
                report.add(where, f"{label}.{key}", "is missing")
                ok = False
        if not ok:
            continue
        problems = {
            "name": _name_problem(guest["name"]),
            "index": None if _is_index(guest["index"])
            else f"must be an integer from 1 to 99, got {guest['index']!r}",
            "data_ip": _address_problem(guest["data_ip"], lab_range=True),
            "mgmt_ip": _address_problem(guest["mgmt_ip"], lab_range=False),
        }
        for key, problem in problems.items():
            if problem:
                report.add(where, f"{label}.{key}", problem)
                ok = False
        if not ok:
            continue
        if subnet is None:
            subnet = ipaddress.ip_network(f"{guest['mgmt_ip']}/{mgmt_prefix}", strict=False)
            declared = (f"{label}.mgmt_ip with guest_vm_mgmt_prefix {mgmt_prefix}")
        problem = _subnet_problem(guest["mgmt_ip"], subnet, declared)
        if problem:
            report.add(where, f"{label}.mgmt_ip", problem)
            continue
        for key in GUEST_KEYS:
            value = guest[key]
            if value in seen[key]:
                report.add(where, f"{label}.{key}",
                           f"{value!r} is also used by guest_vm_guests[{seen[key][value]}]")
                ok = False
            else:
                seen[key][value] = number
        if ok:
            good.append(dict(guest))
    return good


def _check_endpoints(report: _Report, endpoints: Any, known_hosts: set[str]) -> None:
    where = "group all"
    if not isinstance(endpoints, Mapping):
        report.add(where, "campaign_endpoints",
                   f"must be a mapping ({LAB_VARIABLES['campaign_endpoints']}), "
                   f"got {type(endpoints).__name__}")
        return
    wanted = {
        "bare_metal": (("sender", "host"), ("source_address", "address"),
                       ("receiver", "host"), ("target_address", "address")),
        "guest": (("sender", "host"), ("source_address", "address")),
    }
    for part, keys in wanted.items():
        section = endpoints.get(part)
        if not isinstance(section, Mapping):
            what = "is missing" if section is None else \
                f"must be a mapping, got {type(section).__name__}"
            report.add(where, f"campaign_endpoints.{part}", what)
            continue
        for key, kind in keys:
            name = f"campaign_endpoints.{part}.{key}"
            value = section.get(key)
            if _missing(value):
                report.add(where, name, "is missing")
            elif kind == "host":
                if not isinstance(value, str) or value not in known_hosts:
                    report.add(where, name,
                               f"names {value!r}, which is not a host of this inventory "
                               "(nor a guest of guest_vm_guests)")
            else:
                problem = _address_problem(value, lab_range=True)
                if problem:
                    report.add(where, name, problem)


def check_real_lab(source: str, groups: Mapping[str, Iterable[str]],
                   hostvars: Mapping[str, Mapping[str, Any]],
                   lab_vars: Mapping[str, Any]) -> list[str]:
    """Every problem of a real lab's inventory, one line each; empty when it is complete.

    ``groups`` maps group names to host names (Ansible's ``groups``); ``hostvars`` maps
    each host of lab_hypervisor and bare_metal to its variables (a variable not set is
    absent); ``lab_vars`` holds the controller's campaign_hypervisor and
    campaign_endpoints (absent when not set).
    """
    report = _Report(source)
    all_hosts = set(groups.get("all", []))
    for group in (HYPERVISOR_GROUP, BARE_METAL_GROUP):
        all_hosts.update(groups.get(group, []))
    hypervisors = list(groups.get(HYPERVISOR_GROUP, []))
    if not hypervisors:
        report.add(f"group {HYPERVISOR_GROUP}", "hosts",
                   "is empty: a real lab needs at least one KVM host")

    guest_owner: dict[str, str] = {}
    for group in (HYPERVISOR_GROUP, BARE_METAL_GROUP):
        for host in groups.get(group, []):
            where = _where_host(host, group)
            values = hostvars.get(host, {})
            for variable in HOST_REQUIRED[group]:
                if _missing(values.get(variable)):
                    report.add(where, variable, f"is missing: {HOST_VARIABLES[group][variable]}")
            for variable in ("guest_vm_data_bridge", "guest_vm_mgmt_bridge",
                             "kvmnetlab_data_interface"):
                if variable in HOST_VARIABLES[group] and not _missing(values.get(variable)):
                    problem = _ifname_problem(values[variable])
                    if problem:
                        report.add(where, variable, problem)
            if group != HYPERVISOR_GROUP:
                continue
            data, mgmt = values.get("guest_vm_data_bridge"), values.get("guest_vm_mgmt_bridge")
            if not _missing(data) and data == mgmt:
                report.add(where, "guest_vm_mgmt_bridge",
                           f"is the data bridge too ({data!r}): measured and management "
                           "traffic need separate bridges")
            netns = values.get("guest_vm_netns")
            if not _missing(netns):
                report.add(where, "guest_vm_netns",
                           f"must be empty on a real lab (QEMU and its taps live in the host's "
                           f"own network namespace), got {netns!r}")
            access = values.get("guest_vm_mgmt_access")
            if not _missing(access) and access != "jump":
                report.add(where, "guest_vm_mgmt_access",
                           f"must be jump on a real lab (SSH through this host with ProxyJump), "
                           f"got {access!r}")
            mgmt_prefix = MGMT_PREFIX
            if "guest_vm_mgmt_prefix" in values:
                mgmt_prefix = _prefix(values["guest_vm_mgmt_prefix"])
                if mgmt_prefix is None:
                    report.add(where, "guest_vm_mgmt_prefix",
                               "must be a prefix length from 8 to 30 (bits), got "
                               f"{values['guest_vm_mgmt_prefix']!r}")
                    continue
            if _missing(values.get("guest_vm_guests")):
                continue
            for guest in _check_guests(report, where, values["guest_vm_guests"], mgmt_prefix):
                name = guest["name"]
                if name in all_hosts:
                    report.add(where, f"guest_vm_guests ({name}).name",
                               f"{name!r} is already a host of this inventory")
                elif name in guest_owner and guest_owner[name] != host:
                    report.add(where, f"guest_vm_guests ({name}).name",
                               f"{name!r} is also a guest of {guest_owner[name]}")
                guest_owner.setdefault(name, host)

    hypervisor = lab_vars.get("campaign_hypervisor")
    if _missing(hypervisor):
        report.add("group all", "campaign_hypervisor",
                   f"is missing: {LAB_VARIABLES['campaign_hypervisor']}")
    elif hypervisor not in hypervisors:
        report.add("group all", "campaign_hypervisor",
                   f"names {hypervisor!r}, which is not a host of group {HYPERVISOR_GROUP} "
                   f"(its hosts: {', '.join(hypervisors) or 'none'})")
    endpoints = lab_vars.get("campaign_endpoints")
    if _missing(endpoints):
        report.add("group all", "campaign_endpoints",
                   f"is missing: {LAB_VARIABLES['campaign_endpoints']}")
    else:
        _check_endpoints(report, endpoints, all_hosts | set(guest_owner))
    return report.lines


def plain(value: Any) -> Any:
    """A deep copy made of plain dicts, lists, str, int, float, bool and None."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
