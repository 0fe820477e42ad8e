"""The real-lab example inventory parses, is complete, and an incomplete copy is refused.

Its hosts' addresses (192.0.2.0/24, the documentation range) are never contacted: the
inventory check runs on the controller before any other play, and the check-mode run of
the lab phase forces the local connection, so every task runs against this machine and
changes nothing.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, playbook, recap

EXAMPLE = REPO / "inventory" / "lab.example"
CHECK_TASK = "TASK [A real lab's inventory names everything the lab needs]"


def copy_example(tmp_path: Path) -> Path:
    inventory = tmp_path / "my-lab"
    shutil.copytree(EXAMPLE, inventory)
    return inventory


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def plays(output: str) -> list[str]:
    return re.findall(r"^PLAY \[(.*)\] \*+$", output, flags=re.MULTILINE)


def test_syntax_check():
    done = playbook("-i", "inventory/lab.example", "site.yml", "--syntax-check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_passes_the_inventory_check(tmp_path):
    inventory = copy_example(tmp_path)
    # the example's hosts (documentation addresses) do not exist: the last preflight play,
    # which reads each one's base folder and free space, is skipped by its tag
    done = playbook("-i", str(inventory), "playbooks/preflight.yml", "playbooks/finish.yml",
                    "--skip-tags", "run_dir_check",
                    "-e", f"kvmnetlab_lock_dir={tmp_path / 'lock'}", check=True)
    after = done.stdout[done.stdout.index(CHECK_TASK):]
    assert after.split("\n", 2)[1].startswith("ok: [localhost]"), after[:500]
    # no lab host is contacted: the hypervisor's capacity play (competing guests and
    # containers only) is skipped for the seed's scenarios
    hosts = recap(done.stdout)
    assert hosts["localhost"]["ok"] > 0
    for host, counts in hosts.items():
        if host != "localhost":
            assert counts["ok"] == counts["unreachable"] == counts["failed"] == 0, (host, counts)


def test_missing_required_variables_are_refused_before_any_host_is_contacted(tmp_path):
    inventory = copy_example(tmp_path)

    def drop_bridge(data):
        del data["guest_vm_data_bridge"]

    def drop_interface(data):
        del data["all"]["children"]["bare_metal"]["hosts"]["bm-sender"]["kvmnetlab_data_interface"]

    def drop_hypervisor(data):
        del data["campaign_hypervisor"]

    def drop_guest_address(data):
        del data["guest_vm_guests"][1]["data_ip"]

    edit(inventory / "group_vars" / "lab_hypervisor" / "guest_vm.yml", drop_bridge)
    edit(inventory / "hosts.yml", drop_interface)
    edit(inventory / "group_vars" / "all" / "lab.yml", drop_hypervisor)
    edit(inventory / "group_vars" / "all" / "guests.yml", drop_guest_address)

    done = playbook("-i", str(inventory), "site.yml",
                    "-e", f"kvmnetlab_lock_dir={tmp_path / 'lock'}")
    out = done.stdout
    assert done.returncode != 0, out[-3000:]
    # it stopped in the preflight play, at the inventory check, before any other play
    assert plays(out) == ["Preflight - validate the campaign and lock the lab"], out[-3000:]
    assert CHECK_TASK in out and "fatal: [localhost]" in out
    for line in (
        f"{inventory}: host kvm-host (group lab_hypervisor): guest_vm_data_bridge is missing",
        f"{inventory}: host bm-sender (group bare_metal): kvmnetlab_data_interface is missing",
        f"{inventory}: group all: campaign_hypervisor is missing",
        f"{inventory}: host kvm-host (group lab_hypervisor): guest_vm_guests[1] (kvmnl-g2)"
        ".data_ip is missing",
    ):
        assert line in out, f"{line!r} not in:\n{out[-4000:]}"
    # bm-receiver's interface was kept: only what was removed is named
    assert "host bm-receiver" not in out
    counts = recap(out)
    assert set(counts) == {"localhost"}, counts
    assert all(c["changed"] == 0 for c in counts.values()), counts
    assert not (tmp_path / "lock").exists()  # refused before the lab lock was taken


@pytest.mark.lab
def test_lab_phase_in_check_mode_changes_nothing(root_only, tmp_path):
    done = playbook("-i", "inventory/lab.example", "site.yml", "--tags", "lab", "--check",
                    "--limit", "lab_hypervisor,localhost",
                    extra={"ansible_connection": "local",
                           "ansible_python_interpreter": sys.executable,
                           "kvmnetlab_lock_dir": str(tmp_path / "lock")}, check=True)
    counts = recap(done.stdout)
    assert set(counts) == {"kvm-host", "localhost"}
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values())
    assert counts["kvm-host"]["ok"] > 0
