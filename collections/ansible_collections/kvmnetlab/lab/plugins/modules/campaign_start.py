#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the campaign_start action plugin (plugins/action/campaign_start.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: campaign_start
short_description: Validate campaign parameters, lock the lab, create or resume the result folder
description:
  - Validates the scenario file and every campaign parameter first; a bad value fails with
    a message naming the file and the field, before anything is written or any host is
    changed.
  - Refuses a results folder it cannot create or write, and a campaign whose estimated
    size (from its parameters, C(kvmnetlab.space)) plus a margin exceeds the free space of
    the results file system, giving both numbers; a resumed campaign is estimated from
    the repetitions it has left.
  - Takes the lab lock for this ansible-playbook process; a second campaign on the same lab
    is refused while the first runs.
  - Creates C(results/<campaign-id>/) with its manifest, or, when the id names an existing
    campaign, verifies every collected file and resumes it.
  - The run plan is blocked (C(kvmnetlab.campaign.plan_runs)); block k runs repetition k
    of every scenario in an order drawn from the seed, and every run records its block.
  - With C(parameters.control) naming a scenario, an A/A control (a copy of it named
    C(<scenario>_aa), flagged C(control_of)) is added and run in the same blocks.
version_added: "0.1.0"
author: kvmnetlab
extends_documentation_fragment:
  - kvmnetlab.lab.controller
options:
  scenario_file:
    description: Scenario definitions (YAML).
    type: path
    required: true
  parameters:
    description:
      - Campaign parameters without the C(kvmnetlab_) prefix (C(repetitions),
        C(ping_count), C(seed), C(scenarios), C(search), ...), validated by
        C(kvmnetlab.campaign.validate_parameters); an error names the field.
    type: dict
    required: true
  campaign_id:
    description: Id to create or resume; default a UTC timestamp.
    type: str
  results_dir:
    description: Folder holding campaign folders.
    type: path
    required: true
  lock_path:
    description: The lab's lock file.
    type: path
    required: true
  lab:
    description: Lab name and kind, recorded in the manifest.
    type: dict
    required: true
  repo:
    description: kvmnetlab checkout whose git commit is recorded.
    type: path
    required: true
  validate_only:
    description: Validate and plan only; take no lock and write nothing.
    type: bool
    default: false
attributes:
  check_mode:
    details: Validates and plans; takes no lock and writes nothing.
"""

EXAMPLES = r"""
- name: Validate campaign parameters and scenarios (nothing is locked or written)
  kvmnetlab.lab.campaign_start:
    scenario_file: "{{ kvmnetlab_repo }}/scenarios/seed.yml"
    parameters:
      repetitions: 5
      ping_count: 200
      scenarios: [bare_metal, virtio]
    campaign_id: "{{ kvmnetlab_campaign_id | default(none) }}"
    results_dir: "{{ kvmnetlab_repo }}/results"
    lock_path: /run/kvmnetlab/embedded.lock
    lab: {name: embedded, kind: embedded}
    repo: "{{ kvmnetlab_repo }}"
    validate_only: true
  register: kvmnetlab_preflight
"""

RETURN = r"""
campaign:
  description: The validated campaign.
  returned: success
  type: dict
  contains:
    id:
      description: The campaign id.
      type: str
    dir:
      description: Absolute path of the campaign folder.
      type: str
    resumed:
      description: Whether the id named an existing campaign, which is resumed.
      type: bool
    order:
      description: The run plan, one C({scenario, repetition, block}) per run.
      type: list
      elements: dict
    parameters:
      description: The validated parameters, with the seed drawn when none was given.
      type: dict
    needs:
      description: >-
        What the lab must start for the chosen scenarios, C({guests, containers}): the largest
        guest count of a kvm scenario (at least 1) and of a container scenario (0 if none).
      type: dict
    instances:
      description: Each chosen scenario's number of guests or containers (its C(guests), else 1).
      type: dict
      returned: in check mode or with I(validate_only)
    pending:
      description: Runs still to do.
      type: int
      returned: when the campaign was created or resumed (not in check mode or with I(validate_only))
    lock_owner:
      description: PID of the ansible-playbook process now holding the lab lock.
      type: int
      returned: when the campaign was created or resumed (not in check mode or with I(validate_only))
"""
