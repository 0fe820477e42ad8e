# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Take or release the lab lock for this ansible-playbook run."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.modules.lab_lock import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from kvmnetlab import lock
        from kvmnetlab.store import utcnow

        path = args["path"]
        owner = lock.playbook_pid()
        if args["state"] == "present":
            if self._task.check_mode:
                return {"changed": False}
            try:
                info = lock.acquire(path, owner, {"campaign_id": args["purpose"],
                                                  "since": utcnow()})
            except lock.LabBusy as exc:
                raise AnsibleActionFail(str(exc)) from None
            return {"changed": False, "lock": info}
        if self._task.check_mode:
            return {"changed": False}
        return {"changed": False, "released": lock.release(path, owner)}
