# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection plugin: run tasks inside a lab container (LXC) on the controller machine."""

from __future__ import annotations

DOCUMENTATION = r"""
name: container
short_description: Run tasks inside a lab container (LXC) on the controller machine
description:
  - Every command runs inside the container with C(lxc-attach --clear-env), in its mount,
    PID, UTS, IPC and network namespaces and in its cgroups, so what a task starts there is
    accounted to the container (its C(cpuacct.usage)), as the container's own processes are.
  - C(lxc-attach) finds the container through LXC's command socket, an abstract socket of
    the network namespace the runtime runs in, so it is started from there
    (C(nsenter --net=/run/netns/NAME)) when I(netns) is set.
  - Files are copied through the container's root as the host sees it
    (C(/proc/PID/root) of its init); symbolic links in the container are followed inside it.
  - Supports pipelining (a module, or C(python3 -), gets its program on stdin).
  - Like C(local), it runs on the controller, so the container host must be the controller
    machine, as on kvmnetlab's embedded lab (the container_lab role adds the containers with
    this connection). A container on another host is reached differently (an SSH hop to that
    host, then the same commands), which this plugin does not do.
author: kvmnetlab developers
options:
  container_name:
    description: Name of the container (C(lxc-ls)); default the inventory host's address or name.
    type: str
    vars:
      - name: kvmnetlab_container_name
  lxcpath:
    description: LXC's folder of containers (C(lxc-* -P)).
    type: str
    required: true
    vars:
      - name: kvmnetlab_container_lxcpath
  netns:
    description: Network namespace the runtime runs in (C(ip netns list)); empty for the host's own.
    type: str
    default: ''
    vars:
      - name: kvmnetlab_container_netns
extends_documentation_fragment:
  - connection_pipelining
"""

import os
import shlex
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.connection.local import Connection as LocalConnection
from ansible_collections.kvmnetlab.lab.plugins.module_utils.container_lxc import resolve_in_root


def runtime_argv(tool: str, lxcpath: str, name: str, netns: str) -> list[str]:
    """An LXC command for the container, started in the runtime's network namespace."""
    enter = ["nsenter", f"--net=/run/netns/{netns}"] if netns else []
    return [*enter, tool, "-P", lxcpath, "-n", name]


def attach_prefix(lxcpath: str, name: str, netns: str) -> str:
    """The shell words that run a command inside the container (HOME set for Ansible's ~)."""
    argv = [*runtime_argv("lxc-attach", lxcpath, name, netns), "--clear-env",
            "--set-var", "HOME=/root", "--"]
    return shlex.join(argv)


class Connection(LocalConnection):
    """Local connection whose commands run inside an LXC container."""

    transport = "kvmnetlab.lab.container"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._container_pid = 0

    def _name(self) -> str:
        return self.get_option("container_name") or self._play_context.remote_addr

    def _netns(self) -> str:
        return self.get_option("netns") or ""

    def _connect(self):
        super()._connect()
        if self._container_pid:
            return self
        name, netns, lxcpath = self._name(), self._netns(), self.get_option("lxcpath")
        if netns and not os.path.exists(f"/run/netns/{netns}"):
            raise AnsibleConnectionFailure(
                f"network namespace {netns!r} of container {name} does not exist")
        if not shutil.which("lxc-info"):
            raise AnsibleConnectionFailure("LXC is not installed here (lxc-info not found)")
        done = subprocess.run([*runtime_argv("lxc-info", lxcpath, name, netns), "-pH"],
                              capture_output=True, text=True, check=False)
        pid = done.stdout.strip()
        if done.returncode != 0 or not pid.isdigit():
            raise AnsibleConnectionFailure(
                f"container {name} is not running under {lxcpath}"
                f"{' in network namespace ' + netns if netns else ''}: "
                f"{(done.stderr or done.stdout).strip() or 'no PID'}; "
                "start it with playbooks/containers.yml")
        self._container_pid = int(pid)
        return self

    def exec_command(self, cmd, in_data=None, sudoable=True):
        self._connect()
        wrapped = f"{attach_prefix(self.get_option('lxcpath'), self._name(), self._netns())} {cmd}"
        return super().exec_command(wrapped, in_data=in_data, sudoable=sudoable)

    def _inside(self, path: str) -> str:
        """``path`` in the container, as a path on this host."""
        self._connect()
        try:
            return resolve_in_root(f"/proc/{self._container_pid}/root", path)
        except (OSError, ValueError) as exc:
            raise AnsibleError(f"{path} in container {self._name()}: {exc}") from None

    def put_file(self, in_path, out_path):
        target = self._inside(out_path)
        self._display.vvv(f"PUT {in_path} TO {out_path} ({target})", host=self._name())
        if not os.path.exists(in_path):
            raise AnsibleError(f"file or module does not exist: {in_path}")
        try:
            shutil.copyfile(in_path, target)
        except OSError as exc:
            raise AnsibleError(f"failed to copy {in_path} to {out_path} in container "
                               f"{self._name()}: {exc}") from None

    def fetch_file(self, in_path, out_path):
        source = self._inside(in_path)
        self._display.vvv(f"FETCH {in_path} ({source}) TO {out_path}", host=self._name())
        try:
            shutil.copyfile(source, out_path)
        except OSError as exc:
            raise AnsibleError(f"failed to fetch {in_path} from container {self._name()} "
                               f"to {out_path}: {exc}") from None

    def close(self):
        self._container_pid = 0
        super().close()
