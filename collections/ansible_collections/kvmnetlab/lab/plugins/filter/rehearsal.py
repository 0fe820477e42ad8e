# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rehearsal lab's inventory: a real lab's inventory pointed at the rehearsal machines.

Pure functions used by the rehearsal role (``kvmnetlab.lab.rehearsal_hosts``) and
unit-tested as Python. The rehearsal lab (playbooks/rehearsal.yml) boots QEMU guests that
stand in for a real lab's machines; this turns the real lab's ``hosts.yml`` (for example
``inventory/lab.example``) into the same inventory with the guests' addresses, so the
rest of that inventory (its group_vars) is applied to them unchanged.
"""

from __future__ import annotations

import copy
import ipaddress

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only when imported outside Ansible's venv
    AnsibleFilterError = ValueError  # type: ignore[assignment,misc]

# Addresses an example inventory uses so that nothing is ever contacted (RFC 5737).
DOCUMENTATION_NETS = tuple(ipaddress.ip_network(net) for net in
                           ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))


def _hosts_of(groups: dict, path: str = "all"):
    """Every (path, host name, host vars dict) under a group tree, depth first."""
    group = groups or {}
    for name, hostvars in (group.get("hosts") or {}).items():
        yield path, name, hostvars
    for child, sub in (group.get("children") or {}).items():
        yield from _hosts_of(sub or {}, f"{path}.children.{child}")


def rehearsal_hosts(example: dict, machines: dict, guests: list, *, source: str,
                    ssh_config: str, admin_user: str | None = None,
                    groups_emptied: list | None = None) -> dict:
    """The example's ``hosts.yml`` with each host pointed at its rehearsal machine.

    ``machines`` maps each host of the example to ``{machine, data_interface?}``:
    ``machine`` names a guest of ``guests`` (guest_vm_guests of the rehearsal lab), whose
    ``mgmt_ip`` becomes the host's ``ansible_host``; ``data_interface`` replaces the
    host's ``kvmnetlab_data_interface``. Every host of the example must be mapped, and no
    documentation address (192.0.2.0/24 ...) may survive. ``ssh_config`` is the SSH client
    file (key, known_hosts) every connection uses (``ansible_ssh_common_args: -F ...``).
    ``groups_emptied`` names groups whose members are dropped (e.g. ``pf_ring`` when no
    PF_RING source was given). ``source`` names the example's file in every error.
    ``admin_user``, when given, is the user the rehearsal machines make for their admin
    (guest_vm_admin_user; root has no SSH login on them): the example must log in as that
    user (``all.vars.ansible_user``, and any host's own), which stays as the example has it.
    """
    if not isinstance(example, dict) or not isinstance(example.get("all"), dict):
        raise AnsibleFilterError(f"{source}: expected a YAML inventory with a top-level 'all' group")
    by_name = {g.get("name"): g for g in guests or []}
    out = copy.deepcopy(example)
    seen = set()
    for path, host, hostvars in _hosts_of(out["all"]):
        if host not in machines:
            raise AnsibleFilterError(
                f"{source}: host {host!r} (under {path}) has no rehearsal machine; "
                f"map it in rehearsal_machines (mapped: {', '.join(sorted(machines)) or 'none'})")
        entry = machines[host] or {}
        guest = by_name.get(entry.get("machine"))
        if guest is None:
            raise AnsibleFilterError(
                f"rehearsal_machines[{host}].machine: {entry.get('machine')!r} is not a guest "
                f"of guest_vm_guests ({', '.join(sorted(n for n in by_name if n)) or 'none'})")
        hostvars = out_hostvars(out["all"], path, host)
        hostvars["ansible_host"] = guest["mgmt_ip"]
        if admin_user and hostvars.get("ansible_user", admin_user) != admin_user:
            raise AnsibleFilterError(
                f"{source}: host {host!r} logs in as {hostvars['ansible_user']!r}, but the "
                f"rehearsal machines' admin user is {admin_user!r} (guest_vm_admin_user)")
        if "kvmnetlab_data_interface" in hostvars or entry.get("data_interface"):
            if not entry.get("data_interface"):
                raise AnsibleFilterError(
                    f"rehearsal_machines[{host}].data_interface: {source} names "
                    f"kvmnetlab_data_interface for {host}; say which NIC of "
                    f"{entry['machine']} stands for it")
            hostvars["kvmnetlab_data_interface"] = entry["data_interface"]
        seen.add(host)
    unused = sorted(set(machines) - seen)
    if unused:
        raise AnsibleFilterError(
            f"rehearsal_machines: {', '.join(unused)} not in {source}")
    for group in groups_emptied or []:
        _empty_group(out["all"], group, source)
    all_vars = out["all"].setdefault("vars", {}) or {}
    out["all"]["vars"] = all_vars
    if admin_user and all_vars.get("ansible_user") != admin_user:
        raise AnsibleFilterError(
            f"{source}: all.vars.ansible_user is {all_vars.get('ansible_user')!r}, but the "
            f"rehearsal machines' admin user is {admin_user!r} (guest_vm_admin_user): "
            "the rehearsed lab logs in as the example's admin user, never as root")
    all_vars["ansible_ssh_common_args"] = f"-F {ssh_config}"
    _no_documentation_address(out, source)
    return out


def out_hostvars(root: dict, path: str, host: str) -> dict:
    """The (mutable) vars dict of ``host`` at ``path`` in ``root``; created when null."""
    group = root
    for part in path.split(".")[1:]:
        if part != "children":
            group = group["children"][part]
    if group["hosts"][host] is None:
        group["hosts"][host] = {}
    return group["hosts"][host]


def _empty_group(root: dict, name: str, source: str) -> None:
    def walk(group: dict) -> bool:
        children = group.get("children") or {}
        if name in children:
            children[name] = {"hosts": {}}
            return True
        return any(walk(sub or {}) for sub in children.values())
    if not walk(root):
        raise AnsibleFilterError(f"{source}: no group {name!r} to empty")


def _no_documentation_address(tree, source: str, where: str = "") -> None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            _no_documentation_address(value, source, f"{where}.{key}" if where else str(key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            _no_documentation_address(value, source, f"{where}[{i}]")
    elif isinstance(tree, str):
        try:
            address = ipaddress.ip_address(tree.strip())
        except ValueError:
            return
        if any(address in net for net in DOCUMENTATION_NETS):
            raise AnsibleFilterError(
                f"{source}: {where} is still the documentation address {tree}; "
                "map its host in rehearsal_machines")


class FilterModule:
    """kvmnetlab.lab filters of the rehearsal role."""

    def filters(self):
        return {"rehearsal_hosts": rehearsal_hosts}
