"""Tables 1 and 2 (and the costs table), every cell against values worked out by hand.

The folder is tests/analysis_data/store.py; the arithmetic below is done from
its rows, independently of the analysis code.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis import tables
from analysis.load import load_campaign
from analysis.model import rtt_samples
from tests.analysis_data import store
from tests.helpers import TESTS

ORDER = ["base", "guest", "elvis", "pending", "broken"]
STATUS = ["run", "run", "run", "not_run", "failed"]


@pytest.fixture
def campaign(tmp_path):
    tabs = {
        "rtt": store.rtt_frame(),
        "ping_summary": store.ping_frame(),
        "rate": store.rate_frame(),
        "costs": store.cost_frame(),
    }
    return load_campaign(store.write_campaign(tmp_path / "c", tables=tabs))


def _cells(frame: pd.DataFrame, column: str) -> list:
    return frame[column].tolist()


def _same(actual: list, expected: list) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        if isinstance(e, float) and math.isnan(e):
            assert isinstance(a, float) and math.isnan(a), (actual, expected)
        elif isinstance(e, float):
            assert a == pytest.approx(e, rel=1e-12), (actual, expected)
        else:
            assert a == e, (actual, expected)


NAN = math.nan


def test_table1_ping_loss_every_cell(campaign):
    t1 = tables.table1_loss(campaign.scenarios, campaign.ping_summary, None)
    # base: rep 1 pools h1 (10 sent, 9 received) and h2 (10, 10): 1 lost of 20 = 5 %;
    #       rep 2: 2 lost of 20 = 10 %.  mean 7.5, min 5, max 10, std sqrt(2 * 2.5^2 / 1).
    # guest: 0 %, 0 %, 30 %: mean 10, std sqrt((100 + 100 + 400) / 2) = sqrt(300).
    # elvis: a single repetition, 1 of 4 = 25 %: std undefined.
    _same(_cells(t1, "scenario"), ORDER)
    _same(_cells(t1, "status"), STATUS)
    _same(_cells(t1, "source"), ["ping"] * 5)
    _same(_cells(t1, "repetitions"), [2, 3, 1, 0, 0])
    _same(_cells(t1, "mean_pct"), [7.5, 10.0, 25.0, NAN, NAN])
    _same(_cells(t1, "min_pct"), [5.0, 0.0, 25.0, NAN, NAN])
    _same(_cells(t1, "max_pct"), [10.0, 30.0, 25.0, NAN, NAN])
    _same(_cells(t1, "std_pct"), [math.sqrt(12.5), math.sqrt(300.0), NAN, NAN, NAN])
    _same(_cells(t1, "sent_packets"), [40.0, 30.0, 4.0, NAN, NAN])
    _same(_cells(t1, "lost_packets"), [3.0, 3.0, 1.0, NAN, NAN])


def test_table1_rate_loss_every_cell(campaign):
    t1 = tables.table1_loss(campaign.scenarios, campaign.ping_summary, campaign.rate)
    # base at 64 B: 10 of 1000 = 1 %, 20 of 1000 = 2 %: mean 1.5, std sqrt(0.5).
    # base at 1500 B: one repetition, 0 of 100.  guest at 64 B: 50 of 1000 = 5 %.
    _same(_cells(t1, "scenario"), ["base", "base", "guest", "elvis", "pending", "broken"])
    _same(_cells(t1, "status"), ["run", "run", "run", "run", "not_run", "failed"])
    _same(_cells(t1, "source"), ["rate"] * 6)
    _same(_cells(t1, "backend"), ["pf_ring", "pf_ring", "pf_ring", NAN, NAN, NAN])
    _same(_cells(t1, "frame_bytes"), [64.0, 1500.0, 64.0, NAN, NAN, NAN])
    _same(_cells(t1, "rate_pps"), [1000.0, 1000.0, 1000.0, NAN, NAN, NAN])
    _same(_cells(t1, "repetitions"), [2, 1, 1, 0, 0, 0])
    _same(_cells(t1, "mean_pct"), [1.5, 0.0, 5.0, NAN, NAN, NAN])
    _same(_cells(t1, "min_pct"), [1.0, 0.0, 5.0, NAN, NAN, NAN])
    _same(_cells(t1, "max_pct"), [2.0, 0.0, 5.0, NAN, NAN, NAN])
    _same(_cells(t1, "std_pct"), [math.sqrt(0.5), NAN, NAN, NAN, NAN, NAN])
    _same(_cells(t1, "sent_frames"), [2000.0, 100.0, 1000.0, NAN, NAN, NAN])
    _same(_cells(t1, "lost_frames"), [30.0, 0.0, 50.0, NAN, NAN, NAN])
    # ping's mean loss stays beside it (same numbers as the ping-only table)
    _same(_cells(t1, "ping_loss_mean_pct"), [7.5, 7.5, 10.0, 25.0, NAN, NAN])


def test_table2_rtt_every_cell(campaign):
    samples = rtt_samples(campaign.rtt, campaign.scenario_order)
    t2 = tables.table2_rtt(campaign.scenarios, samples, campaign.rtt)
    # base: answered 10, 12, 11, 13: mean 11.5, squared deviations 2.25 + .25 + .25 + 2.25 = 5.
    # guest: 20, 30, 40: mean 30, std 10.  elvis: 15, 15, 18, 12: mean 15, var (0+0+9+9)/3.
    _same(_cells(t2, "scenario"), ORDER)
    _same(_cells(t2, "status"), STATUS)
    _same(_cells(t2, "repetitions"), [2, 2, 2, 0, 0])
    _same(_cells(t2, "probes"), [5, 4, 4, 0, 0])
    _same(_cells(t2, "n"), [4, 3, 4, 0, 0])
    _same(_cells(t2, "rtt_mean_us"), [11.5, 30.0, 15.0, NAN, NAN])
    _same(_cells(t2, "rtt_std_us"), [math.sqrt(5 / 3), 10.0, math.sqrt(6.0), NAN, NAN])


def test_costs_table_every_cell(campaign):
    t = tables.costs_table(campaign.scenarios, campaign.costs)
    # base, cpu: h1 2 and 4 (mean 3, std sqrt 2); h2 1 and 3 (mean 2, std sqrt 2)
    _same(_cells(t, "scenario"), ["base", "base", "guest", "guest", "elvis", "pending", "broken"])
    _same(_cells(t, "metric"), ["cpu_us_per_packet", "cpu_us_per_packet", "cpu_us_per_packet",
                                "exits_per_packet", NAN, NAN, NAN])
    _same(_cells(t, "host"), ["h1", "h2", "h1", "kvm", NAN, NAN, NAN])
    _same(_cells(t, "unit"), [store.CPU, store.CPU, store.CPU, store.EXITS, NAN, NAN, NAN])
    _same(_cells(t, "repetitions"), [2, 2, 1, 2, 0, 0, 0])
    _same(_cells(t, "mean"), [3.0, 2.0, 10.0, 1.0, NAN, NAN, NAN])
    _same(_cells(t, "min"), [2.0, 1.0, 10.0, 0.5, NAN, NAN, NAN])
    _same(_cells(t, "max"), [4.0, 3.0, 10.0, 1.5, NAN, NAN, NAN])
    _same(_cells(t, "std"), [math.sqrt(2.0), math.sqrt(2.0), NAN, math.sqrt(0.5), NAN, NAN, NAN])


def test_costs_summed_over_hosts(campaign):
    t = tables.costs_table(campaign.scenarios, campaign.costs, by_host=False)
    # base, cpu: repetition 1 = 2 + 1 = 3, repetition 2 = 4 + 3 = 7: mean 5, std sqrt(8)
    assert "host" not in t.columns
    _same(_cells(t, "scenario"), ["base", "guest", "guest", "elvis", "pending", "broken"])
    _same(_cells(t, "mean"), [5.0, 10.0, 1.0, NAN, NAN, NAN])
    _same(_cells(t, "min"), [3.0, 10.0, 0.5, NAN, NAN, NAN])
    _same(_cells(t, "max"), [7.0, 10.0, 1.5, NAN, NAN, NAN])
    _same(_cells(t, "std"), [math.sqrt(8.0), NAN, math.sqrt(0.5), NAN, NAN, NAN])


def test_costs_without_a_host_column(tmp_path):
    tabs = {"rtt": store.rtt_frame(), "ping_summary": store.ping_frame(),
            "costs": store.cost_frame().drop(columns="host")}
    c = load_campaign(store.write_campaign(tmp_path / "c", tables=tabs))
    t = tables.costs_table(c.scenarios, c.costs)
    _same(_cells(t, "host")[:3], ["", "", ""])
    _same(_cells(t, "mean")[:3], [5.0, 10.0, 1.0])


def test_empty_rate_and_costs_tables_count_as_not_collected(tmp_path):
    tabs = {"rtt": store.rtt_frame(), "ping_summary": store.ping_frame(),
            "rate": store.rate_frame().iloc[:0], "costs": store.cost_frame().iloc[:0]}
    c = load_campaign(store.write_campaign(tmp_path / "c", tables=tabs))
    assert c.rate is None and c.costs is None


def test_loss_totals_prefer_rate(campaign):
    rate = tables.loss_totals(campaign.ping_summary, campaign.rate).set_index("scenario")
    assert rate.loc["base", ["sent", "lost"]].tolist() == [2100, 30]
    assert set(rate["source"]) == {"rate"}
    ping = tables.loss_totals(campaign.ping_summary, None).set_index("scenario")
    assert ping.loc["guest", ["sent", "lost"]].tolist() == [30, 3]
    assert set(ping["source"]) == {"ping"}


def test_overview_lists_every_substitution(campaign):
    o = tables.scenario_overview(campaign.scenarios).set_index("scenario")
    assert o.loc["guest", "substitutions"] == "io_path: virtio → virtio_user"
    assert o.loc["base", "substitutions"] == ""
    assert o.loc["broken", "reason"] == "guest did not boot"
    assert o.loc["broken", "runs"] == "1 failed"
    assert o.loc["pending", "runs"] == "1 not run"
    assert o.loc["base", "runs"] == "2 done"
    subs = tables.substitutions_table(campaign.scenarios)
    assert subs.to_dict("records") == [
        {"number": 2, "scenario": "guest", "knob": "io_path", "requested": "virtio",
         "effective": "virtio_user", "reason": "/dev/vhost-net absent"},
        {"number": 3, "scenario": "elvis", "knob": "io_path", "requested": "elvis_patched",
         "effective": "elvis_upstream", "reason": "no ELVIS patch series supplied"},
    ]


def test_lab_profile_is_one_column_per_host_from_real_documents():
    import json

    from kvmnetlab.capabilities import host_profile

    fixtures = TESTS / "fixtures" / "capabilities"
    docs = {p.stem: json.loads(p.read_text()) for p in sorted(fixtures.glob("*.json"))}
    assert len(docs) >= 2
    profiles = {name: host_profile(name, doc) for name, doc in docs.items()}
    profiles["gone"] = host_profile("gone", None, error="unreachable: timed out")
    frame = tables.lab_profile({"format_version": 1, "hosts": profiles})
    assert list(frame.columns) == ["capability", "meaning", *sorted(profiles)]
    rows = frame.set_index("capability")
    for name, doc in docs.items():
        assert rows.loc["kernel_release", name] == doc["kernel"]["release"]
        assert rows.loc["vhost_net", name] == ("yes" if doc["vhost_net"]["device"] else "no")
    assert rows.loc["reachable", "gone"] == "no"
    assert rows.loc["probe_error", "gone"] == "unreachable: timed out"
    assert all(rows["meaning"].str.len() > 0)


def test_tool_versions_group_hosts_by_version():
    frame = tables.tool_versions_table({"ping": {"a": "20221126", "b": "20221126", "c": None},
                                        "ansible-core": {"controller": "2.19.14"}})
    got = {(r.tool, r.version): r.hosts for r in frame.itertuples()}
    assert got == {("ping", "20221126"): "a, b", ("ping", "not installed"): "c",
                   ("ansible-core", "2.19.14"): "controller"}
    old = tables.tool_versions_table({"ping": "iputils 20221126"})
    assert old.iloc[0].to_dict() == {"tool": "ping", "version": "iputils 20221126", "hosts": ""}


# guest's repetition 2 and elvis's only repetition counted more frames than were sent
FLAGGED_RATE_ROWS = [*store.RATE_ROWS,
                     ("guest", 2, "pf_ring", 1000, 1003, 64, 1000.0),
                     ("elvis", 1, "pf_ring", 100, 101, 1500, 1000.0)]


@pytest.mark.parametrize("legacy", [False, True], ids=["flagged-by-ingest", "older-campaign"])
def test_flagged_repetitions_are_counted_never_averaged(tmp_path, legacy):
    tabs = {"rtt": store.rtt_frame(), "ping_summary": store.ping_frame(),
            "rate": store.rate_frame(FLAGGED_RATE_ROWS, legacy=legacy)}
    c = load_campaign(store.write_campaign(tmp_path / "c", tables=tabs))
    t1 = tables.table1_loss(c.scenarios, c.ping_summary, c.rate)
    # guest at 64 B: repetition 1 lost 50 of 1000 (5 %); repetition 2 is flagged, so the
    # mean stays 5 % (a negative -0.3 % averaged in would give 2.35 %) and the totals
    # hold repetition 1 alone. elvis: its only repetition is flagged, so it has no loss.
    _same(_cells(t1, "scenario"), ["base", "base", "guest", "elvis", "pending", "broken"])
    _same(_cells(t1, "repetitions"), [2, 1, 1, 0, 0, 0])
    _same(_cells(t1, "flagged_repetitions"), [0, 0, 1, 1, 0, 0])
    _same(_cells(t1, "mean_pct"), [1.5, 0.0, 5.0, NAN, NAN, NAN])
    _same(_cells(t1, "min_pct"), [1.0, 0.0, 5.0, NAN, NAN, NAN])
    _same(_cells(t1, "max_pct"), [2.0, 0.0, 5.0, NAN, NAN, NAN])
    _same(_cells(t1, "sent_frames"), [2000.0, 100.0, 1000.0, NAN, NAN, NAN])
    _same(_cells(t1, "lost_frames"), [30.0, 0.0, 50.0, NAN, NAN, NAN])
    per = tables.loss_per_repetition(c.ping_summary, c.rate).set_index(["scenario", "repetition"])
    assert per.loc[("guest", 1), "loss_pct"] == 5.0
    assert per.loc[("guest", 2), "flagged"] == 1
    assert math.isnan(per.loc[("guest", 2), "loss_pct"]) and math.isnan(per.loc[("guest", 2),
                                                                                 "lost"])
    # base repetition 1 pools 64 B (10 of 1000) and 1500 B (0 of 100): 10 of 1100
    assert per.loc[("base", 1), "loss_pct"] == pytest.approx(100 * 10 / 1100)
    totals = tables.loss_totals(c.ping_summary, c.rate).set_index("scenario")
    assert totals.loc["guest", ["sent", "lost", "flagged_repetitions"]].tolist() == [1000, 50, 1]
    assert totals.loc["elvis", "flagged_repetitions"] == 1
    assert math.isnan(totals.loc["elvis", "sent"])
