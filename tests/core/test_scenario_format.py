"""The scenario file's format keeps its word: a file valid under its format_version stays
valid, and a change that would refuse it bumps the version, names itself, and upgrades."""

from pathlib import Path

import pytest
import yaml

from collectors import base
from kvmnetlab import campaign
from kvmnetlab.errors import ConfigError
from kvmnetlab.resolve import resolve
from kvmnetlab.store import Store

REPO = Path(__file__).resolve().parents[2]
# scenarios/seed.yml as it was before the scenario knobs (commit e488356): format_version 1,
# no knob_defaults, no knobs.
BEFORE_KNOBS = """\
format_version: 1
scenarios:
  baseline:
    number: 1
    title: Bare metal
    virtualization: none
    io_path: none
    capture: pf_ring
    policy: substitute
  virtio_elvis:
    number: 3
    title: virtio + ELVIS
    virtualization: kvm
    io_path: elvis
    elvis_mode: upstream
    capture: pf_ring
    policy: substitute
"""
REAL = {"guests": True, "accel": "kvm", "vhost_net": True, "pf_ring_guest": True,
        "pf_ring_bare_metal": True, "halt_poll_ns": True, "halt_poll_ns_value": 200000,
        "dedicated_io_core": True}


def _file(tmp_path, text):
    path = tmp_path / "scenarios.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_without_knob_defaults_takes_the_projects(tmp_path):
    scenarios = campaign.load_scenarios(_file(tmp_path, BEFORE_KNOBS))
    expected = {"poll_us": 50, "halt_poll_ns": 200000, "io_thread_core": "dedicated",
                "queues": None}
    assert campaign.project_knob_defaults() == expected
    assert {name: s["knobs"] for name, s in scenarios.items()} == {
        "baseline": expected, "virtio_elvis": expected}


def test_the_project_defaults_are_the_seed_files():
    """One set of defaults: the seed file states the project's, so the two cannot drift."""
    seed = yaml.safe_load((REPO / "scenarios" / "seed.yml").read_text(encoding="utf-8"))
    assert seed["knob_defaults"] == campaign.project_knob_defaults()


def test_the_defaults_are_recorded_in_the_manifest_and_resolved(tmp_path):
    scenarios = campaign.load_scenarios(_file(tmp_path, BEFORE_KNOBS))
    store = Store(tmp_path / "campaign")
    store.create("c1", {"repetitions": 1}, scenarios, [], {"name": "local"}, {})
    recorded = store.load()["scenarios"]
    assert recorded["virtio_elvis"]["knobs"]["poll_us"] == 50
    assert recorded["virtio_elvis"]["knobs"] == campaign.project_knob_defaults()
    out = resolve(recorded["virtio_elvis"], REAL)
    assert out["substitutions"] == []
    assert out["resolved"]["netdev"] == {"vhost": True, "poll_us": 50, "halt_poll_ns": 200000,
                                         "io_thread_core": "dedicated"}


def test_a_scenarios_own_knob_still_wins_over_the_projects_defaults(tmp_path):
    text = BEFORE_KNOBS + "    knobs:\n      poll_us: 10\n"
    scenarios = campaign.load_scenarios(_file(tmp_path, text))
    assert scenarios["virtio_elvis"]["knobs"] == {**campaign.project_knob_defaults(),
                                                  "poll_us": 10}
    assert scenarios["baseline"]["knobs"]["poll_us"] == 50


def test_a_newer_version_is_refused_naming_what_each_version_means(tmp_path):
    path = _file(tmp_path, BEFORE_KNOBS.replace("format_version: 1", "format_version: 2"))
    with pytest.raises(ConfigError) as err:
        campaign.load_scenarios(path)
    assert err.value.field == "format_version"
    assert "must be 1 to 1" in err.value.reason
    assert "knob_defaults optional" in err.value.reason
    assert err.value.reason.endswith("got 2")


def test_a_change_that_refuses_old_files_comes_with_its_upgrade(tmp_path, monkeypatch):
    """The path a breaking change takes: version 2 renames a field, and a version-1 file
    is upgraded on load (and refused, naming the change, when no upgrade is there)."""
    def rename_title(document):
        return {**document, "scenarios": {
            name: {**{k: v for k, v in s.items() if k != "title"}, "label": s["title"]}
            for name, s in document["scenarios"].items()}}

    monkeypatch.setattr(campaign, "SCENARIO_FORMAT_VERSION", 2)
    monkeypatch.setitem(campaign.SCENARIO_FORMAT_CHANGES, 2, "title is named label")
    path = _file(tmp_path, BEFORE_KNOBS)
    with pytest.raises(ConfigError) as err:
        campaign.upgrade_scenarios(yaml.safe_load(path.read_text()), str(path))
    assert err.value.field == "format_version"
    assert err.value.reason == ("1 has no upgrade to 2 (title is named label); "
                                "rewrite the file")
    monkeypatch.setitem(campaign.SCENARIO_UPGRADES, 1, rename_title)
    upgraded = campaign.upgrade_scenarios(yaml.safe_load(path.read_text()), str(path))
    assert upgraded["format_version"] == 2
    assert upgraded["scenarios"]["baseline"]["label"] == "Bare metal"
    assert "title" not in upgraded["scenarios"]["baseline"]


def test_unknown_collectors_are_refused_against_the_registry_the_caller_passes(tmp_path):
    text = BEFORE_KNOBS + "    collectors: [ping, telepathy]\n"
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        campaign.load_scenarios(path, known_collectors=base.known())
    assert err.value.field == "scenarios.virtio_elvis.collectors"
    assert "unknown collector 'telepathy'" in err.value.reason
    assert "ping" in base.known() and "throughput" in base.known()
    good = campaign.load_scenarios(_file(tmp_path, BEFORE_KNOBS + "    collectors: [ping]\n"),
                                   known_collectors=base.known())
    assert good["virtio_elvis"]["collectors"] == ["ping"]
