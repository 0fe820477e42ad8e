# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a run's time goes: every task's, and every loop item's, wall-clock interval.

Enable it with ``ANSIBLE_CALLBACKS_ENABLED=kvmnetlab.lab.task_times`` and name the
output with ``KVMNETLAB_TASK_TIMES=<file>``. One JSON object per line and result:

- ``play``, ``role``, ``task``, ``action``: where in the playbook;
- ``host``: the inventory host the task ran for; ``target``: the host the work ran
  on (``delegate_to`` as the item ran, else ``host``); ``connection``: the target's
  connection plugin when Ansible reported it (delegated results), else null;
- ``start``/``end``: seconds (time.time(), the controller's clock). A loop's items run
  one after another, so an item's interval starts where the previous one ended;
- ``status``: ok, changed, failed, skipped or unreachable; ``item``: the loop label.

bench/bench_campaign.py reads it to split a campaign's time per task and per host.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: task_times
    type: aggregate
    short_description: Each task's and loop item's wall-clock interval, as JSON lines
    description:
      - Writes one JSON object per task result and loop item (play, role, task, action,
        host, target, connection, start, end, status, item) to the file named by
        the KVMNETLAB_TASK_TIMES environment variable; nothing when it is unset.
    requirements:
      - enabled with ANSIBLE_CALLBACKS_ENABLED=kvmnetlab.lab.task_times
"""

def short_action(action: str) -> str:
    """``ansible.builtin.set_fact`` -> ``set_fact``; collection actions keep their name."""
    return action.split(".")[-1] if action.startswith("ansible.") else action


def record(task, host: str, result: dict | None, start: float, end: float,
           status: str, play: str) -> dict:
    """One JSON line's content (pure: the caller supplies the clock)."""
    delegated = (result or {}).get("_ansible_delegated_vars") or {}
    # the result carries the task as it ran (per loop item), delegate_to templated
    delegate = getattr(task, "delegate_to", None)
    if not isinstance(delegate, str) or "{{" in delegate:
        delegate = None
    role = task._role.get_name() if getattr(task, "_role", None) else None
    name = task.get_name().strip()
    if role and name.startswith(f"{role} : "):
        name = name[len(role) + 3:]  # the role is its own field
    label = None
    if result is not None and "_ansible_item_label" in result:
        label = str(result["_ansible_item_label"])[:200]
    return {
        "play": play, "role": role, "task": name,
        "action": short_action(task.action or ""), "host": host,
        "target": delegate or host,
        "connection": delegated.get("ansible_connection"),
        "start": round(start, 6), "end": round(end, 6), "status": status, "item": label,
    }


class CallbackModule(CallbackBase):
    """Appends JSON lines to $KVMNETLAB_TASK_TIMES."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kvmnetlab.lab.task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        path = os.environ.get("KVMNETLAB_TASK_TIMES")
        self._out = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self._play = ""
        self._since: dict[tuple[str, str], float] = {}

    def _write(self, result, status: str, item: bool) -> None:
        if self._out is None:
            return
        task, host = result._task, result._host.get_name()
        key = (task._uuid, host)
        now = time.time()
        start = self._since.get(key, now)
        if item:
            self._since[key] = now  # the next item starts where this one ended
        elif key in self._since:
            del self._since[key]
            if task.loop:  # the loop's own summary result: its items are already written
                return
        self._out.write(json.dumps(record(task, host, result._result, start, now, status,
                                          self._play)) + "\n")
        self._out.flush()

    @staticmethod
    def _status(result) -> str:
        return "changed" if result._result.get("changed") else "ok"

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name().strip()

    def v2_runner_on_start(self, host, task):
        self._since[(task._uuid, host.get_name())] = time.time()

    def v2_runner_on_ok(self, result):
        self._write(result, self._status(result), item=False)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "failed", item=False)

    def v2_runner_on_skipped(self, result):
        self._write(result, "skipped", item=False)

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable", item=False)

    def v2_runner_item_on_ok(self, result):
        self._write(result, self._status(result), item=True)

    def v2_runner_item_on_failed(self, result):
        self._write(result, "failed", item=True)

    def v2_runner_item_on_skipped(self, result):
        self._write(result, "skipped", item=True)

    def v2_playbook_on_stats(self, stats):
        if self._out is not None:
            self._out.close()
            self._out = None
