"""The throughput search in the analysis: NDR/PDR across repetitions, the generator's
calibration, RTT under load, the loader and the report section.

The frames follow collectors/throughput.py's tables with rates of the order a
trafgen -> tcpdump path on one host reaches with 60-byte frames (about 200 kframes/s
bare, less through a guest); every expected number is worked out here by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import history, plots
from analysis import throughput as tp
from analysis.load import InputError, load_campaign
from analysis.report import Options, build_report
from collectors import throughput as collector
from kvmnetlab.store_format import dtypes
from tests.analysis_data import store

T_975_DF2 = 4.302652729911275  # Student t, 97.5th percentile, 2 degrees of freedom
T_975_DF1 = 12.706204736174707
NAN = math.nan
SHORT = "generator fell short: 91000 of 100000 frames, 182000 of 200000 frames/s offered " \
        "(tolerance 5%)"
OVER = "generator overshot: 262000 frames/s sent for 240000 offered (tolerance 5%)"
ABOVE = "received above sent: 3 frames more than sent; likely foreign or duplicated frames " \
        "matching the flow filter"

# (scenario, repetition, host, ndr_pps, ndr_status, pdr_pps, pdr_status, generator_max_pps)
SEARCHES = [
    ("base", 1, "h1", 181_500.0, "found", 199_000.0, "found", NAN),
    ("base", 2, "h1", 190_200.0, "found", 205_000.0, "found", NAN),
    ("base", 3, "h1", 186_300.0, "found", 202_000.0, "found", NAN),
    ("guest", 1, "h1", 95_000.0, "generator_limited", 95_000.0, "generator_limited", 95_000.0),
    ("guest", 2, "h1", 88_000.0, "found", 93_500.0, "found", NAN),
    ("guest", 3, "h1", NAN, "below_min", 120.0, "found", NAN),
    ("elvis", 1, "g1", NAN, "below_min", 1_500.0, "found", NAN),
    ("elvis", 2, "g1", NAN, "below_min", 1_650.0, "found", NAN),
]


def throughput_frame(rows=SEARCHES) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["scenario", "repetition", "host", "ndr_pps",
                                        "ndr_status", "pdr_pps", "pdr_status",
                                        "generator_max_pps"])
    # the lowest rate that failed: 8 % above a rate found, the minimum below it
    for kind in ("ndr", "pdr"):
        status = frame[f"{kind}_status"]
        frame[f"{kind}_upper_pps"] = np.where(status == "found", frame[f"{kind}_pps"] * 1.08,
                                              np.where(status == "below_min", 100.0, NAN))
    return store.throughput_frame(frame)


# (scenario, repetition, host, trial, phase, offered_pps, achieved_pps, sent, received,
#  valid, invalid_reason, fraction)
TRIALS = [
    ("base", 1, "h1", 1, "search", 200_000.0, 199_100.0, 100_000, 96_000, True, "", NAN),
    ("base", 1, "h1", 2, "search", 181_500.0, 181_400.0, 90_750, 90_750, True, "", NAN),
    ("base", 1, "h1", 3, "validation", 181_500.0, 181_300.0, 181_500, 181_500, True, "", NAN),
    ("base", 1, "h1", 4, "load", 18_150.0, 18_149.0, 25_410, 25_410, True, "", 0.1),
    ("base", 2, "h1", 1, "search", 200_000.0, 182_000.0, 91_000, 91_000, False, SHORT, NAN),
    ("base", 2, "h1", 2, "search", 240_000.0, 262_000.0, 120_000, 120_000, False, OVER, NAN),
    ("base", 2, "h1", 3, "search", 190_200.0, 190_000.0, 95_100, 95_103, False, ABOVE, NAN),
    ("base", 2, "h1", 4, "search", 190_200.0, 214_000.0, 95_100, 95_100, True, "", NAN),
    ("guest", 1, "h1", 1, "search", 200_000.0, 95_000.0, 47_500, 47_500, False, SHORT, NAN),
    ("guest", 1, "h1", 2, "validation", 95_000.0, 94_900.0, 95_000, 95_000, True, "", NAN),
    ("elvis", 1, "g1", 1, "search", 100.0, 100.0, 50, 40, True, "", NAN),
    ("elvis", 1, "g1", 2, "search", 1_500.0, NAN, pd.NA, pd.NA, False,
     "the sender's closing lines (frames sent, time) are missing", NAN),
]


def trials_frame(rows=TRIALS) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["scenario", "repetition", "host", "trial", "phase",
                                        "offered_pps", "achieved_pps", "sent", "received",
                                        "valid", "invalid_reason", "fraction"])
    frame["sent"] = frame["sent"].astype("Int64")
    frame["received"] = frame["received"].astype("Int64")
    frame["backend"] = "trafgen_tcpdump"
    frame["frame_bytes"] = 60
    frame["duration_s"] = np.where(frame["phase"] == "validation", 1.0, 0.5)
    frame["frames"] = (frame["offered_pps"] * frame["duration_s"]).round().astype("int64")
    frame["sender_time_s"] = frame["sent"].astype(float) / frame["achieved_pps"]
    loss = (frame["sent"] - frame["received"]).astype(float) / frame["sent"].astype(float)
    frame["loss_ratio"] = loss.where(frame["valid"])
    frame["receiver_ready_s"] = 0.03
    return frame[list(dtypes("search_trials"))]


def load_frame(points) -> pd.DataFrame:
    """``points``: (scenario, repetition, fraction, offered_pps, load_valid, offset_us): ten
    probes each, the first unanswered, the others offset + 0, 1, ..., 8 µs."""
    rows = []
    for name, rep, fraction, offered, valid, offset in points:
        for seq in range(1, 11):
            rtt = NAN if seq == 1 else offset + seq - 2
            rows.append((name, rep, "h1", fraction, offered, valid, seq, 1.7e9 + seq * 0.01,
                         seq != 1, rtt))
    frame = pd.DataFrame(rows, columns=list(dtypes("rtt_load")))
    return frame


# base: three repetitions at 10 %, 50 %, 90 % of their PDR; repetition 2's load at 90 % was
# an invalid trial (left out). guest: one repetition at 50 %.
LOAD_POINTS = [
    ("base", 1, 0.1, 19_900.0, True, 30.0), ("base", 2, 0.1, 20_500.0, True, 34.0),
    ("base", 3, 0.1, 20_200.0, True, 32.0),
    ("base", 1, 0.5, 99_500.0, True, 40.0), ("base", 2, 0.5, 102_500.0, True, 46.0),
    ("base", 3, 0.5, 101_000.0, True, 43.0),
    ("base", 1, 0.9, 179_100.0, True, 80.0), ("base", 2, 0.9, 184_500.0, False, 900.0),
    ("base", 3, 0.9, 181_800.0, True, 100.0),
    ("guest", 2, 0.5, 46_750.0, True, 200.0),
]


def scenarios() -> pd.DataFrame:
    """The keys of the manifest's scenarios in report order, as Campaign.scenarios has them."""
    rows = [{"number": spec["number"], "scenario": name, "status": spec["status"]}
            for name, spec in store.SCENARIOS.items()]
    return pd.DataFrame(rows).sort_values("number").reset_index(drop=True)


