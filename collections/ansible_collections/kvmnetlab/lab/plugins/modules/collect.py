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
    task, over the task's connection, and checks its sha256 (C(tar_sha256)) there; then it
    removes the run folder on the host (C(removed)).
  - Every file is written in a private run folder, created with O_EXCL and O_NOFOLLOW (a
    name that exists, or a link planted there, fails the step instead of being followed).
    The first call of a repetition on a host makes that folder with C(tempfile.mkdtemp) in
    I(base_dir); the later calls pass its path back as I(run_dir), from the first call's
    result. I(base_dir) must be a folder of the capturing user (root) with mode 0700, below
    folders no one else can write (sticky ones like /var/tmp aside); anything else (owned by
    another user, a link, open to group or others) is refused, naming the path, its owner
    and its mode. It is created, mode 0700, when absent.
options:
  base_dir:
    description: The host's private base folder of run folders.
    type: path
    default: /var/tmp/kvmnetlab
  run_dir:
    description:
      - The run folder an earlier call of this repetition made on this host (its result's
        C(run_dir)); without it, a fresh one is made in I(base_dir).
    type: path
  label:
    description: Readable part of a new run folder's name (e.g. campaign.scenario.rep.host).
    type: str
    default: ""
  steps:
    description:
      - "Each step has C(do): C(snapshot) with C(items) (each C({file, read,
        read_format}) or C({file, argv, ok_rc})); C(start) with C(argv), C(dest),
        optional C(inputs), optional C(ready) and optional C(lifetime_s) (the tool then
        runs under coreutils' C(timeout), which ends it that many seconds after its start
        if no C(stop) step has: a killed run leaves nothing running for long); C(stop) with C(dest) and optional C(signal) (INT or TERM);
        C(run) with C(argv), C(dest), optional C(inputs), C(ok_rc) (default [0]) and
        C(timeout_s) (default 600), and optional C(together): tools run at the same time
        as it ({argv, dest, ok_rc, timeout_s, offset_s}), each started C(offset_s) seconds
        after it, all waited for; C(pack) with C(files) (and optionally C(dest)).
        Every C(file), C(dest) and C(files) entry is a plain file name in the run folder;
        C({run_dir}) in an C(argv) is that folder."
    type: list
    elements: dict
    default: []
  reap:
    description:
      - Instead of steps, stop what a killed run left running on the host. Every background
        tool recorded in a run folder of I(base_dir) (its C(.meta.json) has a PID and no end)
        that still runs as the process recorded (the PID and its start time, never a name) is
        stopped like a C(stop) step; each record gets C(reaped) true. The result's C(reaped)
        lists them (C({run_dir, dest, pid, tool, stopped, problem})); C(changed) when one was
        stopped. The run folders stay (what they hold was never fetched).
    type: bool
    default: false
  fetch_to:
    description:
      - A path on the controller where the tar of the pack step is fetched to (the action
        plugin does it; the module never sees this option). The tar's sha256 is checked
        after the transfer; a mismatch fails the task.
    type: path
author: kvmnetlab developers
"""

EXAMPLES = r"""
- name: Snapshot counters and start the counter (a fresh run folder)
  kvmnetlab.lab.collect:
    base_dir: /var/tmp/kvmnetlab
    label: c1.virtio.1.kvmnl-g1
    steps:
      - do: snapshot
        items: [{file: cpu_before.proc_stat.txt, read: [/proc/stat]}]
      - {do: start, argv: [tcpdump, -i, eth1, -w, /dev/null], dest: tcpdump.txt}
  register: first

- name: Counters after the load, then pack everything for the controller
  kvmnetlab.lab.collect:
    base_dir: /var/tmp/kvmnetlab
    run_dir: "{{ first.run_dir }}"
    steps:
      - {do: stop, dest: tcpdump.txt}
      - do: snapshot
        items: [{file: cpu_after.proc_stat.txt, read: [/proc/stat]}]
      - do: pack
        files: [tcpdump.txt, tcpdump.txt.stderr, cpu_before.proc_stat.txt,
                cpu_after.proc_stat.txt]
    fetch_to: /srv/results/c1/.staging/virtio/1.kvmnl-g1.tar
"""

RETURN = r"""
run_dir:
  description: The private run folder this call wrote in (pass it as I(run_dir) to the next).
  returned: when the folder could be made or checked
  type: str
removed:
  description: The run folder removed on the host after its tar was fetched and checked.
  returned: when fetch_to is given and the fetch succeeded
  type: str
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
reaped:
  description: With I(reap), each background tool a killed run left recorded, with whether it
    was still running and was stopped.
  returned: with I(reap)
  type: list
  elements: dict
  sample: [{"run_dir": "/var/tmp/kvmnetlab/run-c1.virtio.1.h2.x1y2", "dest": "tcpdump.pcap",
            "pid": 4242, "tool": "tcpdump", "stopped": true, "problem": null}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.raw_capture import (
    capture,
    check_steps,
    reap,
)


def main():
    module = AnsibleModule(
        argument_spec={"steps": {"type": "list", "elements": "dict", "default": []},
                       "reap": {"type": "bool", "default": False},
                       "base_dir": {"type": "path", "default": "/var/tmp/kvmnetlab"},
                       "run_dir": {"type": "path"},
                       "label": {"type": "str", "default": ""},
                       "fetch_to": {"type": "path"}},
        supports_check_mode=True,
    )
    # fetch_to is the action plugin's; the module is also run without it (tests, ad hoc)
    steps = module.params["steps"]
    if module.params["reap"]:
        if module.check_mode:
            module.exit_json(changed=False, reaped=[], skipped=True)
        found = reap(module.params["base_dir"])
        module.exit_json(changed=any(r["stopped"] for r in found), reaped=found)
    problem = check_steps(steps)
    if problem:
        module.fail_json(msg=problem)
    if module.check_mode:
        module.exit_json(changed=True, files=[], missing=[], pids={}, members={})
    p = module.params
    result = capture(steps, p["base_dir"], p["run_dir"], p["label"])
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
