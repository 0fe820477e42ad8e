"""The scenario resolver: requested knobs -> what this lab can honour.

Pure functions. :func:`resolve` reads one scenario's flat capabilities (see
``probe_fields`` below), which :mod:`kvmnetlab.capabilities` derives from the
capability documents of the hosts that scenario runs on; :func:`resolve_lab`
does that for every scenario. Every difference between the requested and the
effective knob is returned as a substitution, and the scenario's policy decides
whether it still runs. Knob values come from the scenario data, never from here.
"""

from __future__ import annotations

import json
from typing import Any

# What the resolver reads from the capabilities mapping, with its meaning.
probe_fields = {
    "hosts": "dict: the hosts the scenario resolved against (sender, receiver, hypervisor)",
    "hypervisor": "str: the hypervisor whose profile answered (virtualized scenarios)",
    "guests": "bool: a guest is running to serve the scenario",
    "guests_reason": "str: why no guest is running, naming the hypervisor",
    "accel": "'kvm' | 'tcg' | None: acceleration a probe guest really booted with there",
    "accel_reason": "str: evidence for the acceleration choice",
    "vhost_net": "bool: /dev/vhost-net exists on the hypervisor",
    "vhost_reason": "str: why vhost-net is unavailable, naming the hypervisor",
    "qemu_poll_us": "bool | None: the hypervisor's QEMU accepts poll-us on a tap netdev",
    "qemu_poll_us_reason": "str: evidence for qemu_poll_us",
    "pf_ring_bare_metal": "bool: pf_ring.ko is loaded on both bare-metal hosts",
    "pf_ring_guest": "bool: pf_ring.ko is loaded in the guest serving the scenario",
    "pf_ring_reason": "str: why PF_RING is unavailable, naming each host",
    "elvis_patched_kernel": "bool: the hypervisor runs a verified ELVIS-patched kernel",
    "elvis_reason": "str: why it does not",
    "halt_poll_ns": "bool: the hypervisor's /sys/module/kvm/parameters/halt_poll_ns is writable",
    "halt_poll_ns_value": "int | None: its current value (ns)",
    "halt_poll_ns_reason": "str: why halt polling is unavailable",
    "dedicated_io_core": "bool: declared, or the hypervisor has isolated cores",
    "legacy_vpf_ring": "bool: the lab declares a legacy vPF_RING stack",
    "passthrough": "bool: the lab declares NIC/VF passthrough for its guests",
    "containers": "bool: a container is running to serve the scenario",
    "containers_reason": "str: why no container is running, naming the hypervisor",
    "container_runtime": "str: the runtime and version that runs the containers",
    "pf_ring_container_host": "bool: pf_ring.ko is loaded in the kernel the containers share",
}

#: the data path of a container: a veth pair on the lab bridge, in the host's kernel
CONTAINER_IO_PATH = "veth"

USERSPACE_VIRTIO = "virtio_user"


class ScenarioFailed(RuntimeError):
    """A scenario with policy 'fail' cannot be honoured by this lab."""


def _sub(knob: str, requested: Any, effective: Any, reason: str) -> dict[str, Any]:
    return {"knob": knob, "requested": requested, "effective": effective, "reason": reason}


def _resolve_virtualization(scenario: dict, caps: dict, subs: list) -> tuple[str, str | None]:
    """Return (effective virtualization, reason the scenario cannot run or None)."""
    if scenario["virtualization"] == "none":
        return "none", None
    if scenario["virtualization"] == "container":
        if not caps.get("containers"):
            return "container", caps.get("containers_reason") or "no container is running"
        return "container", None
    if not caps.get("guests"):
        return "kvm", caps.get("guests_reason") or "this lab cannot boot QEMU guests"
    accel = caps.get("accel")
    if accel == "kvm":
        return "kvm", None
    if accel == "tcg":
        subs.append(
            _sub(
                "virtualization",
                "kvm",
                "tcg",
                "KVM acceleration unusable here, QEMU runs guests under TCG (software "
                f"emulation): {caps.get('accel_reason') or 'probe guest did not boot under KVM'}",
            )
        )
        return "tcg", None
    return "kvm", "no acceleration probe result: guests were not booted"


