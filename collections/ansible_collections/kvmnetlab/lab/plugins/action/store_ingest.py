# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse a campaign's raw files into its tidy tables (controller only)."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.modules.store_ingest import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from collectors.ingest import ingest
        from kvmnetlab.errors import StoreError

        campaign_dir = args["campaign_dir"]
        if self._task.check_mode:
            return {"changed": True}
        try:
            outcome = ingest(campaign_dir)
        except StoreError as exc:
            raise AnsibleActionFail(str(exc)) from None
        if outcome["failed"] and args.get("fail_on_parse_error"):
            raise AnsibleActionFail("raw files that did not parse: " + "; ".join(outcome["failed"]))
        # Not "failed": Ansible would read a non-empty list there as a failed task.
        return {"changed": outcome["changed"], "rows": outcome["rows"],
                "unparsed": outcome["failed"]}
