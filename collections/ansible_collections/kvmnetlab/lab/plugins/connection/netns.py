# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection plugin: run tasks inside a network namespace of the controller machine."""

from __future__ import annotations

DOCUMENTATION = r"""
name: netns
short_description: Run tasks inside a network namespace on the controller machine
description:
  - Like the C(local) connection, but every command runs through C(ip netns exec NAME).
  - The namespace shares the controller's filesystem, so files are copied locally.
  - kvmnetlab's embedded lab uses it for its "bare-metal" hosts, which are network
    namespaces joined by veth pairs.
author: kvmnetlab developers
options:
  netns:
    description: Name of the network namespace (see C(ip netns list)).
    type: str
    required: true
    vars:
      - name: kvmnetlab_netns
extends_documentation_fragment:
  - connection_pipelining
"""

import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.connection.local import Connection as LocalConnection


class Connection(LocalConnection):
    """Local connection whose commands enter a network namespace first."""

    transport = "kvmnetlab.lab.netns"
    has_pipelining = True

    def _connect(self):
        super()._connect()
        name = self.get_option("netns")
        try:
            with open(f"/run/netns/{name}", "rb"):
                pass
        except OSError as exc:
            raise AnsibleConnectionFailure(
                f"network namespace {name!r} does not exist ({exc.strerror}); "
                "build the lab first (playbooks/lab.yml)"
            ) from None
        return self

    def exec_command(self, cmd, in_data=None, sudoable=True):
        name = self.get_option("netns")
        wrapped = f"ip netns exec {shlex.quote(name)} {cmd}"
        return super().exec_command(wrapped, in_data=in_data, sudoable=sudoable)
