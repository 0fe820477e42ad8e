# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the container_lab role records about its containers (pure, unit-tested as Python).

- ``container_mac``: the data NIC's stable MAC from a prefix and the container's index;
- ``container_running``: the running containers from the results of
  kvmnetlab.lab.container_lxc, as ``{name, pid, runtime, data_ip, cgroup_cpuacct,
  cgroup_memory}`` (``data_ip`` without its prefix length);
- ``container_reason``: why not every container asked for runs ('' when all do);
- ``container_pairs``: ``[hypervisor, container]`` pairs over the hypervisors of a play.
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


def container_pairs(hypervisors: list) -> list[list]:
    """``[[hypervisor, container], ...]`` from the hostvars of the play's hypervisors."""
    pairs = []
    for host in hypervisors or []:
        for container in host.get("container_lab_running") or []:
            pairs.append([host["inventory_hostname"], container])
    return pairs


class FilterModule:
    """kvmnetlab's filters for the container_lab role."""

    def filters(self):
        return {
            "container_mac": container_mac,
            "container_running": container_running,
            "container_reason": container_reason,
            "container_pairs": container_pairs,
        }
