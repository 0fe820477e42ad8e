# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared base of kvmnetlab's controller-side action plugins.

They run inside the ansible-playbook process on the controller and call the
``collectors`` package (installed into the controller's environment by
bootstrap.sh). They never run anything on a managed host.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

try:
    import collectors  # noqa: F401  (import check only)
except ImportError as exc:  # pragma: no cover - depends on the controller's setup
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None


class ControllerAction(ActionBase):
    """An action that only touches the controller; subclasses implement ``act``."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if _IMPORT_ERROR is not None:
            raise AnsibleActionFail(
                "the kvmnetlab Python packages are not importable by this ansible-playbook "
                f"({_IMPORT_ERROR}); run ./bootstrap.sh and use .venv/bin/ansible-playbook"
            )
        result.update(self.act(dict(self._task.args), task_vars or {}))
        return result

    def act(self, args, task_vars):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def need(args, *names):
        missing = [name for name in names if args.get(name) in (None, "")]
        if missing:
            raise AnsibleActionFail(f"missing required argument(s): {', '.join(missing)}")
        return [args[name] for name in names]
