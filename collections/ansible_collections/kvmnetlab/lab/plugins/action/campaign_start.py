# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate a campaign, take the lab lock, create or resume its result folder."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.modules.campaign_start import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from collectors import base as collectors
        from kvmnetlab import campaign, lock, space, store
        from kvmnetlab.errors import ConfigError, StoreError

        scenario_file, params = args["scenario_file"], args["parameters"]
        results_dir, lock_path = args["results_dir"], args["lock_path"]
        lab, repo = args["lab"], args["repo"]
        try:
            scenarios = campaign.load_scenarios(scenario_file, collectors.known())
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
                "parameters": parameters.as_dict(), "needs": campaign.needs(chosen),
                "instances": {name: campaign.instances(d) for name, d in chosen.items()}}}
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
            "lock_owner": owner, "needs": campaign.needs(chosen)}}
