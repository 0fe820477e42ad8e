#!/usr/bin/python
# Copyright: kvmnetlab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create or remove a tap device on a bridge, in a network namespace or the host's own."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guest_tap
short_description: A tap device for a QEMU guest, on a bridge that already exists
description:
  - Creates (or removes) a persistent tap device with C(ip tuntap), attaches it to a bridge
    and sets it up, either inside the network namespace I(netns) (C(ip -n NETNS), the
    embedded lab) or, with I(netns) empty, in the host's own network namespace (a real KVM
    host).
  - The bridge must already exist (a real KVM host's admin makes it; on the embedded lab the
    netns_lab role does). When it does not, the module fails naming the bridge and the host
    before it creates anything. Bridges are never created or removed.
  - Only the taps named are touched. Supports check mode.
options:
  name:
    description:
      - Tap device name (at most 15 characters).
      - With C(state=absent) it may be a shell-style pattern (C(kvtap-*)); every tap (a C(tun)
        link in tap mode) in the namespace whose name matches is removed, nothing else.
    type: str
    required: true
  netns:
    description:
      - Network namespace the tap lives in; it must exist. Empty for the host's own network
        namespace (no C(ip -n), no C(ip netns)).
    type: str
    default: ''
  bridge:
    description: Bridge (in the same namespace) the tap is attached to; required when present.
    type: str
  host:
    description: Name of this host in messages (its inventory name); default the machine's hostname.
    type: str
  multi_queue:
    description: Create the tap with C(multi_queue), needed for C(queues>1) on the QEMU netdev.
    type: bool
    default: false
  state:
    description: Whether the tap should exist.
    type: str
    choices: [present, absent]
    default: present
author:
  - kvmnetlab contributors
"""

EXAMPLES = r"""
- name: Data tap of guest 1 on a real KVM host's bridge
  kvmnetlab.lab.guest_tap:
    name: kvtap-1d
    bridge: br-data
    host: "{{ inventory_hostname }}"

- name: Data tap of guest 1 in the embedded lab's hypervisor namespace
  kvmnetlab.lab.guest_tap:
    name: kvtap-1d
    netns: kvmnl-hv
    bridge: kvbr-data

- name: Every guest tap, including those of guests no longer configured
  kvmnetlab.lab.guest_tap:
    name: kvtap-*
    netns: kvmnl-hv
    state: absent
"""

RETURN = r"""
link:
  description: The link as C(ip -j link show) reports it after the change (empty when absent).
  returned: always
  type: dict
removed:
  description: Names of the taps removed (state=absent).
  returned: always
  type: list
  elements: str
"""

import fnmatch
import json
import socket

from ansible.module_utils.basic import AnsibleModule


def ip_argv(netns, *args):
    """An ip(8) command line, inside ``netns`` when it is not empty."""
    return ["ip", *(["-n", netns] if netns else []), *args]


def where(netns, host):
    """Where a link lives, for messages."""
    space = f"network namespace {netns!r}" if netns else "its own network namespace"
    return f"host {host} ({space})"


def _show(module, netns, name):
    argv = ip_argv(netns, "-j", "-d", "link", "show", "dev", name)
    rc, out, err = module.run_command(argv)
    if rc != 0:
        if "does not exist" in err or "Cannot find device" in err:
            return None
        module.fail_json(msg=f"{' '.join(argv)} failed: {err.strip()}")
    links = json.loads(out or "[]")
    return links[0] if links else None


def _run(module, argv):
    rc, _out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg=f"{' '.join(argv)} failed (rc={rc}): {err.strip()}")


def is_multi_queue(info_data):
    """iproute2 reports multi_queue as a key (6.x) or among flags (older)."""
    return bool(info_data.get("multi_queue")) or "MULTI_QUEUE" in info_data.get("flags", [])


def is_tap(link):
    info = (link or {}).get("linkinfo", {})
    return info.get("info_kind") == "tun" and info.get("info_data", {}).get("type", "tap") == "tap"


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "netns": {"type": "str", "default": ""},
            "bridge": {"type": "str"},
            "host": {"type": "str"},
            "multi_queue": {"type": "bool", "default": False},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["bridge"])],
        supports_check_mode=True,
    )
    p = module.params
    name, netns = p["name"], p["netns"] or ""
    host = p["host"] or socket.gethostname()
    if len(name) > 15:
        module.fail_json(msg=f"tap name {name!r} is longer than 15 characters")
    if netns:
        rc, out, _err = module.run_command(["ip", "netns", "list"])
        if rc != 0 or netns not in [line.split()[0] for line in out.splitlines() if line.strip()]:
            if p["state"] == "absent":
                # no namespace, no tap
                module.exit_json(changed=False, link={}, removed=[])
            module.fail_json(msg=f"network namespace {netns!r} does not exist on host {host} "
                                 f"(ip netns list: {out!r})")

    if p["state"] == "absent":
        argv = ip_argv(netns, "-j", "-d", "link", "show")
        rc, out, err = module.run_command(argv)
        if rc != 0:
            module.fail_json(msg=f"{' '.join(argv)} failed: {err.strip()}")
        removed = [
            link["ifname"] for link in json.loads(out or "[]")
            if fnmatch.fnmatchcase(link["ifname"], name) and is_tap(link)
        ]
        if not module.check_mode:
            for ifname in removed:
                _run(module, ip_argv(netns, "link", "del", "dev", ifname))
        module.exit_json(changed=bool(removed), link={}, removed=removed)

    # The bridge first: nothing is created when it is missing.
    bridge = p["bridge"]
    bridge_link = _show(module, netns, bridge)
    if bridge_link is None:
        module.fail_json(msg=(
            f"bridge {bridge!r} does not exist on {where(netns, host)}: the guests' taps join "
            "existing bridges only (on a real KVM host its admin creates them, see "
            "docs/real-lab.md; on the embedded lab playbooks/lab.yml does)"))
    if bridge_link.get("linkinfo", {}).get("info_kind") != "bridge":
        module.fail_json(msg=f"{bridge!r} on {where(netns, host)} is not a bridge "
                             f"(kind {bridge_link.get('linkinfo', {}).get('info_kind')!r})")

    link = _show(module, netns, name)
    changed = False

    if link is not None:
        info = link.get("linkinfo", {})
        kind_ok = info.get("info_kind") == "tun" and info.get("info_data", {}).get("type") == "tap"
        mq_ok = is_multi_queue(info.get("info_data", {})) == p["multi_queue"]
        if not kind_ok or not mq_ok:
            changed = True
            if not module.check_mode:
                _run(module, ip_argv(netns, "link", "del", "dev", name))
            link = None
    if link is None:
        changed = True
        if not module.check_mode:
            argv = ip_argv(netns, "tuntap", "add", "dev", name, "mode", "tap")
            if p["multi_queue"]:
                argv.append("multi_queue")
            _run(module, argv)
    if link is None or link.get("master") != bridge:
        changed = True
        if not module.check_mode:
            _run(module, ip_argv(netns, "link", "set", "dev", name, "master", bridge))
    if link is None or "UP" not in link.get("flags", []):
        changed = True
        if not module.check_mode:
            _run(module, ip_argv(netns, "link", "set", "dev", name, "up"))
    final = _show(module, netns, name) if not module.check_mode else link
    module.exit_json(changed=changed, link=final or {}, removed=[])


if __name__ == "__main__":
    main()
