# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How SSH reaches the lab's guests, and what the inventory records about each guest.

Pure functions used by the guest_vm role (called by FQCN, e.g.
``kvmnetlab.lab.guest_ssh_options``) and unit-tested as Python:

- the embedded lab (``access: netns``): the controller is the hypervisor, and SSH goes into
  the hypervisor's network namespace with ``ip netns exec <ns> socat`` (a ProxyCommand);
- a real lab (``access: jump``): QEMU runs in the KVM host's own network namespace, the KVM
  host has an address on the management bridge, and the controller reaches the guests with
  plain SSH through it (``ProxyJump=<user>@<address>[:<port>]``). The KVM host itself (the
  guest wait runs there) connects directly. When the hypervisor is the controller, no jump.
"""

from __future__ import annotations

import shlex

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only when imported outside Ansible's venv
    AnsibleFilterError = ValueError  # type: ignore[assignment,misc]

ACCESS_MODES = ("netns", "jump")
SIDES = ("controller", "hypervisor")

# Options every connection to a guest uses, after the proxy and the known_hosts file.
COMMON_OPTIONS = (
    ("StrictHostKeyChecking", "yes"),
    ("IdentitiesOnly", "yes"),
    ("ConnectTimeout", "20"),
    ("ServerAliveInterval", "5"),
    ("ServerAliveCountMax", "3"),
)


def netns_proxy_command(netns: str) -> str:
    """ProxyCommand into the hypervisor's network namespace (%h, %p expanded by ssh)."""
    return f"ip netns exec {netns} socat - TCP:%h:%p,connect-timeout=15"


def proxy_jump(host: str, user: str = "", port=None) -> str:
    """``[user@]host[:port]``, with an IPv6 address in brackets."""
    host = str(host or "").strip()
    if not host:
        raise AnsibleFilterError("ProxyJump needs the hypervisor's address (its ansible_host)")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    text = f"{user}@{host}" if user else host
    if port not in (None, "", 22, "22"):
        text += f":{int(port)}"
    return text


def guest_proxy(access: str, *, side: str = "controller", netns: str = "",
                jump: dict | None = None, on_controller: bool = True,
                proxy_command: str = "") -> dict[str, str]:
    """The proxy option SSH needs to reach a guest's management address: {} when direct.

    ``access`` is guest_vm_mgmt_access; ``side`` says who connects: the controller
    (Ansible, humans there) or the hypervisor itself (the guest wait). ``jump`` is
    ``{host, user, port}`` of the hypervisor as the controller's inventory names it;
    ``on_controller`` is true when the hypervisor is the controller machine (its
    connection is local), in which case nothing jumps. A non-empty ``proxy_command``
    overrides the controller's proxy.
    """
    if access not in ACCESS_MODES:
        raise AnsibleFilterError(
            f"guest_vm_mgmt_access must be one of {', '.join(ACCESS_MODES)}, got {access!r}")
    if side not in SIDES:
        raise AnsibleFilterError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    if access == "netns" and not netns:
        raise AnsibleFilterError(
            "guest_vm_mgmt_access is netns but guest_vm_netns is empty: the netns access "
            "enters the hypervisor's namespace (the embedded lab); a real lab uses jump")
    if access == "jump" and netns:
        raise AnsibleFilterError(
            f"guest_vm_mgmt_access is jump but guest_vm_netns is {netns!r}: jumping through "
            "the hypervisor reaches only its own network namespace; use netns, or leave "
            "guest_vm_netns empty")
    if side == "hypervisor":
        return {"ProxyCommand": netns_proxy_command(netns)} if netns else {}
    if proxy_command:
        return {"ProxyCommand": proxy_command}
    if access == "netns":
        if not on_controller:
            raise AnsibleFilterError(
                "guest_vm_mgmt_access is netns, but the hypervisor is not the controller: "
                "`ip netns exec` would run on the controller; a real lab uses jump")
        return {"ProxyCommand": netns_proxy_command(netns)}
    if on_controller:
        return {}
    jump = jump or {}
    return {"ProxyJump": proxy_jump(jump.get("host", ""), jump.get("user") or "",
                                    jump.get("port"))}


def guest_ssh_options(proxy: dict, known_hosts: str) -> list[list[str]]:
    """Every ``[option, value]`` of an SSH connection to a guest, in order."""
    if not known_hosts:
        raise AnsibleFilterError("guest_ssh_options needs the lab's known_hosts file")
    return ([[key, str(value)] for key, value in proxy.items()]
            + [["UserKnownHostsFile", known_hosts]]
            + [[key, value] for key, value in COMMON_OPTIONS])


def ssh_option_args(options: list) -> str:
    """``-o Key=Value ...`` for a command line (Ansible's ansible_ssh_common_args)."""
    return " ".join(f"-o {shlex.quote(f'{key}={value}')}" for key, value in options)


def guest_hostvars(guests: list, status: dict, *, hypervisor: str, identity_file: str,
                   ssh_common_args: str, interpreter: str = "/usr/bin/python3") -> list[dict]:
    """What the inventory records for each guest that is up (status[name].ok), in order.

    Each item is ``{name, vars}``; vars are the host variables add_host gives the guest.
    """
    entries = []
    for guest in guests:
        state = status.get(guest["name"]) or {}
        if not state.get("ok"):
            continue
        entries.append({"name": guest["name"], "vars": {
            "ansible_host": guest["mgmt_ip"],
            "ansible_user": "root",
            "ansible_ssh_private_key_file": identity_file,
            "ansible_ssh_common_args": ssh_common_args,
            "ansible_python_interpreter": interpreter,
            "kvmnetlab_guest_data_ip": guest["data_ip"],
            "kvmnetlab_guest_qemu_pid": state.get("pid", 0),
            "kvmnetlab_guest_hypervisor": hypervisor,
            "kvmnetlab_guest_netdev": dict(guest.get("netdev") or {}),
        }})
    return entries


def guest_unavailable_reason(status: dict, *, configured: int, image_ready: bool,
                             check_mode: bool, host: str = "", image: str = "") -> str:
    """Why no guest of this hypervisor is usable; empty when at least one is up."""
    where = f" on {host}" if host else ""
    if configured == 0:
        return f"no guests are configured{where} (guest_vm_guests is empty)"
    if any((state or {}).get("ok") for state in status.values()):
        return ""
    if not image_ready and check_mode:
        return (f"check mode: the guest image{where} is not built yet ({image or 'unset'}), "
                "so no guest was started")
    reasons = "; ".join(f"{name}: {(state or {}).get('reason') or 'down'}"
                        for name, state in sorted(status.items()))
    return f"every guest{where} is down ({reasons or 'none was started'})"


class FilterModule:
    """kvmnetlab.lab filters of the guest_vm role."""

    def filters(self):
        return {
            "guest_proxy": guest_proxy,
            "guest_ssh_options": guest_ssh_options,
            "ssh_option_args": ssh_option_args,
            "guest_hostvars": guest_hostvars,
            "guest_unavailable_reason": guest_unavailable_reason,
        }
