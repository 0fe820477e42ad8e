"""The data path's queueing disciplines, from real tc and ip output (fixtures/traffic_control)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis import history
from kvmnetlab.capabilities import host_profile
from kvmnetlab.errors import ConfigError
from kvmnetlab.traffic_control import (
    class_lines,
    data_path_devices,
    data_path_qdiscs,
    qdisc_line,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "traffic_control"
CAPABILITIES = Path(__file__).resolve().parents[1] / "fixtures" / "capabilities"


def section() -> dict:
    return {
        "qdiscs": (FIXTURES / "qdiscs.json").read_text(),
        "links": (FIXTURES / "links.json").read_text(),
        "classes": {dev: (FIXTURES / f"classes_{dev}.txt").read_text()
                    for dev in ("kvtc-v1", "kvtc-tap")},
        "error": None,
    }


def test_the_data_path_is_the_data_nics_the_taps_and_their_bridges():
    links = json.loads((FIXTURES / "links.json").read_text())
    # kvtc-tap is a tap on bridge kvtc-br, whose other port is kvtc-v1; kvtc-v0 holds the
    # data address; kvtc-other (with its own tbf) and lo are off the data path.
    assert data_path_devices(links, {"kvtc-v0"}) == {"kvtc-v0", "kvtc-tap", "kvtc-br", "kvtc-v1"}
    assert data_path_devices(links, set()) == {"kvtc-tap", "kvtc-br", "kvtc-v1"}


def test_each_qdisc_reads_as_a_stable_line():
    qdiscs = {(q["dev"], q["kind"]): q for q in json.loads((FIXTURES / "qdiscs.json").read_text())}
    # The kernel chose tbf's handle (801e:): left out, it changes each time.
    assert qdisc_line(qdiscs["kvtc-tap", "tbf"]) == (
        "tbf burst=1600 lat=11200 rate=125000")
    assert qdisc_line(qdiscs["kvtc-v1", "htb"]).startswith("htb handle 1: default=0x10 ")
    assert qdisc_line(qdiscs["kvtc-v1", "pfifo"]) == "pfifo parent 1:10 handle 10: limit=100"
    assert qdisc_line(qdiscs["kvtc-br", "noqueue"]) == "noqueue"


def test_classes_keep_chosen_handles_only():
    assert class_lines((FIXTURES / "classes_kvtc-tap.txt").read_text()) == []
    assert class_lines((FIXTURES / "classes_kvtc-v1.txt").read_text()) == [
        "class htb 1:10 root leaf 10: prio 0 rate 5Mbit ceil 5Mbit burst 1600b cburst 1600b"]


def test_data_path_qdiscs_of_the_captured_namespace():
    got = data_path_qdiscs("hv", section(), {"kvtc-v0"})
    assert set(got) == {"kvtc-v0", "kvtc-tap", "kvtc-br", "kvtc-v1"}
    assert got["kvtc-tap"] == ["tbf burst=1600 lat=11200 rate=125000"]
    assert got["kvtc-v0"] == ["noqueue"]
    assert got["kvtc-v1"][-1].startswith("class htb 1:10 ")
    assert len(got["kvtc-v1"]) == 3  # htb, its pfifo leaf, its class


def test_an_older_probe_or_a_failed_tc_gives_none():
    assert data_path_qdiscs("hv", None, set()) is None
    failed = {**section(), "qdiscs": None, "error": "tc failed"}
    assert data_path_qdiscs("hv", failed, set()) is None


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("qdiscs", "[{", "traffic_control.qdiscs"),
    ("links", '{"ifname": "x"}', "traffic_control.links"),
    ("classes", ["x"], "traffic_control.classes"),
])
def test_malformed_output_names_the_host_and_field(field, value, needle):
    with pytest.raises(ConfigError) as err:
        data_path_qdiscs("hv1", {**section(), field: value}, set())
    assert "hv1" in str(err.value) and needle in str(err.value)


def manifest_with(qdiscs: dict | None) -> dict:
    doc = json.loads((CAPABILITIES / "localhost.json").read_text())
    doc["traffic_control"] = None
    profile = host_profile("localhost", doc)
    profile["qdiscs"] = qdiscs
    return {"lab": {"name": "embedded", "kind": "embedded",
                    "profile": {"hosts": {"localhost": profile}}}}


def test_a_shaper_left_on_a_tap_is_named_and_does_not_start_a_segment():
    before = history.context(Path("m.json"), manifest_with({"kvmnl-tap1": ["noqueue"]}))
    after = history.context(Path("m.json"), manifest_with(
        {"kvmnl-tap1": ["tbf burst=1600 lat=11200 rate=125000"]}))
    assert history.lab_hash(before) == history.lab_hash(after)
    diff = history.differences(before, after)
    assert diff == ['localhost qdiscs.kvmnl-tap1: ["noqueue"] → '
                    '["tbf burst=1600 lat=11200 rate=125000"]']
    assert history.differences(before, before) == []
