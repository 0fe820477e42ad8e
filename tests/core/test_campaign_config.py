"""Campaign parameters and scenario files: validation names the file and the field."""


import pytest
import yaml

from collectors import base
from kvmnetlab import campaign
from kvmnetlab.errors import ConfigError, StoreError
from tests.helpers import REPO

SEED = REPO / "scenarios" / "seed.yml"
GOOD = {"repetitions": 3, "ping_count": 100, "ping_interval_s": 0.01, "ping_payload_bytes": 56,
        "rate_pps": 10000, "rate_frames": 20000, "rate_frame_bytes": 60, "seed": 7,
        "scenarios": []}


def test_seed_scenarios_load_in_study_order():
    scenarios = campaign.load_scenarios(SEED)
    assert [s["number"] for s in scenarios.values()] == [1, 2, 3, 4, 5]
    assert scenarios["baseline"]["virtualization"] == "none"
    assert scenarios["virtio_elvis_vpfring"]["capture"] == "vpf_ring"


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("ping_count", -5, "kvmnetlab_ping_count"),
        ("ping_count", "ten", "kvmnetlab_ping_count"),
        ("repetitions", 0, "kvmnetlab_repetitions"),
        ("ping_interval_s", 0, "kvmnetlab_ping_interval_s"),
        ("ping_payload_bytes", 8, "kvmnetlab_ping_payload_bytes"),
        ("seed", -1, "kvmnetlab_seed"),
        ("rate_pps", 0, "kvmnetlab_rate_pps"),
        ("rate_frame_bytes", 59, "kvmnetlab_rate_frame_bytes"),
        ("rate_frames", None, "kvmnetlab_rate_frames"),
        ("scenarios", ["baseline", "warp_drive"], "kvmnetlab_scenarios"),
        ("search", "maybe", "kvmnetlab_search"),
        ("search_granularity", 0, "kvmnetlab_search_granularity"),
        ("search_pdr_ratio", "half", "kvmnetlab_search_pdr_ratio"),
        ("search_min_pps", 10**9, "kvmnetlab_search_min_pps"),
        ("search_max_trials", 1.5, "kvmnetlab_search_max_trials"),
        ("search_repetitions", -1, "kvmnetlab_search_repetitions"),
        ("search_repetitions", "first", "kvmnetlab_search_repetitions"),
        ("search_load_fractions", [0.5, 2], "kvmnetlab_search_load_fractions[1]"),
        ("search_load_fractions", 0.5, "kvmnetlab_search_load_fractions"),
    ],
)
def test_bad_parameter_names_its_field(key, value, field):
    with pytest.raises(ConfigError) as err:
        campaign.validate_parameters({**GOOD, key: value}, ["baseline", "virtio"])
    assert err.value.field == field
    assert field in str(err.value)


def test_strings_from_the_command_line_are_accepted():
    params = campaign.validate_parameters(
        {**GOOD, "ping_count": "20", "scenarios": "baseline,virtio"}, ["baseline", "virtio"])
    assert params.ping_count == 20
    assert params.scenarios == ("baseline", "virtio")


def test_the_throughput_search_is_on_by_default_and_its_settings_are_recorded():
    params = campaign.validate_parameters(GOOD, ["baseline"]).as_dict()
    assert params["search"] is True
    assert (params["search_pdr_ratio"], params["search_load_fractions"]) == (0.005,
                                                                             [0.1, 0.5, 0.9])
    off = campaign.validate_parameters({**GOOD, "search": "false", "search_min_pps": "50",
                                        "search_load_fractions": "[0.2, 0.8]"}, ["baseline"])
    assert off.search is None and off.as_dict()["search"] is False
    on = campaign.validate_parameters({**GOOD, "search_min_pps": "50",
                                       "search_load_fractions": "[0.2, 0.8]"}, ["baseline"])
    assert on.search.min_pps == 50 and on.search.load_fractions == (0.2, 0.8)
    with pytest.raises(ConfigError, match="must be below kvmnetlab_search_max_pps"):
        campaign.validate_parameters({**GOOD, "search_min_pps": 5000, "search_max_pps": 4000},
                                     ["baseline"])


