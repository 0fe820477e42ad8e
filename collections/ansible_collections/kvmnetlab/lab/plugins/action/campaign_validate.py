# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate a campaign: its parameters (read from the play by their declared names), its
scenarios, its results folder; plan its runs. Takes no lock and writes nothing."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.modules.campaign_validate import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from collectors import base as collectors
        from kvmnetlab import campaign, space, store
        from kvmnetlab import parameters as declared
        from kvmnetlab.errors import ConfigError

        repo = args["repo"]
        scenario_file = os.path.join(repo, args["scenario_file"])
        results_dir = os.path.join(repo, args["results_dir"])
        lab = args["lab"]
        # every campaign, search and sockperf variable, by the name a user sets
        raw = {key: self._templar.template(value)
               for key, value in declared.from_variables(task_vars).items()}
        try:
            scenarios = campaign.load_scenarios(scenario_file, collectors.known())
            parameters = campaign.validate_parameters(raw, list(scenarios))
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
        return {"changed": False, "campaign": {
            "id": campaign_id, "dir": root, "resumed": resuming, "order": order,
            "parameters": parameters.as_dict(), "scenarios": chosen,
            "needs": campaign.needs(chosen),
            "instances": {name: campaign.instances(d) for name, d in chosen.items()},
            "scenario_file": scenario_file, "results_dir": results_dir,
            "lock_path": declared.lock_path(args["lock_dir"], lab["name"]),
            "lab": lab, "repo": repo}}
