#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack a run's raw files on a host into one tar, so they come back in one transfer."""

from __future__ import annotations

DOCUMENTATION = r"""
module: bundle
short_description: Pack raw files into one uncompressed tar with their sha256
description:
  - Packs the named files of I(dir) into I(dest) (an uncompressed tar; members keep their
    bytes exactly) and returns each member's sha256, so the controller can check the
    transfer before it stores them. Files that do not exist are listed in C(missing).
  - Nothing is parsed here.
options:
  dir:
    description: Folder holding the raw files.
    type: path
    required: true
  files:
    description: File names (relative to I(dir)) to pack.
    type: list
    elements: str
    required: true
  dest:
    description: Path of the tar to write.
    type: path
    required: true
author: kvmnetlab developers
"""

EXAMPLES = r"""
- name: Pack one host's raw files of a repetition
  kvmnetlab.lab.bundle:
    dir: /var/tmp/kvmnetlab/c1/baseline/1/kvmnl-h1
    files: [ping.txt, ping.txt.stderr, ping.txt.meta.json]
    dest: /var/tmp/kvmnetlab/c1/baseline/1/kvmnl-h1.tar
"""

RETURN = r"""
members:
  description: Packed file name -> sha256.
  returned: always
  type: dict
missing:
  description: Requested files that did not exist.
  returned: always
  type: list
  elements: str
"""

import hashlib
import os
import tarfile

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={"dir": {"type": "path", "required": True},
                       "files": {"type": "list", "elements": "str", "required": True},
                       "dest": {"type": "path", "required": True}},
        supports_check_mode=True,
    )
    folder, dest = module.params["dir"], module.params["dest"]
    members, missing = {}, []
    if module.check_mode:
        module.exit_json(changed=True, members={}, missing=[])
    tmp = dest + ".part"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in module.params["files"]:
            if "/" in name or name in (".", ".."):
                module.fail_json(msg=f"files: {name!r}: plain file names only")
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                missing.append(name)
                continue
            with open(path, "rb") as handle:
                members[name] = hashlib.sha256(handle.read()).hexdigest()
            tar.add(path, arcname=name, recursive=False)
    os.replace(tmp, dest)
    module.exit_json(changed=True, members=members, missing=missing)


if __name__ == "__main__":
    main()
