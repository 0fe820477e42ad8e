#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshot counters and state into raw files, many at once, parsing nothing."""

from __future__ import annotations

DOCUMENTATION = r"""
module: snapshot
short_description: Copy counters and host state into raw files in one round trip
description:
  - For every item, either reads files (I(read), globs allowed) or runs a command
    (I(argv)) and writes what it got, verbatim, to I(dir)/I(file). Nothing is parsed.
  - C(grep) format writes C(path:line) for every line of every matched file, like
    C(grep -r . FILES); C(concat) writes the files' contents back to back.
  - A glob that matches nothing writes an empty file and is listed in C(missing), so the
    controller can say the counter does not exist on this host.
options:
  dir:
    description: Folder for the raw files (created).
    type: path
    required: true
  items:
    description: Each {file, read, read_format} or {file, argv, ok_rc}.
    type: list
    elements: dict
    required: true
author: kvmnetlab developers
"""

EXAMPLES = r"""
- name: Counters before the rate phase
  kvmnetlab.lab.snapshot:
    dir: /var/tmp/kvmnetlab/c1/baseline/1
    items:
      - {file: cpu_before.proc_stat.txt, read: [/proc/stat]}
      - {file: netdev_before.sysfs.txt, read: ["/sys/class/net/data0/statistics/*"], read_format: grep}
"""

RETURN = r"""
files:
  description: Raw files written.
  returned: always
  type: list
  elements: str
missing:
  description: Items whose globs matched no file.
  returned: always
  type: list
  elements: str
"""

import glob
import os
import subprocess

from ansible.module_utils.basic import AnsibleModule


def read_item(item):
    chunks, matched = [], False
    for pattern in item["read"]:
        for path in sorted(glob.glob(pattern)):
            if os.path.isdir(path):
                continue
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue  # e.g. write-only debugfs entries
            matched = True
            if item.get("read_format", "concat") == "grep":
                for line in data.decode(errors="replace").splitlines():
                    chunks.append(f"{path}:{line}\n".encode())
            else:
                chunks.append(data)
    return b"".join(chunks), matched


def main():
    module = AnsibleModule(
        argument_spec={"dir": {"type": "path", "required": True},
                       "items": {"type": "list", "elements": "dict", "required": True}},
        supports_check_mode=True,
    )
    folder = module.params["dir"]
    files, missing = [], []
    if module.check_mode:
        module.exit_json(changed=True, files=[], missing=[])
    os.makedirs(folder, exist_ok=True)
    for item in module.params["items"]:
        name = item.get("file")
        if not name or "/" in name:
            module.fail_json(msg=f"items: file must be a plain file name, got {name!r}")
        path = os.path.join(folder, name)
        if item.get("read"):
            data, matched = read_item(item)
            if not matched:
                missing.append(name)
            with open(path, "wb") as handle:
                handle.write(data)
            files.append(path)
        elif item.get("argv"):
            with open(path, "wb") as out, open(path + ".stderr", "wb") as err:
                try:
                    rc = subprocess.run(item["argv"], stdout=out, stderr=err, timeout=60,
                                        stdin=subprocess.DEVNULL, check=False).returncode
                except (OSError, subprocess.TimeoutExpired) as exc:
                    module.fail_json(msg=f"{name}: {item['argv'][0]}: {exc}")
            if rc not in item.get("ok_rc", [0]):
                module.fail_json(msg=f"{name}: {' '.join(item['argv'])} exited {rc}")
            files += [path, path + ".stderr"]
        else:
            module.fail_json(msg=f"items: {name}: needs read or argv")
    module.exit_json(changed=True, files=files, missing=missing)


if __name__ == "__main__":
    main()
