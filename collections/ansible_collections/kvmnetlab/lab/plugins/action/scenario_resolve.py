# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolve the campaign's scenarios against the capability documents of the lab's hosts."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.modules.scenario_resolve import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction

# Facts other roles set on a host that its profile takes in.
_FACTS = ("guest_vm_accel", "guest_vm_accel_reason", "guest_vm_unavailable_reason",
          "pf_ring_unavailable_reason")


class ActionModule(ControllerAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from kvmnetlab import capabilities
        from kvmnetlab import resolve as resolver
        from kvmnetlab.errors import ConfigError
        from kvmnetlab.store import Store

        campaign_dir, probes = args["campaign_dir"], args["probes"]
        endpoints, hypervisor = args["endpoints"], args["hypervisor"]
        hostvars = task_vars.get("hostvars") or {}
        groups = task_vars.get("groups") or {}

        def var(host, name, default=None):
            try:
                value = hostvars[host].get(name, default)
            except KeyError:
                return default
            return default if value is None else value

        probed = [capabilities.probed_host(r) for r in probes]
        facts = {h: {k: var(h, k) for k in _FACTS if var(h, k) is not None} for h in probed}
        try:
            profiles = capabilities.profiles_from_probes(probes, facts)
        except ConfigError as exc:
            raise AnsibleActionFail(str(exc)) from None
        guests = []
        for name in groups.get(args.get("guest_group") or "guests", []):
            guests.append({"name": name,
                           "hypervisor": var(name, "kvmnetlab_guest_hypervisor", hypervisor),
                           "netdev": dict(var(name, "kvmnetlab_guest_netdev", {}) or {})})
        containers = [{"name": name,
                       "hypervisor": var(name, "kvmnetlab_container_hypervisor", hypervisor),
                       "runtime": var(name, "kvmnetlab_container_runtime")}
                      for name in groups.get(args.get("container_group") or "containers", [])]
        lab = {"endpoints": endpoints, "hypervisor": hypervisor, "guests": guests,
               "containers": containers,
               "containers_reason": var(hypervisor, "container_lab_reason"),
               "declared": dict(args.get("declared") or {})}

        store = Store(campaign_dir)
        manifest = store.load()
        definitions = {name: {k: v for k, v in d.items()
                              if k not in ("status", "reason", "resolved", "substitutions")}
                       for name, d in manifest["scenarios"].items()}
        try:
            resolved = resolver.resolve_lab(definitions, profiles, lab)
        except resolver.ScenarioFailed as exc:
            raise AnsibleActionFail(str(exc)) from None

        def record(manifest):
            for name, outcome in resolved.items():
                manifest["scenarios"][name].update(
                    resolved=outcome["resolved"], substitutions=outcome["substitutions"],
                    status=outcome["status"], reason=outcome["reason"])
            for run in manifest["runs"]:
                outcome = resolved[run["scenario"]]
                if run["status"] in ("pending", "not_run", "skipped") and \
                        outcome["status"] != "run":
                    run.update(status=outcome["status"], reason=outcome["reason"])
                elif run["status"] in ("not_run", "skipped") and outcome["status"] == "run":
                    run.update(status="pending", reason=None)
            manifest["lab"]["profile"] = {
                "format_version": capabilities.CAPABILITY_FORMAT_VERSION,
                "hosts": profiles,
                "roles": {"endpoints": endpoints, "hypervisor": hypervisor, "guests": guests,
                          **({"containers": containers} if containers else {})},
                "declared": lab["declared"],
            }

        manifest, changed = store.update(record, dry_run=self._task.check_mode)
        todo = [{"scenario": r["scenario"], "repetition": r["repetition"],
                 **resolved[r["scenario"]]["resolved"]}
                for r in manifest["runs"] if r["status"] == "pending"]
        return {"changed": changed, "scenarios": resolved, "todo": todo, "profiles": profiles,
                "pf_ring_hosts": {h: bool(p.get("pf_ring")) for h, p in profiles.items()},
                "tool_versions": capabilities.tool_versions(profiles)}
