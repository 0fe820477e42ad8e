"""Per-host capability documents -> host profiles -> what one scenario can rely on.

Every measuring host and every hypervisor answers the read-only probe
``kvmnetlab.lab.lab_capabilities_info`` with one document (format_version 1).
This module is the controller's side of that contract, pure Python:

- :func:`host_profile` checks one document and flattens it into the profile the
  manifest keeps and the report shows, one per host; facts that other roles set
  on that host (the acceleration a probe guest booted with, why guests are
  unavailable, why PF_RING is) join it there;
- :func:`scenario_capabilities` picks, for one scenario, the hosts it runs on
  (the bare-metal pair, or the guest and the hypervisor that runs it) and
  returns the flat capabilities :func:`kvmnetlab.resolve.resolve` reads, with
  every reason naming the host it is about.

The controller is never assumed to be the hypervisor: a capability is read from
the profile of the host that has it.
"""

from __future__ import annotations

import re
from typing import Any

from kvmnetlab.errors import ConfigError
from kvmnetlab.traffic_control import data_path_qdiscs

CAPABILITY_FORMAT_VERSION = 1

# The sections a capability document must have, with the type of each.
_SECTIONS: dict[str, type] = {
    "kernel": dict, "kvm": dict, "vhost_net": dict, "pf_ring": dict, "elvis": dict,
    "qemu": dict, "halt_poll_ns": dict, "cpus": dict, "nics": dict, "tools": dict,
}
_FEATURE = re.compile(r"^([a-z0-9][a-z0-9_-]*):\s+(on|off)\b")


def parse_ethtool_features(text: str | None) -> dict[str, bool]:
    """``ethtool -k <if>`` -> ``{feature: on}``; the header and unknown lines are ignored."""
    out: dict[str, bool] = {}
    for line in (text or "").splitlines():
        match = _FEATURE.match(line.strip())
        if match:
            out[match.group(1)] = match.group(2) == "on"
    return out


def _ethtool_driver(text: str | None) -> str | None:
    for line in (text or "").splitlines():
        if line.startswith("driver:"):
            return line.split(":", 1)[1].strip() or None
    return None


def check_document(host: str, doc: Any) -> dict[str, Any]:
    """Refuse a document that is not a format-1 capability document, naming host and field."""
    source = f"capability probe of {host}"
    if not isinstance(doc, dict):
        raise ConfigError(source, "capabilities", f"must be a mapping, got {type(doc).__name__}")
    if doc.get("format_version") != CAPABILITY_FORMAT_VERSION:
        raise ConfigError(source, "capabilities.format_version",
                          f"must be {CAPABILITY_FORMAT_VERSION}, got {doc.get('format_version')!r}")
    for section, kind in _SECTIONS.items():
        if not isinstance(doc.get(section), kind):
            raise ConfigError(source, f"capabilities.{section}",
                              f"must be a {kind.__name__}, got {doc.get(section)!r}")
    if not isinstance(doc["kernel"].get("release"), str):
        raise ConfigError(source, "capabilities.kernel.release", "must be a string")
    return doc


def _elvis(doc: dict[str, Any]) -> tuple[bool, str]:
    """Whether a verified ELVIS-patched kernel is the one running, and why (not)."""
    state = doc["elvis"].get("state") or {}
    release = doc["kernel"]["release"]
    if state.get("mode") != "patched":
        return False, "no ELVIS-patched kernel was installed by roles/elvis_kernel"
    if state.get("result") != "verified":
        return False, f"the ELVIS-patched kernel's boot was {state.get('result')!r}, not verified"
    if state.get("kernel_release") != release:
        return False, (f"the verified ELVIS kernel is {state.get('kernel_release')}, "
                       f"but {release} is running")
    marker = (state.get("marker") or {})
    if marker.get("path") and doc["elvis"].get("marker") != marker.get("expected"):
        return False, (f"{marker['path']} holds {doc['elvis'].get('marker')!r}, "
                       f"not the patch series' marker {marker.get('expected')!r}")
    return True, ""


# The offloads that change what a packet costs, with the short names ethtool -K takes.
KEY_OFFLOADS = {"tcp-segmentation-offload": "tso", "generic-segmentation-offload": "gso",
                "generic-receive-offload": "gro", "large-receive-offload": "lro",
                "rx-checksumming": "rx", "tx-checksumming": "tx", "scatter-gather": "sg"}


