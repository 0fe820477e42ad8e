#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge network namespaces, veth pairs, bridges and addresses."""

from __future__ import annotations

DOCUMENTATION = r"""
module: lab_topology
short_description: Network namespaces, veth pairs, bridges and addresses of an embedded lab
description:
  - Creates (state=present) or removes (state=absent) a set of network namespaces and the
    links inside them, using iproute2. The machine's own network namespace is never changed.
  - Declarative and idempotent; supports check mode.
options:
  namespaces:
    description: Names of the namespaces (created under /run/netns).
    type: list
    elements: str
    required: true
  bridges:
    description: Bridges, each inside one namespace, optionally with an address (CIDR).
    type: list
    elements: dict
    default: []
  veths:
    description:
      - veth pairs; each end lives in a namespace, with an optional address (CIDR)
        and, for the peer end, an optional bridge of the peer namespace to join.
      - Keys are ns, name, address, peer_ns, peer_name, peer_address, peer_bridge.
    type: list
    elements: dict
    default: []
  disable_ipv6:
    description:
      - Turn IPv6 off in the lab namespaces, so neighbour discovery and router
        solicitations do not add packets to the measured links.
    type: bool
    default: true
  state:
    description: present or absent.
    type: str
    choices: [present, absent]
    default: present
  stop_processes:
    description:
      - With state=absent, processes still running inside a lab namespace are sent
        SIGTERM (then SIGKILL after 5 s) by PID before the namespace is removed.
        Their PIDs are returned. Otherwise such processes make the module fail.
    type: bool
    default: false
author: kvmnetlab developers
"""

EXAMPLES = r"""
- name: Build two hosts on a direct link
  kvmnetlab.lab.lab_topology:
    namespaces: [kvmnl-h1, kvmnl-h2]
    veths:
      - {ns: kvmnl-h1, name: data0, address: 198.18.0.1/24,
         peer_ns: kvmnl-h2, peer_name: data0, peer_address: 198.18.0.2/24}

- name: Remove the lab
  kvmnetlab.lab.lab_topology:
    namespaces: [kvmnl-h1, kvmnl-h2]
    state: absent
    stop_processes: true
"""

RETURN = r"""
actions:
  description: The iproute2 commands run (or that would run, in check mode).
  returned: always
  type: list
  elements: str
stopped_pids:
  description: PIDs stopped inside the namespaces before removal.
  returned: when state=absent
  type: list
  elements: int
"""

import contextlib
import ipaddress
import json
import os
import signal
import time

from ansible.module_utils.basic import AnsibleModule


