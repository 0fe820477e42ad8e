#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one host's share of a repetition's capture phase in a single round trip."""

from __future__ import annotations

DOCUMENTATION = r"""
module: collect
short_description: One host's capture steps of a phase, in order, in one round trip
description:
  - Runs an ordered list of capture steps on the host and keeps everything verbatim in
    raw files; nothing is parsed here. Steps are
    C(snapshot) (read counter files or run short commands into files),
    C(run) (run a tool to its end, stdout in I(dest), stderr beside it, its start, end and
    exit in I(dest).meta.json, after writing its optional C(inputs); an exit outside
    C(ok_rc) or a C(timeout_s) overrun fails the step),
    C(start) (start a capture tool in the background, PID in I(dest).meta.json, after
    writing its optional C(inputs), file name -> content, into I(dest)'s folder),
    C(stop) (signal it by that PID, wait for its closing statistics) and
    C(pack) (one uncompressed tar of the named files with each member's sha256).
  - Grouping the steps keeps Ansible round trips out of the measurement and makes a slow
    management path (a guest under software emulation) cost one connection per phase.
  - Every C(stop) and C(pack) step is attempted even when an earlier step failed, so what
    was captured comes back with the failure.
  - With I(fetch_to), the action plugin brings the packed tar to the controller in the same
    task, over the task's connection, and checks its sha256 (C(tar_sha256)) there.
options:
  steps:
    description:
      - "Each step has C(do): C(snapshot) with C(dir) and C(items) (each C({file, read,
        read_format}) or C({file, argv, ok_rc})); C(start) with C(argv), C(dest) and
        optional C(inputs); C(stop) with C(dest) and optional C(signal) (INT or TERM);
        C(run) with C(argv), C(dest), optional C(inputs), C(ok_rc) (default [0]) and
        C(timeout_s) (default 600), and optional C(together): tools run at the same time
        as it ({argv, dest, ok_rc, timeout_s, offset_s}), each started C(offset_s) seconds
        after it, all waited for; C(pack) with C(dir), C(files) and C(dest)."
    type: list
    elements: dict
    required: true
  fetch_to:
    description:
      - A path on the controller where the tar of the pack step is fetched to (the action
        plugin does it; the module never sees this option). The tar's sha256 is checked
        after the transfer; a mismatch fails the task.
    type: path
author: kvmnetlab developers
"""

EXAMPLES = r"""
- name: Counters after the load, then pack everything for the controller
  kvmnetlab.lab.collect:
    steps:
      - {do: stop, dest: /var/tmp/kvmnetlab/c1/virtio/1/kvmnl-g1/tcpdump.txt}
      - do: snapshot
        dir: /var/tmp/kvmnetlab/c1/virtio/1/kvmnl-g1
        items: [{file: cpu_after.proc_stat.txt, read: [/proc/stat]}]
      - do: pack
        dir: /var/tmp/kvmnetlab/c1/virtio/1/kvmnl-g1
        files: [tcpdump.txt, tcpdump.txt.stderr, cpu_after.proc_stat.txt]
        dest: /var/tmp/kvmnetlab/c1/virtio/1/kvmnl-g1.tar
"""

RETURN = r"""
files:
  description: Raw files written by snapshot steps.
  returned: always
  type: list
  elements: str
missing:
  description: Snapshot items whose files did not exist on this host.
  returned: always
  type: list
  elements: str
pids:
  description: dest -> PID of every tool started.
  returned: always
  type: dict
members:
  description: For the pack step, packed file name -> sha256.
  returned: always
  type: dict
tar:
  description: Path of the tar written by the pack step.
  returned: when a pack step ran
  type: str
tar_sha256:
  description: sha256 of that tar, as written on the host.
  returned: when a pack step ran
  type: str
fetched:
  description: Where the tar was fetched to on the controller (I(fetch_to)).
  returned: when fetch_to is given and a pack step ran
  type: str
rc:
  description: Exit code of the last C(run) step's tool.
  returned: when a run step ran
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.raw_capture import (
    check_steps,
    run_steps,
)


def main():
    module = AnsibleModule(
        argument_spec={"steps": {"type": "list", "elements": "dict", "required": True},
                       "fetch_to": {"type": "path"}},
        supports_check_mode=True,
    )
    # fetch_to is the action plugin's; the module is also run without it (tests, ad hoc)
    steps = module.params["steps"]
    problem = check_steps(steps)
    if problem:
        module.fail_json(msg=problem)
    if module.check_mode:
        module.exit_json(changed=True, files=[], missing=[], pids={}, members={})
    result = run_steps(steps)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
