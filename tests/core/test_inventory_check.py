"""kvmnetlab.inventory_check: what a real lab's inventory must name (pure Python, fast).

The data mirrors inventory/lab.example as the action plugin reads it: groups, the
variables of each KVM and bare-metal host (unset ones absent), the controller's
campaign variables. tests/roles/test_lab_example.py runs the same check through ansible-playbook.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from kvmnetlab.inventory_check import MGMT_PREFIX, check_real_lab, inventory_label, plain
from tests.helpers import REPO

SRC = "inventory/lab.example"
GROUPS = {
    "all": ["kvm-host", "bm-sender", "bm-receiver"],
    "lab_hypervisor": ["kvm-host"],
    "bare_metal": ["bm-sender", "bm-receiver"],
    "guests": [],
}
GUESTS = [
    {"name": "kvmnl-g1", "index": 1, "data_ip": "198.18.1.11", "mgmt_ip": "198.19.0.11",
     "netdev": {"vhost": True, "queues": 1, "poll_us": None}},
    {"name": "kvmnl-g2", "index": 2, "data_ip": "198.18.1.12", "mgmt_ip": "198.19.0.12"},
]
HOSTVARS = {
    "kvm-host": {"ansible_host": "192.0.2.10", "guest_vm_data_bridge": "br-data",
                 "guest_vm_mgmt_bridge": "br-mgmt", "guest_vm_guests": GUESTS,
                 "guest_vm_netns": "", "guest_vm_mgmt_access": "jump"},
    "bm-sender": {"ansible_host": "192.0.2.11", "kvmnetlab_data_interface": "enp1s0f0"},
    "bm-receiver": {"ansible_host": "192.0.2.12", "kvmnetlab_data_interface": "enp1s0f0"},
}
LAB = {
    "campaign_hypervisor": "kvm-host",
    "campaign_endpoints": {
        "bare_metal": {"sender": "bm-sender", "source_address": "198.18.0.1",
                       "receiver": "bm-receiver", "target_address": "198.18.0.2"},
        "guest": {"sender": "bm-sender", "source_address": "198.18.1.1"},
    },
}


def check(hostvars=None, lab=None, groups=None) -> list[str]:
    return check_real_lab(SRC, groups or GROUPS, hostvars or HOSTVARS, LAB if lab is None else lab)


def without(data: dict, *path: str) -> dict:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return data


def test_the_example_is_complete():
    assert check() == []


@pytest.mark.parametrize(("host", "group", "variable"), [
    ("kvm-host", "lab_hypervisor", "ansible_host"),
    ("kvm-host", "lab_hypervisor", "guest_vm_data_bridge"),
    ("kvm-host", "lab_hypervisor", "guest_vm_mgmt_bridge"),
    ("kvm-host", "lab_hypervisor", "guest_vm_guests"),
    ("bm-sender", "bare_metal", "ansible_host"),
    ("bm-receiver", "bare_metal", "kvmnetlab_data_interface"),
])
def test_a_missing_host_variable_is_named_with_its_host_and_group(host, group, variable):
    problems = check(hostvars=without(HOSTVARS, host, variable))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{SRC}: host {host} (group {group}): {variable} is missing")


def test_an_empty_string_counts_as_missing():
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars["kvm-host"]["guest_vm_data_bridge"] = "  "
    assert check(hostvars=hostvars) == [
        f"{SRC}: host kvm-host (group lab_hypervisor): guest_vm_data_bridge is missing: "
        "the bridge on this host the guests' data NICs join"]


def test_every_problem_is_reported_at_once():
    hostvars = without(HOSTVARS, "kvm-host", "guest_vm_data_bridge")
    hostvars = without(hostvars, "bm-sender", "kvmnetlab_data_interface")
    problems = check(hostvars=hostvars, lab=without(LAB, "campaign_hypervisor"))
    assert [p.split(": ")[1:3] for p in problems] == [
        ["host kvm-host (group lab_hypervisor)", "guest_vm_data_bridge is missing"],
        ["host bm-sender (group bare_metal)", "kvmnetlab_data_interface is missing"],
        ["group all", "campaign_hypervisor is missing"],
    ]


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("name", None, "guest_vm_guests[1] (kvmnl-g2).name is missing"),
    ("index", 0, "guest_vm_guests[1] (kvmnl-g2).index must be an integer from 1 to 99, got 0"),
    ("index", True, "guest_vm_guests[1] (kvmnl-g2).index must be an integer from 1 to 99"),
    ("data_ip", "10.0.0.5", "guest_vm_guests[1] (kvmnl-g2).data_ip 10.0.0.5 is outside the lab "
                            "range 198.18.0.0/15"),
    ("data_ip", "198.18.1.12/24", "guest_vm_guests[1] (kvmnl-g2).data_ip '198.18.1.12/24' is "
                                  "not an IP address"),
    ("mgmt_ip", "not-an-ip", "guest_vm_guests[1] (kvmnl-g2).mgmt_ip 'not-an-ip' is not an IP"),
    ("mgmt_ip", "198.19.0.11", "guest_vm_guests[1] (kvmnl-g2).mgmt_ip '198.19.0.11' is also used "
                               "by guest_vm_guests[0]"),
    ("index", 1, "guest_vm_guests[1] (kvmnl-g2).index 1 is also used by guest_vm_guests[0]"),
])
def test_a_malformed_guest_entry_is_named_with_its_field(key, value, expected):
    hostvars = copy.deepcopy(HOSTVARS)
    if value is None:
        del hostvars["kvm-host"]["guest_vm_guests"][1][key]
        expected = expected.replace("guest_vm_guests[1] (kvmnl-g2)", "guest_vm_guests[1]") \
            if key == "name" else expected
    else:
        hostvars["kvm-host"]["guest_vm_guests"][1][key] = value
    problems = check(hostvars=hostvars)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{SRC}: host kvm-host (group lab_hypervisor): {expected}"), \
        problems[0]


@pytest.mark.parametrize("name", [
    "kvmnl-g2\nbm-sender",  # a newline: two lines in an inventory or a log
    "kvmnl-g2\n",  # a trailing newline, which a regex's $ would let through
    "kvmnl-g2,bm-sender",  # a comma: two hosts in --limit
    "kvmnl g2",
    "kvmnl_g2",
    "kvmnl-g2;reboot",
    "-kvmnl-g2",
    "kvmnl-g²",
    "g" * 64,
])
def test_a_guest_name_holds_only_letters_digits_and_dashes(name):
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars["kvm-host"]["guest_vm_guests"][1]["name"] = name
    (problem,) = check(hostvars=hostvars)
    # the label does not repeat the bad name: the message stays one line
    assert problem == (f"{SRC}: host kvm-host (group lab_hypervisor): guest_vm_guests[1].name "
                       f"{name!r} may hold only letters, digits and '-' (a host name: at most "
                       "63 characters, not starting or ending with '-')")
    assert "\n" not in problem


@pytest.mark.parametrize("name", ["kvmnl-g2", "G2", "a", "rh-guest-10", "g" * 63])
def test_a_guest_name_of_letters_digits_and_dashes_is_accepted(name):
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars["kvm-host"]["guest_vm_guests"][1]["name"] = name
    assert check(hostvars=hostvars) == []


@pytest.mark.parametrize(("mgmt_ip", "expected"), [
    ("198.19.1.12", "198.19.1.12 is outside the management subnet 198.19.0.0/24 "
                    "(guest_vm_guests[0] (kvmnl-g1).mgmt_ip with guest_vm_mgmt_prefix 24)"),
    ("10.0.0.12", "10.0.0.12 is outside the management subnet 198.19.0.0/24"),
    ("198.19.0.255", "198.19.0.255 is not a host address of the management subnet "
                     "198.19.0.0/24"),
    ("198.19.0.0", "198.19.0.0 is not a host address"),
    ("fd00::12", "fd00::12 is outside the management subnet 198.19.0.0/24"),
])
def test_a_management_address_outside_the_subnet_is_named(mgmt_ip, expected):
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars["kvm-host"]["guest_vm_guests"][1]["mgmt_ip"] = mgmt_ip
    (problem,) = check(hostvars=hostvars)
    assert problem.startswith(f"{SRC}: host kvm-host (group lab_hypervisor): "
                              f"guest_vm_guests[1] (kvmnl-g2).mgmt_ip {expected}"), problem


def test_the_management_subnet_follows_guest_vm_mgmt_prefix():
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars["kvm-host"]["guest_vm_guests"][1]["mgmt_ip"] = "198.19.1.12"
    hostvars["kvm-host"]["guest_vm_mgmt_prefix"] = 16
    assert check(hostvars=hostvars) == []
    hostvars["kvm-host"]["guest_vm_mgmt_prefix"] = 25
    hostvars["kvm-host"]["guest_vm_guests"][1]["mgmt_ip"] = "198.19.0.130"
    (problem,) = check(hostvars=hostvars)
    assert "198.19.0.130 is outside the management subnet 198.19.0.0/25" in problem
    hostvars["kvm-host"]["guest_vm_mgmt_prefix"] = "twenty"
    (problem,) = check(hostvars=hostvars)
    assert problem == (f"{SRC}: host kvm-host (group lab_hypervisor): guest_vm_mgmt_prefix "
                       "must be a prefix length from 8 to 30 (bits), got 'twenty'")


def test_the_default_management_prefix_is_the_role_s():
    defaults = yaml.safe_load((REPO / "roles/guest_vm/defaults/main.yml").read_text())
    assert defaults["guest_vm_mgmt_prefix"] == MGMT_PREFIX


def test_the_example_inventories_guests_pass():
    """The guests of the example and embedded labs (names and addresses) pass as they are."""
    paths = sorted(REPO.glob("inventory/*/group_vars/all/guests.yml"))
    assert len(paths) >= 2
    for path in paths:
        guests = yaml.safe_load(path.read_text())["guest_vm_guests"]
        hostvars = copy.deepcopy(HOSTVARS)
        hostvars["kvm-host"]["guest_vm_guests"] = guests
        assert check(hostvars=hostvars) == [], path


def test_guest_names_are_unique_across_the_inventory():
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars["kvm-host"]["guest_vm_guests"][1]["name"] = "bm-receiver"
    (problem,) = check(hostvars=hostvars)
    assert "'bm-receiver' is already a host of this inventory" in problem
    groups = {**GROUPS, "lab_hypervisor": ["kvm-host", "kvm-host2"],
              "all": [*GROUPS["all"], "kvm-host2"]}
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars["kvm-host2"] = copy.deepcopy(HOSTVARS["kvm-host"])
    problems = check(hostvars=hostvars, groups=groups)
    assert any("host kvm-host2 (group lab_hypervisor): guest_vm_guests (kvmnl-g1).name "
               "'kvmnl-g1' is also a guest of kvm-host" in p for p in problems), problems


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("guest_vm_netns", "kvmnl-hv", "guest_vm_netns must be empty on a real lab"),
    ("guest_vm_mgmt_access", "netns", "guest_vm_mgmt_access must be jump on a real lab"),
    ("guest_vm_data_bridge", "br-data-with-a-long-name", "guest_vm_data_bridge "
                                                         "'br-data-with-a-long-name' is longer"),
    ("guest_vm_mgmt_bridge", "br-data", "guest_vm_mgmt_bridge is the data bridge too"),
    ("guest_vm_guests", {"name": "g"}, "guest_vm_guests must be a list of guests, got dict"),
])
def test_hypervisor_settings_of_the_embedded_lab_are_refused(variable, value, expected):
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars["kvm-host"][variable] = value
    (problem,) = check(hostvars=hostvars)
    assert problem.startswith(f"{SRC}: host kvm-host (group lab_hypervisor): {expected}"), problem


def test_a_bare_metal_interface_must_be_an_interface_name():
    hostvars = copy.deepcopy(HOSTVARS)
    hostvars["bm-sender"]["kvmnetlab_data_interface"] = ["enp1s0f0"]
    (problem,) = check(hostvars=hostvars)
    assert problem.startswith(f"{SRC}: host bm-sender (group bare_metal): "
                              "kvmnetlab_data_interface must be an interface name, got list")


def test_campaign_hypervisor_must_be_a_kvm_host():
    (problem,) = check(lab={**LAB, "campaign_hypervisor": "bm-sender"})
    assert problem == (f"{SRC}: group all: campaign_hypervisor names 'bm-sender', which is not "
                       "a host of group lab_hypervisor (its hosts: kvm-host)")


def test_an_empty_hypervisor_group_is_refused():
    groups = {**GROUPS, "lab_hypervisor": []}
    problems = check(groups=groups)
    assert f"{SRC}: group lab_hypervisor: hosts is empty: a real lab needs at least one KVM host" \
        in problems
    assert any("campaign_hypervisor names 'kvm-host'" in p for p in problems)


@pytest.mark.parametrize(("path", "value", "expected"), [
    (("bare_metal", "sender"), "bm-nowhere",
     "campaign_endpoints.bare_metal.sender names 'bm-nowhere', which is not a host"),
    (("bare_metal", "receiver"), None, "campaign_endpoints.bare_metal.receiver is missing"),
    (("bare_metal", "target_address"), "192.0.2.12",
     "campaign_endpoints.bare_metal.target_address 192.0.2.12 is outside the lab range"),
    (("guest", "source_address"), "198.20.0.1",
     "campaign_endpoints.guest.source_address 198.20.0.1 is outside the lab range"),
    (("guest",), None, "campaign_endpoints.guest is missing"),
])
def test_campaign_endpoints_name_inventory_hosts_and_lab_addresses(path, value, expected):
    lab = copy.deepcopy(LAB)
    node = lab["campaign_endpoints"]
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    (problem,) = check(lab=lab)
    assert problem.startswith(f"{SRC}: group all: {expected}"), problem


def test_a_guest_may_send_to_the_guests():
    lab = copy.deepcopy(LAB)
    lab["campaign_endpoints"]["guest"]["sender"] = "kvmnl-g2"
    assert check(lab=lab) == []


def test_missing_campaign_endpoints_is_named():
    (problem,) = check(lab=without(LAB, "campaign_endpoints"))
    assert problem.startswith(f"{SRC}: group all: campaign_endpoints is missing")


def test_inventory_label_is_relative_to_the_checkout_when_inside_it():
    assert inventory_label(["/repo/inventory/lab.example/"], "/repo") == "inventory/lab.example"
    assert inventory_label(["/tmp/lab"], "/repo") == "/tmp/lab"
    assert inventory_label("/tmp/a") == "/tmp/a"


def test_plain_copies_mappings_and_sequences():
    class Tagged(str):
        pass

    data = plain({"a": (1, Tagged("x")), "b": {"c": None, "d": True}})
    assert data == {"a": [1, "x"], "b": {"c": None, "d": True}}
    assert type(data["a"][1]) is str
