# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Merge values into a campaign manifest (tool versions, host states, lab profile)."""

from __future__ import annotations

from ansible_collections.kvmnetlab.lab.plugins.modules.manifest_update import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from kvmnetlab.store import Store, utcnow

        campaign_dir = args["campaign_dir"]
        # the sections are merge's documented suboptions (an unknown one is refused)
        merge = {section: values for section, values in (args["merge"] or {}).items()
                 if values is not None}

        def merge_into(manifest):
            for section, values in merge.items():
                manifest.setdefault(section, {}).update(values)
            if args["finish"]:
                manifest["finished_at"] = utcnow()

        _, changed = Store(campaign_dir).update(merge_into, dry_run=self._task.check_mode)
        return {"changed": changed}