# --------------------------------------------------------------------------- NDR and PDR


def test_mean_ci_is_student_t_over_the_repetitions():
    m, low, high = tp.mean_ci([181_500.0, 190_200.0, 186_300.0])
    sd = math.sqrt((4_500.0**2 + 4_200.0**2 + 300.0**2) / 2)
    half = T_975_DF2 * sd / math.sqrt(3)
    assert m == pytest.approx(186_000.0)
    assert (low, high) == (pytest.approx(186_000.0 - half), pytest.approx(186_000.0 + half))
    # NaN (a repetition without a rate) is left out; one value has no interval
    assert tp.mean_ci([95_000.0, NAN, 88_000.0])[1] == pytest.approx(
        91_500.0 - T_975_DF1 * math.sqrt(2 * 3_500.0**2) / math.sqrt(2))
    assert tp.mean_ci([5.0])[0] == 5.0 and math.isnan(tp.mean_ci([5.0])[1])
    assert tp.mean_ci([1.0, 100.0], floor=0.0)[1] == 0.0
    assert all(math.isnan(v) for v in tp.mean_ci([]))


def test_ndr_pdr_table_every_scenario_in_report_order():
    table = tp.ndr_pdr_table(scenarios(), throughput_frame())
    assert list(zip(table["scenario"], table["rate"].fillna(""), strict=True)) == [
        ("base", "NDR"), ("base", "PDR"), ("guest", "NDR"), ("guest", "PDR"),
        ("elvis", "NDR"), ("elvis", "PDR"), ("pending", ""), ("broken", "")]
    base = table.iloc[0]
    sd = math.sqrt((4_500.0**2 + 4_200.0**2 + 300.0**2) / 2)
    half = T_975_DF2 * sd / math.sqrt(3)
    assert base["searches"] == base["with_result"] == 3
    assert base["mean_kpps"] == pytest.approx(186.0)
    assert base["ci_low_kpps"] == pytest.approx((186_000.0 - half) / 1e3)
    # Mbit/s of the frames: rate x 60 bytes x 8 / 1e6
    assert base["mean_mbps"] == pytest.approx(186_000.0 * 60 * 8 / 1e6) == 89.28
    assert base["ci_high_mbps"] == pytest.approx((186_000.0 + half) * 480 / 1e6)
    assert not base["lower_bound"] and base["statuses"] == "found in all 3"
    pending = table.set_index("scenario").loc["pending"]
    assert pending["searches"] == 0 and math.isnan(pending["mean_kpps"])


