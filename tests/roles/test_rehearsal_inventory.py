"""The rehearsal lab's inventory: inventory/lab.example pointed at the rehearsal machines.

Fast, plain Python over the filter kvmnetlab.lab.rehearsal_hosts (what playbooks/rehearsal.yml
writes as the rehearsed hosts.yml), and the rehearsal lab's own inventory as Ansible reads it.
The rehearsal itself runs in tests/lab/test_rehearsal_lab.py (opt-in: KVMNETLAB_REHEARSAL=1).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess

import pytest
import yaml

from tests.helpers import BIN, REPO, ansible_env

FILTERS = REPO / "collections/ansible_collections/kvmnetlab/lab/plugins/filter/rehearsal.py"
_spec = importlib.util.spec_from_file_location("rehearsal_filters", FILTERS)
rf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rf)

EXAMPLE = REPO / "inventory/lab.example/hosts.yml"
MACHINES = {"kvm-host": {"machine": "rehearsal-kvm"},
            "bm-sender": {"machine": "rehearsal-bm1", "data_interface": "data0"},
            "bm-receiver": {"machine": "rehearsal-bm2", "data_interface": "data0"}}


def rehearsal_guests() -> list[dict]:
    data = yaml.safe_load((REPO / "inventory/rehearsal/group_vars/all/rehearsal.yml").read_text())
    return data["guest_vm_guests"]


def rehearse(example: dict, machines=None, **kw) -> dict:
    kw.setdefault("groups_emptied", [])
    return rf.rehearsal_hosts(example, MACHINES if machines is None else machines,
                              rehearsal_guests(), source="lab.example/hosts.yml",
                              ssh_config="/srv/inv/ssh_config", **kw)


def test_every_example_host_gets_its_machine_address_and_data_nic_and_nothing_else_changes():
    example = yaml.safe_load(EXAMPLE.read_text())
    out = rehearse(example)
    hosts = out["all"]["children"]
    assert hosts["lab_hypervisor"]["hosts"]["kvm-host"] == {"ansible_host": "198.19.8.13"}
    assert hosts["bare_metal"]["hosts"]["bm-sender"] == {
        "ansible_host": "198.19.8.11", "kvmnetlab_data_interface": "data0"}
    assert hosts["bare_metal"]["hosts"]["bm-receiver"]["ansible_host"] == "198.19.8.12"
    # groups, and what they hold, are the example's
    assert hosts["kvm_host"] == example["all"]["children"]["kvm_host"]
    assert hosts["pf_ring"] == example["all"]["children"]["pf_ring"]
    assert out["all"]["vars"] == {"ansible_user": "labadmin",
                                  "ansible_ssh_common_args": "-F /srv/inv/ssh_config"}
    assert example["all"]["children"]["lab_hypervisor"]["hosts"]["kvm-host"]["ansible_host"] \
        == "192.0.2.10", "the example itself must not be modified"


def test_without_a_pf_ring_source_the_pf_ring_group_is_emptied():
    out = rehearse(yaml.safe_load(EXAMPLE.read_text()), groups_emptied=["pf_ring"])
    assert out["all"]["children"]["pf_ring"] == {"hosts": {}}
    assert "bare_metal" in out["all"]["children"]


@pytest.mark.parametrize("machines, message", [
    ({k: v for k, v in MACHINES.items() if k != "bm-receiver"},
     r"host 'bm-receiver' \(under all.children.bare_metal\) has no rehearsal machine"),
    ({**MACHINES, "bm-receiver": {"machine": "rehearsal-bm9", "data_interface": "data0"}},
     r"rehearsal_machines\[bm-receiver\].machine: 'rehearsal-bm9' is not a guest"),
    ({**MACHINES, "bm-sender": {"machine": "rehearsal-bm1"}},
     r"rehearsal_machines\[bm-sender\].data_interface: .* names kvmnetlab_data_interface"),
    ({**MACHINES, "spare": {"machine": "rehearsal-bm1"}}, r"rehearsal_machines: spare not in"),
])
def test_an_incomplete_mapping_is_refused_naming_the_host_and_the_field(machines, message):
    with pytest.raises(rf.AnsibleFilterError, match=message):
        rehearse(yaml.safe_load(EXAMPLE.read_text()), machines)


def test_a_documentation_address_left_anywhere_is_refused():
    example = yaml.safe_load(EXAMPLE.read_text())
    example["all"]["vars"]["some_jump_host"] = "192.0.2.99"
    with pytest.raises(rf.AnsibleFilterError, match=r"all.vars.some_jump_host is still the "
                                                     r"documentation address 192.0.2.99"):
        rehearse(example)


def test_the_rehearsal_lab_inventory_puts_each_machine_on_its_links():
    """bm1: the direct link (rhbr-bm) and the KVM host's link (rhbr-kvm); the KVM host's
    data0 is on rhbr-kvm without an address (its admin bridges it to its guests)."""
    done = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", "inventory/rehearsal", "--host", "localhost"],
        cwd=REPO, env=ansible_env(), capture_output=True, text=True, check=True)
    hostvars = json.loads(done.stdout)
    guests = {g["name"]: g for g in hostvars["guest_vm_guests"]}
    assert set(guests) == {"rehearsal-bm1", "rehearsal-bm2", "rehearsal-kvm"}
    assert guests["rehearsal-bm1"]["extra_nics"] == [{"bridge": "rhbr-kvm", "ip": "198.18.1.1"}]
    assert guests["rehearsal-kvm"]["data_ip"] is None
    assert guests["rehearsal-kvm"]["data_bridge"] == "rhbr-kvm"
    bridges = {b["name"] for b in hostvars["netns_lab_bridges"]}
    assert bridges == {"rhbr-mgmt", "rhbr-bm", "rhbr-kvm"}
    assert hostvars["guest_vm_data_bridge"] == "rhbr-bm"


def test_the_example_logs_in_as_the_admin_user_the_rehearsal_machines_make():
    """The rehearsal machines make guest_vm_admin_user (sudo, no root login): the example's
    ansible_user must be that user, and it stays as the example has it."""
    data = yaml.safe_load((REPO / "inventory/rehearsal/group_vars/all/rehearsal.yml").read_text())
    admin = data["guest_vm_admin_user"]
    assert admin != "root"
    out = rehearse(yaml.safe_load(EXAMPLE.read_text()), admin_user=admin)
    assert out["all"]["vars"]["ansible_user"] == admin
    example = yaml.safe_load(EXAMPLE.read_text())
    example["all"]["vars"]["ansible_user"] = "root"
    with pytest.raises(rf.AnsibleFilterError, match=r"all.vars.ansible_user is 'root', but the "
                                                     r"rehearsal machines' admin user is"):
        rehearse(example, admin_user=admin)
    example = yaml.safe_load(EXAMPLE.read_text())
    example["all"]["children"]["bare_metal"]["hosts"]["bm-sender"]["ansible_user"] = "root"
    with pytest.raises(rf.AnsibleFilterError, match=r"host 'bm-sender' logs in as 'root'"):
        rehearse(example, admin_user=admin)
