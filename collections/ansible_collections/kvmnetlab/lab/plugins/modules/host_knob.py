#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set sysfs/procfs values idempotently; a knob the host lacks is reported, not fatal."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_knob
short_description: Set kernel knobs in sysfs or procfs, reporting the ones a host lacks
description:
  - Writes each knob's I(value) to every file its I(path) names (a path or a glob, e.g.
    one file per CPU) unless the file already holds it, then reads the file back. All
    knobs are handled in one round trip.
  - Values are compared the way the kernel shows them (I(compare)), as C(exact) text,
    C(selected) (the bracketed choice of files such as
    C(/sys/kernel/mm/transparent_hugepage/enabled)), C(int), or C(cpulist) (C(0-1) equals
    C(0,1)).
  - A path that matches nothing, a read-only file and a write the kernel refuses make the
    knob C(unavailable) with the reason; the module itself does not fail for them.
  - A file that reads back something else than was written (the kernel granted fewer huge
    pages than asked) is C(partial). C(changed) is reported only when a file's value
    changed, so asking again for what the kernel cannot grant is idempotent. In check mode
    I(granted) (what an earlier run got for the same value) predicts that case.
  - A knob whose I(value) is null is left alone (status C(left)).
version_added: "0.1.0"
author: kvmnetlab
options:
  knobs:
    description: The knobs to set.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the setting, the key of the result.
        type: str
        required: true
      path:
        description: File, or glob of files, that hold the knob.
        type: str
        required: true
      value:
        description: Value to write; null leaves the knob alone.
        type: raw
      compare:
        description: How the file's content is compared with I(value).
        type: str
        choices: [exact, selected, int, cpulist]
        default: exact
      granted:
        description: What the kernel kept for this same I(value) at an earlier run (check mode only).
        type: raw
      missing_reason:
        description: Reason reported when I(path) matches no file (default names the path).
        type: str
        default: ""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Performance governor, no THP, 512 huge pages of 2 MiB
  kvmnetlab.lab.host_knob:
    knobs:
      - name: cpufreq_governor
        path: /sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor
        value: performance
        missing_reason: no CPU frequency scaling on this host
      - name: thp
        path: /sys/kernel/mm/transparent_hugepage/enabled
        value: never
        compare: selected
      - name: hugepages_2m
        path: /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
        value: 512
        compare: int
"""

RETURN = r"""
settings:
  description:
    - Knob name -> C({requested, status, observed, reason, changed, files}).
    - status is C(applied), C(already), C(partial), C(unavailable) or C(left); observed is
      the value every file holds afterwards (path -> value when they differ); files maps
      each file to its own status.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.host_knob import set_knob


def main():
    module = AnsibleModule(
        argument_spec={
            "knobs": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "path": {"type": "str", "required": True},
                    "value": {"type": "raw"},
                    "compare": {"type": "str", "default": "exact",
                                "choices": ["exact", "selected", "int", "cpulist"]},
                    "granted": {"type": "raw"},
                    "missing_reason": {"type": "str", "default": ""},
                },
            },
        },
        supports_check_mode=True,
    )
    settings = {}
    for knob in module.params["knobs"]:
        if knob["name"] in settings:
            module.fail_json(msg=f"knobs: {knob['name']} is named twice")
        settings[knob["name"]] = set_knob(
            knob["name"], knob["path"], knob["value"], knob["compare"], module.check_mode,
            knob["granted"], knob["missing_reason"])
    module.exit_json(changed=any(s["changed"] for s in settings.values()), settings=settings)


if __name__ == "__main__":
    main()