def _nic(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    features = parse_ethtool_features(entry.get("ethtool_k"))
    return {
        "address": entry.get("address"),
        "driver": entry.get("driver") or _ethtool_driver(entry.get("ethtool_i")),
        "rx_queues": entry.get("rx_queues"),
        "tx_queues": entry.get("tx_queues"),
        "offloads_on": sorted(k for k, on in features.items() if on),
        "key_offloads": {short: features.get(long) for long, short in KEY_OFFLOADS.items()},
    }


def host_profile(host: str, doc: dict[str, Any] | None, facts: dict[str, Any] | None = None,
                 error: str | None = None) -> dict[str, Any]:
    """One host's profile from its capability document and the facts other roles set on it.

    ``doc`` is None when the host did not answer; ``error`` then says why. ``facts``
    may hold ``guest_vm_accel``, ``guest_vm_accel_reason``, ``guest_vm_unavailable_reason``
    (on a hypervisor that ran roles/guest_vm) and ``pf_ring_unavailable_reason``
    (roles/pf_ring).
    """
    facts = facts or {}
    if doc is None:
        return {"host": host, "reachable": False,
                "probe_error": error or "the host did not answer the capability probe"}
    doc = check_document(host, doc)
    kernel, pf = doc["kernel"], doc["pf_ring"]
    pf_loaded = bool(pf.get("loaded"))
    if pf_loaded:
        pf_reason = ""
    elif facts.get("pf_ring_unavailable_reason"):
        pf_reason = str(facts["pf_ring_unavailable_reason"])
    elif not kernel.get("modules"):
        why = kernel.get("modules_reason") or "no reason given"
        pf_reason = f"the kernel cannot load modules ({why})"
    else:
        pf_reason = "pf_ring.ko is not loaded (/proc/net/pf_ring/info is absent; see roles/pf_ring)"
    elvis, elvis_reason = _elvis(doc)
    halt = doc["halt_poll_ns"]
    accel = facts.get("guest_vm_accel")
    kvm_host = (doc.get("kvm_host") or {}).get("state") or {}
    return {
        "host": host,
        "reachable": True,
        "hostname": doc.get("hostname"),
        "kernel_release": kernel["release"],
        "kernel_cmdline": kernel.get("cmdline", ""),
        "modules": bool(kernel.get("modules")),
        "modules_reason": kernel.get("modules_reason") or "",
        "kvm_device": bool(doc["kvm"].get("device")),
        "kvm_openable": bool(doc["kvm"].get("openable")),
        "accel": accel if accel in ("kvm", "tcg") else None,
        "accel_reason": facts.get("guest_vm_accel_reason") or "",
        "guests_reason": facts.get("guest_vm_unavailable_reason"),
        "vhost_net": bool(doc["vhost_net"].get("device")),
        "pf_ring": pf_loaded,
        "pf_ring_version": pf.get("version"),
        "pf_ring_min_num_slots": pf.get("min_num_slots"),
        "pf_ring_reason": pf_reason,
        "elvis_patched_kernel": elvis,
        "elvis_reason": elvis_reason,
        "qemu_version": doc["qemu"].get("version"),
        "qemu_poll_us": doc["qemu"].get("poll_us"),
        "qemu_poll_us_evidence": doc["qemu"].get("poll_us_evidence") or "",
        "halt_poll_ns_present": bool(halt.get("present")),
        "halt_poll_ns_writable": bool(halt.get("writable")),
        "halt_poll_ns_value": halt.get("value"),
        "cpus_online": doc["cpus"].get("online"),
        "isolated_cores": doc["cpus"].get("isolated") or "",
        "nohz_full": doc["cpus"].get("nohz_full") or "",
        "governors": list(doc["cpus"].get("governors") or []),
        "nics": {name: _nic(name, entry) for name, entry in sorted(doc["nics"].items())},
        "missing_addresses": list(doc.get("missing_addresses") or []),
        "tools": {k: v for k, v in sorted(doc["tools"].items())},
        "kvm_host": (kvm_host.get("settings") if isinstance(kvm_host, dict) else None) or {},
        "qdiscs": data_path_qdiscs(host, doc.get("traffic_control"), set(doc["nics"])),
    }


def _why(profile: dict[str, Any] | None, host: str, reason_key: str) -> str:
    if not profile or not profile.get("reachable"):
        error = (profile or {}).get("probe_error") or "not probed"
        return f"{host}: no capability document ({error})"
    return f"{host}: {profile.get(reason_key) or 'unavailable'}"


def scenario_capabilities(virtualized: bool, hosts: dict[str, dict[str, Any]], lab: dict[str, Any],
                          guest: dict[str, Any] | None = None) -> dict[str, Any]:
    """The flat capabilities one scenario resolves against (see ``scenarios.probe_fields``).

    ``lab``: ``{endpoints, hypervisor, declared}`` where ``endpoints`` is the campaign's
    ``{bare_metal: {sender, receiver, ...}, guest: {sender, ...}}``. ``guest``, for a
    virtualized scenario, is the candidate guest ``{name, netdev, hypervisor}``; its
    hypervisor's profile answers for KVM, vhost-net, QEMU and halt polling, the guest's
    own profile for PF_RING.
    """
    declared = dict(lab.get("declared") or {})
    caps: dict[str, Any] = {**declared}
    if not virtualized:
        bm = lab["endpoints"]["bare_metal"]
        ends = [bm["sender"], bm["receiver"]]
        without = [h for h in ends if not (hosts.get(h) or {}).get("pf_ring")]
        caps.update(
            hosts={"sender": bm["sender"], "receiver": bm["receiver"]},
            pf_ring_bare_metal=not without,
            pf_ring_reason="; ".join(_why(hosts.get(h), h, "pf_ring_reason") for h in without),
        )
        return caps
    hv = (guest or {}).get("hypervisor") or lab.get("hypervisor")
    hvp = hosts.get(hv) or {}
    caps["hosts"] = {"hypervisor": hv, "sender": lab["endpoints"]["guest"]["sender"],
                     "receiver": (guest or {}).get("name")}
    caps["hypervisor"] = hv
    if not hvp.get("reachable"):
        caps.update(guests=False, guests_reason=_why(hvp or None, hv, "guests_reason"))
        return caps
    accel = hvp.get("accel")
    if guest is None:
        reason = hvp.get("guests_reason")
        if reason is None:
            reason = (f"{hv}: roles/guest_vm did not run in this ansible-playbook run "
                      "(playbooks/guests.yml, tag guests), so no guest is running")
        elif not reason:
            reason = f"{hv}: no running guest"
        else:
            reason = f"{hv}: {reason}"
        caps.update(guests=False, guests_reason=reason)
    else:
        caps.update(guests=True, guests_reason="")
    gp = hosts.get((guest or {}).get("name") or "") or {}
    caps.update(
        accel=accel,
        accel_reason=f"{hv}: {hvp.get('accel_reason') or 'no acceleration probe'}",
        vhost_net=hvp.get("vhost_net", False),
        vhost_reason=f"/dev/vhost-net is absent on {hv}",
        qemu_poll_us=hvp.get("qemu_poll_us"),
        qemu_poll_us_reason=f"{hv}: {hvp.get('qemu_poll_us_evidence') or 'QEMU not probed'}",
        halt_poll_ns=hvp.get("halt_poll_ns_writable", False),
        halt_poll_ns_value=hvp.get("halt_poll_ns_value"),
        halt_poll_ns_reason=(
            f"{hv}: /sys/module/kvm/parameters/halt_poll_ns is "
            + ("not writable" if hvp.get("halt_poll_ns_present") else "absent (no kvm module)")),
        elvis_patched_kernel=hvp.get("elvis_patched_kernel", False),
        elvis_reason=f"{hv}: {hvp.get('elvis_reason') or 'no ELVIS kernel'}",
        dedicated_io_core=(bool(declared.get("dedicated_io_core"))
                           or bool(hvp.get("isolated_cores"))),
        pf_ring_guest=bool(gp.get("pf_ring")),
        pf_ring_reason=_why(gp or None, (guest or {}).get("name") or "the guest", "pf_ring_reason")
        if guest else "no guest to capture in",
    )
    return caps


def container_capabilities(virtualized: bool, hosts: dict[str, dict[str, Any]],
                           lab: dict[str, Any],
                           container: dict[str, Any] | None = None) -> dict[str, Any]:
    """The flat capabilities a container scenario resolves against.

    ``container`` is the candidate ``{name, hypervisor, runtime}``. A container shares its
    host's kernel, so the host's profile answers for PF_RING; ``lab["containers_reason"]``
    (the container role's own account) says why none is running.
    """
    del virtualized  # a container scenario is virtualized by definition
    caps: dict[str, Any] = dict(lab.get("declared") or {})
    hv = (container or {}).get("hypervisor") or lab.get("hypervisor")
    hvp = hosts.get(hv) or {}
    caps.update(hosts={"hypervisor": hv, "sender": lab["endpoints"]["guest"]["sender"],
                       "receiver": (container or {}).get("name")},
                hypervisor=hv)
    if container is None:
        why = lab.get("containers_reason") or (
            "roles/container_lab started no container in this ansible-playbook run "
            "(playbooks/containers.yml, tag containers)")
        caps.update(containers=False, containers_reason=f"{hv}: {why}")
        return caps
    caps.update(containers=True, containers_reason="",
                container_runtime=container.get("runtime"),
                pf_ring_container_host=bool(hvp.get("pf_ring")),
                pf_ring_reason=_why(hvp or None, hv, "pf_ring_reason")
                + " (a container uses its host's kernel)")
    return caps


def probed_host(result: dict[str, Any]) -> Any:
    """The host a registered probe result is about (the ``host`` of its loop item)."""
    return (result.get("item") or {}).get("host")


def profiles_from_probes(results: list[dict[str, Any]],
                         facts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Host profiles from the registered loop results of the capability probe.

    Each result is ``{item: {host, ...}, capabilities: {...}}``, or an
    unreachable or failed result with its ``msg``; ``facts`` maps host -> the facts
    other roles set there.
    """
    out: dict[str, dict[str, Any]] = {}
    for result in results:
        host = probed_host(result)
        if not isinstance(host, str):
            raise ConfigError("capability probe", "results.item", f"no host name in {result!r}")
        doc = result.get("capabilities")
        if result.get("unreachable") or result.get("failed") or doc is None:
            what = "unreachable" if result.get("unreachable") else "probe failed"
            out[host] = host_profile(host, None, facts.get(host),
                                     error=f"{what}: {str(result.get('msg') or '').strip()}")
        else:
            out[host] = host_profile(host, doc, facts.get(host))
    return out


def tool_versions(profiles: dict[str, dict[str, Any]]) -> dict[str, dict[str, str | None]]:
    """``{tool: {host: first line of its version output, or None when absent}}``."""
    out: dict[str, dict[str, str | None]] = {}
    for host, profile in sorted(profiles.items()):
        for tool, version in (profile.get("tools") or {}).items():
            out.setdefault(tool, {})[host] = version
        if profile.get("reachable"):
            out.setdefault("kernel", {})[host] = profile.get("kernel_release")
    return dict(sorted(out.items()))


def probe_plan(endpoints: dict[str, Any], hypervisor: str,
               guests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Which hosts answer the capability probe, and with which data addresses.

    ``guests``: the running guests' ``{inventory_hostname, kvmnetlab_guest_hypervisor,
    kvmnetlab_guest_data_ip}`` (their hostvars). Every measuring host and every
    hypervisor is probed once; only hypervisors probe QEMU.
    """
    bm, gs = endpoints["bare_metal"], endpoints["guest"]
    addresses: dict[str, list[str]] = {}

    def add(host: str, *found: str | None) -> None:
        entry = addresses.setdefault(host, [])
        entry.extend(a for a in found if a and a not in entry)

    add(bm["sender"], bm.get("source_address"))
    add(bm["receiver"], bm.get("target_address"))
    add(gs["sender"], gs.get("source_address"))
    hypervisors = [hypervisor]
    for guest in guests:
        own = guest.get("kvmnetlab_guest_hypervisor") or hypervisor
        if own not in hypervisors:
            hypervisors.append(own)
    for hv in hypervisors:
        add(hv)
    for guest in guests:
        add(guest["inventory_hostname"], guest.get("kvmnetlab_guest_data_ip"))
    return [{"host": host, "data_addresses": found, "hypervisor": host in hypervisors}
            for host, found in addresses.items()]
