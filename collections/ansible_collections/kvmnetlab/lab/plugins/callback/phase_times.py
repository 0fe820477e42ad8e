# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wall-clock time of each play (a phase of site.yml) and of each role in it.

Enable it with ``ANSIBLE_CALLBACKS_ENABLED=kvmnetlab.lab.phase_times`` (bin/rehearse
does). Lines look like ``  role 'guest_image' took 1234.5 s`` (a run of tasks of one
role, within a play), ``phase 'Guest image and guests' took 1300.2 s`` and, at the end,
``phase times (s) ...``; they carry no colon, so a PLAY RECAP parser skips them.
"""

from __future__ import annotations

import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: phase_times
    type: aggregate
    short_description: Wall-clock time of each play, in seconds
    description:
      - Prints how long each run of one role's tasks took, and each play, as they end;
        then every play's time in one line.
    requirements:
      - enabled with ANSIBLE_CALLBACKS_ENABLED=kvmnetlab.lab.phase_times
"""


def phase_line(name: str, seconds: float) -> str:
    """One phase's line; colons in the play's name are dropped (see the module's doc)."""
    return f"phase '{name.replace(':', ' ')}' took {seconds:.1f} s"


def role_line(role: str, seconds: float) -> str:
    """One role's line within a play (indented under the play's own line)."""
    return f"  role '{role.replace(':', ' ')}' took {seconds:.1f} s"


def summary_line(phases: list[tuple[str, float]]) -> str:
    """Every phase and its time in one line, in order, with the total."""
    parts = [f"{name.replace(':', ' ')} {seconds:.1f}" for name, seconds in phases]
    total = sum(seconds for _, seconds in phases)
    return f"phase times (s) -- {'; '.join(parts)}; total {total:.1f}"


class CallbackModule(CallbackBase):
    """Times plays with time.monotonic()."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kvmnetlab.lab.phase_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._current: tuple[str, float] | None = None
        self._role: tuple[str | None, float] | None = None
        self._phases: list[tuple[str, float]] = []

    def _close_role(self) -> None:
        if self._role is not None and self._role[0]:
            role, start = self._role
            self._display.display(role_line(role, time.monotonic() - start))
        self._role = None

    def _close(self) -> None:
        self._close_role()
        if self._current is None:
            return
        name, start = self._current
        seconds = time.monotonic() - start
        self._phases.append((name, seconds))
        self._display.display(phase_line(name, seconds))
        self._current = None

    def v2_playbook_on_play_start(self, play):
        self._close()
        self._current = (play.get_name().strip() or "(unnamed play)", time.monotonic())

    def v2_playbook_on_task_start(self, task, is_conditional):
        role = task._role.get_name() if getattr(task, "_role", None) else None
        if self._role is None or self._role[0] != role:
            self._close_role()
            self._role = (role, time.monotonic())

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats):
        self._close()
        if self._phases:
            self._display.display(summary_line(self._phases))
