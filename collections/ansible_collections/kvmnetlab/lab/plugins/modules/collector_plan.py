#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the collector_plan action plugin (plugins/action/collector_plan.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: collector_plan
short_description: Turn the enabled collectors into this run's capture steps
description:
  - Asks every enabled collector what to capture for this (scenario, repetition) on which
    host role and in which phase, and returns the steps grouped by phase, plus the raw
    files to fetch from every host. Files are named relative to each host's private run
    folder, which the host makes at its first kvmnetlab.lab.collect call of the
    repetition; the plan never predicts where that folder is.
  - Collectors this lab cannot serve (for example KVM exit counters under TCG) are
    recorded in the manifest as unavailable, with the reason, for the scenario. The
    manifest is written, and C(changed) reported, only when that record differs.
version_added: "0.1.0"
author: kvmnetlab
extends_documentation_fragment:
  - kvmnetlab.lab.controller
  - kvmnetlab.lab.controller.campaign_dir
options:
  run:
    description: "The run: scenario, repetition and resolved knobs (an item of
      kvmnetlab.lab.scenario_resolve's C(todo))."
    type: dict
    required: true
  hosts:
    description: Host role (C(sender), C(receiver), C(hypervisor)) -> inventory host.
    type: dict
    required: true
  endpoint:
    description:
      - Addresses and QEMU pid of this run, plus C(sender_links) and C(receiver_links), the
        output of C(ip -j addr show) on each end, from which the data interfaces and the
        receiver's MAC are found (parsed here, on the controller).
    type: dict
    required: true
  more_flows:
    description:
      - Flows 2..N of a repetition in which N guests or containers each receive their own
        flow from the same sender at the same time (C(hosts) and C(endpoint) are the first
        flow's). Each item names its C(receiver) host and overrides the receiver's side of
        the endpoint (C(target_address), C(receiver_links), C(receiver_pf_ring),
        C(receiver_shares_kernel), C(qemu_pid), C(container_cgroup)).
      - Every flow's captures are planned; on the shared sender and hypervisor flow k's
        files are named C(flow<k>.<file>); the flows' loads run in one step, started
        together, and so do their probes. The first flow's context keeps the others under
        C(flows).
    type: list
    elements: dict
    default: []
  collectors:
    description: Enabled collector -> host roles it covers.
    type: dict
    required: true
attributes:
  check_mode:
    details: Plans the same and reports whether the manifest would change; it is not written.
"""

EXAMPLES = r"""
- name: Plan the captures of this repetition
  kvmnetlab.lab.collector_plan:
    campaign_dir: "{{ campaign_started.campaign.dir }}"
    run: "{{ campaign_run }}"
    hosts: {sender: kvmnl-h1, receiver: kvmnl-h2, hypervisor: localhost}
    endpoint:
      source_address: 198.18.0.1
      target_address: 198.18.0.2
      sender_links: "{{ sender_links.stdout }}"
      receiver_links: "{{ receiver_links.stdout }}"
    collectors: {ping: [sender], cpu: [hypervisor, receiver]}
  register: campaign_planned
"""

RETURN = r"""
plan:
  description: The run's capture steps, one kvmnetlab.lab.collect call per host and phase.
  returned: success
  type: dict
  contains:
    pre:
      description: "C({host, steps}) per host: snapshots and background starts before the load."
      type: list
      elements: dict
    traffic:
      description: The load's steps (sender and receiver).
      type: list
      elements: dict
    post:
      description: "C({host, steps}) per host: stops and snapshots after the load, and the
        packing of raw files for hosts with no RTT probe."
      type: list
      elements: dict
    probe:
      description: The RTT probe's steps.
      type: list
      elements: dict
    pack:
      description: "C({host, steps}) per probing host: packing its raw files after the probe."
      type: list
      elements: dict
    hosts:
      description: Hosts that write raw files in this run.
      type: list
      elements: str
    unavailable:
      description: Collector -> why this lab cannot serve it.
      type: dict
    context:
      description: Hosts, endpoint (with interfaces and MACs found), collectors and attempt,
        kept with the run for parsing.
      type: dict
"""
