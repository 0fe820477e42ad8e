#!/usr/bin/python
# Copyright: kvmnetlab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create or remove a tap device inside a network namespace."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guest_tap
short_description: A tap device for a QEMU guest, inside a network namespace, on a bridge
description:
  - Creates (or removes) a persistent tap device inside a network namespace with
    C(ip -n NETNS tuntap), attaches it to a bridge and sets it up.
  - Only the namespace given is touched; the machine's own namespace never changes.
  - Supports check mode.
options:
  name:
    description:
      - Tap device name (at most 15 characters).
      - With C(state=absent) it may be a shell-style pattern (C(kvtap-*)); every tap in the
        namespace whose name matches is removed.
    type: str
    required: true
  netns:
    description: Network namespace the tap lives in; it must exist.
    type: str
    required: true
  bridge:
    description: Bridge (in the same namespace) the tap is attached to; required when present.
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
- name: Data tap of guest 1
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

from ansible.module_utils.basic import AnsibleModule


def _show(module, netns, name):
    rc, out, err = module.run_command(["ip", "-n", netns, "-j", "-d", "link", "show", "dev", name])
    if rc != 0:
        if "does not exist" in err or "Cannot find device" in err:
            return None
        module.fail_json(msg=f"ip -n {netns} link show {name} failed: {err.strip()}")
    links = json.loads(out or "[]")
    return links[0] if links else None


def _run(module, argv):
    rc, _out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg=f"{' '.join(argv)} failed (rc={rc}): {err.strip()}")


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "netns": {"type": "str", "required": True},
            "bridge": {"type": "str"},
            "multi_queue": {"type": "bool", "default": False},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["bridge"])],
        supports_check_mode=True,
    )
    p = module.params
    name, netns = p["name"], p["netns"]
    if len(name) > 15:
        module.fail_json(msg=f"tap name {name!r} is longer than 15 characters")
    rc, out, _err = module.run_command(["ip", "netns", "list"])
    if rc != 0 or netns not in [line.split()[0] for line in out.splitlines() if line.strip()]:
        if p["state"] == "absent":
            # no namespace, no tap
            module.exit_json(changed=False, link={}, removed=[])
        module.fail_json(msg=f"network namespace {netns!r} does not exist (ip netns list: {out!r})")

    if p["state"] == "absent":
        rc, out, err = module.run_command(["ip", "-n", netns, "-j", "-d", "link", "show"])
        if rc != 0:
            module.fail_json(msg=f"ip -n {netns} link show failed: {err.strip()}")
        removed = [
            link["ifname"] for link in json.loads(out or "[]")
            if fnmatch.fnmatchcase(link["ifname"], name)
            and link.get("linkinfo", {}).get("info_kind") == "tun"
        ]
        if not module.check_mode:
            for ifname in removed:
                _run(module, ["ip", "-n", netns, "link", "del", "dev", ifname])
        module.exit_json(changed=bool(removed), link={}, removed=removed)

    link = _show(module, netns, name)
    changed = False

    if link is not None:
        info = link.get("linkinfo", {})
        kind_ok = info.get("info_kind") == "tun" and info.get("info_data", {}).get("type") == "tap"
        mq_ok = ("MULTI_QUEUE" in info.get("info_data", {}).get("flags", [])) == p["multi_queue"]
        if not kind_ok or not mq_ok:
            changed = True
            if not module.check_mode:
                _run(module, ["ip", "-n", netns, "link", "del", "dev", name])
            link = None
    if link is None:
        changed = True
        if not module.check_mode:
            argv = ["ip", "-n", netns, "tuntap", "add", "dev", name, "mode", "tap"]
            if p["multi_queue"]:
                argv.append("multi_queue")
            _run(module, argv)
    bridge_link = _show(module, netns, p["bridge"])
    if bridge_link is None:
        module.fail_json(msg=f"bridge {p['bridge']!r} does not exist in namespace {netns!r}")
    if link is None or link.get("master") != p["bridge"]:
        changed = True
        if not module.check_mode:
            _run(module, ["ip", "-n", netns, "link", "set", "dev", name, "master", p["bridge"]])
    if link is None or "UP" not in link.get("flags", []):
        changed = True
        if not module.check_mode:
            _run(module, ["ip", "-n", netns, "link", "set", "dev", name, "up"])
    final = _show(module, netns, name) if not module.check_mode else link
    module.exit_json(changed=changed, link=final or {}, removed=[])


if __name__ == "__main__":
    main()