def test_missing_seed_is_drawn_and_recorded():
    params = campaign.validate_parameters({**GOOD, "seed": None}, ["baseline"])
    assert isinstance(params.seed, int)
    assert params.as_dict()["seed"] == params.seed


def test_bad_campaign_id():
    with pytest.raises(ConfigError, match="kvmnetlab_campaign_id"):
        campaign.validate_campaign_id("../../etc")
    assert campaign.validate_campaign_id("night-2026.11.26") == "night-2026.11.26"


KNOB_DEFAULTS = {"poll_us": 50, "halt_poll_ns": 200000, "io_thread_core": "dedicated",
                 "queues": None}


def _write(tmp_path, document):
    path = tmp_path / "scenarios.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["scenarios"]["a"].update(io_path="warp"), "scenarios.a.io_path"),
        (lambda d: d["scenarios"]["a"].update(policy="maybe"), "scenarios.a.policy"),
        (lambda d: d["scenarios"]["a"].update(colour="blue"), "scenarios.a.colour"),
        (lambda d: d["scenarios"]["a"].pop("title"), "scenarios.a.title"),
        (lambda d: d["scenarios"]["a"].update(number=2), "scenarios.a.number"),
        (lambda d: d.update(format_version=9), "format_version"),
        (lambda d: d["scenarios"]["a"].update(io_path="none"), "scenarios.a.io_path"),
        (lambda d: d["scenarios"]["a"].update(collectors=["ping", "telepathy"]),
         "scenarios.a.collectors"),
        (lambda d: d["scenarios"]["a"].update(io_path="elvis"), "scenarios.a.elvis_mode"),
        (lambda d: d["scenarios"]["a"].update(io_path="elvis", elvis_mode="sidecore"),
         "scenarios.a.elvis_mode"),
        (lambda d: d["scenarios"]["a"].update(elvis_mode="patched"), "scenarios.a.elvis_mode"),
        (lambda d: d["scenarios"]["a"].update(io_path="elvis_upstream", elvis_mode="patched"),
         "scenarios.a.elvis_mode"),
        (lambda d: d.update(knob_defaults=None), "knob_defaults"),
        (lambda d: d["knob_defaults"].pop("halt_poll_ns"), "knob_defaults.halt_poll_ns"),
        (lambda d: d["knob_defaults"].update(poll_us=-1), "knob_defaults.poll_us"),
        (lambda d: d["knob_defaults"].update(poll_us=None), "knob_defaults.poll_us"),
        (lambda d: d["scenarios"]["a"].update(knobs={"poll_us": "fast"}),
         "scenarios.a.knobs.poll_us"),
        (lambda d: d["scenarios"]["a"].update(knobs={"turbo": 1}), "scenarios.a.knobs.turbo"),
        (lambda d: d["scenarios"]["a"].update(knobs={"io_thread_core": "spare"}),
         "scenarios.a.knobs.io_thread_core"),
        (lambda d: d["scenarios"]["a"].update(knobs=[1]), "scenarios.a.knobs"),
    ],
)
def test_bad_scenario_file_names_file_and_field(tmp_path, mutate, field):
    document = {"format_version": 1, "knob_defaults": dict(KNOB_DEFAULTS), "scenarios": {
        "b": {"number": 2, "title": "B", "virtualization": "none", "io_path": "none",
              "capture": "af_packet", "policy": "substitute"},
        "a": {"number": 1, "title": "A", "virtualization": "kvm", "io_path": "virtio",
              "capture": "pf_ring", "policy": "skip"}}}
    mutate(document)
    path = _write(tmp_path, document)
    with pytest.raises(ConfigError) as err:
        campaign.load_scenarios(path, known_collectors=base.known())
    assert err.value.source == str(path)
    assert err.value.field == field