def test_generator_limited_is_a_lower_bound_and_below_min_is_left_out():
    table = tp.ndr_pdr_display(tp.ndr_pdr_table(scenarios(), throughput_frame()))
    guest = table.loc[(table["scenario"] == "guest") & (table["rate"] == "NDR")].iloc[0]
    # repetition 1 generator-limited (95 000, a lower bound), 2 found (88 000), 3 < min
    assert (guest["searches"], guest["with_result"], guest["below_min"]) == (3, 2, 1)
    assert guest["mean_kpps"] == pytest.approx(91.5)
    assert guest["lower_bound"]
    # censored searches: the median over all three, bounded by [95 000, inf), 88 000,
    # [0, 100): both bounds of the median are 88 000, so it is known exactly
    assert guest["censored"] == 2
    assert guest["median_low_pps"] == guest["median_high_pps"] == 88_000.0
    assert guest["mean_kpps_text"] == "median 88.00"
    assert guest["mean_mbps_text"] == "median 42.24"  # 88 000 x 480 / 1e6
    assert guest["ci_kpps_text"] == "—"  # no t interval over censored values
    assert guest["excluded"] == "1 < min"
    assert guest["per_repetition"] == "1: ≥ 95.00; 2: 88.00; 3: < 0.1000"
    assert guest["statuses"] == ("found in 1 of 3, generator-limited in 1 of 3, "
                                 "below the minimum searched in 1 of 3")
    # its PDR: 95 000 (a lower bound), 93 500, 120 frames/s; the t interval's lower end
    # (mean - t sd / sqrt 3, about -72 000) is clipped at 0, no rate being negative
    pdr = table.loc[(table["scenario"] == "guest") & (table["rate"] == "PDR")].iloc[0]
    assert pdr["mean_pps"] == pytest.approx((95_000 + 93_500 + 120) / 3)
    assert pdr["ci_low_pps"] == 0.0
    assert pdr["mean_kpps_text"] == "median 93.50"
    # every repetition below the minimum: no mean, shown as < min
    elvis = table.loc[(table["scenario"] == "elvis") & (table["rate"] == "NDR")].iloc[0]
    assert elvis["with_result"] == 0 and math.isnan(elvis["mean_kpps"])
    assert elvis["mean_kpps_text"] == "median < 0.1000"
    assert elvis["mean_mbps_text"] == "median < 0.04800"
    assert elvis["excluded"] == "2 < min"
    assert elvis["statuses"] == "below the minimum searched in 2 of 2"
    # its PDR was found in both: an ordinary mean
    pdr = table.loc[(table["scenario"] == "elvis") & (table["rate"] == "PDR")].iloc[0]
    assert pdr["mean_kpps_text"] == "1.575" and pdr["ci_kpps_text"] == tp.interval_text(
        pdr["ci_low_kpps"], pdr["ci_high_kpps"])


def test_censored_median_bounds():
    assert tp.censored_median([(1.0, 1.0), (2.0, math.inf), (0.0, 0.5)]) == (1.0, 1.0)
    assert tp.censored_median([(3.0, math.inf), (2.0, math.inf), (1.0, 1.0)]) == (
        2.0, math.inf)
    assert tp.search_bounds(NAN, "budget", 10.0) == (0.0, math.inf)
    assert tp.search_bounds(5.0, "at_max", 10.0) == (5.0, math.inf)
    assert tp.search_bounds(NAN, "below_min", 10.0) == (0.0, 10.0)


