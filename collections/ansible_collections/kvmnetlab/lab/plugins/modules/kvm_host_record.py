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
  - A setting requested as null (or without an outcome) is C(left). A setting that an
    earlier run C(applied) and that still holds the same value is recorded as C(applied)
    again rather than C(already), so an unchanged rerun leaves the file as it is.
  - The status vocabulary is C(applied), C(already), C(unavailable), C(pending_reboot),
    C(partial) and C(left); an C(unavailable), C(partial) or C(pending_reboot) outcome
    without a reason is refused.
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
    description: Setting name -> C({status, observed, reason}) for each setting that was acted on.
    type: dict
    default: {}
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


def build(requested, results, earlier):
    """The record for ``requested`` and ``results``, given the ``earlier`` record (or {})."""
    before = (earlier or {}).get("settings") or {}
    settings = {}
    for name in sorted(requested):
        wanted = requested[name]
        outcome = results.get(name)
        if outcome is None:
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
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    earlier, old_text = load(path)
    try:
        record = build(module.params["requested"], module.params["results"], earlier)
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
