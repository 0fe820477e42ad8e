# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan one run's captures from the enabled collectors (controller only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: collector_plan
short_description: Turn the enabled collectors into this run's capture steps
description:
  - Runs on the controller. Asks every enabled collector what to capture for this
    (scenario, repetition) on which host role and in which phase, and returns the steps
    grouped by phase, plus the raw files to fetch from every host.
  - Collectors this lab cannot serve (e.g. KVM exit counters under TCG) are recorded in
    the manifest as unavailable, with the reason, for the scenario.
options:
  campaign_dir: {description: The campaign folder., type: path, required: true}
  run: {description: "The run: scenario, repetition and resolved knobs.", type: dict, required: true}
  hosts: {description: Host role (sender, receiver, hypervisor) -> inventory host., type: dict, required: true}
  endpoint:
    description:
      - Addresses and QEMU pid of this run, plus C(sender_links) and C(receiver_links), the
        output of C(ip -j addr show) on each end, from which the data interfaces and the
        receiver's MAC are found (parsed here, on the controller).
    type: dict
    required: true
  collectors: {description: Enabled collector -> host roles it covers., type: dict, required: true}
  remote_dir: {description: This run's folder on the hosts., type: str, required: true}
author: kvmnetlab developers
"""

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    def act(self, args, task_vars):
        from collectors import base, links
        from collectors.store import Store

        campaign_dir, run, hosts, endpoint, enabled, remote_dir = self.need(
            args, "campaign_dir", "run", "hosts", "endpoint", "collectors", "remote_dir")
        endpoint = dict(endpoint)
        for end, address in (("sender", endpoint["source_address"]),
                             ("receiver", endpoint["target_address"])):
            try:
                link = links.owner(endpoint.pop(f"{end}_links"), address)
            except links.LinkError as exc:
                raise AnsibleActionFail(f"{end} ({hosts[end]}): {exc}") from None
            endpoint[f"{end}_if"] = link["ifname"]
            endpoint[f"{end}_mac"] = link["mac"]
            if f"{end}_pf_ring" in endpoint:
                endpoint[f"{end}_pf_ring"] = boolean(endpoint[f"{end}_pf_ring"], strict=True)
        store = Store(campaign_dir)
        manifest = store.load()
        ctx = base.RunContext(scenario=run["scenario"], repetition=int(run["repetition"]),
                              resolved=run, parameters=manifest["parameters"], hosts=hosts,
                              endpoint=endpoint)
        wanted = run.get("collectors") or list(enabled)
        try:
            plan = base.plan(ctx, {name: enabled[name] for name in wanted if name in enabled},
                             remote_dir)
        except KeyError as exc:
            raise AnsibleActionFail(str(exc)) from None
        scenario = manifest["scenarios"][run["scenario"]]
        if scenario.get("collectors_unavailable") != plan["unavailable"]:
            scenario["collectors_unavailable"] = plan["unavailable"]
            if not self._task.check_mode:
                store.save(manifest)
        run_entry = store.find_run(manifest, run["scenario"], run["repetition"])
        plan["context"] = {"hosts": hosts, "endpoint": endpoint, "collectors": wanted,
                           "attempt": run_entry.get("attempt", 1)}
        return {"changed": False, "plan": plan}
