# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Merge values into a campaign manifest (tool versions, host states, lab profile)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: manifest_update
short_description: Merge values into sections of a campaign manifest
description:
  - Runs on the controller. Each key of I(merge) names a top-level section of the manifest
    (tool_versions, host_states, lab); its mapping is merged into that section.
  - With I(finish), records the campaign's end time.
options:
  campaign_dir: {description: The campaign folder., type: path, required: true}
  merge: {description: Section name -> mapping to merge., type: dict, default: {}}
  finish: {description: Record finished_at now., type: bool, default: false}
author: kvmnetlab developers
"""

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction

SECTIONS = ("tool_versions", "host_states", "lab")


class ActionModule(ControllerAction):
    def act(self, args, task_vars):
        from collectors.store import Store, utcnow

        (campaign_dir,) = self.need(args, "campaign_dir")
        merge = args.get("merge") or {}
        for section, values in merge.items():
            if section not in SECTIONS or not isinstance(values, dict):
                raise AnsibleActionFail(f"merge.{section}: must be one of {SECTIONS} "
                                        "with a mapping value")
        if self._task.check_mode:
            return {"changed": bool(merge) or bool(args.get("finish"))}
        store = Store(campaign_dir)
        manifest = store.load()
        for section, values in merge.items():
            manifest.setdefault(section, {}).update(values)
        if args.get("finish"):
            manifest["finished_at"] = utcnow()
        store.save(manifest)
        return {"changed": True}
