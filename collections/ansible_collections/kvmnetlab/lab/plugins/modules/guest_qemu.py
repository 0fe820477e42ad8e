#!/usr/bin/python
# Copyright: kvmnetlab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start or stop one daemonized QEMU guest identified by its pidfile."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guest_qemu
short_description: Start, stop and pin a daemonized QEMU guest, tracked by its pidfile
description:
  - C(state=started) runs the QEMU command line I(argv) (which must contain C(-daemonize) and
    C(-pidfile PIDFILE)) inside the network namespace I(netns) (C(ip netns exec), the embedded
    lab) or, with I(netns) empty, in the host's own network namespace (a real KVM host), unless
    the process named by the pidfile is alive and runs exactly I(argv). A running guest whose command line differs is
    restarted when I(restart_on_change) is true, and otherwise left alone with a warning.
  - After a start it pins the vCPU threads and the I/O thread, found through QMP, with
    C(sched_setaffinity).
  - C(state=stopped) asks the guest to power off through QMP C(system_powerdown) (ACPI), waits up
    to I(stop_timeout) seconds, then sends SIGTERM and finally SIGKILL to the pid in the pidfile.
  - Supports check mode.
options:
  name:
    description: Guest name, used in messages.
    type: str
    required: true
  argv:
    description: QEMU command line, binary first. Required for C(state=started).
    type: list
    elements: str
  netns:
    description: Network namespace QEMU runs in (C(ip netns exec)); empty for the host's own.
    type: str
    default: ''
  pidfile:
    description: Pidfile QEMU writes (C(-pidfile)).
    type: path
    required: true
  qmp_socket:
    description: QMP unix socket QEMU listens on (C(-qmp unix:PATH,server=on,wait=off)).
    type: path
  cpus:
    description: Cores the whole QEMU process may run on (C(taskset -c)); empty for no limit.
    type: list
    elements: int
    default: []
  pin_vcpus:
    description: Core for each vCPU thread, in vCPU order; empty for no per-vCPU pinning.
    type: list
    elements: int
    default: []
  pin_io_thread:
    description: Core for the QEMU I/O thread with id C(io0), if any.
    type: int
  restart_on_change:
    description: Restart a running guest whose command line differs from I(argv).
    type: bool
    default: true
  stop_timeout:
    description: Seconds to wait for an ACPI power-off before SIGTERM.
    type: int
    default: 30
  soft_fail:
    description:
      - When QEMU cannot be started, return C(ok=false) and the error instead of failing,
        so the caller can carry on with the guests that did start.
    type: bool
    default: false
  state:
    description: Whether the guest should run.
    type: str
    choices: [started, stopped]
    default: started
author:
  - kvmnetlab contributors
"""

EXAMPLES = r"""
- name: Start guest 1 (in the embedded lab's hypervisor namespace; omit netns on a real KVM host)
  kvmnetlab.lab.guest_qemu:
    name: kvmnl-g1
    netns: kvmnl-hv
    argv: "{{ lookup('ansible.builtin.file', '/var/lib/kvmnetlab/local/guests/kvmnl-g1/qemu.argv')
             | split('\n') | select }}"
    pidfile: /var/lib/kvmnetlab/local/guests/kvmnl-g1/qemu.pid
    qmp_socket: /var/lib/kvmnetlab/local/guests/kvmnl-g1/qmp.sock

- name: Stop guest 1
  kvmnetlab.lab.guest_qemu:
    name: kvmnl-g1
    pidfile: /var/lib/kvmnetlab/local/guests/kvmnl-g1/qemu.pid
    qmp_socket: /var/lib/kvmnetlab/local/guests/kvmnl-g1/qmp.sock
    state: stopped
"""

RETURN = r"""
ok:
  description: The guest is in the requested state.
  returned: always
  type: bool
pid:
  description: PID of the QEMU process (0 when stopped).
  returned: always
  type: int
action:
  description: What was done, one of C(none), C(started), C(restarted), C(acpi), C(sigterm), C(sigkill).
  returned: always
  type: str
error:
  description: Why QEMU could not be started (only with I(soft_fail)).
  returned: when ok is false
  type: str
pinned:
  description: Thread id -> core for every thread pinned.
  returned: when state is started
  type: dict
