"""Capability documents -> host profiles -> each scenario resolved against the right host.

The documents start from a real one the probe returned on this kind of machine
(tests/fixtures/capabilities/localhost.json, see its CAPTURE.md); each test changes
only the fields that tell its hosts apart.
"""

from __future__ import annotations

import copy
import json

import pytest

from kvmnetlab import campaign
from kvmnetlab.capabilities import (
    host_profile,
    parse_ethtool_features,
    scenario_capabilities,
)
from kvmnetlab.errors import ConfigError
from kvmnetlab.resolve import resolve_lab
from tests.helpers import REPO, TESTS

BASE = json.loads((TESTS / "fixtures" / "capabilities" / "localhost.json").read_text())
SEED = campaign.load_scenarios(REPO / "scenarios" / "seed.yml")
ENDPOINTS = {"bare_metal": {"sender": "bm1", "receiver": "bm2", "source_address": "198.18.0.1",
                            "target_address": "198.18.0.2"},
             "guest": {"sender": "bm1", "source_address": "198.18.1.1"}}


def doc(**changes) -> dict:
    """The real base document with dotted-path changes, e.g. ``{"pf_ring.loaded": True}``."""
    out = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = out
        *path, last = dotted.split("__")
        for key in path:
            node = node[key]
        node[last] = value
    return out


def kvm_host_doc(**changes) -> dict:
    """A KVM host: modules load, vhost-net present, QEMU with poll-us, halt polling."""
    return doc(**{"kernel__modules": True, "kernel__modules_reason": "",
                  "vhost_net__device": True, "vhost_net__module_loaded": True,
                  "qemu__poll_us": True, "qemu__poll_us_evidence": "NetdevTapOptions has poll-us",
                  "halt_poll_ns__writable": True, "halt_poll_ns__value": 200000, **changes})


PF_RING = {"pf_ring__loaded": True, "pf_ring__min_num_slots": 4096, "pf_ring__version": "8.8.0",
           "kernel__modules": True}


def lab(guests, hypervisor="kvm-a"):
    return {"endpoints": ENDPOINTS, "hypervisor": hypervisor, "guests": guests,
            "declared": {"legacy_vpf_ring": False, "passthrough": False,
                         "dedicated_io_core": False}}


def test_real_base_document_makes_a_profile():
    profile = host_profile("localhost", BASE)
    assert profile["kernel_release"] == BASE["kernel"]["release"]
    assert profile["modules"] is BASE["kernel"]["modules"]
    assert profile["vhost_net"] is BASE["vhost_net"]["device"]
    some_nic = next(iter(profile["nics"].values()))
    assert some_nic["driver"]
    assert "pf_ring.ko" in profile["pf_ring_reason"] or "modules" in profile["pf_ring_reason"]


def test_each_scenario_resolves_against_the_hypervisor_of_its_guest():
    """Two hypervisors with different documents: each guest scenario gets the one that
    runs its guest, and the bare-metal scenario its own two hosts."""
    hosts = {
        "bm1": host_profile("bm1", doc(**PF_RING)),
        "bm2": host_profile("bm2", doc(**PF_RING)),
        # kvm-a: vhost-net, but QEMU without poll-us and no halt polling
        "kvm-a": host_profile("kvm-a", kvm_host_doc(qemu__poll_us=False,
                                                    halt_poll_ns__writable=False),
                              {"guest_vm_accel": "kvm", "guest_vm_accel_reason": "booted",
                               "guest_vm_unavailable_reason": ""}),
        # kvm-b: everything ELVIS's upstream descendants need, and isolated cores
        "kvm-b": host_profile("kvm-b", kvm_host_doc(cpus__isolated="2-5"),
                              {"guest_vm_accel": "kvm", "guest_vm_accel_reason": "booted",
                               "guest_vm_unavailable_reason": ""}),
        "g-a": host_profile("g-a", doc(**PF_RING)),
        "g-b": host_profile("g-b", doc(**PF_RING)),
    }
    guests = [{"name": "g-a", "hypervisor": "kvm-a",
               "netdev": {"vhost": True, "queues": 1, "poll_us": None}},
              {"name": "g-b", "hypervisor": "kvm-b",
               "netdev": {"vhost": True, "queues": 4, "poll_us": 50}}]
    out = resolve_lab(SEED, hosts, lab(guests))

    assert out["baseline"]["resolved"]["hosts"] == {"sender": "bm1", "receiver": "bm2"}
    assert out["baseline"]["substitutions"] == []
    assert out["baseline"]["resolved"]["capture"] == "pf_ring"

    assert out["virtio"]["resolved"]["guest"] == "g-a"
    assert out["virtio"]["resolved"]["hosts"]["hypervisor"] == "kvm-a"
    assert out["virtio"]["substitutions"] == []

    elvis = out["virtio_elvis"]
    assert elvis["resolved"]["guest"] == "g-b"
    assert elvis["resolved"]["hosts"] == {"hypervisor": "kvm-b", "sender": "bm1",
                                          "receiver": "g-b"}
    assert elvis["substitutions"] == []
    assert elvis["resolved"]["netdev"] == {"vhost": True, "poll_us": 50, "halt_poll_ns": 200000,
                                           "io_thread_core": "dedicated"}