class Topology:
    def __init__(self, module):
        self.module = module
        self.actions = []
        self.ip = module.get_bin_path("ip", required=True)

    def run(self, *args, change=True, check_rc=True):
        cmd = [self.ip, *args]
        if change:
            self.actions.append(" ".join(cmd))
            if self.module.check_mode:
                return 0, "", ""
        rc, out, err = self.module.run_command(cmd)
        if check_rc and rc != 0:
            self.module.fail_json(msg=f"{' '.join(cmd)} failed: {err.strip()}",
                                  actions=self.actions)
        return rc, out, err

    def namespaces(self):
        try:
            return set(os.listdir("/run/netns"))
        except FileNotFoundError:
            return set()

    def link(self, ns, name):
        if ns not in self.namespaces():
            return None
        rc, out, _ = self.run("-n", ns, "-j", "-d", "link", "show", "dev", name,
                              change=False, check_rc=False)
        if rc != 0 or not out.strip():
            return None
        return json.loads(out)[0]

    def addresses(self, ns, name):
        if ns not in self.namespaces():
            return set()
        rc, out, _ = self.run("-n", ns, "-j", "addr", "show", "dev", name,
                              change=False, check_rc=False)
        if rc != 0 or not out.strip():
            return set()
        found = set()
        for entry in json.loads(out):
            for info in entry.get("addr_info", []):
                found.add(f"{info['local']}/{info['prefixlen']}")
        return found

    def ensure_ns(self, ns):
        if ns not in self.namespaces():
            self.run("netns", "add", ns)
        lo = self.link(ns, "lo")
        if lo is None or "UP" not in lo.get("flags", []):
            self.run("-n", ns, "link", "set", "lo", "up")

    def ensure_ipv6_off(self, ns):
        path = "net.ipv6.conf.all.disable_ipv6"
        if ns in self.namespaces():
            rc, out, _ = self.module.run_command(
                [self.ip, "netns", "exec", ns, "sysctl", "-n", path])
            if rc == 0 and out.strip() == "1":
                return
        self.actions.append(f"ip netns exec {ns} sysctl -w {path}=1 (and default)")
        if not self.module.check_mode:
            for key in (path, "net.ipv6.conf.default.disable_ipv6"):
                self.module.run_command([self.ip, "netns", "exec", ns, "sysctl", "-qw",
                                         f"{key}=1"], check_rc=True)

    def ensure_up(self, ns, name, master=None):
        link = self.link(ns, name) or {}
        if master and link.get("master") != master:
            self.run("-n", ns, "link", "set", "dev", name, "master", master)
        if "UP" not in link.get("flags", []):
            self.run("-n", ns, "link", "set", "dev", name, "up")

    def ensure_address(self, ns, name, address):
        if not address:
            return
        wanted = str(ipaddress.ip_interface(address))
        if wanted not in self.addresses(ns, name):
            self.run("-n", ns, "addr", "add", wanted, "dev", name)

    def ensure_bridge(self, spec):
        ns, name = spec["ns"], spec["name"]
        link = self.link(ns, name)
        if link is not None and link.get("linkinfo", {}).get("info_kind") != "bridge":
            self.module.fail_json(msg=f"{ns}/{name} exists but is not a bridge")
        if link is None:
            self.run("-n", ns, "link", "add", "name", name, "type", "bridge")
        self.ensure_address(ns, name, spec.get("address"))
        self.ensure_up(ns, name)

    def ensure_veth(self, spec):
        ns, name = spec["ns"], spec["name"]
        pns, pname = spec["peer_ns"], spec["peer_name"]
        if self.link(ns, name) is None:
            if self.link(pns, pname) is not None:
                self.run("-n", pns, "link", "del", "dev", pname)
            self.run("link", "add", "name", name, "netns", ns, "type", "veth",
                     "peer", "name", pname, "netns", pns)
        self.ensure_address(ns, name, spec.get("address"))
        self.ensure_address(pns, pname, spec.get("peer_address"))
        self.ensure_up(ns, name)
        self.ensure_up(pns, pname, master=spec.get("peer_bridge"))

    def pids(self, ns):
        rc, out, _ = self.module.run_command([self.ip, "netns", "pids", ns])
        return [int(p) for p in out.split()] if rc == 0 else []

    def remove(self, namespaces, stop):
        present = [ns for ns in namespaces if ns in self.namespaces()]
        busy = {ns: self.pids(ns) for ns in present}
        busy = {ns: pids for ns, pids in busy.items() if pids}
        stopped = []
        if busy and not stop:
            self.module.fail_json(msg="processes still run inside lab namespaces: "
                                  + "; ".join(f"{ns}: pids {pids}" for ns, pids in busy.items()))
        for ns, pids in busy.items():
            self.actions.append(f"stop pids {pids} in {ns}")
            if self.module.check_mode:
                continue
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                stopped.append(pid)
        if stopped:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}")
                                                      for p in stopped):
                time.sleep(0.1)
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for ns in present:
            self.run("netns", "del", ns)
        return stopped


def validate(module):
    names = set(module.params["namespaces"])
    for field in ("bridges", "veths"):
        for index, spec in enumerate(module.params[field]):
            ends = [("ns", "name", "address")]
            if field == "veths":
                ends.append(("peer_ns", "peer_name", "peer_address"))
            for ns_key, name_key, addr_key in ends:
                where = f"{field}[{index}]"
                if spec.get(ns_key) not in names:
                    module.fail_json(msg=f"{where}.{ns_key}: {spec.get(ns_key)!r} is not one of "
                                     f"the lab namespaces {sorted(names)}")
                name = spec.get(name_key)
                if not isinstance(name, str) or not 0 < len(name) <= 15:
                    module.fail_json(msg=f"{where}.{name_key}: interface names have 1-15 "
                                     f"characters, got {name!r}")
                address = spec.get(addr_key)
                if address:
                    try:
                        net = ipaddress.ip_interface(address)
                    except ValueError:
                        module.fail_json(msg=f"{where}.{addr_key}: not an address/prefix: "
                                         f"{address!r}")
                    lab_range = ipaddress.ip_network("198.18.0.0/15")
                    if net.ip not in lab_range:
                        module.fail_json(msg=f"{where}.{addr_key}: {address} is outside the "
                                         "lab range 198.18.0.0/15")


def main():
    module = AnsibleModule(
        argument_spec={
            "namespaces": {"type": "list", "elements": "str", "required": True},
            "bridges": {"type": "list", "elements": "dict", "default": []},
            "veths": {"type": "list", "elements": "dict", "default": []},
            "disable_ipv6": {"type": "bool", "default": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "stop_processes": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    topo = Topology(module)
    if module.params["state"] == "absent":
        stopped = topo.remove(module.params["namespaces"], module.params["stop_processes"])
        module.exit_json(changed=bool(topo.actions), actions=topo.actions, stopped_pids=stopped)
    validate(module)
    for ns in module.params["namespaces"]:
        topo.ensure_ns(ns)
        if module.params["disable_ipv6"]:
            topo.ensure_ipv6_off(ns)
    for spec in module.params["bridges"]:
        topo.ensure_bridge(spec)
    for spec in module.params["veths"]:
        topo.ensure_veth(spec)
    module.exit_json(changed=bool(topo.actions), actions=topo.actions)


if __name__ == "__main__":
    main()
