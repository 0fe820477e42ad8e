#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load or unload a kernel module with modprobe; a kernel that cannot is reported, not fatal."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_module
short_description: Load or unload a kernel module, reporting a kernel that cannot
description:
  - Loads I(name) with C(modprobe) when it is not in C(/proc/modules) (I(state=present)),
    or unloads it with C(modprobe -r) (I(state=absent)). A module built into the kernel
    (C(/sys/module/<name>) without an entry in C(/proc/modules)) counts as loaded.
  - A kernel without loadable module support, with module loading disabled, or without
    the module, and a modprobe that fails (a module in use) make the setting
    C(unavailable) with the reason; the module itself does not fail for them.
  - Reports C(changed) only when it loaded or unloaded the module. In check mode,
    C(modprobe --dry-run) tells whether loading would work.
version_added: "0.1.0"
author: kvmnetlab
options:
  name:
    description: Module name (C(vhost_net)); dashes and underscores are equivalent.
    type: str
    required: true
  state:
    description: Whether the module should be loaded.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: vhost-net for the guests' virtio NICs
  kvmnetlab.lab.kernel_module:
    name: vhost_net
"""

RETURN = r"""
setting:
  description:
    - C({requested, status, observed, reason, changed}); status C(applied), C(already) or
      C(unavailable); observed is C(loaded), C(built-in) or C(not loaded).
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.host_knob import read_text


def module_state(name, proc="/proc", sys_module="/sys/module"):
    """``loaded``, ``built-in``, ``not loaded`` or None (no loadable module support)."""
    modules = read_text(f"{proc}/modules")
    if modules is not None and any(line.split()[0] == name
                                   for line in modules.splitlines() if line.strip()):
        return "loaded"
    if os.path.isdir(f"{sys_module}/{name}") and not os.path.exists(
            f"{sys_module}/{name}/initstate"):
        return "built-in"
    return "not loaded" if modules is not None else None


def manage(name, state, check_mode, run, proc="/proc", sys_module="/sys/module"):
    """The setting entry; ``run(argv)`` runs modprobe and returns (rc, stdout, stderr)."""
    name = name.replace("-", "_")
    entry = {"requested": state == "present", "status": "unavailable", "observed": None,
             "reason": "", "changed": False}
    before = module_state(name, proc, sys_module)
    entry["observed"] = before
    if before is None:
        entry["reason"] = (f"the running kernel ({os.uname().release}) cannot load modules "
                           f"({proc}/modules is absent)")
        return entry
    if (state == "present") == (before in ("loaded", "built-in")):
        entry["status"] = "already"
        return entry
    if before == "built-in":
        entry["reason"] = f"{name} is built into the kernel and cannot be unloaded"
        return entry
    if state == "present" and (read_text(f"{proc}/sys/kernel/modules_disabled") or "").strip() \
            == "1":
        entry["reason"] = f"module loading is disabled ({proc}/sys/kernel/modules_disabled is 1)"
        return entry
    argv = ["modprobe", *(["--dry-run"] if check_mode else []),
            *(["-r"] if state == "absent" else []), name]
    rc, out, err = run(argv)
    if rc != 0:
        entry["reason"] = f"{' '.join(argv)} failed: {(err or out).strip() or f'exit {rc}'}"
        return entry
    if check_mode:
        entry.update(status="applied", changed=True,
                     observed="loaded" if state == "present" else "not loaded")
        return entry
    after = module_state(name, proc, sys_module)
    entry["observed"] = after
    if (state == "present") == (after in ("loaded", "built-in")):
        entry.update(status="applied", changed=True)
    else:
        entry["reason"] = f"{' '.join(argv)} succeeded but {name} is {after}"
        entry["changed"] = after != before
    return entry


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    modprobe = module.get_bin_path("modprobe", opt_dirs=["/usr/sbin", "/sbin"])

    def run(argv):
        if not modprobe:
            return 127, "", "modprobe is not installed"
        return module.run_command([modprobe, *argv[1:]])

    setting = manage(module.params["name"], module.params["state"], module.check_mode, run)
    module.exit_json(changed=setting["changed"], setting=setting)


if __name__ == "__main__":
    main()
