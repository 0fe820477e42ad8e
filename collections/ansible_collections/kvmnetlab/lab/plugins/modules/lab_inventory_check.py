#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the lab_inventory_check action plugin (plugins/action/lab_inventory_check.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_inventory_check
short_description: Check that a real lab's inventory names everything the lab needs
description:
  - Contacts no host. Reads, through the play's C(hostvars),
    the variables a real lab needs on every host of C(lab_hypervisor) and C(bare_metal),
    and the controller's C(campaign_hypervisor) and C(campaign_endpoints), and checks them
    with C(kvmnetlab.inventory_check.check_real_lab).
  - Fails with one line per missing or malformed variable, naming the inventory, the host
    (and its group) or group the variable belongs to, and the variable.
  - Required on each KVM host (group lab_hypervisor) C(ansible_host),
    C(guest_vm_data_bridge), C(guest_vm_mgmt_bridge), C(guest_vm_guests) (each with name
    of letters, digits and C(-) only, index, data_ip in 198.18.0.0/15, mgmt_ip a host address
    of the management subnet, which is the first guest's mgmt_ip with C(guest_vm_mgmt_prefix)
    bits, 24 unless set); C(guest_vm_netns), if set, empty and C(guest_vm_mgmt_access), if set,
    C(jump). On each bare-metal host C(ansible_host) and
    C(kvmnetlab_data_interface). For the lab C(campaign_hypervisor) (a host of
    lab_hypervisor) and C(campaign_endpoints) (hosts of the inventory or configured guests,
    addresses in 198.18.0.0/15).
version_added: "0.1.0"
author: kvmnetlab
extends_documentation_fragment:
  - kvmnetlab.lab.controller
options:
  inventory:
    description: Inventory source(s) named in messages (C(ansible_inventory_sources)).
    type: list
    elements: str
    required: true
  base_dir:
    description: Sources inside this folder are named relative to it (the checkout).
    type: path
attributes:
  check_mode:
    details: Read-only.
"""

EXAMPLES = r"""
- name: A real lab's inventory names everything it needs
  kvmnetlab.lab.lab_inventory_check:
    inventory: "{{ ansible_inventory_sources }}"
    base_dir: "{{ kvmnetlab_repo }}"
  when: kvmnetlab_lab_kind == 'real'
"""

RETURN = r"""
problems:
  description: One line per problem (empty when the inventory is complete).
  returned: always
  type: list
  elements: str
checked:
  description: Hosts whose variables were checked, by group.
  returned: always
  type: dict
"""
