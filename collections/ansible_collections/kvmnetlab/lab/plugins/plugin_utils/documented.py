# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared base of kvmnetlab's documented action plugins.

Each one is documented by a module stub of the same name in plugins/modules/ (what
``ansible-doc kvmnetlab.lab.<name>`` prints); its documented options are the argument
spec its task arguments are validated against, by Ansible's own validator, so the
documentation and the validation cannot drift apart.
"""

from __future__ import annotations

from typing import ClassVar

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.argspec import spec_from_doc


class DocumentedAction(ActionBase):
    """An action whose options are those its module stub documents.

    A subclass sets ``DOCUMENTATION`` to its module stub's (a shared base says
    ``abstract=True`` instead); ``validated_args`` returns the task's arguments validated
    against the options documented there (types converted, defaults filled in, every
    documented option present).
    """

    TRANSFERS_FILES = False

    DOCUMENTATION = ""
    ARGUMENT_SPEC: ClassVar[dict] = {}

    def __init_subclass__(cls, abstract: bool = False, **kwargs):
        super().__init_subclass__(**kwargs)
        if abstract:  # a base of other actions, such as ControllerAction
            return
        if not cls.DOCUMENTATION:
            raise TypeError(f"{cls.__module__}: a documented action needs its module stub's "
                            "DOCUMENTATION (its options are the argument spec)")
        cls.ARGUMENT_SPEC = spec_from_doc(cls.DOCUMENTATION)

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
