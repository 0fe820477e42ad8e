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

from typing import ClassVar

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.argspec import spec_from_doc

try:
    import collectors  # noqa: F401  (import check only)
    import kvmnetlab  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the controller's setup
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None


class ControllerAction(ActionBase):
    """An action that only touches the controller; subclasses implement ``act``.

    A subclass sets ``DOCUMENTATION`` to its module stub's; ``act`` receives the task's
    arguments validated against the options documented there (types converted, defaults
    filled in, every documented option present).
    """

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    DOCUMENTATION = ""
    ARGUMENT_SPEC: ClassVar[dict] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.DOCUMENTATION:
            raise TypeError(f"{cls.__module__}: a controller action needs its module stub's "
                            "DOCUMENTATION (its options are the argument spec)")
        cls.ARGUMENT_SPEC = spec_from_doc(cls.DOCUMENTATION)

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

    def validated_args(self):
        """The task's arguments checked by Ansible's ArgumentSpecValidator against
        ``ARGUMENT_SPEC``; every problem is reported at once, each naming its option."""
        given = dict(self._task.args)
        outcome = ArgumentSpecValidator(self.ARGUMENT_SPEC).validate(given)
        problems = [f"unsupported parameters: {error.msg}" if isinstance(error, UnsupportedError)
                    else error.msg for error in outcome.errors]
        args = outcome.validated_parameters
        # The validator counts a required option as given once its key is present; a
        # template that rendered to nothing is refused as well.
        empty = sorted(name for name, spec in self.ARGUMENT_SPEC.items()
                       if spec.get("required") and name in given and args[name] in (None, ""))
        if empty:
            problems.append(f"required arguments given empty: {', '.join(empty)}")
        if problems:
            action = getattr(self._task, "resolved_action", None) or self._task.action
            raise AnsibleActionFail(f"{action}: {'; '.join(p.rstrip('.') for p in problems)}")
        return args

    def act(self, args, task_vars):  # pragma: no cover - abstract
        raise NotImplementedError

