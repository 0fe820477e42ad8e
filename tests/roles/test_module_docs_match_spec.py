"""The modules this change touched document exactly the options they accept: the argument
spec each passes to AnsibleModule equals the one read from its DOCUMENTATION (as the
collection's action plugins already guarantee through plugin_utils/argspec.py). Fast."""

from __future__ import annotations

import pytest
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.argspec import spec_from_doc

from tests.helpers import collection_module

MODULES = ["kvm_host_record", "nic_irq_affinity", "lab_capacity_info", "guest_ssh_wait",
           "kernel_cmdline_info", "cpuidle_limit"]


class Stop(Exception):
    """Raised by the stand-in AnsibleModule once it holds the argument spec."""


def accepted_spec(name: str, monkeypatch) -> dict:
    module = collection_module(name)
    seen = {}

    def stand_in(argument_spec, **_kwargs):
        seen.update(argument_spec)
        raise Stop

    monkeypatch.setattr(module, "AnsibleModule", stand_in)
    with pytest.raises(Stop):
        module.main()
    return seen


@pytest.mark.parametrize("name", MODULES)
def test_documented_options_are_the_argument_spec(name, monkeypatch):
    documented = spec_from_doc(collection_module(name).DOCUMENTATION)
    assert accepted_spec(name, monkeypatch) == documented


def test_a_drifted_option_is_seen(monkeypatch):
    module = collection_module("lab_capacity_info")
    drifted = module.DOCUMENTATION.replace("type: path", "type: str")
    assert spec_from_doc(drifted) != accepted_spec("lab_capacity_info", monkeypatch)