def _resolve_io_path(scenario: dict, caps: dict, subs: list) -> tuple[str, dict[str, Any]]:
    """Return (effective io_path, effective netdev knobs).

    The values of the knobs (poll_us, halt_poll_ns, io_thread_core, queues) come from
    the scenario's ``knobs`` (scenario data, defaults in the scenario file's
    ``knob_defaults``); this function only decides which of them the lab honours.
    """
    requested = scenario["io_path"]
    want = scenario.get("knobs")
    if requested != "none" and not isinstance(want, dict):
        raise ScenarioFailed(f"scenario {scenario.get('name')!r} has no knob values (`knobs`, "
                             "filled from the scenario file's knob_defaults when it is loaded)")
    knobs: dict[str, Any] = {"vhost": False, "poll_us": None, "halt_poll_ns": None,
                             "io_thread_core": None}
    if requested == "none":
        return "none", knobs
    if scenario["virtualization"] == "container":
        subs.append(_sub("io_path", requested, CONTAINER_IO_PATH,
                         "a container's data NIC is a veth pair on the lab bridge, in the "
                         "host's kernel: there is no virtio device, vhost-net, QEMU backend "
                         "or ELVIS polling to use"))
        return CONTAINER_IO_PATH, knobs
    if want.get("queues") is not None:
        knobs["queues"] = want["queues"]
    vhost = bool(caps.get("vhost_net"))
    vhost_reason = caps.get("vhost_reason") or "/dev/vhost-net is absent where QEMU runs"
    effective = requested
    if requested == "elvis_patched" and not caps.get("elvis_patched_kernel"):
        subs.append(_sub("io_path", "elvis_patched", "elvis_upstream",
                         "no host kernel with the ELVIS patch series is running ("
                         + (caps.get("elvis_reason") or "not probed")
                         + "); using ELVIS's upstream descendants instead"))
        effective = "elvis_upstream"
    if effective in ("virtio", "elvis_upstream", "elvis_patched"):
        if vhost:
            knobs["vhost"] = True
        else:
            subs.append(_sub("vhost", True, False,
                             f"{vhost_reason}; QEMU's userspace virtio-net backend moves "
                             "the packets"))
    if effective == "elvis_upstream":
        poll_us = want["poll_us"]
        if vhost and caps.get("qemu_poll_us") is not False:
            knobs["poll_us"] = poll_us
        elif vhost:
            subs.append(_sub("poll_us", poll_us, None,
                             "QEMU's tap netdev does not accept poll-us ("
                             + (caps.get("qemu_poll_us_reason") or "probe") + ")"))
        else:
            subs.append(_sub("poll_us", poll_us, None,
                             f"vhost busy polling (poll-us) needs vhost-net: {vhost_reason}"))
        halt = want["halt_poll_ns"]
        if caps.get("accel") == "kvm" and caps.get("halt_poll_ns"):
            knobs["halt_poll_ns"] = halt
            current = caps.get("halt_poll_ns_value")
            if current is not None and current != halt:
                subs.append(_sub("halt_poll_ns", halt, current,
                                 f"{caps.get('hypervisor') or 'the hypervisor'} has "
                                 f"halt_poll_ns={current} ns; set it with roles/elvis_kernel "
                                 "(upstream mode) or roles/kvm_host"))
                knobs["halt_poll_ns"] = current
        else:
            why = (caps.get("halt_poll_ns_reason") if caps.get("accel") == "kvm"
                   else f"guests run under {caps.get('accel') or 'no accelerator'}, not KVM")
            subs.append(_sub("halt_poll_ns", halt, None,
                             f"KVM halt polling needs KVM acceleration and a writable "
                             f"halt_poll_ns: {why or 'not probed'}"))
        core = want["io_thread_core"]
        if core is None:
            pass
        elif caps.get("dedicated_io_core"):
            knobs["io_thread_core"] = core
        else:
            subs.append(_sub("io_thread_core", core, None,
                             "the lab declares no spare core for the I/O thread and "
                             f"{caps.get('hypervisor') or 'the hypervisor'} has no isolated "
                             "cores"))
    if not knobs["vhost"] and knobs["poll_us"] is None:
        if effective != USERSPACE_VIRTIO:
            subs.append(_sub("io_path", effective, USERSPACE_VIRTIO,
                             "without vhost-net every requested I/O path runs on QEMU's "
                             "userspace virtio backend"))
        effective = USERSPACE_VIRTIO
    return effective, knobs


