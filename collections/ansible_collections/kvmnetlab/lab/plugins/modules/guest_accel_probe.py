#!/usr/bin/python
# Copyright: kvmnetlab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide between KVM and TCG by booting a probe guest."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guest_accel_probe
short_description: Choose QEMU acceleration (kvm or tcg) by booting a probe guest
description:
  - A usable C(/dev/kvm) is proved by booting, not by the file existing. For each accelerator
    in I(candidates), in order, boots the guest kernel and initrd with no disk and waits up to
    I(timeout) seconds for I(marker), a line the initramfs prints once it runs in userspace, on
    the serial console. The first accelerator that shows the marker is chosen.
  - The probe QEMU processes are children of the module and are always killed before it returns.
    The serial console of each probe is kept in I(log_dir) as evidence.
  - Runs in check mode too (it changes nothing but the probe logs).
options:
  kernel:
    description: Guest kernel (bzImage) for direct kernel boot.
    type: path
    required: true
  initrd:
    description: Guest initrd.
    type: path
    required: true
  qemu:
    description: QEMU system emulator binary.
    type: str
    default: qemu-system-x86_64
  candidates:
    description: Accelerators to try, in order of preference.
    type: list
    elements: str
    default: [kvm, tcg]
  timeout:
    description: Seconds each probe may take to reach the marker.
    type: int
    default: 20
  marker:
    description: Text on the serial console that proves userspace was reached.
    type: str
    default: Loading, please wait
  memory_mb:
    description: Memory of the probe guest, in MiB.
    type: int
    default: 256
  log_dir:
    description: Folder for the probes' serial console logs (C(accel-probe-<accel>.log)).
    type: path
    required: true
author:
  - kvmnetlab contributors
"""

EXAMPLES = r"""
- name: Probe acceleration
  kvmnetlab.lab.guest_accel_probe:
    kernel: /var/cache/kvmnetlab/images/0123abcd/vmlinuz
    initrd: /var/cache/kvmnetlab/images/0123abcd/initrd.img
    log_dir: /var/lib/kvmnetlab/local
  register: guest_vm_probe
"""

RETURN = r"""
accel:
  description: The accelerator chosen (C(kvm) or C(tcg)); empty when none booted.
  returned: always
  type: str
  sample: tcg
reason:
  description: One sentence with the evidence for the choice.
  returned: always
  type: str
  sample: "kvm: no marker within 20 s (console empty); tcg: marker after 2.9 s"
evidence:
  description: Per accelerator, C(booted) (bool), C(seconds) (s), C(console_log), C(last_line).
  returned: always
  type: dict
"""

import os
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule


def _last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][-160:] if lines else ""


def probe(params, accel):
    log = os.path.join(params["log_dir"], f"accel-probe-{accel}.log")
    if os.path.exists(log):
        os.unlink(log)
    if accel == "kvm" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return {"booted": False, "seconds": 0.0, "console_log": log,
                "last_line": "", "why": "/dev/kvm missing or not accessible"}
    argv = [
        params["qemu"], "-accel", accel, "-m", str(params["memory_mb"]), "-smp", "1",
        "-nodefaults", "-display", "none", "-no-reboot", "-monitor", "none",
        "-serial", f"file:{log}",
        "-kernel", params["kernel"], "-initrd", params["initrd"],
        "-append", "console=ttyS0 panic=1 root=/dev/kvmnetlab-probe-nodisk rootdelay=1",
    ]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    booted = False
    text = ""
    try:
        while time.monotonic() - started < params["timeout"]:
            if os.path.exists(log):
                with open(log, encoding="utf-8", errors="replace") as handle:
                    text = handle.read()
                if params["marker"] in text:
                    booted = True
                    break
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        seconds = round(time.monotonic() - started, 1)
    finally:
        if proc.poll() is None:
            proc.kill()
        _out, err = proc.communicate()
    why = ""
    if not booted:
        if proc.returncode not in (None, -9) and not text:
            why = f"QEMU exited rc={proc.returncode}: {err.decode(errors='replace').strip()[-200:]}"
        elif not text:
            why = f"no marker within {params['timeout']} s (console empty)"
        else:
            why = f"no marker within {params['timeout']} s"
    return {"booted": booted, "seconds": seconds, "console_log": log,
            "last_line": _last_line(text), "why": why}


def main():
    module = AnsibleModule(
        argument_spec={
            "kernel": {"type": "path", "required": True},
            "initrd": {"type": "path", "required": True},
            "qemu": {"type": "str", "default": "qemu-system-x86_64"},
            "candidates": {"type": "list", "elements": "str", "default": ["kvm", "tcg"]},
            "timeout": {"type": "int", "default": 20},
            "marker": {"type": "str", "default": "Loading, please wait"},
            "memory_mb": {"type": "int", "default": 256},
            "log_dir": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    for path in (p["kernel"], p["initrd"]):
        if not os.path.isfile(path):
            module.fail_json(msg=f"probe needs {path}, which does not exist")
    os.makedirs(p["log_dir"], exist_ok=True)
    evidence = {}
    reasons = []
    chosen = ""
    for accel in p["candidates"]:
        result = probe(p, accel)
        evidence[accel] = result
        if result["booted"]:
            reasons.append(f"{accel}: marker {p['marker']!r} after {result['seconds']} s")
            chosen = accel
            break
        reasons.append(f"{accel}: {result['why']}")
    reason = "; ".join(reasons)
    if not chosen:
        module.fail_json(msg=f"no accelerator booted the probe guest ({reason})",
                         evidence=evidence, accel="", reason=reason)
    module.exit_json(changed=False, accel=chosen, reason=reason, evidence=evidence)


if __name__ == "__main__":
    main()
