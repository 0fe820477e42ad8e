#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only: is a set of kernel arguments in effect, can grub add them, do their CPUs exist."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_cmdline_info
short_description: Which kernel arguments the running kernel was booted with, and whether grub can add them
description:
  - Reads C(/proc/cmdline) and reports which of I(args) (whole C(key=value) tokens) it
    lacks, whether the host boots through grub (C(/etc/default/grub) and C(update-grub)
    present), and the CPUs the kernel isolates now (C(/sys/devices/system/cpu/isolated),
    C(nohz_full)).
  - With I(cpus), also checks that those CPUs are online and leave at least one online CPU
    for housekeeping; C(cpu_problem) says why not.
  - Changes nothing.
version_added: "0.1.0"
author: kvmnetlab
options:
  args:
    description: Kernel arguments (C(isolcpus=2-3)) to look for.
    type: list
    elements: str
    default: []
  cpus:
    description: CPU list the arguments dedicate (checked against the online CPUs).
    type: str
  grub_defaults:
    description: grub's defaults file; its absence means the host does not boot through grub.
    type: path
    default: /etc/default/grub
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Is the isolation in effect?
  kvmnetlab.lab.kernel_cmdline_info:
    args: [isolcpus=2-3, nohz_full=2-3, rcu_nocbs=2-3]
    cpus: 2-3
  register: cmdline
"""

RETURN = r"""
cmdline:
  description: The running kernel's command line.
  returned: always
  type: str
missing:
  description: Items of I(args) that /proc/cmdline lacks.
  returned: always
  type: list
  elements: str
grub:
  description: C(ok) (bool), C(defaults) (path, or null when absent), C(update_grub) (path or null).
  returned: always
  type: dict
online:
  description: Online CPUs (a CPU list).
  returned: always
  type: str
isolated:
  description: Content of /sys/devices/system/cpu/isolated (C("") when none).
  returned: always
  type: str
nohz_full:
  description: Content of /sys/devices/system/cpu/nohz_full (C("") when none or absent).
  returned: always
  type: str
cpu_problem:
  description: Why I(cpus) cannot be dedicated on this host (C("") when they can).
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.host_knob import (
    format_cpulist,
    parse_cpulist,
    read_text,
)


def cpu_problem(cpus, online):
    """Why the CPU list ``cpus`` cannot be dedicated given the ``online`` list ("" if it can)."""
    try:
        wanted = parse_cpulist(cpus)
    except ValueError as exc:
        return str(exc)
    have = parse_cpulist(online)
    if not wanted:
        return "the CPU list is empty"
    absent = wanted - have
    if absent:
        return (f"CPU {format_cpulist(absent)} not online on this host "
                f"(online: {format_cpulist(have)})")
    if not have - wanted:
        return (f"dedicating CPU {format_cpulist(wanted)} leaves no online CPU for "
                f"housekeeping (online: {format_cpulist(have)})")
    return ""


def info(args, cpus, grub_defaults, update_grub, root=""):
    cmdline = (read_text(f"{root}/proc/cmdline") or "").strip()
    tokens = cmdline.split()
    online = (read_text(f"{root}/sys/devices/system/cpu/online") or "").strip()
    defaults = f"{root}{grub_defaults}"
    grub = {"defaults": grub_defaults if os.path.isfile(defaults) else None,
            "update_grub": update_grub}
    grub["ok"] = bool(grub["defaults"] and grub["update_grub"])
    return {
        "cmdline": cmdline,
        "missing": [arg for arg in args if arg not in tokens],
        "grub": grub,
        "online": online,
        "isolated": (read_text(f"{root}/sys/devices/system/cpu/isolated") or "").strip(),
        # an empty nohz_full mask reads "(null)" on some kernels
        "nohz_full": (read_text(f"{root}/sys/devices/system/cpu/nohz_full") or "").strip()
        .replace("(null)", ""),
        "cpu_problem": cpu_problem(cpus, online) if cpus else "",
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "args": {"type": "list", "elements": "str", "default": []},
            "cpus": {"type": "str"},
            "grub_defaults": {"type": "path", "default": "/etc/default/grub"},
        },
        supports_check_mode=True,
    )
    update_grub = module.get_bin_path("update-grub", opt_dirs=["/usr/sbin", "/sbin"])
    module.exit_json(changed=False, **info(module.params["args"], module.params["cpus"],
                                           module.params["grub_defaults"], update_grub))


if __name__ == "__main__":
    main()
