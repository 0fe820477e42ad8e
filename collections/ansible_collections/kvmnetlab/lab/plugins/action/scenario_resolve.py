# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolve the campaign's scenarios against the capability documents of the lab's hosts."""

from __future__ import annotations

DOCUMENTATION = r"""
module: scenario_resolve
short_description: Map requested scenario knobs to what the hosts of this lab can honour
description:
  - Runs on the controller. Turns each host's capability document (from
    kvmnetlab.lab.lab_capabilities_info, run on that host) and the facts other roles set
    on it (guest_vm_accel, guest_vm_accel_reason, guest_vm_unavailable_reason on a
    hypervisor; pf_ring_unavailable_reason) into a per-host profile, resolves every
    scenario against the hosts it runs on (collectors.scenarios.resolve_lab), records the
    profiles, resolved knobs, substitutions and status in the manifest, marks the runs of
    scenarios that cannot run, and returns the runs still to do.
  - The running guests are the hosts of group C(guests), each with the hostvars
    kvmnetlab_guest_hypervisor and kvmnetlab_guest_netdev that roles/guest_vm sets.
options:
  campaign_dir: {description: The campaign folder., type: path, required: true}
  probes: {description: "Registered loop results of lab_capabilities_info over capability_probe_plan (item: {host, ...}).", type: list, elements: dict, required: true}
  endpoints: {description: "The campaign's endpoints: {bare_metal: {sender, receiver, ...}, guest: {sender, ...}}.", type: dict, required: true}
  hypervisor: {description: The hypervisor guests run on unless a guest names its own., type: str, required: true}
  declared: {description: Capabilities the lab declares rather than probes., type: dict, default: {}}
  guest_group: {description: Inventory group of the running guests., type: str, default: guests}
author: kvmnetlab developers
"""

RETURN = r"""
scenarios: {description: "scenario -> {resolved, substitutions, status, reason}.", returned: always, type: dict}
todo: {description: The pending runs with their resolved knobs., returned: always, type: list}
profiles: {description: host -> profile., returned: always, type: dict}
pf_ring_hosts: {description: host -> whether pf_ring.ko is loaded there., returned: always, type: dict}
tool_versions: {description: "tool -> {host: version}.", returned: always, type: dict}
"""

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction

# Facts other roles set on a host that its profile takes in.
_FACTS = ("guest_vm_accel", "guest_vm_accel_reason", "guest_vm_unavailable_reason",
          "pf_ring_unavailable_reason")


class ActionModule(ControllerAction):
    def act(self, args, task_vars):
        from collectors import capabilities
        from collectors import scenarios as resolver
        from collectors.errors import ConfigError
        from collectors.store import Store

        campaign_dir, probes, endpoints, hypervisor = self.need(
            args, "campaign_dir", "probes", "endpoints", "hypervisor")
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
        lab = {"endpoints": endpoints, "hypervisor": hypervisor, "guests": guests,
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
        manifest["lab"]["profile"] = {
            "format_version": capabilities.CAPABILITY_FORMAT_VERSION,
            "hosts": profiles,
            "roles": {"endpoints": endpoints, "hypervisor": hypervisor, "guests": guests},
            "declared": lab["declared"],
        }
        if not self._task.check_mode:
            store.save(manifest)
        todo = [{"scenario": r["scenario"], "repetition": r["repetition"],
                 **resolved[r["scenario"]]["resolved"]}
                for r in manifest["runs"] if r["status"] == "pending"]
        return {"changed": False, "scenarios": resolved, "todo": todo, "profiles": profiles,
                "pf_ring_hosts": {h: bool(p.get("pf_ring")) for h, p in profiles.items()},
                "tool_versions": capabilities.tool_versions(profiles)}
