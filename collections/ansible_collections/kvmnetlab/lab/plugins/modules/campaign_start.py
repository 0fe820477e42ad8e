#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the campaign_start action plugin (plugins/action/campaign_start.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: campaign_start
short_description: Create or resume the result folder of a validated campaign
description:
  - Takes the campaign M(kvmnetlab.lab.campaign_validate) returned in the preflight, which
    validated its parameters and scenarios and planned its runs; nothing is validated again.
  - Creates C(results/<campaign-id>/) with its manifest (the validated parameters, the
    chosen scenarios, the run plan, the lab and the checkout's git commit), or, when the
    campaign resumes an existing one, verifies every collected file and resumes it,
    refusing parameters that differ from the campaign's.
  - Takes no lock, since the preflight took the lab lock (M(kvmnetlab.lab.lab_lock)) for
    this ansible-playbook process.
version_added: "0.1.0"
author: kvmnetlab
extends_documentation_fragment:
  - kvmnetlab.lab.controller
options:
  campaign:
    description:
      - The validated campaign, C(campaign) of M(kvmnetlab.lab.campaign_validate)'s result
        (C(id), C(dir), C(resumed), C(order), C(parameters), C(scenarios), C(lab), C(repo)).
    type: dict
    required: true
attributes:
  check_mode:
    details: Writes nothing; returns the campaign with every planned run pending.
"""

EXAMPLES = r"""
- name: Create or resume the campaign's result folder
  kvmnetlab.lab.campaign_start:
    campaign: "{{ kvmnetlab_preflight.campaign }}"
  register: campaign_started
"""

RETURN = r"""
campaign:
  description: The validated campaign (as given), with its folder created or resumed.
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
    pending:
      description: Runs still to do.
      type: int
      returned: success (in check mode, every planned run)
"""
