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
    end, host) to I(dest).meta.json. Nothing is parsed here: parsing happens on the
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
        I(dest).pid); stop it later with M(kvmnetlab.lab.capture_stop), which records its
        exit code.
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

import json
import os
import socket
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule


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
        module.exit_json(changed=True, rc=0, files=files, started_at=0.0, finished_at=0.0)
    os.makedirs(run_dir, exist_ok=True)
    for name, content in module.params["inputs"].items():
        if "/" in name:
            module.fail_json(msg=f"inputs: {name!r}: a plain file name is expected")
        with open(os.path.join(run_dir, name), "w", encoding="utf-8") as handle:
            handle.write(content)
    started = time.time()
    meta = {"argv": argv, "started_at": started, "host": socket.gethostname()}
    if module.params["background"]:
        with open(dest, "wb") as out, open(dest + ".stderr", "wb") as err:
            try:
                proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            except OSError as exc:
                module.fail_json(msg=f"cannot run {argv[0]}: {exc}", rc=127, files=files)
        meta["pid"] = proc.pid
        with open(dest + ".meta.json", "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=1)
            handle.write("\n")
        time.sleep(0.5)  # a capture tool needs a moment to open its socket
        if proc.poll() is not None:
            with open(dest + ".stderr", "rb") as handle:
                tail = handle.read()[-400:].decode(errors="replace").strip()
            module.fail_json(msg=f"{argv[0]} exited at once ({proc.returncode}): {tail}",
                             files=files, rc=proc.returncode)
        module.exit_json(changed=True, pid=proc.pid, files=files, started_at=started)
    timed_out = False
    with open(dest, "wb") as out, open(dest + ".stderr", "wb") as err:
        try:
            proc = subprocess.run(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                  timeout=module.params["timeout_s"], check=False)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc, timed_out = -9, True
        except OSError as exc:
            module.fail_json(msg=f"cannot run {argv[0]}: {exc}", rc=127, files=files)
        out.flush()
        os.fsync(out.fileno())
    finished = time.time()
    meta.update(rc=rc, timed_out=timed_out, finished_at=finished)
    with open(dest + ".meta.json", "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=1)
        handle.write("\n")
    result = {"changed": True, "rc": rc, "files": files, "started_at": started,
              "finished_at": finished}
    if timed_out:
        module.fail_json(msg=f"{argv[0]} did not finish within {module.params['timeout_s']} s; "
                         f"partial output kept in {dest}", **result)
    if rc not in module.params["ok_rc"]:
        with open(dest + ".stderr", "rb") as handle:
            tail = handle.read()[-400:].decode(errors="replace").strip()
        module.fail_json(msg=f"{argv[0]} exited {rc}: {tail}; output kept in {dest}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