"""

import json
import os
import signal
import socket
import time

from ansible.module_utils.basic import AnsibleModule


def read_pid(pidfile):
    try:
        with open(pidfile, encoding="ascii") as handle:
            return int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    if not raw:
        return None
    return [part.decode("utf-8", "replace") for part in raw.rstrip(b"\0").split(b"\0")]


def alive_qemu(pidfile):
    """(pid, cmdline) of the QEMU process the pidfile names, or (0, None)."""
    pid = read_pid(pidfile)
    if pid <= 0:
        return 0, None
    cmdline = proc_cmdline(pid)
    if not cmdline or "qemu" not in os.path.basename(cmdline[0]) or pidfile not in cmdline:
        return 0, None
    return pid, cmdline


class Qmp:
    """Minimal QMP client: greeting, capabilities, one command at a time."""

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, arguments=None):
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise OSError(f"QMP {command}: {reply['error'].get('desc', reply['error'])}")
            return reply.get("return")

    def close(self):
        self.sock.close()


def wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc_cmdline(pid) is None:
            return True
        time.sleep(0.2)
    return proc_cmdline(pid) is None


def stop(module, pid):
    p = module.params
    if p["qmp_socket"] and os.path.exists(p["qmp_socket"]):
        try:
            qmp = Qmp(p["qmp_socket"])
            qmp.execute("system_powerdown")
            qmp.close()
            if wait_gone(pid, p["stop_timeout"]):
                return "acpi"
        except OSError:
            pass
    for sig, name, wait in ((signal.SIGTERM, "sigterm", 5), (signal.SIGKILL, "sigkill", 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return name
        if wait_gone(pid, wait):
            return name
    module.fail_json(msg=f"guest {p['name']}: QEMU pid {pid} survived SIGKILL")
    return "sigkill"


def cleanup_files(module):
    for path in (module.params["pidfile"], module.params["qmp_socket"]):
        if path and os.path.lexists(path):
            os.unlink(path)


def pin(module, pid):
    p = module.params
    pinned = {}
    if not (p["pin_vcpus"] or p["pin_io_thread"] is not None):
        return pinned
    if not p["qmp_socket"]:
        module.fail_json(msg=f"guest {p['name']}: pinning needs qmp_socket")
    qmp = Qmp(p["qmp_socket"])
    try:
        if p["pin_vcpus"]:
            cpus = qmp.execute("query-cpus-fast")
            for cpu in cpus:
                index = cpu["cpu-index"]
                if index < len(p["pin_vcpus"]):
                    core = p["pin_vcpus"][index]
                    os.sched_setaffinity(cpu["thread-id"], {core})
                    pinned[str(cpu["thread-id"])] = core
        if p["pin_io_thread"] is not None:
            for thread in qmp.execute("query-iothreads"):
                if thread["id"] == "io0":
                    os.sched_setaffinity(thread["thread-id"], {p["pin_io_thread"]})
                    pinned[str(thread["thread-id"])] = p["pin_io_thread"]
    finally:
        qmp.close()
    return pinned


def command_prefix(netns, cpus):
    """What runs QEMU: ``ip netns exec NETNS`` only when a namespace is named, then taskset."""
    prefix = []
    if netns:
        prefix += ["ip", "netns", "exec", netns]
    if cpus:
        prefix += ["taskset", "-c", ",".join(str(c) for c in cpus)]
    return prefix


def start(module):
    p = module.params
    argv = p["argv"]
    prefix = command_prefix(p["netns"], p["cpus"])
    cleanup_files(module)
    rc, out, err = module.run_command(prefix + argv)
    pid = read_pid(p["pidfile"]) if rc == 0 else 0
    if rc != 0 or pid <= 0:
        error = f"QEMU for guest {p['name']} did not start (rc={rc}): {(err or out).strip()}"
        if p["soft_fail"]:
            module.exit_json(changed=True, ok=False, pid=0, action="none", error=error)
        module.fail_json(msg=error, argv=prefix + argv)
    return pid


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "argv": {"type": "list", "elements": "str"},
            "netns": {"type": "str", "default": ""},
            "pidfile": {"type": "path", "required": True},
            "qmp_socket": {"type": "path"},
            "cpus": {"type": "list", "elements": "int", "default": []},
            "pin_vcpus": {"type": "list", "elements": "int", "default": []},
            "pin_io_thread": {"type": "int"},
            "restart_on_change": {"type": "bool", "default": True},
            "stop_timeout": {"type": "int", "default": 30},
            "soft_fail": {"type": "bool", "default": False},
            "state": {"type": "str", "choices": ["started", "stopped"], "default": "started"},
        },
        required_if=[("state", "started", ["argv"])],
        supports_check_mode=True,
    )
    p = module.params
    pid, cmdline = alive_qemu(p["pidfile"])

    if p["state"] == "stopped":
        if not pid:
            if not module.check_mode:
                cleanup_files(module)
            module.exit_json(changed=False, ok=True, pid=0, action="none")
        if module.check_mode:
            module.exit_json(changed=True, ok=True, pid=pid, action="acpi")
        action = stop(module, pid)
        cleanup_files(module)
        module.exit_json(changed=True, ok=True, pid=0, action=action, stopped_pid=pid)

    argv = p["argv"]
    if "-daemonize" not in argv or p["pidfile"] not in argv:
        module.fail_json(msg=f"guest {p['name']}: argv must contain -daemonize and the pidfile")
    if pid and cmdline == argv:
        module.exit_json(changed=False, ok=True, pid=pid, action="none", pinned={})
    if pid and not p["restart_on_change"]:
        module.warn(f"guest {p['name']} runs with another command line; restart_on_change=false")
        module.exit_json(changed=False, ok=True, pid=pid, action="none", pinned={})
    action = "restarted" if pid else "started"
    if module.check_mode:
        module.exit_json(changed=True, ok=True, pid=pid, action=action, pinned={})
    if pid:
        stop(module, pid)
    new_pid = start(module)
    pinned = pin(module, new_pid)
    module.exit_json(changed=True, ok=True, pid=new_pid, action=action, pinned=pinned)


if __name__ == "__main__":
    main()
