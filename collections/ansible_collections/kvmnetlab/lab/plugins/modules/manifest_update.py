#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the manifest_update action plugin (plugins/action/manifest_update.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: manifest_update
short_description: Merge values into sections of a campaign manifest
description:
  - Each key of I(merge) names a top-level section of the manifest; its mapping is merged
    into that section.
  - With I(finish), records the campaign's end time.
version_added: "0.1.0"
author: kvmnetlab
extends_documentation_fragment:
  - kvmnetlab.lab.controller
  - kvmnetlab.lab.controller.campaign_dir
options:
  merge:
    description: Section name -> mapping to merge into it.
    type: dict
    default: {}
    suboptions:
      tool_versions:
        description: Tool -> {host -> version}.
        type: dict
      host_states:
        description: Host -> its recorded state.
        type: dict
      lab:
        description: Lab name, kind and profile.
        type: dict
  finish:
    description: Record C(finished_at) now.
    type: bool
    default: false
attributes:
  check_mode:
    details: Reports what would change; the manifest is not written.
"""

EXAMPLES = r"""
- name: Record the controller's Ansible
  kvmnetlab.lab.manifest_update:
    campaign_dir: "{{ campaign_started.campaign.dir }}"
    merge:
      tool_versions: {ansible-core: {controller: "{{ ansible_version.full }}"}}

- name: Record the campaign's end
  kvmnetlab.lab.manifest_update:
    campaign_dir: "{{ campaign_started.campaign.dir }}"
    finish: true
"""

RETURN = r"""
changed:
  description: Whether anything was merged or recorded (the manifest is written then).
  returned: always
  type: bool
"""
