#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the scenario_resolve action plugin (plugins/action/scenario_resolve.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: scenario_resolve
short_description: Map requested scenario knobs to what the hosts of this lab can honour
description:
  - Turns each host's capability document (from kvmnetlab.lab.lab_capabilities_info, run
    on that host) and the facts other roles set on it (C(guest_vm_accel),
    C(guest_vm_accel_reason), C(guest_vm_unavailable_reason) on a hypervisor;
    C(pf_ring_unavailable_reason)) into a per-host profile, resolves every scenario against
    the hosts it runs on (C(kvmnetlab.resolve.resolve_lab)), records the profiles,
    resolved knobs, substitutions and status in the manifest, marks the runs of scenarios
    that cannot run, and returns the runs still to do.
  - The running guests are the hosts of group I(guest_group), each with the hostvars
    C(kvmnetlab_guest_hypervisor) and C(kvmnetlab_guest_netdev) that roles/guest_vm sets.
version_added: "0.1.0"
author: kvmnetlab
extends_documentation_fragment:
  - kvmnetlab.lab.controller
  - kvmnetlab.lab.controller.campaign_dir
options:
  probes:
    description: "Registered loop results of lab_capabilities_info over
      capability_probe_plan (item: C({host, ...}))."
    type: list
    elements: dict
    required: true
  endpoints:
    description: "The campaign's endpoints: C({bare_metal: {sender, receiver, ...},
      guest: {sender, ...}})."
    type: dict
    required: true
  hypervisor:
    description: The hypervisor guests run on unless a guest names its own.
    type: str
    required: true
  declared:
    description: Capabilities the lab declares rather than probes.
    type: dict
    default: {}
  guest_group:
    description: Inventory group of the running guests.
    type: str
    default: guests
  container_group:
    description:
      - Inventory group of the running containers (for scenarios with virtualization
        C(container)), each with the hostvars C(kvmnetlab_container_hypervisor) and
        C(kvmnetlab_container_runtime) that roles/container_lab sets; the hypervisor's
        C(container_lab_reason) says why none runs.
    type: str
    default: containers
attributes:
  check_mode:
    details: Resolves the same and reports whether the manifest would change; it is not written.
"""

EXAMPLES = r"""
- name: Resolve the scenarios against the hosts' capabilities
  kvmnetlab.lab.scenario_resolve:
    campaign_dir: "{{ campaign_started.campaign.dir }}"
    probes: "{{ campaign_capability_probe.results }}"
    endpoints: "{{ campaign_endpoints }}"
    hypervisor: "{{ campaign_hypervisor }}"
    declared: {legacy_vpf_ring: false, passthrough: false, dedicated_io_core: false}
  register: campaign_resolution
"""

RETURN = r"""
scenarios:
  description: "Scenario -> C({resolved, substitutions, status, reason})."
  returned: always
  type: dict
todo:
  description: The pending runs with their resolved knobs.
  returned: always
  type: list
  elements: dict
profiles:
  description: Host -> profile.
  returned: always
  type: dict
pf_ring_hosts:
  description: Host -> whether pf_ring.ko is loaded there.
  returned: always
  type: dict
tool_versions:
  description: "Tool -> C({host: version})."
  returned: always
  type: dict
"""