def test_the_same_scenario_on_the_weaker_hypervisor_names_it():
    hosts = {
        "bm1": host_profile("bm1", doc(**PF_RING)),
        "bm2": host_profile("bm2", doc()),
        "kvm-a": host_profile("kvm-a", kvm_host_doc(qemu__poll_us=False,
                                                    halt_poll_ns__writable=False),
                              {"guest_vm_accel": "kvm", "guest_vm_unavailable_reason": ""}),
        "g-a": host_profile("g-a", doc()),
    }
    guests = [{"name": "g-a", "hypervisor": "kvm-a",
               "netdev": {"vhost": True, "queues": 1, "poll_us": None}}]
    out = resolve_lab(SEED, hosts, lab(guests))
    subs = {s["knob"]: s for s in out["virtio_elvis"]["substitutions"]}
    assert subs["poll_us"]["effective"] is None and "poll-us" in subs["poll_us"]["reason"]
    assert "kvm-a" in subs["halt_poll_ns"]["reason"]
    assert "kvm-a" in subs["io_thread_core"]["reason"]
    # bm2 lacks PF_RING: the baseline says so, naming bm2 and not bm1
    base = {s["knob"]: s for s in out["baseline"]["substitutions"]}
    assert base["capture"]["effective"] == "af_packet"
    assert "bm2" in base["capture"]["reason"] and "bm1" not in base["capture"]["reason"]


def test_the_controller_is_not_the_hypervisor():
    """vhost-net on the controller (localhost) does not help a guest on kvm-a."""
    hosts = {"localhost": host_profile("localhost", kvm_host_doc()),
             "kvm-a": host_profile("kvm-a", doc(vhost_net__device=False),
                                   {"guest_vm_accel": "tcg", "guest_vm_accel_reason": "hung",
                                    "guest_vm_unavailable_reason": ""}),
             "g-a": host_profile("g-a", doc())}
    guests = [{"name": "g-a", "hypervisor": "kvm-a",
               "netdev": {"vhost": False, "queues": 1, "poll_us": None}}]
    out = resolve_lab(SEED, hosts, lab(guests, hypervisor="localhost"))
    subs = {s["knob"]: s for s in out["virtio"]["substitutions"]}
    assert subs["vhost"]["effective"] is False and "kvm-a" in subs["vhost"]["reason"]
    assert subs["virtualization"]["effective"] == "tcg"


def test_no_guest_running_says_why_on_which_hypervisor():
    hosts = {"bm1": host_profile("bm1", doc()), "bm2": host_profile("bm2", doc()),
             "kvm-a": host_profile("kvm-a", kvm_host_doc(),
                                   {"guest_vm_unavailable_reason": "image missing"})}
    out = resolve_lab(SEED, hosts, lab([]))
    assert out["virtio"]["status"] == "not_run"
    assert out["virtio"]["reason"] == "kvm-a: image missing"
    assert out["baseline"]["status"] == "run"
    hosts["kvm-a"] = host_profile("kvm-a", kvm_host_doc())  # guest_vm did not run at all
    out = resolve_lab(SEED, hosts, lab([]))
    assert "did not run" in out["virtio"]["reason"]


def test_a_host_that_did_not_answer_is_named():
    hosts = {"bm1": host_profile("bm1", doc(**PF_RING)),
             "bm2": host_profile("bm2", None, error="ssh: connect timed out")}
    caps = scenario_capabilities(False, hosts, lab([]))
    assert caps["pf_ring_bare_metal"] is False
    assert caps["pf_ring_reason"] == "bm2: no capability document (ssh: connect timed out)"


def test_running_guest_means_guests_with_no_contradictory_reason():
    hosts = {"kvm-a": host_profile("kvm-a", doc(), {"guest_vm_accel": "tcg",
                                                    "guest_vm_unavailable_reason": ""}),
             "g-a": host_profile("g-a", doc())}
    guest = {"name": "g-a", "hypervisor": "kvm-a", "netdev": {"vhost": False}}
    caps = scenario_capabilities(True, hosts, lab([guest]), guest)
    assert caps["guests"] is True and caps["guests_reason"] == ""


@pytest.mark.parametrize(("change", "field"), [
    ({"format_version": 2}, "capabilities.format_version"),
    ({"kernel": "6.1"}, "capabilities.kernel"),
    ({"nics": []}, "capabilities.nics"),
])
def test_malformed_document_names_host_and_field(change, field):
    bad = {**copy.deepcopy(BASE), **change}
    with pytest.raises(ConfigError) as err:
        host_profile("kvm-a", bad)
    assert err.value.field == field
    assert "kvm-a" in err.value.source


def test_ethtool_features_from_the_real_capture():
    nic = next(iter(BASE["nics"].values()))
    features = parse_ethtool_features(nic["ethtool_k"])
    lines = [line.strip() for line in nic["ethtool_k"].splitlines()[1:] if ":" in line]
    assert len(features) == len(lines)
    for line in lines:
        name, _, rest = line.partition(":")
        assert features[name] == rest.strip().startswith("on")


def test_missing_guest_profile_is_a_recorded_substitution():
    hosts = {"kvm-b": host_profile("kvm-b", kvm_host_doc(cpus__isolated="3"),
                                   {"guest_vm_accel": "kvm", "guest_vm_unavailable_reason": ""}),
             "g-v": host_profile("g-v", doc())}
    guests = [{"name": "g-v", "hypervisor": "kvm-b",
               "netdev": {"vhost": True, "queues": 1, "poll_us": None}}]
    out = resolve_lab(SEED, hosts, lab(guests))
    subs = {s["knob"]: s for s in out["virtio_elvis"]["substitutions"]}
    assert subs["guest"]["effective"] == "g-v"
    assert out["virtio_elvis"]["resolved"]["guest"] == "g-v"
    assert "guest" not in {s["knob"] for s in out["virtio"]["substitutions"]}
