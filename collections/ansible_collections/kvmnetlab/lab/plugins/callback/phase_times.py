# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wall-clock time of each play (a phase of site.yml), printed as each ends and summed up.

Enable it with ``ANSIBLE_CALLBACKS_ENABLED=kvmnetlab.lab.phase_times`` (bin/rehearse
does). Lines look like ``phase 'Guest image and guests' took 1234.5 s`` and, at the end,
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
      - Prints how long each play took when the next one starts (and the last at the end),
        then every play's time in one line.
    requirements:
      - enabled with ANSIBLE_CALLBACKS_ENABLED=kvmnetlab.lab.phase_times
"""


def phase_line(name: str, seconds: float) -> str:
    """One phase's line; colons in the play's name are dropped (see the module's doc)."""
    return f"phase '{name.replace(':', ' ')}' took {seconds:.1f} s"


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
        self._phases: list[tuple[str, float]] = []

    def _close(self) -> None:
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

    def v2_playbook_on_stats(self, stats):
        self._close()
        if self._phases:
            self._display.display(summary_line(self._phases))