def test_rate_texts():
    assert tp.rate_text(200_000.0, "at_max", 100.0) == "≥ 200.0"
    assert tp.rate_text(NAN, "below_min", 1_000.0) == "< 1.000"
    assert tp.rate_text(NAN, "budget", 100.0) == "no result (out of trials)"
    assert tp.rate_text(181_500.0, "found", 100.0) == "181.5"
    assert tp.status_counts(pd.Series(["at_max", "at_max"])) == "at the maximum searched in 2 of 2"
    assert tp.interval_text(NAN, 3.0) == "—"
    assert tp.interval_text(1.0, 3.0) == "[1.000, 3.000]"


def test_a_repetition_out_of_trials_without_a_rate_is_left_out():
    rows = [("base", 1, "h1", 181_500.0, "found", 199_000.0, "found", NAN),
            ("base", 2, "h1", NAN, "budget", 150_000.0, "budget", NAN)]
    table = tp.ndr_pdr_display(tp.ndr_pdr_table(scenarios(), throughput_frame(rows)))
    ndr, pdr = table.iloc[0], table.iloc[1]
    assert (ndr["with_result"], ndr["below_min"], ndr["no_result"]) == (1, 0, 1)
    # one rate and one search without any: the median is at least halfway to the rate
    assert ndr["mean_kpps_text"] == "median ≥ 90.75" and ndr["ci_kpps_text"] == "—"
    assert ndr["excluded"] == "1 without a rate (out of trials)"
    # a rate found before the trials ran out is a lower bound
    assert pdr["lower_bound"] and pdr["mean_kpps_text"] == "median ≥ 174.5"


# --------------------------------------------------------------------------- the generator


def test_generator_calibration_counts():
    cal = tp.generator_calibration(trials_frame(), throughput_frame()).set_index("host")
    h1 = cal.loc["h1"]
    assert (h1["searches"], h1["trials"], h1["invalid"]) == (3, 10, 4)
    assert (h1["fell_short"], h1["overshot"], h1["other_invalid"]) == (2, 1, 1)
    # the highest achieved rate over valid and invalid trials (the overshoot: 262 000)
    assert h1["max_achieved_pps"] == 262_000.0
    assert h1["generator_max_pps"] == 95_000.0
    assert h1["searches_limited"] == 1  # guest repetition 1
    g1 = cal.loc["g1"]
    assert (g1["trials"], g1["invalid"], g1["fell_short"], g1["other_invalid"]) == (2, 1, 0, 1)
    assert g1["max_achieved_pps"] == 100.0 and g1["searches_limited"] == 0
    assert math.isnan(g1["generator_max_pps"])
    assert tp.generator_calibration(None, None).empty


def test_trial_points_are_the_valid_search_and_validation_trials():
    points = tp.trial_points(trials_frame())
    assert len(points) == 6  # 12 trials, 5 invalid, 1 load point
    assert set(points["phase"]) == {"search", "validation"}
    first = points.iloc[0]
    assert first["offered_kpps"] == 200.0 and first["loss_pct"] == pytest.approx(4.0)


# --------------------------------------------------------------------------- RTT under load


def test_load_points_percentiles_and_loss():
    points = tp.load_points(load_frame(LOAD_POINTS))
    one = points.iloc[0]
    # answered: offset + 0..8 (nine values); type 7: p50 = offset + 4, p99 = offset + 7.92
    assert (one["scenario"], one["repetition"], one["fraction"]) == ("base", 1, 0.1)
    assert (one["probes"], one["answered"]) == (10, 9)
    assert one["p50_us"] == pytest.approx(34.0) and one["p99_us"] == pytest.approx(37.92)
    assert one["loss_pct"] == pytest.approx(10.0)


