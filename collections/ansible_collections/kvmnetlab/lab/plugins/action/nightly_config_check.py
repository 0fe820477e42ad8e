# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check the configuration the nightly role writes, as kvmnetlab-nightly will read it."""

from __future__ import annotations

import yaml
from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.modules.nightly_config_check import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


def _as_number(value):
    """Text that reads as a number (``-e nightly_p_value=0.01``) -> that number."""
    if isinstance(value, str):
        try:
            read = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if isinstance(read, int | float) and not isinstance(read, bool):
            return read
    return value


class ActionModule(ControllerAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from nightly import config

        given = {key: _as_number(value) if key in config.NUMBER_KEYS else value
                 for key, value in args["config"].items()}
        try:
            config.check_values(given, args["source"], None, prefix=args["prefix"])
        except config.ConfigError as exc:
            raise AnsibleActionFail(str(exc)) from None
        return {"changed": False, "config": given}
