#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only probe: can this host load kernel modules, and is pf_ring loaded."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pf_ring_probe
short_description: Tell whether a host can load kernel modules and whether pf_ring is loaded
description:
  - Reads C(/proc/modules), C(/proc/sys/kernel/modules_disabled) and the kernel configuration
    (C(/boot/config-<release>) or C(/proc/config.gz)) to decide whether the running kernel can
    load modules at all, and gives the reason when it cannot.
  - Reports whether a module (by default C(pf_ring)) is loaded, with the current values of
    its parameters from C(/sys/module/<name>/parameters).
  - Changes nothing; runs the same in check mode.
version_added: "0.1.0"
author: kvmnetlab
options:
  name:
    description: Module whose load state and parameters are reported.
    type: str
    default: pf_ring
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Probe module support
  kvmnetlab.lab.pf_ring_probe:
  register: pf_ring_probe

- name: Stop when modules cannot be loaded
  ansible.builtin.fail:
    msg: "{{ pf_ring_probe.reason }}"
  when: not pf_ring_probe.can_load_modules
"""

RETURN = r"""
running_kernel:
  description: Release of the running kernel (C(uname -r)).
  returned: always
  type: str
  sample: 6.1.0-37-cloud-amd64
proc_modules:
  description: Whether C(/proc/modules) exists (it is absent when CONFIG_MODULES is off).
  returned: always
  type: bool
modules_disabled:
  description: Value of C(/proc/sys/kernel/modules_disabled) as a bool, null when absent.
  returned: always
  type: bool
config_modules:
  description: CONFIG_MODULES from the kernel configuration (C(y) or C(n)), null when unknown.
  returned: always
  type: str
config_source:
  description: File the kernel configuration was read from, null when none was found.
  returned: always
  type: str
can_load_modules:
  description: Whether the running kernel can load modules.
  returned: always
  type: bool
reason:
  description: Why modules cannot be loaded; empty when they can.
  returned: always
  type: str
loaded:
  description: Whether module I(name) is in C(/proc/modules).
  returned: always
  type: bool
params:
  description: Current parameters of module I(name) (empty when it is not loaded).
  returned: always
  type: dict
  sample: {"min_num_slots": "4096", "enable_tx_capture": "1"}
"""

import gzip
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.host_files import read_text


def config_modules_value(text):
    """Return 'y', 'n' or None for CONFIG_MODULES in a kernel .config text."""
    for line in text.splitlines():
        line = line.strip()
        if line == "# CONFIG_MODULES is not set":
            return "n"
        if line.startswith("CONFIG_MODULES="):
            return "y" if line.split("=", 1)[1].strip() == "y" else "n"
    return None


def read_kernel_config(root, release):
    """Return (CONFIG_MODULES value, source file) from /boot/config-<release> or /proc/config.gz."""
    boot = os.path.join(root, "boot", "config-" + release)
    text = read_text(boot)
    if text is not None:
        return config_modules_value(text), boot
    procgz = os.path.join(root, "proc", "config.gz")
    try:
        with gzip.open(procgz, "rt", encoding="utf-8", errors="replace") as handle:
            return config_modules_value(handle.read()), procgz
    except OSError:
        return None, None


def loaded_modules(text):
    """Return the set of module names listed in a /proc/modules text."""
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def module_params(root, name):
    """Return the readable parameters of a loaded module from sysfs."""
    folder = os.path.join(root, "sys", "module", name, "parameters")
    params = {}
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return params
    for entry in entries:
        value = read_text(os.path.join(folder, entry))
        if value is not None:
            params[entry] = value.strip()
    return params


def probe(root, release, name):
    """Gather everything the module returns; pure apart from reading files under ``root``."""
    proc_modules_text = read_text(os.path.join(root, "proc", "modules"))
    disabled_text = read_text(os.path.join(root, "proc", "sys", "kernel", "modules_disabled"))
    modules_disabled = None if disabled_text is None else disabled_text.strip() != "0"
    config_modules, config_source = read_kernel_config(root, release)

    reason = ""
    if config_modules == "n":
        reason = (
            f"the running kernel {release} cannot load modules: it was built without module "
            f"support (CONFIG_MODULES is not set in {config_source})"
        )
    elif proc_modules_text is None:
        reason = (
            f"the running kernel {release} cannot load modules: it has no module support "
            "(/proc/modules is absent)"
        )
    elif modules_disabled:
        reason = (
            f"the running kernel {release} cannot load modules: module loading is disabled "
            "(/proc/sys/kernel/modules_disabled is 1 until reboot)"
        )
    name_key = name.replace("-", "_")
    loaded = proc_modules_text is not None and name_key in loaded_modules(proc_modules_text)
    return {
        "running_kernel": release,
        "proc_modules": proc_modules_text is not None,
        "modules_disabled": modules_disabled,
        "config_modules": config_modules,
        "config_source": config_source,
        "can_load_modules": not reason,
        "reason": reason,
        "loaded": loaded,
        "params": module_params(root, name_key) if loaded else {},
    }


def main():
    module = AnsibleModule(
        argument_spec={"name": {"type": "str", "default": "pf_ring"}},
        supports_check_mode=True,
    )
    result = probe("/", os.uname().release, module.params["name"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
