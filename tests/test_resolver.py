"""The scenario resolver maps requested knobs to what a lab honours, recording each change."""

from pathlib import Path

import pytest

from collectors import campaign
from collectors.scenarios import ScenarioFailed, resolve, resolve_all

SEED = campaign.load_scenarios(Path(__file__).resolve().parents[1] / "scenarios" / "seed.yml")
EMBEDDED = {"guests": True, "accel": "tcg", "accel_reason": "KVM probe timed out",
            "vhost_net": False, "pf_ring_guest": False, "pf_ring_bare_metal": False,
            "pf_ring_reason": "host kernel cannot load modules"}
REAL = {"guests": True, "accel": "kvm", "vhost_net": True, "pf_ring_guest": True,
        "pf_ring_bare_metal": True, "halt_poll_ns": True, "dedicated_io_core": True}


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


def test_each_scenario_gets_the_guest_with_its_netdev():
    guests = [{"name": "g-virtio", "netdev": {"vhost": True, "poll_us": None}},
              {"name": "g-elvis", "netdev": {"vhost": True, "poll_us": 50}}]
    real = resolve_all(SEED, REAL, guests)
    assert real["virtio"]["resolved"]["guest"] == "g-virtio"
    assert real["virtio_vpfring"]["resolved"]["guest"] == "g-virtio"
    assert real["virtio_elvis"]["resolved"]["guest"] == "g-elvis"
    assert "guest" not in real["baseline"]["resolved"]
    assert all(s["knob"] != "guest" for o in real.values() for s in o["substitutions"])


def test_embedded_lab_serves_every_virtio_scenario_from_its_one_guest():
    guests = [{"name": "kvmnl-g1", "netdev": {"vhost": False, "poll_us": None}}]
    embedded = resolve_all(SEED, EMBEDDED, guests)
    assert {o["resolved"].get("guest") for o in embedded.values()} == {None, "kvmnl-g1"}
    assert all(s["knob"] != "guest" for o in embedded.values() for s in o["substitutions"])


def test_missing_guest_profile_is_a_recorded_substitution():
    guests = [{"name": "g-virtio", "netdev": {"vhost": True, "poll_us": None}}]
    real = resolve_all(SEED, REAL, guests)
    subs = {s["knob"]: s for s in real["virtio_elvis"]["substitutions"]}
    assert subs["guest"]["effective"] == "g-virtio"
    assert real["virtio_elvis"]["resolved"]["guest"] == "g-virtio"


def test_no_running_guest_means_not_run():
    out = resolve_all(SEED, EMBEDDED, [])
    assert out["virtio"]["status"] == "not_run"
    assert out["baseline"]["status"] == "run"
