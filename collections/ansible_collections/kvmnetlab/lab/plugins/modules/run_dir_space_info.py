#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only: room for raw files on a measuring host, and whether its base folder is private."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_dir_space_info
short_description: Free space for a host's run folders, and whether their base folder is safe
description:
  - Reads the free space (what an unprivileged writer may still use, C(statvfs)) of the
    file system holding I(path), the host's base folder of private run folders, or its
    nearest existing parent when the folder does not exist yet.
  - "When I(path) exists, also says whether it would be refused as the private base of run
    folders (C(base_problem)): owned by another user, a symbolic link, open to group or
    others, or below a folder others may write; the message names the path, owner and mode."
  - The campaign refuses a host whose free space is below C(campaign_remote_min_free_mb),
    or whose base folder is not private, before anything on the lab changes
    (playbooks/preflight.yml) and, for guests and containers, which exist only once the
    lab is up, before the first repetition.
  - Changes nothing.
version_added: "0.1.0"
author: kvmnetlab
options:
  path:
    description: The base folder of run folders on the host.
    type: path
    default: /var/tmp/kvmnetlab
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Room for raw files on a bare-metal host
  kvmnetlab.lab.run_dir_space_info:
    path: /var/tmp/kvmnetlab
  register: space
"""

RETURN = r"""
path:
  description: I(path), absolute.
  returned: always
  type: str
checked:
  description: The folder whose file system was read (I(path) or its nearest existing parent).
  returned: always
  type: str
free_bytes:
  description: Bytes still free there for an unprivileged writer.
  returned: always
  type: int
mount:
  description: The mount point of that file system.
  returned: always
  type: str
base_problem:
  description: Why I(path) would be refused as the private base ("" when it would not, or is absent).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kvmnetlab.lab.plugins.module_utils.raw_capture import free_space


def main():
    module = AnsibleModule(
        argument_spec={"path": {"type": "path", "default": "/var/tmp/kvmnetlab"}},
        supports_check_mode=True,
    )
    try:
        found = free_space(module.params["path"])
    except OSError as exc:
        module.fail_json(msg=f"{module.params['path']}: cannot read its free space: {exc}")
    module.exit_json(changed=False, **found)


if __name__ == "__main__":
    main()
