"""Competing guests and containers: the pure functions of analysis.competing, worked out by
hand on small tables, and the report section on a synthetic campaign folder."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import competing, sections
from analysis.report import Options, build_report
from tests.analysis_data.store import manifest, write_campaign
from tests.helpers import TESTS

NAN = math.nan
CAMPAIGNS = TESTS / "analysis_data" / "campaigns"


def rate(rows, *, flow=True, receiver=True):
    """(scenario, repetition, flow, receiver_host, sent, received, rate_pps) as ingest
    writes data/rate.parquet (without ``flow`` / ``receiver_host`` when asked)."""
    frame = pd.DataFrame(rows, columns=["scenario", "repetition", "flow", "receiver_host",
                                        "sent", "received", "rate_pps"])
    frame["host"] = "h1"
    frame["backend"] = "trafgen_tcpdump"
    frame["frame_bytes"] = 60
    above = frame["received"] > frame["sent"]
    frame["lost"] = (frame["sent"] - frame["received"]).astype("Int64").mask(above)
    frame["loss_pct"] = (100.0 * frame["lost"].astype(float) / frame["sent"])
    frame["excess_frames"] = (frame["received"] - frame["sent"]).clip(lower=0)
    frame["flag"] = ["received_above_sent" if e else "" for e in frame["excess_frames"]]
    drop = ([] if flow else ["flow"]) + ([] if receiver else ["receiver_host"])
    return frame.drop(columns=drop)


def rtt(rows, *, flow=True):
    """(scenario, repetition, flow, rtt_us or NaN) as data/rtt.parquet, sender h1."""
    frame = pd.DataFrame(rows, columns=["scenario", "repetition", "flow", "rtt_us"])
    frame["host"] = "h1"
    frame["seq"] = range(1, len(frame) + 1)
    frame["timestamp_s"] = 1.7e9 + frame["seq"] * 0.01
    frame["answered"] = frame["rtt_us"].notna()
    frame["duplicates"] = 0
    columns = ["scenario", "repetition", "host", "seq", "timestamp_s", "answered", "rtt_us",
               "duplicates", "flow"]
    return frame[columns if flow else columns[:-1]]


# --------------------------------------------------------------------------- kind and N


def test_kind_and_n_from_the_manifest_entry():
    assert competing.scenario_kind({"virtualization": "none"}) == ("bare metal", 1)
    assert competing.scenario_kind({"virtualization": "kvm"}) == ("guests", 1)
    assert competing.scenario_kind({"virtualization": "kvm", "guests": 4}) == ("guests", 4)
    assert competing.scenario_kind({"virtualization": "container"}) == ("containers", 1)
    assert competing.scenario_kind({"virtualization": "container", "guests": 2}) == (
        "containers", 2)


def test_competition_needs_more_than_one_guest_or_a_container():
    seed = {"b": {"virtualization": "none"}, "v": {"virtualization": "kvm"},
            "v1": {"virtualization": "kvm", "guests": 1}}
    assert not competing.has_competition(seed)
    assert competing.has_competition({**seed, "v2": {"virtualization": "kvm", "guests": 2}})
    assert competing.has_competition({**seed, "c": {"virtualization": "container"}})


def test_series_group_guests_by_configuration_and_keep_those_with_competition():
    entries = {
        "base": {"virtualization": "none"},
        "virtio": {"virtualization": "kvm", "io_path": "virtio", "capture": "pf_ring",
                   "resolved": {"virtualization": "tcg"}},
        "elvis": {"virtualization": "kvm", "io_path": "elvis", "capture": "pf_ring"},
        "virtio_x2": {"virtualization": "kvm", "io_path": "virtio", "capture": "pf_ring",
                      "guests": 2, "resolved": {"virtualization": "tcg"}},
        "ct_x1": {"virtualization": "container", "io_path": "virtio", "capture": "pf_ring",
                  "guests": 1, "resolved": {"virtualization": "container",
                                            "container_runtime": "lxc 5.0.2"}},
    }
    kinds = competing.scenario_kinds(entries)
    # elvis has no N > 1 in its series; bare metal is the reference, not a series
    assert list(kinds["scenario"]) == ["virtio", "virtio_x2", "ct_x1"]
    assert list(kinds["n"]) == [1, 2, 1]
    assert list(kinds["series"]) == ["guests", "guests", "containers"]
    assert list(kinds["acceleration"]) == ["tcg", "tcg", "container"]
    assert list(kinds["runtime"]) == ["", "", "lxc 5.0.2"]
    # two guest series: the label names what tells them apart
    entries["elvis_x2"] = {"virtualization": "kvm", "io_path": "elvis", "capture": "pf_ring",
                           "guests": 2}
    labels = competing.scenario_kinds(entries).set_index("scenario")["series"]
    assert labels["virtio_x2"] == "guests (io_path virtio)"
    assert labels["elvis_x2"] == labels["elvis"] == "guests (io_path elvis)"


def test_the_reference_is_the_bare_metal_baseline_else_the_first_bare_metal():
    entries = {"a": {"virtualization": "none"}, "b": {"virtualization": "none"},
               "g": {"virtualization": "kvm"}}
    assert competing.reference(entries, ["g", "a", "b"], "b") == "b"
    assert competing.reference(entries, ["g", "a", "b"], "g") == "a"
    assert competing.reference(entries, ["g"], "g") == ""


# --------------------------------------------------------------------------- per flow


def test_a_flow_loss_and_throughput_by_hand():
    frame = rate([("s", 1, 1, "g1", 1000, 900, 500.0), ("s", 1, 2, "g2", 2000, 500, 1000.0)])
    out = competing.flow_rates(frame).set_index("flow")
    # flow 1: 100 of 1000 lost = 10 %; 1000 frames at 500 frames/s = 2 s; 900 / 2 s
    assert out.loc[1, "loss_pct"] == pytest.approx(10.0)
    assert out.loc[1, "duration_s"] == pytest.approx(2.0)
    assert out.loc[1, "throughput_pps"] == pytest.approx(450.0)
    assert out.loc[1, "offered_pps"] == pytest.approx(500.0)
    # flow 2: 1500 of 2000 = 75 %; 2 s; 500 / 2 s = 250 frames/s
    assert out.loc[2, "loss_pct"] == pytest.approx(75.0)
    assert out.loc[2, "throughput_pps"] == pytest.approx(250.0)
    assert list(out["receiver_host"]) == ["g1", "g2"]
    assert not out["flagged"].any()


def test_a_folder_without_flow_is_flow_one_and_without_receivers_is_unnamed():
    frame = rate([("s", 1, 1, "g1", 100, 90, 100.0), ("s", 2, 1, "g1", 100, 80, 100.0)],
                 flow=False, receiver=False)
    out = competing.flow_rates(frame)
    assert list(out["flow"]) == [1, 1] and list(out["receiver_host"]) == ["", ""]
    assert list(out["loss_pct"]) == pytest.approx([10.0, 20.0])
    named = competing.name_receivers(out, {"s": ["g9"]})
    assert list(named["receiver_host"]) == ["g9", "g9"]
    probes = competing.flow_rtt(rtt([("s", 1, 1, 10.0), ("s", 1, 1, 20.0)], flow=False))
    assert list(probes["flow"]) == [1]
    assert competing.with_flow(pd.DataFrame({"flow": [2, None]}))["flow"].tolist() == [2, 1]


def test_a_flow_whose_counter_saw_more_than_was_sent_has_no_loss_nor_throughput():
    out = competing.flow_rates(rate([("s", 1, 1, "g1", 100, 120, 100.0)]))
    assert bool(out["flagged"].iloc[0])
    assert math.isnan(out["loss_pct"].iloc[0]) and math.isnan(out["throughput_pps"].iloc[0])


def test_flow_rtt_percentiles_by_hand():
    out = competing.flow_rtt(rtt([("s", 1, 1, 100.0), ("s", 1, 1, 200.0), ("s", 1, 1, 300.0),
                                  ("s", 1, 1, NAN), ("s", 1, 2, 400.0), ("s", 1, 2, 500.0)]))
    f1, f2 = out.iloc[0], out.iloc[1]
    assert (f1["probes"], f1["answered"]) == (4, 3)
    # type 7: h = (n - 1) q; p99 of [100, 200, 300]: h = 1.98 -> 200 + 0.98 * 100
    assert f1["rtt_p50_us"] == 200.0 and f1["rtt_p99_us"] == pytest.approx(298.0)
    assert f2["rtt_p50_us"] == 450.0 and f2["rtt_p99_us"] == pytest.approx(499.0)


# --------------------------------------------------------------------------- fairness


@pytest.mark.parametrize(("x", "j"), [([1, 1], 1.0), ([1, 0], 0.5), ([3, 1], 0.8),
                                      ([2, 2, 2, 2], 1.0), ([4, 0, 0, 0], 0.25)])
def test_jain_index_by_hand(x, j):
    assert competing.jain_index(x) == pytest.approx(j)


@pytest.mark.parametrize("x", [[5.0], [], [0, 0], [1, NAN]])
def test_jain_index_is_undefined_for_one_flow_nothing_or_a_missing_flow(x):
    assert math.isnan(competing.jain_index(x))


def test_fairness_per_repetition_then_across_repetitions():
    flows = competing.flow_results(
        rate([("s", 1, 1, "g1", 1000, 900, 1000.0), ("s", 1, 2, "g2", 1000, 300, 1000.0),
              ("s", 2, 1, "g1", 1000, 1000, 1000.0), ("s", 2, 2, "g2", 1000, 1000, 1000.0),
              ("s", 3, 1, "g1", 1000, 1000, 1000.0), ("s", 3, 2, "g2", 1000, 1500, 1000.0),
              ("one", 1, 1, "g1", 1000, 1000, 1000.0)]), None)
    by_rep = competing.fairness_by_repetition(flows)
    # repetition 1: throughputs 900 and 300 frames/s, a 3:1 split -> 0.8
    jain = by_rep.set_index(["scenario", "repetition"])["jain"]
    assert (jain["s", 1], jain["s", 2]) == pytest.approx((0.8, 1.0))
    assert math.isnan(jain["s", 3])  # repetition 3 has a flagged flow
    summary = competing.fairness_summary(by_rep, 0.95).set_index("scenario")
    s = summary.loc["s"]
    assert (s["flows"], s["repetitions"], s["left_out"]) == (2, 2, 1)
    assert s["jain_mean"] == pytest.approx(0.9)
    # t interval: 0.9 ± 12.706 · 0.1414 / √2 = 0.9 ± 1.27, clipped to [1/N, 1]
    assert (s["jain_ci_low"], s["jain_ci_high"]) == (0.5, 1.0)
    one = summary.loc["one"]  # one flow: no index
    assert one["repetitions"] == 0 and math.isnan(one["jain_mean"])


# --------------------------------------------------------------------------- scenarios


def test_cpu_per_frame_takes_the_hypervisor_qemu_and_the_containers():
    costs = pd.DataFrame([
        ("vm", 1, "hv", "cpu_us_per_packet", 30.0), ("vm", 1, "g1", "cpu_us_per_packet", 5.0),
        ("vm", 1, "qemu", "qemu_cpu_us_per_packet", 20.0),
        ("vm", 1, "hv", "interrupts_per_packet", 0.5),
        ("ct", 1, "hv", "cpu_us_per_packet", 10.0),
        ("ct", 1, "containers", "container_cpu_us_per_packet", 3.0),
        ("bm", 1, "h2", "cpu_us_per_packet", 2.0),
        ("two", 1, "h1", "cpu_us_per_packet", 1.0), ("two", 1, "h2", "cpu_us_per_packet", 1.0),
    ], columns=["scenario", "repetition", "host", "metric", "value"]).assign(unit="µs")
    out = competing.cpu_by_repetition(costs, {"vm": "hv", "ct": "hv"}).set_index("scenario")
    assert out.loc["vm", "host_cpu_us_per_frame"] == 30.0
    assert out.loc["vm", "qemu_cpu_us_per_frame"] == 20.0
    assert math.isnan(out.loc["vm", "container_cpu_us_per_frame"])
    assert out.loc["ct", "host_cpu_us_per_frame"] == 10.0
    assert out.loc["ct", "container_cpu_us_per_frame"] == 3.0
    assert out.loc["bm", "host_cpu_us_per_frame"] == 2.0  # the only host that reported it
    assert math.isnan(out.loc["two", "host_cpu_us_per_frame"])  # two hosts, no hypervisor


def test_each_repetition_is_reduced_to_one_number_then_summarised():
    flows = competing.flow_results(
        rate([("s", 1, 1, "g1", 1000, 900, 1000.0), ("s", 1, 2, "g2", 1000, 300, 1000.0),
              ("s", 2, 1, "g1", 1000, 1000, 1000.0), ("s", 2, 2, "g2", 1000, 1000, 1000.0)]),
        rtt([("s", 1, 1, 100.0), ("s", 1, 1, 200.0), ("s", 1, 1, 300.0),
             ("s", 1, 2, 400.0), ("s", 1, 2, 500.0),
             ("s", 2, 1, 100.0), ("s", 2, 2, 300.0)]))
    cpu = pd.DataFrame({"scenario": ["s", "s"], "repetition": [1, 2],
                        "host_cpu_us_per_frame": [30.0, 50.0],
                        "qemu_cpu_us_per_frame": [20.0, 40.0],
                        "container_cpu_us_per_frame": [NAN, NAN]})
    reps = competing.repetition_summary(flows, cpu)
    r1, r2 = reps.iloc[0], reps.iloc[1]
    # repetition 1: flow p50s 200 and 450 -> median 325; loss (100 + 700) / 2000 = 40 %
    assert r1["rtt_p50_us"] == pytest.approx(325.0)
    assert r1["rtt_p99_us"] == pytest.approx((298.0 + 499.0) / 2)
    assert r1["loss_pct"] == pytest.approx(40.0)
    assert r1["throughput_pps"] == pytest.approx(1200.0)
    assert (r2["rtt_p50_us"], r2["loss_pct"], r2["throughput_pps"]) == (200.0, 0.0, 2000.0)
    kinds = pd.DataFrame([{"scenario": "s", "kind": "guests", "n": 2, "series": "guests",
                           "acceleration": "tcg", "runtime": ""}])
    summary = competing.scenario_summary(reps, kinds, 0.95).iloc[0]
    assert summary["repetitions"] == 2
    assert summary["loss_pct"] == pytest.approx(20.0)
    # t interval of [40, 0]: 20 ± 12.706 · 28.28 / √2 = 20 ± 254.1, lower end clipped at 0
    assert summary["loss_pct_ci_low"] == 0.0
    assert summary["loss_pct_ci_high"] == 100.0  # 20 + 12.7062 * 20 %, clipped at 100 %
    assert summary["rtt_p50_us"] == pytest.approx(262.5)
    assert summary["host_cpu_us_per_frame"] == pytest.approx(40.0)
    assert math.isnan(summary["container_cpu_us_per_frame"])
    per_flow = competing.flow_summary(flows).set_index("flow")
    assert per_flow.loc[2, "loss_pct"] == pytest.approx(35.0)  # (70 + 0) / 2
    assert per_flow.loc[2, "throughput_pps"] == pytest.approx(650.0)
    assert per_flow.loc[2, "rtt_p50_us"] == pytest.approx(375.0)  # (450 + 300) / 2


def test_one_repetition_has_a_mean_and_no_interval():
    reps = pd.DataFrame({"scenario": ["s"], "repetition": [1], "flows": [1],
                         **{m: [1.0] for m in competing.METRICS}})
    kinds = pd.DataFrame([{"scenario": "s", "kind": "guests", "n": 1, "series": "guests",
                           "acceleration": "kvm", "runtime": ""}])
    row = competing.scenario_summary(reps, kinds).iloc[0]
    assert row["rtt_p50_us"] == 1.0 and np.isnan(row["rtt_p50_us_ci_low"])


def test_substitutions_are_listed_once_with_their_scenarios():
    subs = pd.DataFrame([
        (2, "vm_x2", "virtualization", "kvm", "tcg", "no KVM"),
        (3, "ct_x2", "io_path", "virtio", "veth", "a container has a veth"),
        (4, "vm_x4", "virtualization", "kvm", "tcg", "no KVM"),
        (1, "other", "capture", "pf_ring", "af_packet", "no PF_RING"),
    ], columns=["number", "scenario", "knob", "requested", "effective", "reason"])
    out = competing.substitution_summary(subs, ["vm_x2", "vm_x4", "ct_x2"])
    assert out.to_dict("records") == [
        {"knob": "virtualization", "requested": "kvm", "effective": "tcg",
         "scenarios": "vm_x2, vm_x4", "reason": "no KVM"},
        {"knob": "io_path", "requested": "virtio", "effective": "veth",
         "scenarios": "ct_x2", "reason": "a container has a veth"}]


# --------------------------------------------------------------------------- the report

TCG = {"knob": "virtualization", "requested": "kvm", "effective": "tcg",
       "reason": "KVM acceleration unusable here"}
VETH = {"knob": "io_path", "requested": "virtio", "effective": "veth",
        "reason": "a container's data NIC is a veth pair"}


def _scenario(number, virtualization, guests=None, resolved=None, subs=()):
    entry = {"number": number, "title": f"scenario {number}", "virtualization": virtualization,
             "io_path": "none" if virtualization == "none" else "virtio",
             "capture": "af_packet", "policy": "substitute", "status": "run", "reason": "",
             "substitutions": [dict(s) for s in subs], "resolved": resolved or {}}
    if guests is not None:
        entry["guests"] = guests
    return entry


def competing_campaign(root: Path) -> Path:
    """Bare metal, one guest, two competing guests (TCG) and two containers, 2 repetitions
    each, with the per-flow tables ingest writes."""
    hosts = {"sender": "h1", "receiver": "g1", "hypervisor": "hv"}
    scenarios = {
        "base": _scenario(1, "none", resolved={"virtualization": "none",
                                               "hosts": {"sender": "h1", "receiver": "h2"}}),
        "vm_x1": _scenario(2, "kvm", 1, {"virtualization": "tcg", "guest": "g1",
                                         "hosts": hosts}, [TCG]),
        "vm_x2": _scenario(3, "kvm", 2, {"virtualization": "tcg", "guest": "g1",
                                         "guests": ["g1", "g2"], "hosts": hosts}, [TCG]),
        "ct_x2": _scenario(4, "container", 2, {
            "virtualization": "container", "container_runtime": "lxc 5.0.2",
            "container": "c1", "containers": ["c1", "c2"],
            "hosts": {**hosts, "receiver": "c1"}}, [VETH]),
    }
    receivers = {"base": ["h2"], "vm_x1": ["g1"], "vm_x2": ["g1", "g2"], "ct_x2": ["c1", "c2"]}
    received = {"base": [1000], "vm_x1": [800], "vm_x2": [900, 300], "ct_x2": [1000, 1000]}
    rates, probes, costs = [], [], []
    for name, hosts_of in receivers.items():
        for rep in (1, 2):
            for flow, host in enumerate(hosts_of, start=1):
                rates.append((name, rep, flow, host, 1000, received[name][flow - 1], 1000.0))
                base = 10.0 * scenarios[name]["number"] * flow + rep
                probes += [(name, rep, flow, base + d) for d in (0.0, 5.0, 10.0)]
            cpu_host = "h2" if name == "base" else "hv"
            costs.append((name, rep, cpu_host, "cpu_us_per_packet", 5.0 * rep))
            if name.startswith("vm"):
                costs.append((name, rep, "qemu", "qemu_cpu_us_per_packet", 3.0 * rep))
            if name.startswith("ct"):
                costs.append((name, rep, "containers", "container_cpu_us_per_packet", 1.0))
    ping = pd.DataFrame([(s, r, "h1", 3, 3, f) for s, r, f, _h, *_ in rates],
                        columns=["scenario", "repetition", "host", "transmitted", "received",
                                 "flow"]).assign(duplicates=0, errors=0, loss_pct=0.0,
                                                 interval_s=0.01, payload_bytes=56)
    cost_frame = pd.DataFrame(costs, columns=["scenario", "repetition", "host", "metric",
                                              "value"]).assign(unit="µs of CPU per packet")
    m = manifest(root.name, scenarios=scenarios, runs=[
        {"scenario": s, "repetition": r, "status": "done", "reason": "", "block": r}
        for r in (1, 2) for s in scenarios])
    return write_campaign(root, manifest_data=m, tables={
        "rtt": rtt(probes), "ping_summary": ping, "rate": rate(rates), "costs": cost_frame})


COMPETING_TABLES = {"competing_scenarios", "competing_fairness", "competing_flows",
                    "competing_flow_repetitions", "competing_repetitions",
                    "competing_fairness_repetitions", "competing_substitutions"}


def test_the_report_shows_competing_guests_and_containers(tmp_path):
    campaign = competing_campaign(tmp_path / "competing")
    out = tmp_path / "report"
    build_report(Options(campaign, out=out, resamples=100))
    text = (out / "report.md").read_text()
    assert "## Competing guests and containers" in text
    assert "ran under TCG, QEMU's software emulation, not KVM: resolved.virtualization 'tcg'" \
        in text
    assert "(vm_x1: 1 guest, vm_x2: 2 guests, ct_x2: 2 containers)" in text
    assert "shows this lab's TCG guests, not KVM guests" in text
    assert "under lxc 5.0.2" in text
    assert "virtualization: kvm → tcg (vm_x1, vm_x2)" in text
    assert "io_path: virtio → veth (ct_x2)" in text
    assert "tables/substitutions.csv" in text
    for header in ("RTT p50 (µs)", "loss (%)", "throughput (frames/s)", "host CPU (µs/frame)",
                   "Jain's index (mean)"):
        assert header in text
    tables = {p.stem for p in (out / "tables").glob("competing_*.csv")}
    assert tables == COMPETING_TABLES
    for figure in sections.competing.FIGURES:
        assert (out / "figures" / f"{figure}.png").stat().st_size > 0
        assert (out / "figures" / f"{figure}.svg").exists()
    summary = pd.read_csv(out / "tables" / "competing_scenarios.csv").set_index("scenario")
    assert list(summary.index) == ["vm_x1", "vm_x2", "ct_x2", "base"]
    assert list(summary["kind"]) == ["guests", "guests", "containers", "bare metal"]
    assert list(summary["n"]) == [1, 2, 2, 1]
    assert summary.loc["vm_x2", "loss_pct"] == pytest.approx(40.0)  # (100 + 700) / 2000
    assert summary.loc["vm_x2", "host_cpu_us_per_frame"] == pytest.approx(7.5)  # (5 + 10) / 2
    assert summary.loc["vm_x2", "qemu_cpu_us_per_frame"] == pytest.approx(4.5)
    assert summary.loc["ct_x2", "container_cpu_us_per_frame"] == pytest.approx(1.0)
    assert summary.loc["base", "host_cpu_us_per_frame"] == pytest.approx(7.5)
    # vm_x2's flows: p50 = 30 + rep + 5 and 60 + rep + 5 -> median over flows 50 + rep
    assert summary.loc["vm_x2", "rtt_p50_us"] == pytest.approx(51.5)
    units = [c for c in summary.columns if c.startswith(tuple(competing.METRICS))]
    assert all(c.split("_ci_")[0] in competing.METRICS for c in units)
    fairness = pd.read_csv(out / "tables" / "competing_fairness.csv").set_index("scenario")
    assert fairness.loc["vm_x2", "jain_mean"] == pytest.approx(0.8)  # 900 vs 300 frames/s
    assert fairness.loc["ct_x2", "jain_mean"] == pytest.approx(1.0)
    assert math.isnan(fairness.loc["vm_x1", "jain_mean"])  # one flow: no index, none left out
    assert (fairness.loc["vm_x1", "repetitions"], fairness.loc["vm_x1", "left_out"]) == (0, 0)
    flows = pd.read_csv(out / "tables" / "competing_flows.csv")
    assert list(flows.columns) == ["scenario", "flow", "receiver_host", "repetitions",
                                   "loss_pct", "throughput_pps", "rtt_p50_us", "rtt_p99_us"]
    x2 = flows.loc[flows["scenario"] == "ct_x2"]
    assert list(x2["receiver_host"]) == ["c1", "c2"]


def test_a_campaign_without_receiver_names_takes_them_from_the_manifest(tmp_path):
    campaign = competing_campaign(tmp_path / "competing")
    data = campaign / "data" / "rate.parquet"
    pd.read_parquet(data).drop(columns="receiver_host").to_parquet(data, index=False)
    m = json.loads((campaign / "manifest.json").read_text())
    m["files"].pop("data/rate.parquet")
    (campaign / "manifest.json").write_text(json.dumps(m))
    out = tmp_path / "report"
    build_report(Options(campaign, out=out, resamples=100))
    flows = pd.read_csv(out / "tables" / "competing_flows.csv")
    assert list(flows.loc[flows["scenario"] == "vm_x2", "receiver_host"]) == ["g1", "g2"]


def test_a_seed_campaign_gets_no_competing_section_and_the_same_tables(tmp_path, monkeypatch):
    campaign = Path(shutil.copytree(CAMPAIGNS / "quickstart1", tmp_path / "quickstart1"))
    with_section = tmp_path / "with"
    build_report(Options(campaign, out=with_section, resamples=100))
    assert "Competing" not in (with_section / "report.md").read_text()
    without = tuple(s for s in sections.SECTIONS if s.key != "competing")
    monkeypatch.setattr(sections, "SECTIONS", without)
    reference = tmp_path / "without"
    build_report(Options(campaign, out=reference, resamples=100))
    names = sorted(p.name for p in (reference / "tables").glob("*.csv"))
    assert names == sorted(p.name for p in (with_section / "tables").glob("*.csv"))
    for name in names:
        assert (with_section / "tables" / name).read_bytes() == \
            (reference / "tables" / name).read_bytes(), name
    assert (with_section / "report.md").read_text() == (reference / "report.md").read_text()


def test_the_section_is_shown_for_containers_even_with_one(tmp_path):
    campaign = competing_campaign(tmp_path / "competing")
    m = json.loads((campaign / "manifest.json").read_text())
    one = copy.deepcopy(m["scenarios"])
    one["vm_x2"]["guests"] = 1
    assert competing.has_competition(one)  # ct_x2 is a container scenario
    del one["ct_x2"]
    assert not competing.has_competition(one)


def test_without_rate_nor_costs_the_section_shows_rtt_alone(tmp_path):
    campaign = competing_campaign(tmp_path / "competing")
    for name in ("rate", "costs"):
        (campaign / "data" / f"{name}.parquet").unlink()
    m = json.loads((campaign / "manifest.json").read_text())
    for name in ("rate", "costs"):
        m["files"].pop(f"data/{name}.parquet")
    (campaign / "manifest.json").write_text(json.dumps(m))
    out = tmp_path / "report"
    build_report(Options(campaign, out=out, resamples=100))
    summary = pd.read_csv(out / "tables" / "competing_scenarios.csv").set_index("scenario")
    assert summary.loc["vm_x2", "rtt_p50_us"] == pytest.approx(51.5)
    assert summary[["loss_pct", "host_cpu_us_per_frame"]].isna().all().all()
    fairness = pd.read_csv(out / "tables" / "competing_fairness.csv")
    assert fairness["jain_mean"].isna().all()
    assert (out / "figures" / "figure9_competing_cpu.png").exists()


def test_loss_interval_is_clipped_at_100_percent():
    """Two repetitions far apart give a t interval (df = 1) wider than 0-100 %: the loss's
    ends are clipped to what a loss can be."""
    import pandas as pd

    from analysis import competing

    reps = pd.DataFrame({"scenario": ["s", "s"], "repetition": [1, 2],
                         "loss_pct": [10.0, 90.0]})
    kinds = pd.DataFrame({"scenario": ["s"]})
    row = competing.scenario_summary(reps, kinds).iloc[0]
    assert row["loss_pct"] == 50.0
    assert row["loss_pct_ci_low"] == 0.0 and row["loss_pct_ci_high"] == 100.0
