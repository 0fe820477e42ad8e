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
        enabled = args["collectors"]
        endpoint = dict(args["endpoint"])

        def ends(hosts, endpoint, which):
            for end in which:
                address = endpoint[f"{'source' if end == 'sender' else 'target'}_address"]
                try:
                    link = links.owner(endpoint.pop(f"{end}_links"), address)
                except links.LinkError as exc:
                    raise AnsibleActionFail(f"{end} ({hosts[end]}): {exc}") from None
                endpoint[f"{end}_if"] = link["ifname"]
                endpoint[f"{end}_mac"] = link["mac"]
                if f"{end}_pf_ring" in endpoint:
                    endpoint[f"{end}_pf_ring"] = boolean(endpoint[f"{end}_pf_ring"], strict=True)
            return endpoint

        endpoint = ends(hosts, endpoint, ("sender", "receiver"))
        if endpoint.get("container_cgroup") is None:  # set for containers only
            endpoint.pop("container_cgroup", None)
        flows = []
        for item in args.get("more_flows") or []:
            item = {k: v for k, v in item.items()
                    if not (k == "container_cgroup" and v is None)}
            flow_hosts = {**hosts, "receiver": item.pop("receiver")}
            flow_endpoint = ends(flow_hosts, {**endpoint, **item}, ("receiver",))
            flows.append({"hosts": flow_hosts, "endpoint": flow_endpoint})
        store = Store(campaign_dir)
        manifest = store.load()
        contexts = [base.RunContext(scenario=run["scenario"], repetition=int(run["repetition"]),
                                    resolved=run, parameters=manifest["parameters"],
                                    hosts=flow["hosts"], endpoint=flow["endpoint"],
                                    flow=number, flows=len(flows) + 1)
                    for number, flow in enumerate([{"hosts": hosts, "endpoint": endpoint},
                                                   *flows], start=1)]
        wanted = run.get("collectors") or list(enabled)
        try:
            plan = base.plan(contexts[0],
                             {name: enabled[name] for name in wanted if name in enabled},
                             contexts[1:])
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
        if flows:
            plan["context"]["flows"] = flows
        return {"changed": changed, "plan": plan}