def test_latency_under_load_averages_repetitions_and_leaves_out_invalid_loads():
    idle = pd.DataFrame({"scenario": ["base", "base", "base", "guest"],
                         "repetition": [1, 2, 3, 2], "median_us": [20.0, 22.0, 24.0, 150.0],
                         "p99_us": [40.0, 44.0, 48.0, 400.0]})
    idle_loss = pd.DataFrame({"scenario": ["base", "base", "base"], "repetition": [1, 2, 3],
                              "loss_pct": [0.0, 0.5, 1.0]})
    lat = tp.latency_under_load(scenarios(), load_frame(LOAD_POINTS), idle, idle_loss)
    assert list(zip(lat["scenario"], lat["fraction"], strict=True)) == [
        ("base", 0.0), ("base", 0.1), ("base", 0.5), ("base", 0.9), ("guest", 0.0),
        ("guest", 0.5)]
    by = lat.set_index(["scenario", "fraction"])
    idle_row = by.loc[("base", 0.0)]
    assert idle_row["repetitions"] == 3 and idle_row["p50_us"] == pytest.approx(22.0)
    assert idle_row["p99_us"] == pytest.approx(44.0)
    assert idle_row["loss_pct"] == pytest.approx(0.5) and idle_row["offered_kpps"] == 0.0
    half = by.loc[("base", 0.5)]
    # p50 per repetition 44, 50, 47 -> mean 47, sd 3, t interval with df = 2
    assert half["repetitions"] == 3 and half["excluded_invalid"] == 0
    assert half["p50_us"] == pytest.approx(47.0)
    assert half["p50_ci_high_us"] == pytest.approx(47.0 + T_975_DF2 * 3.0 / math.sqrt(3))
    assert half["offered_kpps"] == pytest.approx(101.0)
    assert half["loss_pct"] == pytest.approx(10.0)
    high = by.loc[("base", 0.9)]
    # repetition 2's load was invalid: its probes (offset 900 µs) never count
    assert high["repetitions"] == 2 and high["excluded_invalid"] == 1
    assert high["p50_us"] == pytest.approx(94.0)  # (84 + 104) / 2
    assert high["p99_us"] == pytest.approx(97.92)
    assert high["offered_kpps"] == pytest.approx(180.45)
    guest = by.loc[("guest", 0.5)]
    assert guest["repetitions"] == 1 and math.isnan(guest["p50_ci_low_us"])
    assert math.isnan(by.loc[("guest", 0.0), "loss_pct"])  # no ping summary given for it


def test_every_load_point_invalid_leaves_an_empty_row_counted():
    points = [("base", 1, 0.9, 180_000.0, False, 500.0)]
    lat = tp.latency_under_load(scenarios(), load_frame(points))
    row = lat.iloc[0]
    assert (row["fraction"], row["repetitions"], row["excluded_invalid"]) == (0.9, 0, 1)
    assert math.isnan(row["p50_us"]) and math.isnan(row["offered_kpps"])
    assert tp.latency_under_load(scenarios(), None).empty


def test_figures_draw():
    results = tp.search_results(throughput_frame())
    colors = plots.scenario_colors(["base", "guest", "elvis"])
    fig = plots.plot_search_trials(tp.trial_points(trials_frame()), results,
                                   order=["base", "guest", "elvis"], colors=colors,
                                   title="t", pdr_ratio=0.005)
    assert fig.axes[0].get_xscale() == "log"
    lat = tp.latency_under_load(scenarios(), load_frame(LOAD_POINTS))
    fig = plots.plot_latency_under_load(lat, order=["base", "guest"], colors=colors,
                                        title="t", log_y=True)
    assert fig.axes[0].get_yscale() == "log"


# --------------------------------------------------------------------------- loading


def _search_campaign(root, *, tables=None, manifest_data=None):
    all_tables = {"rtt": store.rtt_frame(), "ping_summary": store.ping_frame(),
                  "throughput": throughput_frame(), "search_trials": trials_frame(),
                  "rtt_load": load_frame(LOAD_POINTS)}
    all_tables.update(tables or {})
    return store.write_campaign(root, tables={k: v for k, v in all_tables.items()
                                              if v is not None},
                                manifest_data=manifest_data)


def test_loads_the_search_tables_and_a_campaign_without_them(tmp_path):
    c = load_campaign(_search_campaign(tmp_path / "c"))
    assert len(c.throughput) == len(SEARCHES) and len(c.search_trials) == len(TRIALS)
    assert len(c.rtt_load) == 10 * len(LOAD_POINTS)
    assert c.throughput["ndr_pps"].isna().sum() == 3
    plain = load_campaign(store.write_campaign(tmp_path / "plain2"))
    assert plain.throughput is None and plain.search_trials is None and plain.rtt_load is None


def test_empty_search_tables_and_an_older_trial_table_load(tmp_path):
    # ingest writes every table: without rows, the search did not run
    empty = {"throughput": throughput_frame().iloc[:0], "search_trials": trials_frame().iloc[:0],
             "rtt_load": load_frame(LOAD_POINTS).iloc[:0]}
    c = load_campaign(_search_campaign(tmp_path / "empty", tables=empty))
    assert c.throughput is None and c.search_trials is None and c.rtt_load is None
    # searched before RTT was probed under load: no fraction column, no rtt_load table
    older = {"search_trials": trials_frame().drop(columns="fraction"), "rtt_load": None}
    c = load_campaign(_search_campaign(tmp_path / "older", tables=older))
    assert c.rtt_load is None and "fraction" not in c.search_trials


