# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the container_lab role records about its containers (pure, unit-tested as Python).

- ``container_mac``: the data NIC's stable MAC from a prefix and the container's index;
- ``container_running``: the running containers from the results of
  kvmnetlab.lab.container_lxc, as ``{name, pid, runtime, data_ip, cgroup_cpuacct,
  cgroup_memory}`` (``data_ip`` without its prefix length);
- ``container_reason``: why not every container asked for runs ('' when all do);
- ``container_hostvars``: what the inventory records for each running container.
"""

from __future__ import annotations

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only when imported outside Ansible's venv
    AnsibleFilterError = ValueError  # type: ignore[assignment,misc]

from ansible_collections.kvmnetlab.lab.plugins.module_utils import container_lxc


def container_mac(prefix: str, index) -> str:
    """``52:54:00:18:02`` and 3 give ``52:54:00:18:02:03``."""
    try:
        return container_lxc.mac_address(prefix, index)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(str(exc)) from None


def _address(data_ip: str) -> str:
    return str(data_ip or "").split("/", 1)[0].strip()


def container_running(results: list, selected: list) -> list[dict]:
    """The containers that run, in the order of ``selected``, from the module's results."""
    by_name = {}
    for result in results or []:
        item = result.get("item") or {}
        if result.get("pid") and not result.get("failed"):
            by_name[item.get("name")] = result
    running = []
    for container in selected or []:
        done = by_name.get(container.get("name"))
        if not done:
            continue
        running.append({"name": container["name"], "pid": int(done["pid"]),
                        "runtime": done.get("runtime", ""),
                        "data_ip": _address(container.get("data_ip")),
                        "cgroup_cpuacct": done.get("cgroup_cpuacct", ""),
                        "cgroup_memory": done.get("cgroup_memory", "")})
    return running


def container_reason(results: list, selected: list, *, count=None,
                     check_mode: bool = False) -> str:
    """'' when every selected container runs, else why not."""
    if not selected:
        return ("no container was asked for (container_lab_count is 0)"
                if count not in (None, "") else "container_lab_containers is empty")
    running = {c["name"] for c in container_running(results, selected)}
    missing = [c["name"] for c in selected if c.get("name") not in running]
    if not missing:
        return ""
    why = "check mode: not started" if check_mode else "not running"
    return f"{why}: {', '.join(missing)}"


def container_hostvars(running: list, *, hypervisor: str, lxcpath: str, netns: str = "",
                       group: str = "containers") -> list[dict]:
    """What the inventory records for each running container: ``{name, group, vars}``.

    ``kvmnetlab_guest_data_ip`` has the name the guests' does, so a campaign treats both
    alike; the connection kvmnetlab.lab.container reads the three
    ``kvmnetlab_container_name/lxcpath/netns``.
    """
    return [{"name": c["name"], "group": group, "vars": {
        "ansible_connection": "kvmnetlab.lab.container",
        "ansible_python_interpreter": "/usr/bin/python3",
        "kvmnetlab_container_name": c["name"],
        "kvmnetlab_container_lxcpath": lxcpath,
        "kvmnetlab_container_netns": netns or "",
        "kvmnetlab_guest_data_ip": c["data_ip"],
        "kvmnetlab_container_pid": int(c["pid"]),
        "kvmnetlab_container_runtime": c["runtime"],
        "kvmnetlab_container_cgroup_cpuacct": c.get("cgroup_cpuacct", ""),
        "kvmnetlab_container_cgroup_memory": c.get("cgroup_memory", ""),
        "kvmnetlab_shares_kernel": True,
        "kvmnetlab_container_hypervisor": hypervisor,
    }} for c in running or []]


class FilterModule:
    """kvmnetlab's filters for the container_lab role."""

    def filters(self):
        return {
            "container_mac": container_mac,
            "container_running": container_running,
            "container_reason": container_reason,
            "container_hostvars": container_hostvars,
        }