@pytest.mark.parametrize(("given", "io_path", "mode"), [
    ({"io_path": "elvis", "elvis_mode": "patched"}, "elvis_patched", "patched"),
    ({"io_path": "elvis", "elvis_mode": "upstream"}, "elvis_upstream", "upstream"),
    ({"io_path": "elvis_patched"}, "elvis_patched", "patched"),
    ({"io_path": "elvis_upstream", "elvis_mode": "upstream"}, "elvis_upstream", "upstream"),
])
def test_elvis_mode_is_normalised(tmp_path, given, io_path, mode):
    document = {"format_version": 1, "knob_defaults": KNOB_DEFAULTS, "scenarios": {
        "e": {"number": 1, "title": "E", "virtualization": "kvm", "capture": "pf_ring",
              "policy": "substitute", **given}}}
    loaded = campaign.load_scenarios(_write(tmp_path, document))["e"]
    assert (loaded["io_path"], loaded["elvis_mode"]) == (io_path, mode)


def test_seed_elvis_scenarios_use_elvis_mode():
    seed = campaign.load_scenarios(REPO / "scenarios" / "seed.yml")
    assert {n: s["io_path"] for n, s in seed.items() if "elvis_mode" in s} == {
        "virtio_elvis": "elvis_upstream", "virtio_elvis_vpfring": "elvis_upstream"}


def test_knob_values_come_from_the_file_with_per_scenario_overrides(tmp_path):
    document = {"format_version": 1, "knob_defaults": {**KNOB_DEFAULTS, "poll_us": 30},
                "scenarios": {
                    "e": {"number": 1, "title": "E", "virtualization": "kvm",
                          "io_path": "elvis_upstream", "capture": "pf_ring",
                          "policy": "substitute", "knobs": {"halt_poll_ns": 100000, "queues": 4}},
                    "v": {"number": 2, "title": "V", "virtualization": "kvm", "io_path": "virtio",
                          "capture": "pf_ring", "policy": "substitute"}}}
    loaded = campaign.load_scenarios(_write(tmp_path, document))
    assert loaded["e"]["knobs"] == {"poll_us": 30, "halt_poll_ns": 100000,
                                    "io_thread_core": "dedicated", "queues": 4}
    assert loaded["v"]["knobs"] == {**KNOB_DEFAULTS, "poll_us": 30}


