#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the kvm_host role's record of what it set and what the host could not honour."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kvm_host_record
short_description: Record, atomically and idempotently, what the kvm_host role did on a host
description:
  - "Builds C({\"format_version\": 1, \"settings\": {<name>: {requested, status, observed,
    reason}}}) from the requested values and the outcome of each setting, and writes it
    as JSON with sorted keys and no timestamp to I(path) (a temporary file, then a rename),
    only when its content changes."
  - A setting requested as null (or without an outcome, or with a C(left) outcome) is
    C(left). A setting that an
    earlier run C(applied) and that still holds the same value is recorded as C(applied)
    again rather than C(already), so an unchanged rerun leaves the file as it is.
  - The status vocabulary is C(applied), C(already), C(unavailable), C(pending_reboot),
    C(partial) and C(left); an C(unavailable), C(partial) or C(pending_reboot) outcome
    without a reason is refused.
  - The outcomes of the two settings no module of the collection sets, C(irqbalance)
    (stopped by ansible.builtin.service) and C(isolated_cores) (the kernel command line),
    are derived here from what their tasks registered (I(irqbalance), I(cmdline)), when
    they were requested.
  - Supports check mode (reports whether the file would change).
version_added: "0.1.0"
author: kvmnetlab
options:
  path:
    description: Where the record is written.
    type: path
    required: true
  requested:
    description: Every setting's requested value (null when it is left as it is).
    type: dict
    required: true
  results:
    description:
      - Setting name -> C({status, observed, reason}) for each setting that was acted on
        (the C(setting) a module of the collection returns; other keys are ignored); null
        for a setting that was not acted on.
    type: dict
    default: {}
  irqbalance:
    description:
      - What the irqbalance tasks found and did, for the C(irqbalance) outcome (used when
        C(irqbalance) is requested and I(results) has no outcome for it).
    type: dict
    suboptions:
      installed:
        description: Whether irqbalance is installed.
        type: bool
        default: false
      changed:
        description: Whether this run stopped or disabled it.
        type: bool
        default: false
  cmdline:
    description:
      - What the kernel command line tasks found and did, for the C(isolated_cores) outcome
        (used when C(isolated_cores) is requested and I(results) has no outcome for it).
    type: dict
    suboptions:
      before:
        description:
          - The kvmnetlab.lab.kernel_cmdline_info result read before any change
            (C(missing), C(grub), C(cpu_problem), C(isolated), C(nohz_full)).
        type: dict
        default: {}
      after:
        description:
          - Its result read again after a reboot; used instead of I(before) when it has
            C(missing) (a skipped task's result, or none, when there was no reboot).
        type: dict
        default: {}
      changed:
        description: Whether this run wrote the grub drop-in or rebooted.
        type: bool
        default: false
      never_rebooted:
        description: The host shares the controller's kernel and is never rebooted.
        type: bool
        default: false
      reboot_allowed:
        description: Whether the role may reboot the host (kvm_host_reboot_allowed).
        type: bool
        default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Record the outcome
  kvmnetlab.lab.kvm_host_record:
    path: /var/lib/kvmnetlab/kvm_host.json
    requested: {thp: never, hugepages_2m: null}
    results:
      thp: {status: applied, observed: never, reason: ""}

- name: Record the outcome of every phase of the kvm_host role
  kvmnetlab.lab.kvm_host_record:
    path: /var/lib/kvmnetlab/kvm_host.json
    requested: {irqbalance: stopped, irq_affinity: {interfaces: [data0], cores: "2"}}
    results:
      irq_affinity: "{{ irq_registered.setting | default(none) }}"
    irqbalance:
      installed: "{{ irqbalance_bin.stat.exists | default(false) }}"
      changed: "{{ irqbalance_service is changed }}"
"""

RETURN = r"""
record:
  description: The record as written (or as it would be, in check mode).
  returned: always
  type: dict
unavailable:
  description: One C(<setting>, <reason>) line, joined by a colon, for each setting the host cannot honour.
  returned: always
  type: list
  elements: str
summary:
  description: One line per setting, its name, status and reason.
  returned: always
  type: list
  elements: str
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

FORMAT_VERSION = 1
STATUSES = ("applied", "already", "unavailable", "pending_reboot", "partial", "left")
NEEDS_REASON = ("unavailable", "pending_reboot", "partial")


class RecordError(ValueError):
    """An outcome the record cannot hold; the message names the setting."""


def irqbalance_outcome(installed, changed):
    """The ``irqbalance`` outcome: stopped and disabled (``changed`` if this run did it)."""
    if not installed:
        return {"status": "already", "observed": "not installed",
                "reason": "irqbalance is not installed (no /usr/sbin/irqbalance): nothing "
                          "moves IRQs behind the role"}
    return {"status": "applied" if changed else "already", "observed": "stopped, disabled",
            "reason": ""}


def cmdline_outcome(info, changed, never_rebooted, reboot_allowed):
    """The ``isolated_cores`` outcome from kernel_cmdline_info's ``info`` (the latest read)."""
    missing = info.get("missing") or []
    grub = info.get("grub") or {}
    cpu_problem = info.get("cpu_problem") or ""
    observed = {"isolated": info.get("isolated"), "nohz_full": info.get("nohz_full")}
    if not missing:
        return {"status": "applied" if changed else "already", "observed": observed,
                "reason": ""}
    if grub.get("defaults") is None:
        reason = ("no /etc/default/grub on this host: it does not boot through grub (e.g. a "
                  "guest booted with QEMU -kernel), so its kernel command line cannot be "
                  "changed")
    elif not grub.get("ok"):
        reason = "update-grub is not installed, so grub.cfg cannot be regenerated"
    elif cpu_problem:
        reason = cpu_problem
    else:
        reason = ("pending reboot: the running kernel's /proc/cmdline lacks "
                  + " ".join(missing)
                  + (" (the controller is never rebooted)" if never_rebooted
                     else " (kvm_host_reboot_allowed is false)" if not reboot_allowed
                     else ""))
    status = ("unavailable" if not grub.get("ok") or cpu_problem else "pending_reboot")
    return {"status": status, "observed": observed, "reason": reason}


def outcomes(requested, results, irqbalance=None, cmdline=None):
    """Every setting's outcome: ``results``, plus those derived from the registered
    ``irqbalance`` and ``cmdline`` facts for the requested settings that have none."""
    out = {name: outcome for name, outcome in (results or {}).items() if outcome is not None}
    if requested.get("irqbalance") is not None and "irqbalance" not in out and irqbalance:
        out["irqbalance"] = irqbalance_outcome(bool(irqbalance.get("installed")),
                                               bool(irqbalance.get("changed")))
    if requested.get("isolated_cores") is not None and "isolated_cores" not in out and cmdline:
        after = cmdline.get("after") or {}
        info = after if "missing" in after else cmdline.get("before") or {}
        out["isolated_cores"] = cmdline_outcome(info,
                                                bool(cmdline.get("changed")),
                                                bool(cmdline.get("never_rebooted")),
                                                bool(cmdline.get("reboot_allowed")))
    return out


def build(requested, results, earlier):
    """The record for ``requested`` and ``results``, given the ``earlier`` record (or {})."""
    before = (earlier or {}).get("settings") or {}
    settings = {}
    for name in sorted(requested):
        wanted = requested[name]
        outcome = results.get(name)
        if outcome is None or outcome.get("status") == "left":
            if wanted is not None:
                raise RecordError(f"{name}: requested {wanted!r} but no outcome was given")
            settings[name] = {"requested": None, "status": "left", "observed": None,
                              "reason": "not requested: left as it is"}
            continue
        status = outcome.get("status")
        if status not in STATUSES:
            raise RecordError(f"{name}: status {status!r} is not one of {', '.join(STATUSES)}")
        reason = outcome.get("reason") or ""
        if status in NEEDS_REASON and not reason:
            raise RecordError(f"{name}: status {status} needs a reason")
        entry = {"requested": wanted, "status": status, "observed": outcome.get("observed"),
                 "reason": reason}
        earlier_entry = before.get(name) or {}
        if (status == "already" and earlier_entry.get("status") == "applied"
                and earlier_entry.get("requested") == wanted
                and earlier_entry.get("observed") == entry["observed"]):
            entry["status"] = "applied"
            entry["reason"] = earlier_entry.get("reason") or ""
        settings[name] = entry
    return {"format_version": FORMAT_VERSION, "settings": settings}


def render(record):
    return json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load(path):
    """The record at ``path`` and its text, ({}, None) when absent or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return {}, None
    try:
        record = json.loads(text)
    except ValueError:
        return {}, text
    return (record if isinstance(record, dict) else {}), text


def write_atomically(path, text, mode=0o644):
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o755, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".kvm_host.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def summary(record):
    lines = []
    for name, entry in record["settings"].items():
        line = f"{name}: {entry['status']}"
        if entry["status"] in ("applied", "already") and entry["observed"] is not None:
            line += f" ({json.dumps(entry['observed'], sort_keys=True)})"
        if entry["reason"] and entry["status"] != "left":
            line += f" ({entry['reason']})"
        lines.append(line)
    return lines


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "requested": {"type": "dict", "required": True},
            "results": {"type": "dict", "default": {}},
            "irqbalance": {"type": "dict", "options": {
                "installed": {"type": "bool", "default": False},
                "changed": {"type": "bool", "default": False}}},
            "cmdline": {"type": "dict", "options": {
                "before": {"type": "dict", "default": {}},
                "after": {"type": "dict", "default": {}},
                "changed": {"type": "bool", "default": False},
                "never_rebooted": {"type": "bool", "default": False},
                "reboot_allowed": {"type": "bool", "default": False}}},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    earlier, old_text = load(path)
    try:
        results = outcomes(module.params["requested"], module.params["results"],
                           module.params["irqbalance"], module.params["cmdline"])
        record = build(module.params["requested"], results, earlier)
    except RecordError as exc:
        module.fail_json(msg=f"kvm_host record: {exc}")
    text = render(record)
    changed = text != old_text
    if changed and not module.check_mode:
        try:
            write_atomically(path, text)
        except OSError as exc:
            module.fail_json(msg=f"cannot write {path}: {exc}")
    unavailable = [f"{name}: {entry['reason']}" for name, entry in record["settings"].items()
                   if entry["status"] == "unavailable"]
    module.exit_json(changed=changed, record=record, unavailable=unavailable,
                     summary=summary(record))


if __name__ == "__main__":
    main()
