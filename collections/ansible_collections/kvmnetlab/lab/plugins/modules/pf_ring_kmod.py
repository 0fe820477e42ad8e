#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load (or unload) a kernel module with parameters, reporting changes truthfully."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pf_ring_kmod
short_description: Load or unload a kernel module such as pf_ring with given parameters
description:
  - Loads module I(name) with C(modprobe) when it is not in C(/proc/modules), passing
    I(params) on the command line; unloads it with C(modprobe -r) for I(state=absent).
  - When the module is loaded but a parameter readable in C(/sys/module/<name>/parameters)
    differs from I(params), reloads it (unload, then load) if I(reload) is true, and fails
    otherwise. Parameters that sysfs does not expose cannot be compared and are listed in
    C(unverified_params).
  - Reports C(changed) only when it loaded, reloaded or unloaded the module. Supports check
    mode.
  - Fails with a clear message when the running kernel has no module support.
version_added: "0.1.0"
author: kvmnetlab
options:
  name:
    description: Module name.
    type: str
    default: pf_ring
  params:
    description: Module parameters (name -> value).
    type: dict
    default: {}
  state:
    description: Whether the module should be loaded.
    type: str
    choices: [present, absent]
    default: present
  reload:
    description: Reload a loaded module whose parameters differ from I(params).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Load pf_ring with its parameters
  kvmnetlab.lab.pf_ring_kmod:
    name: pf_ring
    params:
      min_num_slots: 4096
      enable_tx_capture: 1
"""

RETURN = r"""
loaded:
  description: Whether the module is loaded after the task (or would be, in check mode).
  returned: always
  type: bool
action:
  description: What was done, C(none), C(load), C(reload) or C(unload).
  returned: always
  type: str
params:
  description: Parameters read from sysfs after the task.
  returned: always
  type: dict
mismatched_params:
  description: Parameters whose sysfs value differed from I(params) before the task.
  returned: always
  type: list
  elements: str
unverified_params:
  description: Requested parameters that sysfs does not expose.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

_TRUE = {"1", "y", "yes", "true", "on"}
_FALSE = {"0", "n", "no", "false", "off"}


def same_value(wanted, actual):
    """Compare a requested parameter value with the text sysfs shows for it."""
    wanted_text = str(wanted).strip().lower()
    actual_text = str(actual).strip().lower()
    if isinstance(wanted, bool):
        wanted_text = "1" if wanted else "0"
    if wanted_text == actual_text:
        return True
    return any(wanted_text in group and actual_text in group for group in (_TRUE, _FALSE))


def compare_params(wanted, actual):
    """Return (mismatched, unverified) parameter names, each sorted."""
    mismatched = sorted(
        k for k, v in wanted.items() if k in actual and not same_value(v, actual[k])
    )
    unverified = sorted(k for k in wanted if k not in actual)
    return mismatched, unverified


def param_args(params):
    """Render params as modprobe arguments, in a stable order."""
    rendered = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, bool):
            value = 1 if value else 0
        rendered.append(f"{key}={value}")
    return rendered


def is_loaded(name):
    with open("/proc/modules", encoding="utf-8") as handle:
        return any(line.split()[0] == name for line in handle if line.strip())


def sysfs_params(name):
    folder = os.path.join("/sys/module", name, "parameters")
    params = {}
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return params
    for entry in entries:
        try:
            with open(os.path.join(folder, entry), encoding="utf-8") as handle:
                params[entry] = handle.read().strip()
        except OSError:
            continue
    return params


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "default": "pf_ring"},
            "params": {"type": "dict", "default": {}},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "reload": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    name = module.params["name"].replace("-", "_")
    wanted = module.params["params"]
    state = module.params["state"]

    if not os.path.exists("/proc/modules"):
        module.fail_json(
            msg=f"cannot manage module {name}: the running kernel {os.uname().release} has no "
            "module support (/proc/modules is absent)"
        )
    modprobe = module.get_bin_path("modprobe", required=True)

    loaded = is_loaded(name)
    mismatched, unverified = compare_params(wanted, sysfs_params(name)) if loaded else ([], [])
    action = "none"
    if state == "absent" and loaded:
        action = "unload"
    elif state == "present" and not loaded:
        action = "load"
    elif state == "present" and mismatched:
        if not module.params["reload"]:
            module.fail_json(
                msg=f"module {name} is loaded with other parameters ({', '.join(mismatched)}) "
                "and reload is false",
                mismatched_params=mismatched,
            )
        action = "reload"

    if action != "none" and not module.check_mode:
        if action in ("unload", "reload"):
            rc, out, err = module.run_command([modprobe, "-r", name])
            if rc != 0:
                module.fail_json(
                    msg=f"modprobe -r {name} failed: {err.strip() or out.strip()}",
                    rc=rc,
                    stdout=out,
                    stderr=err,
                )
        if action in ("load", "reload"):
            rc, out, err = module.run_command([modprobe, name, *param_args(wanted)])
            if rc != 0:
                module.fail_json(
                    msg=f"modprobe {name} failed: {err.strip() or out.strip()}",
                    rc=rc,
                    stdout=out,
                    stderr=err,
                )
        loaded = is_loaded(name)
    elif module.check_mode:
        loaded = state == "present"

    module.exit_json(
        changed=action != "none",
        action=action,
        loaded=loaded,
        params=sysfs_params(name) if loaded else {},
        mismatched_params=mismatched,
        unverified_params=unverified,
    )


if __name__ == "__main__":
    main()