def test_unparseable_scenario_file(tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text("scenarios: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yml"):
        campaign.load_scenarios(path)


def test_plan_is_complete_shuffled_and_reproducible():
    names = ["a", "b", "c"]
    plan = campaign.plan_runs(names, 4, seed=42)
    assert sorted((r["scenario"], r["repetition"]) for r in plan) == sorted(
        (n, k) for n in names for k in range(1, 5))
    assert plan == campaign.plan_runs(names, 4, seed=42)
    assert plan != campaign.plan_runs(names, 4, seed=43)
    unshuffled = [{"scenario": n, "repetition": k} for n in names for k in range(1, 5)]
    assert plan != unshuffled


def test_plan_is_blocked_every_block_runs_each_scenario_once():
    names = ["a", "b", "c", "d"]
    plan = campaign.plan_runs(names, 5, seed=3)
    blocks = [plan[i:i + len(names)] for i in range(0, len(plan), len(names))]
    assert len(blocks) == 5
    for k, block in enumerate(blocks, start=1):
        # block k holds repetition k of every scenario, and says so
        assert sorted(r["scenario"] for r in block) == names
        assert {(r["repetition"], r["block"]) for r in block} == {(k, k)}
    # the order within blocks is drawn afresh: not the same permutation every time
    assert len({tuple(r["scenario"] for r in b) for b in blocks}) > 1


def test_control_copies_a_scenario_under_a_new_name():
    scenarios = campaign.load_scenarios(SEED)
    params = campaign.validate_parameters({**GOOD, "control": "virtio"}, list(scenarios))
    assert params.control == "virtio" and params.as_dict()["control"] == "virtio"
    chosen = campaign.campaign_scenarios(scenarios, params)
    assert list(chosen) == [*scenarios, "virtio_aa"]
    control, original = chosen["virtio_aa"], scenarios["virtio"]
    assert control["control_of"] == "virtio" and control["name"] == "virtio_aa"
    assert control["number"] == 6  # the next free number
    for key in ("virtualization", "io_path", "capture", "policy", "knobs"):
        assert control[key] == original[key]
    assert "control" in control["title"] and "control_of" not in original
    plan = campaign.plan_runs(list(chosen), 2, seed=1)
    assert sorted(r["scenario"] for r in plan if r["block"] == 1) == sorted(chosen)


def test_no_control_by_default():
    scenarios = campaign.load_scenarios(SEED)
    params = campaign.validate_parameters({**GOOD, "control": ""}, list(scenarios))
    assert params.control is None and params.as_dict()["control"] is None
    assert list(campaign.campaign_scenarios(scenarios, params)) == list(scenarios)


@pytest.mark.parametrize("control", ["warp_drive", "virtio_elvis", 3])
def test_bad_control_names_its_field(control):
    # virtio_elvis is a known scenario but not one this campaign runs
    with pytest.raises(ConfigError) as err:
        campaign.validate_parameters({**GOOD, "scenarios": "baseline,virtio", "control": control},
                                     ["baseline", "virtio", "virtio_elvis"])
    assert err.value.field == "kvmnetlab_control"


def test_control_name_must_be_free():
    scenarios = {"a": {"name": "a", "number": 1, "title": "A"},
                 "a_aa": {"name": "a_aa", "number": 2, "title": "A again"}}
    with pytest.raises(ConfigError, match="already a scenario"):
        campaign.with_control(scenarios, "a")


def test_blocks_are_recorded_and_survive_a_resume(tmp_path):
    from kvmnetlab.store import Store

    scenarios = campaign.load_scenarios(SEED)
    params = campaign.validate_parameters({**GOOD, "control": "virtio"}, list(scenarios))
    chosen = campaign.campaign_scenarios(scenarios, params)
    order = campaign.plan_runs(list(chosen), params.repetitions, params.seed)
    store = Store(tmp_path / "c")
    manifest = store.create("c", params.as_dict(), chosen, order, {"name": "t"}, {})
    assert [(r["scenario"], r["repetition"], r["block"]) for r in manifest["runs"]] == [
        (r["scenario"], r["repetition"], r["block"]) for r in order]
    manifest["runs"][0]["status"] = "done"
    store.save(manifest)
    resumed = store.resume(params.as_dict())
    assert [r["block"] for r in resumed["runs"]] == [r["block"] for r in order]
    assert [r["status"] for r in resumed["runs"]][:2] == ["done", "pending"]
    assert resumed["scenarios"]["virtio_aa"]["control_of"] == "virtio"
    # the control cannot change on resume: the set of scenarios would change
    with pytest.raises(StoreError, match="kvmnetlab_control"):
        store.resume({**params.as_dict(), "control": None})


def test_a_campaign_from_before_the_control_parameter_resumes(tmp_path):
    from kvmnetlab.store import Store

    params = campaign.validate_parameters(GOOD, ["baseline"])
    old = {k: v for k, v in params.as_dict().items() if k != "control"}
    store = Store(tmp_path / "c")
    store.create("c", old, {"baseline": {"number": 1}},
                 [{"scenario": "baseline", "repetition": 1}], {"name": "t"}, {})
    assert store.resume(params.as_dict())["runs"][0]["status"] == "pending"


@pytest.mark.parametrize(("given", "on"), [(None, False), (False, False), ("false", False),
                                         (True, True), ("yes", True)])
def test_sockperf_is_validated_and_recorded_only_when_on(given, on):
    params = campaign.validate_parameters({**GOOD, "sockperf": given}, ["baseline"])
    assert params.sockperf is on
    # a campaign without sockperf keeps the parameters' keys manifests always had
    assert ("sockperf" in params.as_dict()) is on
    with pytest.raises(ConfigError) as err:
        campaign.validate_parameters({**GOOD, "sockperf": "often"}, ["baseline"])
    assert err.value.field == "kvmnetlab_sockperf"


def test_an_empty_required_parameter_is_refused_not_defaulted():
    with pytest.raises(ConfigError) as err:
        campaign.validate_parameters({**GOOD, "ping_count": ""}, ["baseline"])
    assert err.value.field == "kvmnetlab_ping_count"
