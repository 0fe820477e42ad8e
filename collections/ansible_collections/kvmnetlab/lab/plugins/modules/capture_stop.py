#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stop a capture started in the background, by its PID, and record how it ended."""

from __future__ import annotations

DOCUMENTATION = r"""
module: capture_stop
short_description: Stop a background capture by PID and record its end
description:
  - Sends I(signal) to the process started by M(kvmnetlab.lab.capture) with
    I(background=true), waits for it to print its closing statistics and exit, and adds
    its exit code and end time to I(dest).meta.json. Only the PID recorded there is
    signalled, and only if it is still the same program.
options:
  dest:
    description: The I(dest) the capture was started with.
    type: path
    required: true
  signal:
    description: Signal to send first (INT lets tools print their final statistics).
    type: str
    choices: [INT, TERM]
    default: INT
  timeout_s:
    description: Seconds to wait before sending SIGKILL.
    type: float
    default: 10
  ok_rc:
    description: Exit codes that mean the tool ended normally.
    type: list
    elements: int
    default: [0]
author: kvmnetlab developers
"""

EXAMPLES = r"""
- name: Stop the receiver's counter
  kvmnetlab.lab.capture_stop:
    dest: /var/tmp/kvmnetlab/c1/virtio/1/tcpdump.txt
"""

RETURN = r"""
exit_code:
  description:
    - Exit code (negative signal number when killed by a signal); null when the tool is
      not this module's child, as when it was started by an earlier task.
  returned: always
  type: int
"""

import json
import os
import signal
import time

from ansible.module_utils.basic import AnsibleModule


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "signal": {"type": "str", "choices": ["INT", "TERM"], "default": "INT"},
            "timeout_s": {"type": "float", "default": 10},
            "ok_rc": {"type": "list", "elements": "int", "default": [0]},
        },
        supports_check_mode=True,
    )
    meta_path = module.params["dest"] + ".meta.json"
    try:
        with open(meta_path, encoding="utf-8") as handle:
            meta = json.load(handle)
        pid = int(meta["pid"])
    except FileNotFoundError:
        # never started (its start failed): nothing to stop; the start's failure stands
        module.exit_json(changed=False, exit_code=None, started=False)
    except (OSError, ValueError, KeyError) as exc:
        module.fail_json(msg=f"{meta_path}: no background capture recorded ({exc})")
    if module.check_mode:
        module.exit_json(changed=True, exit_code=0)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            same = handle.read().split(b"\0")[0].decode(errors="replace") == meta["argv"][0]
    except OSError:
        same = False
    killed = False
    if same and alive(pid):
        os.kill(pid, getattr(signal, "SIG" + module.params["signal"]))
        deadline = time.monotonic() + module.params["timeout_s"]
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
            killed = True
    rc = None
    try:
        _, status = os.waitpid(pid, os.WNOHANG)
        rc = os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        pass  # not our child (started by an earlier module run): its code is not observable
    meta.update(finished_at=time.time(), rc=rc, stopped_by=module.params["signal"],
                killed=killed)
    with open(meta_path, "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=1)
        handle.write("\n")
    if killed:
        module.fail_json(msg=f"{meta['argv'][0]} (pid {pid}) ignored SIG{module.params['signal']}"
                         f" for {module.params['timeout_s']} s and was killed", exit_code=-9)
    module.exit_json(changed=True, exit_code=rc)


if __name__ == "__main__":
    main()
