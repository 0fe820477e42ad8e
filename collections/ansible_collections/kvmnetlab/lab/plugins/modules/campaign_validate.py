#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the campaign_validate action plugin (plugins/action/campaign_validate.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: campaign_validate
short_description: Validate a campaign's parameters, scenarios and results folder; plan its runs
description:
  - Reads every campaign parameter from the play's variables by the name a user sets
    (C(kvmnetlab_repetitions), C(kvmnetlab_search_trial_s), C(kvmnetlab_sockperf), ...),
    that is the variables of the groups campaign, search and sockperf declared in
    C(kvmnetlab.parameters). An absent one takes its declared default.
  - Validates the scenario file and every parameter against that declaration; a bad value
    fails with a message naming the file and the variable, before anything is written or
    any host is changed.
  - Refuses a results folder it cannot create or write, and a campaign whose estimated
    size (from its parameters, C(kvmnetlab.space)) plus a margin exceeds the free space of
    the results file system, giving both numbers; a resumed campaign is estimated from
    the repetitions it has left.
  - The run plan is blocked (C(kvmnetlab.campaign.plan_runs)); block k runs repetition k
    of every scenario in an order drawn from the seed, and every run records its block.
  - With C(kvmnetlab_control) naming a scenario, an A/A control (a copy of it named
    C(<scenario>_aa), flagged C(control_of)) is added and run in the same blocks.
  - Takes no lock and writes nothing; the preflight takes the lab lock
    (M(kvmnetlab.lab.lab_lock)) at the returned C(lock_path), and the campaign role creates
    or resumes the result folder from the returned campaign (M(kvmnetlab.lab.campaign_start)).
version_added: "0.1.0"
author: kvmnetlab
extends_documentation_fragment:
  - kvmnetlab.lab.controller
options:
  repo:
    description: kvmnetlab checkout; relative paths start here and its git commit is recorded.
    type: path
    required: true
  scenario_file:
    description: Scenario definitions (YAML), absolute or relative to I(repo).
    type: path
    required: true
  results_dir:
    description: Folder holding campaign folders, absolute or relative to I(repo).
    type: path
    required: true
  campaign_id:
    description: Id to create or resume; default a UTC timestamp.
    type: str
  lock_dir:
    description: Where the controller keeps the lab's lock; the lock is C(<lock_dir>/<lab name>.lock).
    type: path
    required: true
  lab:
    description: Lab name and kind, recorded in the manifest.
    type: dict
    required: true
attributes:
  check_mode:
    details: Validates and plans in any mode; it never writes.
"""

EXAMPLES = r"""
- name: Validate campaign parameters and scenarios (nothing is locked or written)
  kvmnetlab.lab.campaign_validate:
    repo: "{{ kvmnetlab_repo }}"
    scenario_file: "{{ kvmnetlab_scenario_file }}"
    results_dir: "{{ kvmnetlab_results_dir }}"
    campaign_id: "{{ kvmnetlab_campaign_id | default(none) }}"
    lock_dir: "{{ kvmnetlab_lock_dir }}"
    lab: {name: embedded, kind: embedded}
  register: kvmnetlab_preflight
"""

RETURN = r"""
campaign:
  description: The validated campaign, what M(kvmnetlab.lab.campaign_start) creates or resumes.
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
      description: >-
        The validated parameters keyed by variable name without C(kvmnetlab_), with the
        seed drawn when none was given: the manifest's C(parameters).
      type: dict
    scenarios:
      description: The chosen scenarios' definitions (the A/A control included).
      type: dict
    needs:
      description: >-
        What the lab must start for the chosen scenarios, C({guests, containers}): the largest
        guest count of a kvm scenario (at least 1) and of a container scenario (0 if none).
      type: dict
    instances:
      description: Each chosen scenario's number of guests or containers (its C(guests), else 1).
      type: dict
    scenario_file:
      description: Absolute path of the scenario file.
      type: str
    results_dir:
      description: Absolute path of the folder holding campaign folders.
      type: str
    lock_path:
      description: The lab's lock file (C(kvmnetlab.parameters.lock_path)).
      type: str
    lab:
      description: Lab name and kind.
      type: dict
    repo:
      description: The kvmnetlab checkout.
      type: str
"""
