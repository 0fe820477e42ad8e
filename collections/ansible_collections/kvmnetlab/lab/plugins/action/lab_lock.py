# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Take or release the lab lock for this ansible-playbook run."""

from __future__ import annotations

from pathlib import Path

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.modules.lab_lock import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from kvmnetlab import lock
        from kvmnetlab.store import utcnow

        path = Path(args["path"])
        owner = lock.playbook_pid()
        current = lock.holder(path)
        if args["state"] == "present":
            # taking a free or stale lock is a change; holding it already is not
            taking = current is None or current["pid"] != owner
            if self._task.check_mode:
                return {"changed": taking}
            try:
                info = lock.acquire(path, owner, {"campaign_id": args["purpose"],
                                                  "since": utcnow()})
            except lock.LabBusy as exc:
                raise AnsibleActionFail(str(exc)) from None
            return {"changed": taking, "lock": info}
        if self._task.check_mode:
            mine = current is None or current["pid"] == owner
            return {"changed": path.exists() and mine}
        released = lock.release(path, owner)
        return {"changed": released, "released": released}
