#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the lab_lock action plugin (plugins/action/lab_lock.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_lock
short_description: Take or release the lab lock held by this ansible-playbook process
description:
  - The lock is a file recording the PID and start time of the ansible-playbook process that
    holds it. A lock whose holder is gone is stale and is taken over.
  - Taking a lock held by another live ansible-playbook fails, naming the holder.
  - Taking a free or stale lock, and releasing one, report C(changed); taking a lock this
    process holds already does not.
version_added: "0.1.0"
author: kvmnetlab
extends_documentation_fragment:
  - kvmnetlab.lab.controller
options:
  path:
    description: The lock file.
    type: path
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases it.
    type: str
    default: absent
    choices: [present, absent]
  purpose:
    description: Recorded with the lock (for example the campaign id, or C(teardown)).
    type: str
    default: campaign
attributes:
  check_mode:
    details: Neither takes nor releases the lock; reports whether it would.
"""

EXAMPLES = r"""
- name: Take the lab lock (a second campaign on this lab is refused)
  kvmnetlab.lab.lab_lock:
    path: "{{ kvmnetlab_lock_dir }}/{{ kvmnetlab_lab_name }}.lock"
    state: present
    purpose: "{{ kvmnetlab_preflight.campaign.id }}"

- name: Release the lab lock
  kvmnetlab.lab.lab_lock:
    path: "{{ kvmnetlab_lock_dir }}/{{ kvmnetlab_lab_name }}.lock"
    state: absent
"""

RETURN = r"""
lock:
  description: "The lock now held: C(pid) and C(start_time) of this ansible-playbook, and
    C(campaign_id) (the I(purpose)) and C(since)."
  returned: when I(state=present), not in check mode
  type: dict
released:
  description: Whether a lock held by this process (or a stale one) was removed.
  returned: when I(state=absent), not in check mode
  type: bool
"""
