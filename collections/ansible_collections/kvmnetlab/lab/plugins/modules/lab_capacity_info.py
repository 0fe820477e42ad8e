#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only: a hypervisor's available memory, online cores and running guests."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_capacity_info
short_description: A hypervisor's available memory, online cores and running QEMU guests
description:
  - Reads, on the hypervisor itself, C(MemAvailable) from C(/proc/meminfo) (in MiB), the
    number of online cores, and which guests of I(guests_dir) run already (a C(qemu.pid)
    in the guest's folder naming a live process), whose memory is already spent.
  - The preflight compares these numbers with what the campaign's scenarios need
    (C(kvmnetlab.capacity.problems), on the controller) and refuses, with the numbers,
    guests and containers beyond what the hypervisor can hold (playbooks/preflight.yml).
  - Fails, naming the file, when C(/proc/meminfo) has no C(MemAvailable) line.
  - Changes nothing.
version_added: "0.1.0"
author: kvmnetlab
options:
  guests_dir:
    description:
      - Folder holding one folder per guest, each with the C(qemu.pid) of a guest that was
        started; absent when no guest was ever started.
    type: path
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: What the hypervisor can still hold
  kvmnetlab.lab.lab_capacity_info:
    guests_dir: /var/lib/kvmnetlab/local/guests
  register: capacity
"""

RETURN = r"""
available_mb:
  description: MemAvailable of /proc/meminfo, in MiB.
  returned: always
  type: float
cores:
  description: Online cores (logical CPUs), C(sysconf(_SC_NPROCESSORS_ONLN)).
  returned: always
  type: int
running:
  description: Names of the guests of I(guests_dir) whose QEMU process runs, sorted.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule


def meminfo_available_mb(text, source="/proc/meminfo"):
    """MemAvailable of a /proc/meminfo text, in MiB; ValueError naming ``source`` if absent."""
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.strip() == "MemAvailable":
            fields = rest.split()
            if len(fields) == 2 and fields[1] == "kB" and fields[0].isdigit():
                return int(fields[0]) / 1024
            break
    raise ValueError(f"{source}: no 'MemAvailable: <n> kB' line")


def pid_alive(pid):
    """Whether a process ``pid`` exists (signal 0, as ``kill -0``)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def running_guests(guests_dir, alive=pid_alive):
    """Sorted names of the folders of ``guests_dir`` whose ``qemu.pid`` names a live process."""
    names = []
    try:
        entries = sorted(os.listdir(guests_dir)) if guests_dir else []
    except OSError:
        return []
    for name in entries:
        try:
            with open(os.path.join(guests_dir, name, "qemu.pid"), encoding="ascii") as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            continue
        if alive(pid):
            names.append(name)
    return names


def main():
    module = AnsibleModule(argument_spec={"guests_dir": {"type": "path"}},
                           supports_check_mode=True)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            available_mb = meminfo_available_mb(handle.read())
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot read the available memory: {exc}")
    module.exit_json(changed=False, available_mb=available_mb,
                     cores=os.sysconf("SC_NPROCESSORS_ONLN"),
                     running=running_guests(module.params["guests_dir"]))


if __name__ == "__main__":
    main()