@pytest.mark.parametrize(
    ("table", "change", "column", "words"),
    [
        ("throughput", lambda f: f.drop(columns="pdr_status"), "pdr_status", "column missing"),
        ("throughput", lambda f: f.astype({"ndr_pps": str}), "ndr_pps", "a number"),
        ("throughput", lambda f: f.assign(ndr_status="lost"), "ndr_status", "one of found"),
        ("throughput", lambda f: f.assign(pdr_pps=NAN), "pdr_pps", "null with pdr_status"),
        ("throughput", lambda f: f.assign(host=[None, *f["host"][1:]]), "host", "null value"),
        ("search_trials", lambda f: f.drop(columns="invalid_reason"), "invalid_reason",
         "column missing"),
        ("search_trials", lambda f: f.assign(phase="warmup"), "phase", "search, validation"),
        ("search_trials", lambda f: f.assign(loss_ratio=-0.5), "loss_ratio", "[0, 1]"),
        ("rtt_load", lambda f: f.drop(columns="load_valid"), "load_valid", "column missing"),
        ("rtt_load", lambda f: f.assign(rtt_us=NAN), "rtt_us", "answered probe"),
    ],
)
def test_a_malformed_search_table_names_the_file_and_the_column(tmp_path, table, change,
                                                               column, words):
    tables = {"throughput": throughput_frame(), "search_trials": trials_frame(),
              "rtt_load": load_frame(LOAD_POINTS)}
    tables[table] = change(tables[table])
    with pytest.raises(InputError) as info:
        load_campaign(_search_campaign(tmp_path / "bad", tables=tables))
    assert info.value.path.endswith(f"data/{table}.parquet")
    assert info.value.field == column
    assert words in str(info.value)


def test_the_loader_reads_only_columns_the_collector_writes():
    # one declaration (kvmnetlab.store_format): the collector writes it, the loader reads it
    for name in ("throughput", "search_trials", "rtt_load"):
        assert collector.ThroughputCollector.tables[name] == dtypes(name), name
    # and the nightly history's
    assert set(history.THROUGHPUT_COLUMNS) <= set(dtypes("throughput"))


# --------------------------------------------------------------------------- the report


def _report(root):
    out = root.parent / f"{root.name}-report"
    build_report(Options(results=root, out=out, resamples=200))
    return out, (out / "report.md").read_text()


def test_report_without_a_search_says_so(tmp_path):
    out, md = _report(store.write_campaign(tmp_path / "plain3"))
    assert "## Throughput (NDR/PDR) and latency under load" in md
    assert "No throughput search in this campaign" in md
    assert "Table 3" not in md and not (out / "figures" / "figure6_search_trials.png").exists()
    assert "## Table 1 — packet loss per scenario" in md  # Table 1 as before


def test_report_with_a_search(tmp_path):
    out, md = _report(_search_campaign(tmp_path / "c2"))
    section = md.split("## Throughput (NDR/PDR) and latency under load")[1].split("\n## ")[0]
    for words in ("Table 3: NDR and PDR (≤ 0.5 % loss)", "median 88.00", "median < 0.1000",
                  "1 < min",
                  "Table 4: generator calibration", "Table 5: RTT under load",
                  "idle (the seed's ping)", "90 % of the PDR", "NDR (no-drop rate)",
                  "valid trial", "latency under load", "figure6_search_trials.png",
                  "figure7_rtt_under_load.png", "without the 4-byte CRC"):
        assert words in section, words
    ndr = pd.read_csv(out / "tables" / "throughput_ndr_pdr.csv")
    assert ndr.loc[0, "mean_pps"] == pytest.approx(186_000.0)
    lat = pd.read_csv(out / "tables" / "throughput_rtt_load.csv")
    assert lat.loc[lat["fraction"] == 0.9, "excluded_invalid"].item() == 1
    # the idle row: the seed's ping of base, repetitions 1 (10, 12 µs) and 2 (11, 13 µs)
    assert lat.loc[(lat["scenario"] == "base") & (lat["fraction"] == 0.0), "p50_us"].item() \
        == pytest.approx(11.5)
    assert (out / "figures" / "figure7_rtt_under_load.svg").exists()
