# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolve the campaign's scenarios against the lab's probed capabilities."""

from __future__ import annotations

DOCUMENTATION = r"""
module: scenario_resolve
short_description: Map requested scenario knobs to what this lab can honour
description:
  - Runs on the controller. Reads the campaign manifest, resolves every scenario with the
    given capabilities, records resolved knobs, substitutions and status in the manifest,
    marks the runs of scenarios that cannot run, and returns the runs still to do.
options:
  campaign_dir: {description: The campaign folder., type: path, required: true}
  capabilities: {description: Probed and declared capabilities (see collectors.scenarios)., type: dict, required: true}
  guests: {description: "Running guests: {name, netdev}.", type: list, elements: dict, default: []}
author: kvmnetlab developers
"""

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    def act(self, args, task_vars):
        from collectors import scenarios as resolver
        from collectors.store import Store

        campaign_dir, caps = self.need(args, "campaign_dir", "capabilities")
        store = Store(campaign_dir)
        manifest = store.load()
        definitions = {name: {k: v for k, v in d.items()
                              if k not in ("status", "reason", "resolved", "substitutions")}
                       for name, d in manifest["scenarios"].items()}
        try:
            resolved = resolver.resolve_all(definitions, caps, args.get("guests") or [])
        except resolver.ScenarioFailed as exc:
            raise AnsibleActionFail(str(exc)) from None
        for name, outcome in resolved.items():
            manifest["scenarios"][name].update(
                resolved=outcome["resolved"], substitutions=outcome["substitutions"],
                status=outcome["status"], reason=outcome["reason"])
        for run in manifest["runs"]:
            outcome = resolved[run["scenario"]]
            if run["status"] in ("pending", "not_run", "skipped") and outcome["status"] != "run":
                run.update(status=outcome["status"], reason=outcome["reason"])
            elif run["status"] in ("not_run", "skipped") and outcome["status"] == "run":
                run.update(status="pending", reason=None)
        manifest["lab"]["profile"] = caps
        if not self._task.check_mode:
            store.save(manifest)
        todo = [{"scenario": r["scenario"], "repetition": r["repetition"],
                 **resolved[r["scenario"]]["resolved"]}
                for r in manifest["runs"] if r["status"] == "pending"]
        return {"changed": False, "scenarios": resolved, "todo": todo}
