"""The real-lab example inventory parses, and its lab phase runs in check mode here.

Its hosts' addresses are never contacted: the check-mode run forces the local
connection, so every task runs against this machine and changes nothing.
"""

import sys

import pytest

from tests.conftest import playbook, recap


def test_syntax_check():
    done = playbook("-i", "inventory/lab.example", "site.yml", "--syntax-check")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.lab
def test_lab_phase_in_check_mode_changes_nothing(root_only):
    done = playbook("-i", "inventory/lab.example", "site.yml", "--tags", "lab", "--check",
                    "--limit", "lab_hypervisor,localhost",
                    extra={"ansible_connection": "local",
                           "ansible_python_interpreter": sys.executable}, check=True)
    counts = recap(done.stdout)
    assert set(counts) == {"kvm-host", "localhost"}
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values())
    assert counts["kvm-host"]["ok"] > 0
