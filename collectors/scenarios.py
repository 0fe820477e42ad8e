"""The scenario resolver: requested knobs -> what this lab can honour.

Pure functions. ``capabilities`` is what the lab declared and what the probes
found at run time (see ``probe_fields`` below). Every difference between the
requested and the effective knob is returned as a substitution, and the
scenario's policy decides whether it still runs.
"""

from __future__ import annotations

import json
from typing import Any

# What the resolver reads from the capabilities mapping, with its meaning.
probe_fields = {
    "guests": "bool: this lab can boot QEMU guests (QEMU installed, image built)",
    "guests_reason": "str: why guests are unavailable, when they are",
    "accel": "'kvm' | 'tcg' | None: acceleration a probe guest really booted with",
    "accel_reason": "str: evidence for the acceleration choice",
    "vhost_net": "bool: /dev/vhost-net exists where QEMU runs",
    "pf_ring_bare_metal": "bool: pf_ring.ko is loaded on the bare-metal hosts",
    "pf_ring_guest": "bool: pf_ring.ko is loaded in the guests",
    "pf_ring_reason": "str: why PF_RING is unavailable, when it is",
    "elvis_patched_kernel": "bool: the host runs a kernel with the ELVIS patch series",
    "halt_poll_ns": "bool: /sys/module/kvm/parameters/halt_poll_ns is writable",
    "dedicated_io_core": "bool: the lab has a core to dedicate to the I/O thread",
    "legacy_vpf_ring": "bool: the lab declares a legacy vPF_RING stack",
    "passthrough": "bool: the lab declares NIC/VF passthrough for its guests",
}

USERSPACE_VIRTIO = "virtio_user"


class ScenarioFailed(RuntimeError):
    """A scenario with policy 'fail' cannot be honoured by this lab."""


def _sub(knob: str, requested: Any, effective: Any, reason: str) -> dict[str, Any]:
    return {"knob": knob, "requested": requested, "effective": effective, "reason": reason}


def _resolve_virtualization(scenario: dict, caps: dict, subs: list) -> tuple[str, str | None]:
    """Return (effective virtualization, reason the scenario cannot run or None)."""
    if scenario["virtualization"] == "none":
        return "none", None
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
    """Return (effective io_path, effective netdev knobs)."""
    requested = scenario["io_path"]
    knobs: dict[str, Any] = {"vhost": False, "poll_us": None, "halt_poll_ns": None,
                             "io_thread_core": None}
    if requested == "none":
        return "none", knobs
    vhost = bool(caps.get("vhost_net"))
    effective = requested
    if requested == "elvis_patched" and not caps.get("elvis_patched_kernel"):
        subs.append(_sub("io_path", "elvis_patched", "elvis_upstream",
                         "no host kernel with the ELVIS patch series is running; "
                         "using ELVIS's upstream descendants instead"))
        effective = "elvis_upstream"
    if effective in ("virtio", "elvis_upstream", "elvis_patched"):
        if vhost:
            knobs["vhost"] = True
        else:
            subs.append(_sub("vhost", True, False,
                             "/dev/vhost-net is absent where QEMU runs; QEMU's userspace "
                             "virtio-net backend moves the packets"))
    if effective == "elvis_upstream":
        if vhost:
            knobs["poll_us"] = 50
        else:
            subs.append(_sub("poll_us", 50, None,
                             "vhost busy polling (poll-us) needs vhost-net, which is absent"))
        if caps.get("accel") == "kvm" and caps.get("halt_poll_ns"):
            knobs["halt_poll_ns"] = 200000
        else:
            subs.append(_sub("halt_poll_ns", 200000, None,
                             "KVM halt polling needs KVM acceleration and a writable "
                             "/sys/module/kvm/parameters/halt_poll_ns"))
        if caps.get("dedicated_io_core"):
            knobs["io_thread_core"] = "dedicated"
        else:
            subs.append(_sub("io_thread_core", "dedicated", None,
                             "the lab declares no spare core to dedicate to the I/O thread"))
    if not knobs["vhost"] and knobs["poll_us"] is None:
        if effective != USERSPACE_VIRTIO:
            subs.append(_sub("io_path", effective, USERSPACE_VIRTIO,
                             "without vhost-net every requested I/O path runs on QEMU's "
                             "userspace virtio backend"))
        effective = USERSPACE_VIRTIO
    return effective, knobs


def _resolve_capture(scenario: dict, caps: dict, subs: list) -> str:
    requested = scenario["capture"]
    inside_guest = scenario["virtualization"] != "none"
    pf_ring = caps.get("pf_ring_guest") if inside_guest else caps.get("pf_ring_bare_metal")
    pf_reason = caps.get("pf_ring_reason") or "pf_ring.ko is not loaded"
    effective = requested
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
    return (bool(declared.get("vhost")) == bool(netdev.get("vhost"))
            and declared.get("poll_us") == netdev.get("poll_us"))


def resolve_all(scenarios: dict[str, dict], caps: dict[str, Any],
                guests: list[dict[str, Any]] | None = None) -> dict[str, dict]:
    """Resolve every scenario and choose the guest that serves each virtualized one.

    ``guests`` are the lab's running guests, ``{name, netdev: {vhost, poll_us, ...}}``.
    A scenario gets the first guest whose netdev matches its resolved knobs; when none
    matches it gets the first guest, recorded as a substitution.
    """
    out: dict[str, dict] = {}
    for name, scenario in scenarios.items():
        result = resolve(scenario, caps)
        resolved = result["resolved"]
        if resolved["virtualization"] != "none" and result["status"] == "run":
            if not guests:
                result.update(status="not_run", reason="no guest is running in this lab")
            else:
                match = next((g for g in guests if _matches(resolved["netdev"], g)), None)
                if match is None:
                    match = guests[0]
                    result["substitutions"].append(_sub(
                        "guest", guest_profile(resolved), match["name"],
                        "no running guest has the requested netdev; using "
                        f"{match['name']} with {json.dumps(match.get('netdev'), sort_keys=True)}"))
                resolved["guest"] = match["name"]
        out[name] = result
    return out
