# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan one run's captures from the enabled collectors (controller only)."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.kvmnetlab.lab.plugins.modules.collector_plan import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from collectors import base
        from kvmnetlab import links
        from kvmnetlab.store import Store

        campaign_dir, run, hosts = args["campaign_dir"], args["run"], args["hosts"]
        enabled, remote_dir = args["collectors"], args["remote_dir"]
        endpoint = dict(args["endpoint"])
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

        def record_unavailable(manifest):
            manifest["scenarios"][run["scenario"]]["collectors_unavailable"] = \
                plan["unavailable"]

        # written only when it differs (the first repetition of a scenario, as a rule)
        manifest, changed = store.update(record_unavailable, dry_run=self._task.check_mode)
        run_entry = store.find_run(manifest, run["scenario"], run["repetition"])
        plan["context"] = {"hosts": hosts, "endpoint": endpoint, "collectors": wanted,
                           "attempt": run_entry.get("attempt", 1)}
        return {"changed": changed, "plan": plan}
