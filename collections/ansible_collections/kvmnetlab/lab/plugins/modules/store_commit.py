#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the store_commit action plugin (plugins/action/store_commit.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: store_commit
short_description: Move a run's staged raw files into raw/ atomically and record the run
description:
  - The files under I(staging) enter C(raw/<scenario>/<repetition>/) all at once (staged
    beside raw/, fsynced, renamed) and only then are recorded, with their sha256 and the
    run's status, reason and times, in one write of the manifest. A run already collected
    is never rewritten. The staging folder is removed.
  - When the results file system has less free space than the commit may need (the
    tars, twice the manifest, 1 MiB), or fills up while it writes, it fails with
    C(store_full) set and a message naming the path, the free space and what was being
    written; the manifest stays as it was.
version_added: "0.1.0"
author: kvmnetlab
extends_documentation_fragment:
  - kvmnetlab.lab.controller
  - kvmnetlab.lab.controller.campaign_dir
options:
  scenario:
    description: Scenario name.
    type: str
    required: true
  repetition:
    description: Repetition number (1-based).
    type: int
    required: true
  staging:
    description: Folder the raw files were fetched into.
    type: path
  bundles:
    description:
      - Tars fetched from the hosts, each C({host, tar, members}) with C(members) the
        sha256 of every file as computed on the host; unpacked into I(staging)/<host>/ and
        checked before anything is stored.
    type: list
    elements: dict
    default: []
  status:
    description: The run's outcome.
    type: str
    required: true
    choices: [done, failed]
  reason:
    description: Why the run failed.
    type: str
  started_at:
    description: ISO time the run started.
    type: str
  context:
    description: Hosts, endpoint and collectors the run used (kept for parsing).
    type: dict
attributes:
  check_mode:
    details: Reports a change; nothing is moved or written.
"""

EXAMPLES = r"""
- name: Commit the raw files to the result store
  kvmnetlab.lab.store_commit:
    campaign_dir: "{{ campaign_started.campaign.dir }}"
    scenario: "{{ campaign_run.scenario }}"
    repetition: "{{ campaign_run.repetition }}"
    staging: "{{ campaign_staging }}"
    bundles: "{{ campaign_fetched }}"
    status: done
    started_at: "{{ campaign_run_started }}"
    context: "{{ campaign_plan.context }}"
"""

RETURN = r"""
committed:
  description: Paths (relative to the campaign folder) of the files committed.
  returned: success
  type: list
  elements: str
store_full:
  description: Set when the results file system had too little free space; the campaign
    must stop (it resumes with the same command).
  returned: when the file system is full
  type: bool
free_bytes:
  description: Free space of the results file system (bytes).
  returned: when the file system is full
  type: int
path:
  description: The path being written when the file system was found full.
  returned: when the file system is full
  type: str
"""
