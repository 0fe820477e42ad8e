#!/usr/bin/python
# Copyright: kvmnetlab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait, in parallel and with a bound, until guests answer SSH."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guest_ssh_wait
short_description: Wait until QEMU guests answer real SSH logins, all at once, with a bound
description:
  - Tries C(ssh ... true) against every guest every I(interval) seconds, all guests in
    parallel, until each logs in or I(timeout) seconds have passed. Host keys are checked
    against I(known_hosts) (C(StrictHostKeyChecking=yes)).
  - A guest whose QEMU process (from its pidfile) is gone is given up at once.
  - A guest given with C(not_started) (why it was not started) is reported down with that
    reason, without waiting; the status of every guest carries the C(pid) it was given.
  - Never fails because a guest did not come up; it reports each guest's status, with the path
    of its serial console log, so that the caller decides.
  - Read-only; supports check mode.
options:
  guests:
    description:
      - Guests to wait for. Each has C(name) and C(host) (or C(mgmt_ip)), the address SSH
        connects to; C(pidfile) and C(console_log) default to C(qemu.pid) and C(console.log)
        in I(guests_dir)/C(name).
      - C(pid) (the QEMU process id its start reported, default 0) is passed on to its
        status; C(not_started), when not empty, says why it was not started, and the guest
        is then reported down with that reason (pid 0) without a wait. Other keys are
        ignored.
    type: list
    elements: dict
    required: true
  guests_dir:
    description: Folder holding one folder per guest (for the default pidfile and console log).
    type: path
  user:
    description: Login user (the guests' admin user; root has no SSH login on kvmnetlab guests).
    type: str
    required: true
  identity_file:
    description: Private key.
    type: path
    required: true
  known_hosts:
    description: Known hosts file with the guests' host keys.
    type: path
    required: true
  proxy_command:
    description:
      - SSH ProxyCommand (C(%h) and C(%p) expanded by ssh); empty to connect directly, as a real
        KVM host does (it has an address on the guests' management bridge). The embedded lab
        enters its hypervisor namespace with C(ip netns exec NS socat - TCP:%h:%p).
    type: str
    default: ''
  timeout:
    description: Seconds to wait for all guests together.
    type: int
    default: 180
  interval:
    description: Seconds between attempts on one guest.
    type: int
    default: 3
author:
  - kvmnetlab contributors
"""

EXAMPLES = r"""
- name: Wait for the guests' SSH
  kvmnetlab.lab.guest_ssh_wait:
    guests:
      - name: kvmnl-g1
        host: 198.19.0.11
    guests_dir: /var/lib/kvmnetlab/local/guests
    user: kvmnl
    identity_file: /var/lib/kvmnetlab/local/ssh/id_ed25519
    known_hosts: /var/lib/kvmnetlab/local/ssh/known_hosts
    proxy_command: ip netns exec kvmnl-hv socat - TCP:%h:%p

- name: Wait for the guests' SSH on a real KVM host (direct, no proxy)
  kvmnetlab.lab.guest_ssh_wait:
    guests:
      - name: kvmnl-g1
        host: 198.19.0.11
    guests_dir: /var/lib/kvmnetlab/lab-example/guests
    user: kvmnl
    identity_file: /var/lib/kvmnetlab/lab-example/ssh/id_ed25519
    known_hosts: /var/lib/kvmnetlab/lab-example/ssh/known_hosts
"""

RETURN = r"""
status:
  description: >-
    Guest name -> C(ok) (bool), C(reason) (str), C(console_log) (path),
    C(seconds) (s from the start of the wait to the first successful login, or to giving up;
    0 for a guest not started), C(pid) (int); in the order of I(guests).
  returned: always
  type: dict
"""

import os
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule


def qemu_alive(pidfile):
    try:
        with open(pidfile, encoding="ascii") as handle:
            pid = int(handle.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"qemu" in handle.read()
    except (OSError, ValueError):
        return False


def not_started(guest):
    """The status of a guest that was not started (``not_started`` says why)."""
    return {"ok": False, "seconds": 0, "console_log": guest["console_log"],
            "reason": guest["not_started"], "pid": 0}


def ssh_argv(params, host):
    argv = [
        "ssh", "-F", "/dev/null", "-n",
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={params['known_hosts']}",
        "-o", "IdentitiesOnly=yes", "-i", params["identity_file"],
    ]
    if params["proxy_command"]:
        argv += ["-o", f"ProxyCommand={params['proxy_command']}"]
    return [*argv, f"{params['user']}@{host}", "true"]


def main():
    module = AnsibleModule(
        argument_spec={
            "guests": {"type": "list", "elements": "dict", "required": True},
            "guests_dir": {"type": "path"},
            "user": {"type": "str", "required": True},
            "identity_file": {"type": "path", "required": True},
            "known_hosts": {"type": "path", "required": True},
            "proxy_command": {"type": "str", "default": ""},
            "timeout": {"type": "int", "default": 180},
            "interval": {"type": "int", "default": 3},
        },
        supports_check_mode=True,
    )
    p = module.params
    guests, status, order = [], {}, []
    for entry in p["guests"]:
        guest = dict(entry)
        if "host" not in guest and "mgmt_ip" in guest:
            guest["host"] = guest["mgmt_ip"]
        if p["guests_dir"] and "name" in guest:
            folder = os.path.join(p["guests_dir"], guest["name"])
            guest.setdefault("pidfile", os.path.join(folder, "qemu.pid"))
            guest.setdefault("console_log", os.path.join(folder, "console.log"))
        needed = ({"name", "console_log"} if guest.get("not_started")
                  else {"name", "host", "pidfile", "console_log"})
        missing = needed - set(guest)
        if missing:
            module.fail_json(msg=f"guests entry {entry!r} lacks {sorted(missing)}")
        order.append(guest["name"])
        if guest.get("not_started"):
            status[guest["name"]] = not_started(guest)
        else:
            guests.append(guest)
    pids = {guest["name"]: int(guest.get("pid") or 0) for guest in guests}
    started = time.monotonic()
    deadline = started + p["timeout"]
    last_error = {g["name"]: "" for g in guests}
    pending = {g["name"]: g for g in guests}
    while pending:
        procs = {}
        for name, guest in list(pending.items()):
            if not qemu_alive(guest["pidfile"]):
                status[name] = {
                    "ok": False,
                    "seconds": round(time.monotonic() - started, 1),
                    "console_log": guest["console_log"],
                    "reason": f"QEMU process of {name} is not running; see {guest['console_log']}",
                }
                del pending[name]
                continue
            procs[name] = subprocess.Popen(
                ssh_argv(p, guest["host"]),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
        for name, proc in procs.items():
            try:
                _out, err = proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                _out, err = proc.communicate()
            if proc.returncode == 0:
                guest = pending.pop(name)
                status[name] = {
                    "ok": True,
                    "seconds": round(time.monotonic() - started, 1),
                    "console_log": guest["console_log"],
                    "reason": "",
                }
            else:
                last_error[name] = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
                last_error[name] = last_error[name][0]
        if not pending:
            break
        if time.monotonic() + p["interval"] >= deadline:
            for name, guest in pending.items():
                status[name] = {
                    "ok": False,
                    "seconds": round(time.monotonic() - started, 1),
                    "console_log": guest["console_log"],
                    "reason": (
                        f"no SSH login on {guest['host']} within {p['timeout']} s "
                        f"(last ssh error: {last_error[name] or 'none'}); "
                        f"see {guest['console_log']}"
                    ),
                }
            break
        time.sleep(p["interval"])
    for name, pid in pids.items():
        status[name]["pid"] = pid
    module.exit_json(changed=False, status={name: status[name] for name in order})


if __name__ == "__main__":
    main()
