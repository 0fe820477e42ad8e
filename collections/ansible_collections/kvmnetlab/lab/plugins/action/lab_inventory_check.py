# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Refuse a real lab's inventory that lacks a required variable, before anything runs."""

from __future__ import annotations

DOCUMENTATION = r"""
module: lab_inventory_check
short_description: Check that a real lab's inventory names everything the lab needs
description:
  - Runs on the controller and contacts no host. Reads, through the play's C(hostvars),
    the variables a real lab needs on every host of C(lab_hypervisor) and C(bare_metal),
    and the controller's C(campaign_hypervisor) and C(campaign_endpoints), and checks them
    with C(collectors.inventory_check.check_real_lab).
  - Fails with one line per missing or malformed variable, naming the inventory, the host
    (and its group) or group the variable belongs to, and the variable.
  - Required on each KVM host (group lab_hypervisor) C(ansible_host),
    C(guest_vm_data_bridge), C(guest_vm_mgmt_bridge), C(guest_vm_guests) (each with name,
    index, data_ip in 198.18.0.0/15, mgmt_ip); C(guest_vm_netns), if set, empty and
    C(guest_vm_mgmt_access), if set, C(jump). On each bare-metal host C(ansible_host) and
    C(kvmnetlab_data_interface). For the lab C(campaign_hypervisor) (a host of
    lab_hypervisor) and C(campaign_endpoints) (hosts of the inventory or configured guests,
    addresses in 198.18.0.0/15).
  - Read-only; supports check mode.
options:
  inventory:
    description: Inventory source(s) named in messages (C(ansible_inventory_sources)).
    type: list
    elements: str
    required: true
  base_dir:
    description: Sources inside this folder are named relative to it (the checkout).
    type: path
author: kvmnetlab developers
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

from ansible.errors import AnsibleError
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


def _read(hostvars, host, names, plain):
    """The variables ``names`` of ``host`` as plain data; unset ones are absent."""
    found = {}
    variables = hostvars[host]
    for name in names:
        if name not in variables:
            continue
        try:
            found[name] = plain(variables[name])
        except AnsibleError as exc:  # a template that cannot be evaluated counts as malformed
            found[name] = f"<cannot be evaluated: {exc}>"
    return found


class ActionModule(ControllerAction):
    def act(self, args, task_vars):
        from collectors import inventory_check as check

        (sources,) = self.need(args, "inventory")
        source = check.inventory_label(sources, args.get("base_dir"))
        hostvars = task_vars["hostvars"]
        groups = {name: list(hosts) for name, hosts in task_vars["groups"].items()}
        per_host = {}
        for group, names in check.HOST_VARIABLES.items():
            for host in groups.get(group, []):
                per_host.setdefault(host, {}).update(_read(hostvars, host, names, check.plain))
        lab = _read(hostvars, task_vars["inventory_hostname"], check.LAB_VARIABLES, check.plain)
        problems = check.check_real_lab(source, groups, per_host, lab)
        checked = {group: groups.get(group, []) for group in check.HOST_VARIABLES}
        if problems:
            return {
                "failed": True, "changed": False, "problems": problems, "checked": checked,
                "msg": f"the inventory of this real lab is incomplete ({len(problems)} problem"
                       f"{'s' if len(problems) > 1 else ''}); nothing was changed:\n"
                       + "\n".join(problems),
            }
        return {"changed": False, "problems": [], "checked": checked,
                "msg": f"{source}: every required variable is set"}
