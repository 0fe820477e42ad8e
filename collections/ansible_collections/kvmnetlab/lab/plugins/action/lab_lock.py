# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Take or release the lab lock for this ansible-playbook run."""

from __future__ import annotations

DOCUMENTATION = r"""
module: lab_lock
short_description: Take or release the lab lock held by this ansible-playbook process
description:
  - The lock is a file recording the PID and start time of the ansible-playbook process that
    holds it. A lock whose holder is gone is stale and is taken over.
options:
  path: {description: The lock file., type: path, required: true}
  state: {description: present (take) or absent (release)., type: str, default: absent, choices: [present, absent]}
  purpose: {description: Recorded with the lock (e.g. teardown)., type: str, default: campaign}
author: kvmnetlab developers
"""

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    def act(self, args, task_vars):
        from collectors import lock
        from collectors.store import utcnow

        (path,) = self.need(args, "path")
        owner = lock.playbook_pid()
        if args.get("state", "absent") == "present":
            if self._task.check_mode:
                return {"changed": False}
            try:
                info = lock.acquire(path, owner, {"campaign_id": args.get("purpose", "campaign"),
                                                  "since": utcnow()})
            except lock.LabBusy as exc:
                raise AnsibleActionFail(str(exc)) from None
            return {"changed": False, "lock": info}
        if self._task.check_mode:
            return {"changed": False}
        return {"changed": False, "released": lock.release(path, owner)}
