# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create or resume the result folder of the campaign the preflight validated."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.modules.campaign_start import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from kvmnetlab import store
        from kvmnetlab.errors import StoreError

        validated = args["campaign"]
        try:
            campaign_id, root, order = validated["id"], validated["dir"], validated["order"]
            parameters, chosen = validated["parameters"], validated["scenarios"]
            resuming, lab, repo = validated["resumed"], validated["lab"], validated["repo"]
        except KeyError as exc:
            raise AnsibleActionFail(f"campaign: missing {exc}; pass the campaign "
                                    "kvmnetlab.lab.campaign_validate returned") from None
        if self._task.check_mode:
            return {"changed": False, "campaign": {**validated, "pending": len(order)}}
        result_store = store.Store(root)
        try:
            if resuming:
                manifest = result_store.resume(parameters)
            else:
                manifest = result_store.create(
                    campaign_id, parameters,
                    {name: {**d, "status": "pending", "reason": None, "resolved": None,
                            "substitutions": []} for name, d in chosen.items()},
                    order, {**lab, "profile": {}}, store.git_state(repo))
        except StoreError as exc:
            raise AnsibleActionFail(str(exc)) from None
        pending = [r for r in manifest["runs"] if r["status"] == "pending"]
        return {"changed": True, "campaign": {
            **validated, "order": manifest["order"], "pending": len(pending),
            "parameters": manifest["parameters"]}}