def _resolve_capture(scenario: dict, caps: dict, subs: list) -> str:
    requested = scenario["capture"]
    kind = scenario["virtualization"]
    pf_ring = {"none": caps.get("pf_ring_bare_metal"),
               "container": caps.get("pf_ring_container_host")}.get(kind,
                                                                    caps.get("pf_ring_guest"))
    pf_reason = caps.get("pf_ring_reason") or "pf_ring.ko is not loaded"
    effective = requested
    if requested == "vpf_ring" and kind == "container":
        fallback = "pf_ring" if pf_ring else "af_packet"
        subs.append(_sub("capture", "vpf_ring", fallback,
                         "vPF_RING is a guest's path to its host's PF_RING; a container "
                         "shares the host's kernel and uses PF_RING directly, where it is "
                         "loaded" + ("" if pf_ring else f"; it is not: {pf_reason}")))
        return fallback
    if requested == "vpf_ring" and not caps.get("legacy_vpf_ring"):
        fallback = "pf_ring" if pf_ring else "af_packet"
        subs.append(_sub("capture", "vpf_ring", fallback,
                         "vPF_RING is end-of-life and this lab declares no legacy stack"
                         + ("" if pf_ring else f"; PF_RING unavailable too: {pf_reason}")))
        return fallback
    if requested == "passthrough" and not caps.get("passthrough"):
        effective = "pf_ring" if pf_ring else "af_packet"
        subs.append(_sub("capture", "passthrough", effective,
                         "this lab declares no NIC or VF passthrough"))
        return effective
    if requested == "pf_ring" and not pf_ring:
        subs.append(_sub("capture", "pf_ring", "af_packet",
                         f"PF_RING unavailable: {pf_reason}; the kernel's regular "
                         "socket path (AF_PACKET/ICMP) is used"))
        return "af_packet"
    return effective


def guest_profile(resolved: dict[str, Any]) -> str:
    """A stable key for the guest configuration a resolved scenario needs."""
    knobs = resolved["netdev"]
    return json.dumps({"io_path": resolved["io_path"], **knobs}, sort_keys=True)


def resolve(scenario: dict[str, Any], caps: dict[str, Any]) -> dict[str, Any]:
    """Resolve one scenario; return ``{resolved, substitutions, status, reason}``.

    ``status`` is ``run``, ``skipped`` (policy skip with substitutions) or
    ``not_run`` (the lab cannot run it at all). Policy ``fail`` raises
    :class:`ScenarioFailed` when anything would be substituted or not run.
    """
    subs: list[dict[str, Any]] = []
    virtualization, blocker = _resolve_virtualization(scenario, caps, subs)
    io_path, knobs = _resolve_io_path(scenario, caps, subs)
    capture = _resolve_capture(scenario, caps, subs)
    resolved = {"virtualization": virtualization, "io_path": io_path, "capture": capture,
                "netdev": knobs}
    if virtualization == "container":
        resolved["container_runtime"] = caps.get("container_runtime")
    policy = scenario["policy"]
    status, reason = "run", None
    if blocker:
        status, reason = "not_run", blocker
    elif subs and policy == "skip":
        status, reason = "skipped", "policy 'skip' and the lab substituted: " + "; ".join(
            f"{s['knob']} {s['requested']} -> {s['effective']}" for s in subs)
    if policy == "fail" and (subs or blocker):
        detail = reason or "; ".join(f"{s['knob']}: {s['reason']}" for s in subs)
        raise ScenarioFailed(f"scenario {scenario['name']!r} has policy 'fail' and this lab "
                             f"cannot honour it: {detail}")
    return {"resolved": resolved, "substitutions": subs, "status": status, "reason": reason}


def _matches(netdev: dict[str, Any], guest: dict[str, Any]) -> bool:
    declared = guest.get("netdev") or {}
    same = (bool(declared.get("vhost")) == bool(netdev.get("vhost"))
            and declared.get("poll_us") == netdev.get("poll_us"))
    if netdev.get("queues") is not None:
        same = same and int(declared.get("queues") or 1) == int(netdev["queues"])
    return same


