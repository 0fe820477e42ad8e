#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disable the C-states whose exit latency exceeds a limit; a host without cpuidle says so."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cpuidle_limit
short_description: Disable the cpuidle states (C-states) slower to leave than a limit
description:
  - For every CPU and every state under
    C(/sys/devices/system/cpu/cpu*/cpuidle/state*), writes C(1) to the state's C(disable)
    file when its C(latency) (exit latency, µs) exceeds I(max_latency_us), and C(0) when it
    does not, so the result depends only on the limit (a higher limit enables states again).
  - A host without cpuidle states (a VM whose kernel has no idle driver, a kernel without
    CPU_IDLE) reports the setting as unavailable, with the reason; so does a state whose
    write the kernel refuses.
  - Reports C(changed) only when a C(disable) file changed. Supports check mode.
version_added: "0.1.0"
author: kvmnetlab
options:
  max_latency_us:
    description: Largest exit latency (µs) a state may have and stay enabled.
    type: int
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Keep only the C-states that wake within 10 µs
  kvmnetlab.lab.cpuidle_limit:
    max_latency_us: 10
"""

RETURN = r"""
setting:
  description:
    - C({requested, status, observed, reason, changed}).
    - observed maps each state (C(state2)) to C({name, latency_us, disabled_cpus}), the
      largest latency over the CPUs and the CPU list on which it is disabled afterwards.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.host_knob import (
    aggregate,
    cpuidle_states,
    format_cpulist,
    read_text,
    set_file,
)


def limit(max_latency_us, check_mode, cpu_root="/sys/devices/system/cpu"):
    """The setting entry for disabling every state slower than ``max_latency_us``."""
    states = cpuidle_states(cpu_root)
    driver = (read_text(f"{cpu_root}/cpuidle/current_driver") or "").strip()
    if not states:
        why = (f"no cpuidle states under {cpu_root}/cpu*/cpuidle"
               + (f" (idle driver: {driver})" if driver else " (no idle driver)")
               + ": this host has no C-states to limit")
        entry = aggregate([], int(max_latency_us), why)
        entry.pop("files")
        return entry
    outcomes, observed = [], {}
    for state in states:
        want = 1 if state["latency_us"] > max_latency_us else 0
        outcome = set_file(state["disable"], want, "int", check_mode)
        outcomes.append(outcome)
        seen = observed.setdefault(state["state"], {"name": state["name"], "latency_us": 0,
                                                    "disabled_cpus": set()})
        seen["latency_us"] = max(seen["latency_us"], state["latency_us"])
        if outcome["after"] == 1:
            seen["disabled_cpus"].add(state["cpu"])
    entry = aggregate(outcomes, int(max_latency_us), "")
    entry.pop("files")
    for seen in observed.values():
        seen["disabled_cpus"] = format_cpulist(seen["disabled_cpus"])
    entry["observed"] = observed
    return entry


def main():
    module = AnsibleModule(
        argument_spec={"max_latency_us": {"type": "int", "required": True}},
        supports_check_mode=True,
    )
    if module.params["max_latency_us"] < 0:
        module.fail_json(msg="max_latency_us must be 0 or more")
    setting = limit(module.params["max_latency_us"], module.check_mode)
    module.exit_json(changed=setting["changed"], setting=setting)


if __name__ == "__main__":
    main()
