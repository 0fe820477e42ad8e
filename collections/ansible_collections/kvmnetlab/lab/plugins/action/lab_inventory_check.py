# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Refuse a real lab's inventory that lacks a required variable, before anything runs."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible_collections.kvmnetlab.lab.plugins.modules.lab_inventory_check import DOCUMENTATION
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
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from kvmnetlab import inventory_check as check

        source = check.inventory_label(args["inventory"], args["base_dir"])
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