def _pick(scenario: dict[str, Any], candidates: list[dict[str, Any]], hosts: dict,
          lab: dict, *, container: bool) -> dict[str, Any]:
    """Resolve a virtualized scenario against the candidates (running guests or containers)
    it may use, and keep the ``guests`` (N) best; see :func:`resolve_lab`."""
    from kvmnetlab.capabilities import container_capabilities, scenario_capabilities

    want = int(scenario.get("guests", 1))
    caps_of = container_capabilities if container else scenario_capabilities
    noun = "container" if container else "guest"
    if not candidates:
        caps = caps_of(True, hosts, lab)
        result = resolve(scenario, caps)
        result["resolved"]["hosts"] = caps["hosts"]
        return result
    tried = []
    for candidate in candidates:
        caps = caps_of(True, hosts, lab, candidate)
        result = resolve(scenario, caps)
        matched = container or _matches(result["resolved"]["netdev"], candidate)
        cost = (result["status"] != "run", len(result["substitutions"]) + (not matched))
        tried.append((cost, len(tried), candidate, caps, result, matched))
    tried.sort(key=lambda t: t[:2])
    _cost, _order, first, caps, result, _matched = tried[0]
    chosen = tried[:want]
    if result["status"] == "run" and len(chosen) < want:
        result.update(status="not_run", reason=(
            f"asks for {want} {noun}s at once; {len(candidates)} "
            f"{'is' if len(candidates) == 1 else 'are'} running "
            f"({', '.join(c['name'] for c in candidates)})"))
        if scenario["policy"] == "fail":
            raise ScenarioFailed(f"scenario {scenario['name']!r} has policy 'fail' and this "
                                 f"lab cannot honour it: {result['reason']}")
    if result["status"] == "run":
        seen = {(s["knob"], json.dumps(s["effective"], sort_keys=True))
                for s in result["substitutions"]}
        for _c, _o, candidate, _caps, other, matched in chosen:
            extra = [s for s in other["substitutions"]
                     if (s["knob"], json.dumps(s["effective"], sort_keys=True)) not in seen]
            if not matched:
                extra.append(_sub(
                    "guest", guest_profile(result["resolved"]), candidate["name"],
                    "no running guest has the requested netdev; using "
                    f"{candidate['name']} with "
                    f"{json.dumps(candidate.get('netdev'), sort_keys=True)}"))
            result["substitutions"] += extra
            seen |= {(s["knob"], json.dumps(s["effective"], sort_keys=True)) for s in extra}
        names = [c[2]["name"] for c in chosen]
        result["resolved"][noun] = first["name"]
        if container:
            result["resolved"]["containers"] = names
        elif want > 1:
            result["resolved"]["guests"] = names
    result["resolved"]["hosts"] = caps["hosts"]
    return result


def resolve_lab(scenarios: dict[str, dict], hosts: dict[str, dict[str, Any]],
                lab: dict[str, Any]) -> dict[str, dict]:
    """Resolve every scenario against the profiles of the hosts it runs on.

    ``hosts``: host name -> profile (:func:`kvmnetlab.capabilities.host_profile`).
    ``lab``: ``{endpoints, hypervisor, declared, guests, containers}``; ``guests`` are the
    running guests ``{name, netdev: {vhost, poll_us, queues, ...}, hypervisor}``,
    ``containers`` the running containers ``{name, hypervisor, runtime}``.

    A bare-metal scenario resolves against its sender and receiver. A virtualized one
    is resolved against each running guest (each running container, for virtualization
    container), with the profile of the hypervisor that runs it, and gets the ``guests``
    (N, default 1) with the fewest substitutions (a guest whose netdev does not match
    the knobs resolved there counts one more, and is recorded as a substitution); ties
    go to the earlier one. Fewer running than N: the scenario is not run, with the
    numbers. The substitutions of every chosen guest are recorded, once each.
    ``resolved.guest`` (``resolved.container``) names the first; with N > 1
    ``resolved.guests`` (always ``resolved.containers``) lists all N, in that order.
    ``resolved.hosts`` names the hosts the first outcome was resolved against.
    """
    from kvmnetlab.capabilities import scenario_capabilities

    out: dict[str, dict] = {}
    for name, scenario in scenarios.items():
        if scenario["virtualization"] == "none":
            caps = scenario_capabilities(False, hosts, lab)
            result = resolve(scenario, caps)
            result["resolved"]["hosts"] = caps["hosts"]
            out[name] = result
            continue
        container = scenario["virtualization"] == "container"
        candidates = list(lab.get("containers" if container else "guests") or [])
        out[name] = _pick(scenario, candidates, hosts, lab, container=container)
    return out
