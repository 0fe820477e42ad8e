"""The scenario resolver maps requested knobs to what a lab honours, recording each change."""


import pytest

from kvmnetlab import campaign
from kvmnetlab.resolve import ScenarioFailed, resolve
from tests.helpers import REPO

SEED = campaign.load_scenarios(REPO / "scenarios" / "seed.yml")
EMBEDDED = {"guests": True, "accel": "tcg", "accel_reason": "KVM probe timed out",
            "vhost_net": False, "pf_ring_guest": False, "pf_ring_bare_metal": False,
            "pf_ring_reason": "host kernel cannot load modules"}
REAL = {"guests": True, "accel": "kvm", "vhost_net": True, "pf_ring_guest": True,
        "pf_ring_bare_metal": True, "halt_poll_ns": True, "halt_poll_ns_value": 200000,
        "dedicated_io_core": True}


def knobs(outcome):
    return {s["knob"]: (s["requested"], s["effective"]) for s in outcome["substitutions"]}


def test_embedded_lab_substitutes_everything_it_cannot_honour():
    out = resolve(SEED["virtio_elvis_vpfring"], EMBEDDED)
    assert out["status"] == "run"
    assert out["resolved"]["virtualization"] == "tcg"
    assert out["resolved"]["io_path"] == "virtio_user"
    assert out["resolved"]["capture"] == "af_packet"
    got = knobs(out)
    assert got["virtualization"] == ("kvm", "tcg")
    assert got["vhost"] == (True, False)
    assert got["poll_us"] == (50, None)
    assert got["capture"] == ("vpf_ring", "af_packet")
    assert all(s["reason"] for s in out["substitutions"])
    assert "KVM probe timed out" in next(
        s["reason"] for s in out["substitutions"] if s["knob"] == "virtualization")


def test_real_lab_honours_elvis_upstream_and_pf_ring():
    out = resolve(SEED["virtio_elvis"], REAL)
    assert out["substitutions"] == []
    assert out["resolved"]["netdev"] == {"vhost": True, "poll_us": 50, "halt_poll_ns": 200000,
                                         "io_thread_core": "dedicated"}
    assert out["resolved"]["capture"] == "pf_ring"


def test_vpf_ring_is_end_of_life_without_a_declared_legacy_stack():
    out = resolve(SEED["virtio_vpfring"], REAL)
    assert knobs(out) == {"capture": ("vpf_ring", "pf_ring")}
    declared = resolve(SEED["virtio_vpfring"], {**REAL, "legacy_vpf_ring": True})
    assert declared["substitutions"] == []


def test_baseline_needs_no_guest():
    out = resolve(SEED["baseline"], {"guests": False})
    assert out["status"] == "run"
    assert out["resolved"]["virtualization"] == "none"


def test_guest_scenarios_are_not_run_without_guests_with_the_reason():
    out = resolve(SEED["virtio"], {"guests": False, "guests_reason": "QEMU missing"})
    assert out["status"] == "not_run"
    assert out["reason"] == "QEMU missing"


def test_policy_skip_and_fail():
    skip = {**SEED["virtio"], "policy": "skip"}
    assert resolve(skip, EMBEDDED)["status"] == "skipped"
    assert resolve(skip, REAL)["status"] == "run"
    fail = {**SEED["virtio"], "policy": "fail"}
    with pytest.raises(ScenarioFailed, match="virtio"):
        resolve(fail, EMBEDDED)


def test_knob_values_come_from_the_scenario_data():
    faster = {**SEED["virtio_elvis"], "knobs": {**SEED["virtio_elvis"]["knobs"], "poll_us": 120}}
    out = resolve(faster, REAL)
    assert out["resolved"]["netdev"]["poll_us"] == 120
    assert SEED["virtio_elvis"]["knobs"]["poll_us"] == 50  # scenarios/seed.yml knob_defaults


def test_halt_poll_ns_the_host_does_not_hold_is_a_substitution():
    out = resolve(SEED["virtio_elvis"], {**REAL, "halt_poll_ns_value": 0, "hypervisor": "kvm-a"})
    sub = {s["knob"]: s for s in out["substitutions"]}["halt_poll_ns"]
    assert (sub["requested"], sub["effective"]) == (200000, 0)
    assert "kvm-a" in sub["reason"]
    assert out["resolved"]["netdev"]["halt_poll_ns"] == 0
