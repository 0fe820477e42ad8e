#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one measurement tool and keep its output verbatim."""

from __future__ import annotations

DOCUMENTATION = r"""
module: capture
short_description: Run a measurement tool and keep its raw output in files
description:
  - Runs I(argv) without a shell, writing its standard output to I(dest), its standard
    error to I(dest).stderr and a small JSON record (argv, exit code, wall-clock start and
    end, host) to I(dest).meta.json. Nothing is parsed here; parsing happens on the
    controller.
  - Always reports changed (it writes new raw files); in check mode it runs nothing.
options:
  argv:
    description: The command and its arguments.
    type: list
    elements: str
    required: true
  dest:
    description: Path of the raw output file on the host. Its folder is created.
    type: path
    required: true
  timeout_s:
    description: Seconds after which the tool is killed and the capture fails.
    type: float
    default: 600
  ok_rc:
    description: Exit codes that mean the tool measured (e.g. ping exits 1 when probes are lost).
    type: list
    elements: int
    default: [0]
  inputs:
    description:
      - Files to write beside I(dest) before the tool runs (name -> content), e.g. a
        packet configuration. C({run_dir}) in I(argv) is replaced by I(dest)'s folder.
    type: dict
    default: {}
  background:
    description:
      - Start the tool in its own session and return at once with its PID (written to
        I(dest).pid); stop it later with a C(stop) step of M(kvmnetlab.lab.collect).
    type: bool
    default: false
author: kvmnetlab developers
"""

EXAMPLES = r"""
- name: Per-packet RTT
  kvmnetlab.lab.capture:
    argv: [ping, -D, -O, -n, -c, "100", -i, "0.01", 198.18.0.2]
    dest: /var/tmp/kvmnetlab/c1/baseline/1/ping.txt
    ok_rc: [0, 1]
"""

RETURN = r"""
pid:
  description: PID of the tool started in the background.
  returned: when background
  type: int
rc:
  description: Exit code of the tool.
  returned: unless background
  type: int
files:
  description: Paths of the raw files written on the host.
  returned: always
  type: list
  elements: str
started_at:
  description: Wall-clock start, epoch seconds.
  returned: always
  type: float
finished_at:
  description: Wall-clock end, epoch seconds.
  returned: unless background
  type: float
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.raw_capture import (
    CaptureError,
    run_tool,
    start_tool,
    write_inputs,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "argv": {"type": "list", "elements": "str", "required": True},
            "dest": {"type": "path", "required": True},
            "timeout_s": {"type": "float", "default": 600},
            "ok_rc": {"type": "list", "elements": "int", "default": [0]},
            "inputs": {"type": "dict", "default": {}},
            "background": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    dest = module.params["dest"]
    run_dir = os.path.dirname(dest) or "."
    argv = [arg.replace("{run_dir}", run_dir) for arg in module.params["argv"]]
    files = [dest, dest + ".stderr", dest + ".meta.json"]
    files += [os.path.join(run_dir, name) for name in module.params["inputs"]]
    if module.check_mode:
        module.exit_json(changed=True, files=files)
    try:
        os.makedirs(run_dir, exist_ok=True)
        write_inputs(run_dir, module.params["inputs"])
        if module.params["background"]:
            pid = start_tool(argv, dest)
            module.exit_json(changed=True, pid=pid, files=files, started_at=time.time())
        meta = run_tool(argv, dest, module.params["timeout_s"], module.params["ok_rc"])
    except CaptureError as exc:
        module.fail_json(msg=str(exc), files=files)
    module.exit_json(changed=True, rc=meta["rc"], files=files, started_at=meta["started_at"],
                     finished_at=meta["finished_at"])


if __name__ == "__main__":
    main()
