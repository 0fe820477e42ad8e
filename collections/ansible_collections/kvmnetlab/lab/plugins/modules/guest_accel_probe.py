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
  - The choice is cached in I(log_dir) (C(accel-probe.json)) with what it depends on, the
    host's boot id, the QEMU version, the host's kernel release, the probe kernel and initrd
    (path, size, mtime) and the probe's settings. While all of them are the same, the cached
    choice is returned (C(cached=true)) without booting anything; when any of them changes, the
    probe boots again. Only a choice that booted is cached.
  - Runs in check mode too (it changes nothing but the probe logs and the cache).
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
  cache:
    description: Reuse the choice made in this boot of the host with the same QEMU, kernel,
      probe guest and settings (see the description); C(false) always boots the probe.
    type: bool
    default: true
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
cached:
  description: Whether the choice came from the cache of an earlier probe (no guest booted).
  returned: always
  type: bool
identity:
  description: What the choice depends on (boot id, QEMU version, kernel release, probe guest,
    settings); a cached choice is used only while it is the same.
  returned: always
  type: dict
"""

import json
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


CACHE_FILE = "accel-probe.json"


def _file_id(path):
    st = os.stat(path)
    return {"path": path, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def identity(params):
    """What a probe's outcome depends on; the cached choice holds only while it is equal."""
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
        boot_id = handle.read().strip()
    try:
        out = subprocess.run([params["qemu"], "-version"], capture_output=True, text=True,
                             check=False, timeout=30).stdout
    except OSError as err:
        out = f"unavailable: {err}"
    return {
        "boot_id": boot_id,
        "qemu_version": (out.strip().splitlines() or [""])[0],
        "kernel_release": os.uname().release,
        "probe_kernel": _file_id(params["kernel"]),
        "probe_initrd": _file_id(params["initrd"]),
        "settings": {key: params[key] for key in ("candidates", "marker", "memory_mb", "timeout")},
    }


def cached_choice(path, ident):
    """The cached record when it exists, parses and was made under ``ident``; else None."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("identity") != ident or not record.get("accel"):
        return None
    return record


def save_choice(path, record):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


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
            "cache": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    for path in (p["kernel"], p["initrd"]):
        if not os.path.isfile(path):
            module.fail_json(msg=f"probe needs {path}, which does not exist")
    os.makedirs(p["log_dir"], exist_ok=True)
    ident = identity(p)
    cache_path = os.path.join(p["log_dir"], CACHE_FILE)
    hit = cached_choice(cache_path, ident) if p["cache"] else None
    if hit is not None:
        module.exit_json(
            changed=False, accel=hit["accel"], evidence=hit["evidence"], cached=True,
            identity=ident,
            reason=f"{hit['reason']} (cached: probed at {hit['probed_at']} in this boot of "
                   f"the host, with the same QEMU, kernel and probe guest)")
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
    # the choice is written for the next run in this boot: a change (in check mode, one
    # that would be made; the file is left as it was)
    if not module.check_mode:
        save_choice(cache_path, {
            "identity": ident, "accel": chosen, "reason": reason, "evidence": evidence,
            "probed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    module.exit_json(changed=True, accel=chosen, reason=reason, evidence=evidence,
                     cached=False, identity=ident)


if __name__ == "__main__":
    main()
