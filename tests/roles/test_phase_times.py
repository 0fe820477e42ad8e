"""The phase_times callback (kvmnetlab.lab.phase_times): each play's wall-clock time."""

from __future__ import annotations

import re
import subprocess

from tests.helpers import BIN, REPO, ansible_env, recap

PLAY = """\
- name: First phase
  hosts: localhost
  gather_facts: false
  roles:
    - role: timed
  tasks:
    - name: Wait a little
      ansible.builtin.pause:
        seconds: 1
- name: "Second: phase"
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Nothing
      ansible.builtin.meta: noop
"""


def test_each_play_reports_its_time_and_the_recap_still_parses(tmp_path):
    play = tmp_path / "two.yml"
    play.write_text(PLAY)
    tasks = tmp_path / "roles/timed/tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text("- name: A role's task\n  ansible.builtin.meta: noop\n")
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(play)],
        cwd=REPO, env={**ansible_env(), "ANSIBLE_CALLBACKS_ENABLED": "kvmnetlab.lab.phase_times"},
        capture_output=True, text=True, timeout=120, check=True)
    first = re.search(r"phase 'First phase' took (\d+\.\d) s", done.stdout)
    assert first and float(first.group(1)) >= 1.0, done.stdout
    # the role's tasks are timed on their own, inside the play
    assert re.search(r"^  role 'timed' took \d+\.\d s$", done.stdout, re.M), done.stdout
    # a colon in a play's name is dropped, so the summary never looks like a recap line
    assert "phase 'Second  phase' took" in done.stdout
    summary = [line for line in done.stdout.splitlines() if line.startswith("phase times (s)")]
    assert len(summary) == 1 and ":" not in summary[0]
    assert re.search(r"First phase \d+\.\d; Second  phase \d+\.\d; total \d+\.\d$", summary[0])
    assert recap(done.stdout)["localhost"]["failed"] == 0
