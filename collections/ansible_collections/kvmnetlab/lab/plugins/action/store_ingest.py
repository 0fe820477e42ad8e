# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse a campaign's raw files into its tidy tables (controller only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: store_ingest
short_description: Parse raw/ into data/*.parquet on the controller
description:
  - Every completed run's raw files are parsed by their tool's parser. A file that does not
    parse marks its run failed with the parser's message (file and line); raw/ is never
    touched. Fails at the end when any run failed to parse and I(fail_on_parse_error) is set.
options:
  campaign_dir: {description: The campaign folder., type: path, required: true}
  fail_on_parse_error: {description: Fail when a raw file did not parse., type: bool, default: false}
author: kvmnetlab developers
"""

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    def act(self, args, task_vars):
        from collectors.errors import StoreError
        from collectors.ingest import ingest

        (campaign_dir,) = self.need(args, "campaign_dir")
        if self._task.check_mode:
            return {"changed": True}
        try:
            outcome = ingest(campaign_dir)
        except StoreError as exc:
            raise AnsibleActionFail(str(exc)) from None
        if outcome["failed"] and args.get("fail_on_parse_error"):
            raise AnsibleActionFail("raw files that did not parse: " + "; ".join(outcome["failed"]))
        # Not "failed": Ansible would read a non-empty list there as a failed task.
        return {"changed": True, "rows": outcome["rows"], "unparsed": outcome["failed"]}
