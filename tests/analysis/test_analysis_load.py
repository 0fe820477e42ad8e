"""Loading a results folder: what is accepted, and what is refused with the file and field named."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis.load import InputError, load_campaign
from kvmnetlab.errors import StoreError
from tests.analysis_data import store


def test_loads_a_good_folder(tmp_path):
    c = load_campaign(store.write_campaign(tmp_path / "c"))
    assert c.campaign_id == "c"
    assert c.scenario_order == ["base", "guest", "elvis", "pending", "broken"]
    assert c.rate is None and c.costs is None
    assert len(c.rtt) == len(store.RTT_ROWS)
    assert c.scenarios.set_index("scenario").loc["guest", "substitutions"][0]["effective"] == (
        "virtio_user"
    )
    assert "scenario broken: 1 repetition(s) failed" in c.warnings


def test_blocks_controls_and_effective_configurations(tmp_path):
    m = store.manifest("c")
    for k, run in enumerate(m["runs"], start=1):
        run["block"] = k
    m["scenarios"]["elvis"]["control_of"] = "guest"
    same = {"virtualization": "tcg", "io_path": "virtio_user", "guest": "g1",
            "hosts": {"sender": "h1"}}
    m["scenarios"]["guest"]["resolved"] = same
    m["scenarios"]["elvis"]["resolved"] = {**same, "hosts": {"sender": "h2"}}
    c = load_campaign(store.write_campaign(tmp_path / "c", manifest_data=m))
    assert c.blocks == {("base", 1): 1, ("base", 2): 2, ("broken", 1): 3, ("pending", 1): 4}
    assert c.controls == {"elvis": "guest"}
    effective = c.scenarios.set_index("scenario")["effective"]
    # the same knobs on the same guest: the same effective configuration, hosts aside
    assert effective["guest"] == effective["elvis"] != ""
    assert effective["base"] == ""
    # a campaign planned before blocks has none
    assert load_campaign(store.write_campaign(tmp_path / "old")).blocks == {}


def test_scenarios_without_number_come_last_by_name(tmp_path):
    m = store.manifest("c")
    m["scenarios"]["zz"] = {"status": "skipped", "reason": "policy skip"}
    m["scenarios"]["aa"] = {"status": "not_run", "reason": "later"}
    c = load_campaign(store.write_campaign(tmp_path / "c", manifest_data=m))
    assert c.scenario_order[-2:] == ["aa", "zz"]


def _error(path) -> InputError:
    with pytest.raises(InputError) as info:
        load_campaign(path)
    assert isinstance(info.value, StoreError)
    return info.value


def test_missing_folder_and_manifest(tmp_path):
    assert "no such directory" in str(_error(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    err = _error(tmp_path / "empty")
    assert err.path.endswith("manifest.json") and "missing" in str(err)


def test_manifest_not_json_names_the_line(tmp_path):
    root = store.write_campaign(tmp_path / "c")
    (root / "manifest.json").write_text('{\n  "format_version": 1,\n  oops\n}')
    err = _error(root)
    assert err.path.endswith("manifest.json") and "line 3" in str(err)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda m: m.pop("campaign_id"), "campaign_id", "missing"),
        (lambda m: m.update(format_version=2), "format_version", "version 1"),
        (lambda m: m.update(parameters=[]), "parameters", "object"),
        (lambda m: m["parameters"].update(ping_interval_s="fast"), "parameters.ping_interval_s",
         "number"),
        (lambda m: m["scenarios"]["guest"].update(status="done"), "scenarios.guest.status",
         "one of"),
        (lambda m: m["scenarios"]["guest"].update(number="2"), "scenarios.guest.number",
         "integer"),
        (lambda m: m["scenarios"]["guest"]["substitutions"][0].pop("reason"),
         "scenarios.guest.substitutions[0].reason", "missing"),
        (lambda m: m["runs"][0].update(status="finished"), "runs[0].status", "one of"),
        (lambda m: m["runs"][0].update(scenario="ghost"), "runs[0].scenario", "ghost"),
        (lambda m: m["runs"][1].update(block=0), "runs[1].block", ">= 1"),
        (lambda m: m["runs"][1].update(block="2"), "runs[1].block", "integer"),
    ],
)
def test_malformed_manifest_names_the_field(tmp_path, change, field, words):
    m = store.manifest("c")
    change(m)
    err = _error(store.write_campaign(tmp_path / "c", manifest_data=m))
    assert err.path.endswith("manifest.json")
    assert err.field == field
    assert f"{field}:" in str(err) and words in str(err)


def test_parquet_missing_column(tmp_path):
    rtt = store.rtt_frame().drop(columns=["rtt_us"])
    err = _error(store.write_campaign(tmp_path / "c", tables={"rtt": rtt,
                                                              "ping_summary": store.ping_frame()}))
    assert err.path.endswith("data/rtt.parquet") and err.field == "rtt_us"
    assert "column missing" in str(err)


def test_parquet_wrong_type(tmp_path):
    ping = store.ping_frame().astype({"transmitted": str})
    err = _error(store.write_campaign(tmp_path / "c", tables={"rtt": store.rtt_frame(),
                                                              "ping_summary": ping}))
    assert err.path.endswith("data/ping_summary.parquet") and err.field == "transmitted"
    assert "integer" in str(err)


def test_parquet_bad_values(tmp_path):
    rtt = store.rtt_frame()
    rtt.loc[1, "rtt_us"] = -4.0
    err = _error(store.write_campaign(tmp_path / "c", tables={"rtt": rtt,
                                                              "ping_summary": store.ping_frame()}))
    assert err.field == "rtt_us" and "row 1" in str(err)


def test_parquet_unknown_scenario(tmp_path):
    rtt = pd.concat([store.rtt_frame(), store.rtt_frame(rows=[("ghost", 1, "h1", 3.0)])])
    err = _error(store.write_campaign(tmp_path / "c", tables={"rtt": rtt,
                                                              "ping_summary": store.ping_frame()}))
    assert err.field == "scenario" and "'ghost'" in str(err)


def test_parquet_not_parquet(tmp_path):
    root = store.write_campaign(tmp_path / "c", checksums=False)
    (root / "data" / "rtt.parquet").write_text("not parquet")
    err = _error(root)
    assert err.path.endswith("data/rtt.parquet") and "not a readable Parquet" in str(err)


def test_changed_file_is_reported_by_name(tmp_path):
    root = store.write_campaign(tmp_path / "c")
    store.rtt_frame(scale=2.0).to_parquet(root / "data" / "rtt.parquet", index=False)
    err = _error(root)
    assert err.path.endswith("data/rtt.parquet") and "sha256" in str(err)
    assert load_campaign(root, verify=False).rtt["rtt_us"].max() == 80.0


def test_rtt_table_required_once_a_scenario_ran(tmp_path):
    root = store.write_campaign(tmp_path / "c", checksums=False)
    (root / "data" / "rtt.parquet").unlink()
    err = _error(root)
    assert err.path.endswith("data/rtt.parquet") and "base" in str(err)


def test_no_tables_needed_when_nothing_ran(tmp_path):
    m = store.manifest("c")
    for spec in m["scenarios"].values():
        spec["status"] = "not_run"
    root = store.write_campaign(tmp_path / "c", manifest_data=m, tables={})
    c = load_campaign(root)
    assert c.rtt is None and c.ping_summary is None


def test_listed_table_must_exist(tmp_path):
    root = store.write_campaign(tmp_path / "c")
    m = json.loads((root / "manifest.json").read_text())
    m["files"]["data/costs.parquet"] = {"sha256": "0" * 64, "bytes": 1}
    (root / "manifest.json").write_text(json.dumps(m))
    err = _error(root)
    assert err.path.endswith("data/costs.parquet") and "listed in manifest.json" in str(err)


def test_null_where_the_format_forbids_it(tmp_path):
    ping = store.ping_frame()
    ping["received"] = ping["received"].astype("Int64")
    ping.loc[2, "received"] = pd.NA
    err = _error(store.write_campaign(tmp_path / "c", tables={"rtt": store.rtt_frame(),
                                                              "ping_summary": ping}))
    assert err.field == "received" and "null value (row 2)" in str(err)


def test_nan_loss_is_legal_when_nothing_was_sent(tmp_path):
    ping = store.ping_frame(rows=[*store.PING_ROWS, ("guest", 4, "h1", 0, 0)])
    assert ping["loss_pct"].isna().sum() == 1
    c = load_campaign(store.write_campaign(tmp_path / "c", tables={"rtt": store.rtt_frame(),
                                                                   "ping_summary": ping}))
    assert len(c.ping_summary) == len(store.PING_ROWS) + 1


# (scenario, repetition, backend, sent, received, frame_bytes, rate_pps): base 2 counted
# 4 frames more than were sent
ABOVE = [("base", 1, "pf_ring", 1000, 990, 64, 1000.0),
         ("base", 2, "pf_ring", 1000, 1004, 64, 1000.0)]


@pytest.mark.parametrize("legacy", [False, True], ids=["flagged-by-ingest", "older-campaign"])
def test_received_above_sent_is_flagged_with_no_loss(tmp_path, legacy):
    rate = store.rate_frame(ABOVE, legacy=legacy)
    if legacy:
        assert rate["lost"].tolist() == [10, -4]  # what older ingests stored
    root = store.write_campaign(tmp_path / "c", tables={
        "rtt": store.rtt_frame(), "ping_summary": store.ping_frame(), "rate": rate})
    c = load_campaign(root)
    r = c.rate.set_index("repetition")
    assert str(r["lost"].dtype) == "Int64"
    assert r.loc[1, "lost"] == 10 and r.loc[1, "loss_pct"] == 1.0
    assert pd.isna(r.loc[2, "lost"]) and pd.isna(r.loc[2, "loss_pct"])
    assert r["excess_frames"].tolist() == [0, 4]
    assert r.loc[1, "flag"] == ""
    assert r.loc[2, "flag"].startswith("received_above_sent: 4 frames more than sent;")
    [note] = [w for w in c.warnings if "rate.parquet" in w]
    assert "base repetition 2 (4 frames more)" in note and "left out" in note


@pytest.mark.parametrize(("column", "value", "words"), [
    ("flag", "", "must be set exactly where received exceeds sent"),
    ("excess_frames", 3, "is not received - sent"),
])
def test_rate_flag_columns_must_agree_with_the_counts(tmp_path, column, value, words):
    rate = store.rate_frame(ABOVE)
    rate.loc[1, column] = value
    err = _error(store.write_campaign(tmp_path / "c", tables={
        "rtt": store.rtt_frame(), "ping_summary": store.ping_frame(), "rate": rate}))
    assert err.path.endswith("data/rate.parquet") and err.field == column
    assert words in str(err) and "row 1" in str(err)


def test_null_loss_where_received_does_not_exceed_sent(tmp_path):
    rate = store.rate_frame(ABOVE)
    rate.loc[0, "lost"] = pd.NA
    err = _error(store.write_campaign(tmp_path / "c", tables={
        "rtt": store.rtt_frame(), "ping_summary": store.ping_frame(), "rate": rate}))
    assert err.field == "lost" and "null where received does not exceed sent (row 0)" in str(err)
