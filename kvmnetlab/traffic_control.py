"""The queueing disciplines on a host's data path, from the capability probe's raw ``tc`` output.

The probe (``kvmnetlab.lab.lab_capabilities_info``, section ``traffic_control``)
returns, verbatim, ``tc -j qdisc show``, ``ip -j -d link show`` and the non-empty
``tc class show dev <if>`` of every device of the host's network namespace. This
module keeps the devices on the data path and writes each one's setup as short,
stable lines, so that two nights' host states can be compared (a ``tbf`` left on
a guest's tap shows as ``qdiscs.<tap>: noqueue → tbf rate 1Mbit ...``).

A host's data path is:

- its data NICs (those the probe selected by their data address);
- every tap and macvtap device (``tun`` and ``macvtap`` kinds: a guest's NIC on
  the hypervisor side);
- every bridge one of those is a port of, and all that bridge's ports.

Other devices (a management NIC, a container runtime's own bridges) are left out,
so that devices which come and go outside the lab do not read as a change.

Each qdisc is written ``<kind>[ parent <id>][ handle <id>] <option>=<value> ...``:
options sorted by name, the reference count left out, and the handle only when
it was chosen (the kernel's own handles, ``8000:`` and above, change every time a
qdisc is created). Classes (``tc`` prints HTB's only as text) are kept as their
lines, except those of a qdisc with a kernel-chosen handle; no statistics are
asked for.
"""

from __future__ import annotations

import json
from typing import Any

from kvmnetlab.errors import ConfigError

GUEST_PORT_KINDS = frozenset({"tun", "macvtap"})
FIRST_AUTOMATIC_HANDLE = 0x8000  # the kernel allocates root handles from 8000: up


def _json_list(source: str, field: str, text: str | None) -> list[dict[str, Any]]:
    if text is None:
        return []
    try:
        value = json.loads(text) if text.strip() else []
    except ValueError as exc:
        raise ConfigError(source, field, f"is not JSON: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(source, field, "must be a JSON list of objects")
    return value


def data_path_devices(links: list[dict[str, Any]], data_nics: set[str]) -> set[str]:
    """The devices on the data path (see the module's docstring) among ``links``
    (``ip -j -d link show``'s objects)."""
    kind = {link.get("ifname"): (link.get("linkinfo") or {}).get("info_kind") for link in links}
    master = {link.get("ifname"): link.get("master") for link in links}
    seeds = {name for name in kind if name in data_nics or kind[name] in GUEST_PORT_KINDS}
    bridges = {master[name] for name in seeds if master.get(name)}
    ports = {name for name, m in master.items() if m in bridges}
    return {n for n in seeds | bridges | ports if n}


def _chosen_handle(handle: Any) -> str | None:
    text = str(handle or "")
    major = text.split(":", 1)[0]
    try:
        value = int(major, 16)
    except ValueError:
        return text or None
    return text if 0 < value < FIRST_AUTOMATIC_HANDLE else None


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_value(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def qdisc_line(qdisc: dict[str, Any]) -> str:
    """One qdisc of ``tc -j qdisc show`` as a stable line (see the module's docstring)."""
    words = [str(qdisc.get("kind", "?"))]
    if not qdisc.get("root") and qdisc.get("parent"):
        words.append(f"parent {qdisc['parent']}")
    handle = _chosen_handle(qdisc.get("handle"))
    if handle:
        words.append(f"handle {handle}")
    options = qdisc.get("options") or {}
    words += [f"{k}={_value(options[k])}" for k in sorted(options)]
    return " ".join(words)


def data_path_qdiscs(host: str, section: dict[str, Any] | None,
                     data_nics: set[str]) -> dict[str, list[str]] | None:
    """``{device: [qdisc and class lines]}`` for the host's data path, or None when the probe
    had no ``traffic_control`` section (an older probe) or could not run ``tc``."""
    if not section or section.get("qdiscs") is None or section.get("links") is None:
        return None
    source = f"capability probe of {host}"
    qdiscs = _json_list(source, "traffic_control.qdiscs", section.get("qdiscs"))
    links = _json_list(source, "traffic_control.links", section.get("links"))
    classes = section.get("classes") or {}
    if not isinstance(classes, dict):
        raise ConfigError(source, "traffic_control.classes", "must be a mapping")
    devices = data_path_devices(links, data_nics)
    out: dict[str, list[str]] = {name: [] for name in sorted(devices)}
    for qdisc in qdiscs:
        if qdisc.get("dev") in out:
            out[qdisc["dev"]].append(qdisc_line(qdisc))
    for name in out:
        out[name] += class_lines(classes.get(name) or "")
    return out


def class_lines(text: str) -> list[str]:
    """``tc class show dev <if>``'s lines, spaces normalised, without the classes of a qdisc
    whose handle the kernel chose (tbf's inner class, ``class tbf 801e:1 parent 801e:``)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3:
            continue
        if _chosen_handle(words[2].split(":", 1)[0] + ":") is None:
            continue
        out.append(" ".join(words))
    return out
