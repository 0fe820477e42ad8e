# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate a campaign, take the lab lock, create or resume its result folder."""

from __future__ import annotations

DOCUMENTATION = r"""
module: campaign_start
short_description: Validate campaign parameters, lock the lab, create or resume the result folder
description:
  - Runs on the controller only. Validates the scenario file and every campaign parameter
    first; a bad value fails with a message naming the file and the field, before anything
    is written or any host is changed.
  - Refuses a results folder it cannot create or write, and a campaign whose estimated
    size (from its parameters, collectors.space) plus a margin exceeds the free space of
    the results file system, giving both numbers; a resumed campaign is estimated from
    the repetitions it has left.
  - Takes the lab lock for this ansible-playbook process; a second campaign on the same lab
    is refused while the first runs.
  - Creates results/<campaign-id>/ with its manifest, or, when the id names an existing
    campaign, verifies every collected file and resumes it.
  - The run plan is blocked (collectors.campaign.plan_runs) - block k runs repetition k of
    every scenario in an order drawn from the seed - and every run records its block.
  - With parameters.control naming a scenario, an A/A control (a copy of it named
    <scenario>_aa, flagged control_of) is added and run in the same blocks.
  - In check mode it validates and plans, and writes nothing.
options:
  scenario_file: {description: Scenario definitions (YAML)., type: path, required: true}
  parameters: {description: Campaign parameters without the kvmnetlab_ prefix., type: dict, required: true}
  campaign_id: {description: Id to create or resume; default a UTC timestamp., type: str}
  results_dir: {description: Folder holding campaign folders., type: path, required: true}
  lock_path: {description: The lab's lock file., type: path, required: true}
  lab: {description: Lab name and kind, recorded in the manifest., type: dict, required: true}
  repo: {description: kvmnetlab checkout whose git commit is recorded., type: path, required: true}
  validate_only: {description: Validate and plan only; take no lock and write nothing., type: bool, default: false}
author: kvmnetlab developers
"""

import os

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    def act(self, args, task_vars):
        from collectors import campaign, lock, space, store
        from collectors.errors import ConfigError, StoreError

        scenario_file, params, results_dir, lock_path, lab, repo = self.need(
            args, "scenario_file", "parameters", "results_dir", "lock_path", "lab", "repo")
        try:
            scenarios = campaign.load_scenarios(scenario_file)
            parameters = campaign.validate_parameters(params, list(scenarios))
            campaign_id = campaign.validate_campaign_id(args.get("campaign_id"))
            chosen = campaign.campaign_scenarios(scenarios, parameters)
        except ConfigError as exc:
            raise AnsibleActionFail(f"invalid campaign: {exc}") from None
        resuming = bool(campaign_id) and store.Store(
            os.path.join(results_dir, campaign_id)).exists()
        campaign_id = campaign_id or store.new_campaign_id()
        root = os.path.abspath(os.path.join(results_dir, campaign_id))
        order = campaign.plan_runs(list(chosen), parameters.repetitions, parameters.seed)
        try:
            space.check_results_dir(results_dir)
            runs = space.runs_left(root, len(order)) if resuming else len(order)
            space.check_free_space(results_dir, space.estimate_bytes(parameters, runs), runs)
        except ConfigError as exc:
            raise AnsibleActionFail(f"invalid campaign: {exc}") from None
        if self._task.check_mode or args.get("validate_only"):
            return {"changed": False, "campaign": {
                "id": campaign_id, "dir": root, "resumed": resuming, "order": order,
                "parameters": parameters.as_dict()}}
        owner = lock.playbook_pid()
        try:
            lock.acquire(lock_path, owner, {"campaign_id": campaign_id, "since": store.utcnow(),
                                            "results": root})
        except lock.LabBusy as exc:
            raise AnsibleActionFail(str(exc)) from None
        result_store = store.Store(root)
        try:
            if resuming:
                manifest = result_store.resume(parameters.as_dict())
            else:
                manifest = result_store.create(
                    campaign_id, parameters.as_dict(),
                    {name: {**d, "status": "pending", "reason": None, "resolved": None,
                            "substitutions": []} for name, d in chosen.items()},
                    order, {**lab, "profile": {}}, store.git_state(repo))
        except StoreError as exc:
            lock.release(lock_path, owner)
            raise AnsibleActionFail(str(exc)) from None
        pending = [r for r in manifest["runs"] if r["status"] == "pending"]
        return {"changed": True, "campaign": {
            "id": campaign_id, "dir": root, "resumed": resuming, "order": manifest["order"],
            "pending": len(pending), "parameters": manifest["parameters"],
            "lock_owner": owner}}
