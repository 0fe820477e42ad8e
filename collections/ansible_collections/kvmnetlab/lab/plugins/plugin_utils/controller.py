# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared base of kvmnetlab's controller-side action plugins.

They run inside the ansible-playbook process on the controller and call the
``kvmnetlab`` and ``collectors`` packages (installed into the controller's environment by
bootstrap.sh). They never run anything on a managed host.

Each one is documented by a module stub of the same name in plugins/modules/ (what
``ansible-doc kvmnetlab.lab.<name>`` prints); its documented options are the argument
spec its task arguments are validated against, by Ansible's own validator, before
``act`` runs.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.documented import DocumentedAction

try:
    import collectors  # noqa: F401  (import check only)
    import kvmnetlab  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the controller's setup
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None


class ControllerAction(DocumentedAction, abstract=True):
    """An action that only touches the controller; subclasses implement ``act``.

    A subclass sets ``DOCUMENTATION`` to its module stub's; ``act`` receives the task's
    arguments validated against the options documented there (types converted, defaults
    filled in, every documented option present).
    """

    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        if _IMPORT_ERROR is not None:
            raise AnsibleActionFail(
                "the kvmnetlab Python packages are not importable by this ansible-playbook "
                f"({_IMPORT_ERROR}); run ./bootstrap.sh and use .venv/bin/ansible-playbook"
            )
        result.update(self.act(args, task_vars or {}))
        return result

    def act(self, args, task_vars):  # pragma: no cover - abstract
        raise NotImplementedError

