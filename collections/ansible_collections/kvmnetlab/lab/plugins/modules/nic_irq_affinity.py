#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pin the IRQs of network interfaces to a CPU list; IRQs that refuse are reported."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nic_irq_affinity
short_description: Pin every IRQ of the given network interfaces to a CPU list
description:
  - Finds the IRQs of each interface from its device's MSI/MSI-X vectors
    (C(/sys/class/net/<if>/device/msi_irqs), or the PCI function's for a virtio NIC), its
    legacy C(irq), and the lines of C(/proc/interrupts) that name the interface or its
    virtio device (C(virtio2-input.0)), and writes I(cpus) to
    C(/proc/irq/<n>/smp_affinity_list) where it differs.
  - An IRQ whose write the kernel refuses (C(EIO) for managed interrupts) is reported as
    unavailable with the reason, not as a failure; an interface that does not exist or has
    no IRQ of its own (veth, bridge) likewise.
  - An empty I(interfaces) list makes the setting unavailable, with
    I(no_interfaces_reason); nothing is read or written.
  - Reports C(changed) only when an affinity changed. Supports check mode.
version_added: "0.1.0"
author: kvmnetlab
options:
  interfaces:
    description: Network interface names.
    type: list
    elements: str
    required: true
  cpus:
    description: CPU list (C(0), C(2-3), C(0,2)) the IRQs are pinned to.
    type: str
    required: true
  no_interfaces_reason:
    description:
      - Why the setting is unavailable when I(interfaces) is empty (the host names no
        interface to pin).
    type: str
    default: no network interface given
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Data NIC interrupts on CPU 2 and 3
  kvmnetlab.lab.nic_irq_affinity:
    interfaces: [data0]
    cpus: 2-3
"""

RETURN = r"""
setting:
  description:
    - C({requested, status, observed, reason, changed}); status is C(applied), C(already),
      C(partial) (some IRQs or interfaces unavailable) or C(unavailable) (none could be set).
    - observed maps interface -> IRQ -> its CPU list afterwards.
  returned: always
  type: dict
irqs:
  description: Interface -> IRQ -> C({found_in, status, before, after, reason}).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.host_knob import (
    format_cpulist,
    nic_irqs,
    parse_cpulist,
    read_text,
    set_file,
)


def pin(interfaces, cpus, check_mode, sys_class_net="/sys/class/net", proc="/proc",
        no_interfaces_reason="no network interface given"):
    """(setting entry, per-IRQ details) for pinning ``interfaces``' IRQs to ``cpus``."""
    wanted = format_cpulist(parse_cpulist(cpus))
    if not interfaces:
        return ({"requested": {"interfaces": [], "cores": wanted}, "status": "unavailable",
                 "observed": None, "reason": no_interfaces_reason, "changed": False}, {})
    interrupts = read_text(f"{proc}/interrupts") or ""
    observed, details, reasons = {}, {}, []
    statuses = set()
    changed = False
    for iface in interfaces:
        details[iface] = {}
        if not read_text(f"{sys_class_net}/{iface}/ifindex"):
            reasons.append(f"{iface}: no such interface on this host")
            statuses.add("unavailable")
            continue
        irqs = nic_irqs(iface, sys_class_net, interrupts)
        if not irqs:
            reasons.append(f"{iface}: no IRQ of its own (a virtual interface?)")
            statuses.add("unavailable")
            continue
        observed[iface] = {}
        for irq, source in irqs:
            outcome = set_file(f"{proc}/irq/{irq}/smp_affinity_list", wanted, "cpulist",
                               check_mode)
            details[iface][str(irq)] = {"found_in": source, "status": outcome["status"],
                                        "before": outcome["before"], "after": outcome["after"],
                                        "reason": outcome["reason"]}
            observed[iface][str(irq)] = outcome["after"]
            statuses.add(outcome["status"])
            changed = changed or outcome["changed"]
            if outcome["status"] in ("unavailable", "partial"):
                reasons.append(f"{iface} IRQ {irq}: {outcome['reason']}")
    if statuses <= {"unavailable"}:
        status = "unavailable"
    elif statuses & {"unavailable", "partial"}:
        status = "partial"
    elif "applied" in statuses:
        status = "applied"
    else:
        status = "already"
    setting = {"requested": {"interfaces": list(interfaces), "cores": wanted}, "status": status,
               "observed": observed or None, "reason": "; ".join(reasons), "changed": changed}
    return setting, details


def main():
    module = AnsibleModule(
        argument_spec={
            "interfaces": {"type": "list", "elements": "str", "required": True},
            "cpus": {"type": "str", "required": True},
            "no_interfaces_reason": {"type": "str", "default": "no network interface given"},
        },
        supports_check_mode=True,
    )
    try:
        parse_cpulist(module.params["cpus"])
    except ValueError as exc:
        module.fail_json(msg=f"cpus: {exc}")
    setting, details = pin(module.params["interfaces"], module.params["cpus"], module.check_mode,
                           no_interfaces_reason=module.params["no_interfaces_reason"])
    module.exit_json(changed=setting["changed"], setting=setting, irqs=details)


if __name__ == "__main__":
    main()
