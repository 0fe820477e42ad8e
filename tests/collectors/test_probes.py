"""The independent probes: fping beside ping, the optional sockperf, and the report's
probe agreement (plan, capture agent, ingest from real captures, analysis)."""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis import probes
from analysis.load import load_campaign
from analysis.report import Options, build_report
from collectors import base
from collectors.builtin import FpingCollector, SockperfCollector
from collectors.ingest import frame
from collectors.parsers import fping as fping_parser
from kvmnetlab.errors import ParseError
from tests.helpers import REPO, TESTS

FIXTURES = TESTS / "fixtures"
RUN = FIXTURES / "probes"  # one real repetition's probes: run/h1 (sender), run/h2 (receiver)
CAMPAIGNS = TESTS / "analysis_data" / "campaigns"
PARAMS = {"ping_count": 200, "ping_interval_s": 0.01, "ping_payload_bytes": 56,
          "rate_pps": 1000, "rate_frames": 2000, "rate_frame_bytes": 60}
ENDPOINT = {"source_address": "198.18.1.1", "target_address": "198.18.1.11",
            "sender_if": "data1", "receiver_if": "eth1", "receiver_mac": "52:54:00:00:00:11",
            "qemu_pid": 4242}
DEFAULTS = yaml.safe_load((REPO / "roles/campaign/defaults/main.yml").read_text())


def ctx(virtualization="tcg", parameters=None, hosts=None, **endpoint):
    return base.RunContext("virtio", 1, {"virtualization": virtualization,
                                         "capture": "af_packet"},
                           parameters or PARAMS,
                           hosts or {"sender": "h1", "receiver": "g1", "hypervisor": "lab"},
                           {**ENDPOINT, **endpoint})


def call(plan, phase, host):
    return next(c for c in plan[phase] if c["host"] == host)


# --------------------------------------------------------------------------- plan


@pytest.mark.parametrize("virtualization", ["none", "tcg"])
def test_fping_rides_with_ping_in_the_probing_hosts_finish_call(virtualization):
    enabled = DEFAULTS["campaign_collectors"]
    assert enabled["fping"] == enabled["ping"] == ["sender"]
    hosts = ({"sender": "h1", "receiver": "h2", "hypervisor": "lab"}
             if virtualization == "none" else None)
    plan = base.plan(ctx(virtualization, hosts=hosts), enabled)
    finish = call(plan, "finish", "h1")
    runs = [s for s in finish["steps"] if s["do"] == "run"]
    # one run step starts ping, with fping in it, started half an interval later
    ping = runs[0]
    assert ping["argv"][0] == "ping" and ping["dest"] == "ping.txt"
    assert [t["argv"][0] for t in ping["together"]] == ["fping"]
    fping = ping["together"][0]
    assert fping["offset_s"] == pytest.approx(0.005)
    assert fping["dest"] == "fping.txt" and fping["ok_rc"] == [0, 1]
    # the same count, spacing and payload as ping, at the same target
    assert fping["argv"] == ["fping", "-C", "200", "-p", "10", "-t", "1000", "-b", "56", "-D",
                             ENDPOINT["target_address"]]
    assert ping["argv"][ping["argv"].index("-c") + 1] == "200"
    assert ping["argv"][ping["argv"].index("-i") + 1] == "0.01"
    # fping is nowhere else in the plan; its files are packed with ping's
    assert not [s for s in runs[1:] if s["argv"][0] == "fping"]
    for phase in ("pre", "load", "post"):
        assert "fping" not in json.dumps(plan[phase])
    assert {"fping.txt", "fping.txt.stderr", "fping.txt.meta.json"} <= set(
        finish["steps"][-1]["files"])
    # the call's timeout covers the longer of the two (they run at the same time)
    assert finish["timeout_s"] >= 60 + max(ping["timeout_s"], fping["timeout_s"])
    # nothing of sockperf unless the campaign turns it on
    assert "sockperf" not in enabled and DEFAULTS["campaign_sockperf"] is False
    assert "sockperf" not in json.dumps(plan)


def test_fping_runs_on_its_own_where_ping_is_not_planned():
    plan = base.plan(ctx(), {"fping": ["sender"]})
    runs = [s for s in call(plan, "finish", "h1")["steps"] if s["do"] == "run"]
    assert [s["argv"][0] for s in runs] == ["fping"] and "together" not in runs[0]


def test_fping_follows_the_campaigns_spacing():
    params = {**PARAMS, "ping_count": 10000, "ping_interval_s": 0.001}
    (capture,) = FpingCollector().captures(ctx(parameters=params))
    argv = list(capture.argv)
    assert argv[argv.index("-C") + 1] == "10000" and argv[argv.index("-p") + 1] == "1"
    assert capture.offset_s == pytest.approx(0.0005)
    assert capture.timeout_s >= 10 + 1  # 10,000 probes at 1 ms, plus its 1 s timeout


def test_sockperf_when_enabled_serves_on_the_receiver_and_pings_after_ping():
    enabled = {**DEFAULTS["campaign_collectors"], "sockperf": ["sender", "receiver"]}
    plan = base.plan(ctx(), enabled)
    # the server starts once the counter window is closed, on the receiver
    server = [s for s in call(plan, "post", "g1")["steps"] if s["do"] == "start"]
    assert [s["argv"][:2] for s in server] == [["sockperf", "server"]]
    assert server[0]["argv"][2:] == ["-i", ENDPOINT["target_address"], "-p", "11111"]
    # the client runs after ping (and fping), in the sender's finish call, in full RTT
    runs = [s for s in call(plan, "finish", "h1")["steps"] if s["do"] == "run"]
    assert [s["argv"][0] for s in runs][:1] == ["ping"]
    client = next(s for s in runs if s["argv"][0] == "sockperf")
    assert runs.index(client) > 0
    assert client["argv"][:2] == ["sockperf", "ping-pong"]
    assert "--full-rtt" in client["argv"] and "--mps=100" in client["argv"]
    assert client["argv"][client["argv"].index("-t") + 1] == "3"  # 200 x 10 ms + 0.45 s
    # the server is stopped after the sender's probes, then the receiver packs
    finish = call(plan, "finish", "g1")["steps"]
    assert [s["do"] for s in finish] == ["stop", "pack"]
    assert [c["host"] for c in plan["finish"]] == ["h1", "g1"]
    assert {"sockperf_server.txt", "sockperf_server.txt.meta.json"} <= set(finish[-1]["files"])


@pytest.mark.parametrize(("flag", "added"), [(False, False), (True, True), ("false", False),
                                           ("true", True)])
def test_the_campaign_role_adds_sockperf_only_when_asked(flag, added):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    tasks = yaml.safe_load((REPO / "roles/campaign/tasks/run.yml").read_text())
    expression = tasks[0]["vars"]["campaign_enabled_collectors"]
    assert "campaign_enabled_collectors" in json.dumps(tasks[0]["block"])
    templar = Templar(loader=DataLoader(), variables={
        "campaign_collectors": DEFAULTS["campaign_collectors"], "campaign_sockperf": flag})
    enabled = templar.template(trust_as_template(expression))
    expected = dict(DEFAULTS["campaign_collectors"])
    if added:
        expected["sockperf"] = ["sender", "receiver"]
    assert enabled == expected
    playbook = (REPO / "playbooks/campaign.yml").read_text()
    # the value the preflight validated and the manifest records (kvmnetlab_sockperf)
    assert ('campaign_sockperf: "{{ kvmnetlab_campaign_state.parameters.sockperf '
            '| default(false) }}"') in playbook
    for lab in ("local", "lab.example"):
        group_vars = yaml.safe_load(
            (REPO / f"inventory/{lab}/group_vars/all/campaign.yml").read_text())
        assert group_vars["kvmnetlab_sockperf"] is False


def test_the_probe_tools_are_installed_where_ping_is():
    for role, variable in (("lab_host", "lab_host_packages"),
                           ("guest_image", "guest_image_packages")):
        packages = yaml.safe_load((REPO / f"roles/{role}/defaults/main.yml").read_text())[
            variable]
        assert {"iputils-ping", "fping", "sockperf"} <= set(packages), role


# --------------------------------------------------------------------------- agent


@pytest.fixture()
def agent():
    sys.path.insert(0, str(REPO / "collections"))
    from ansible_collections.kvmnetlab.lab.plugins.module_utils import raw_capture

    return raw_capture


def test_a_run_step_runs_its_companions_at_the_same_time_after_their_offset(agent, tmp_path):
    first, second = str(tmp_path / "a.txt"), str(tmp_path / "b.txt")
    began = time.monotonic()
    result = agent.run_steps([{
        "do": "run", "argv": ["sh", "-c", "sleep 0.6; echo a"], "dest": "a.txt",
        "timeout_s": 10, "together": [{"argv": ["sh", "-c", "sleep 0.6; echo b >&2"],
                                       "dest": "b.txt", "timeout_s": 10, "offset_s": 0.2}]}],
        str(tmp_path))
    elapsed = time.monotonic() - began
    assert "failed" not in result and result["rc"] == 0
    assert elapsed < 1.1  # together, not one after the other (1.2 s)
    a = json.loads(Path(first + ".meta.json").read_text())
    b = json.loads(Path(second + ".meta.json").read_text())
    assert 0.2 <= b["started_at"] - a["started_at"] < 0.4
    assert Path(first).read_text() == "a\n" and Path(second + ".stderr").read_text() == "b\n"
    assert {first, second + ".meta.json"} <= set(result["files"])


def test_a_failing_companion_fails_the_step_after_both_ended(agent, tmp_path):
    first = str(tmp_path / "a.txt")
    result = agent.run_steps([
        {"do": "run", "argv": ["sh", "-c", "sleep 0.3"], "dest": "a.txt", "timeout_s": 10,
         "together": [{"argv": ["sh", "-c", "echo lost >&2; exit 3"], "dest": "b.txt",
                       "timeout_s": 10, "ok_rc": [0, 1]}]},
        {"do": "pack", "files": ["a.txt", "b.txt"]}], str(tmp_path))
    assert result["failed"] and "sh exited 3: lost" in result["msg"]
    assert json.loads(Path(first + ".meta.json").read_text())["rc"] == 0
    assert set(result["members"]) == {"a.txt", "b.txt"}  # still packed


def test_a_companion_past_its_timeout_is_killed_and_named(agent, tmp_path):
    with pytest.raises(agent.CaptureError, match=r"did not finish within 0\.3 s"):
        agent.run_tools([{"argv": ["true"], "dest": str(tmp_path / "a.txt"), "timeout_s": 5},
                         {"argv": ["sleep", "30"], "dest": str(tmp_path / "b.txt"),
                          "timeout_s": 0.3}])
    assert json.loads((tmp_path / "b.txt.meta.json").read_text())["timed_out"] is True


# --------------------------------------------------------------------------- ingest


def fixture_ctx(**parameters):
    return base.RunContext("baseline", 1, {"virtualization": "none"}, {**PARAMS, **parameters},
                           {"sender": "h1", "receiver": "h2", "hypervisor": "lab"},
                           {"target_address": "198.18.200.2"})


def test_fping_rows_from_the_real_capture_beside_ping():
    run = fixture_ctx()
    rows = FpingCollector().parse(base.RunFiles(RUN, "run", run.hosts), run)["fping_rtt"]
    table = frame(rows, FpingCollector.tables["fping_rtt"])
    assert len(table) == 200 and table["answered"].all()
    assert list(table["seq"]) == list(range(200))
    assert set(table["target"]) == {"198.18.200.2"} and set(table["host"]) == {"h1"}
    # the summary's ms, in µs, and the same as the per-reply lines fping printed
    summary = (RUN / "run/h1/fping.txt.stderr").read_text().split(":", 1)[1].split()
    assert table["rtt_us"].tolist() == pytest.approx([float(v) * 1000 for v in summary])
    replies = [float(line.split(", ")[2].split()[0]) * 1000
               for line in (RUN / "run/h1/fping.txt").read_text().splitlines()]
    assert table["rtt_us"].tolist() == pytest.approx(replies)
    assert table["rtt_us"].iloc[0] == pytest.approx(26.0)
    # started 5.1 ms after ping, as the two .meta.json recorded; spacing from the campaign
    assert table["start_offset_s"].iloc[0] == pytest.approx(0.005145, abs=1e-6)
    assert set(table["interval_s"]) == {0.01}
    assert str(table["rtt_us"].dtype) == "float64" and str(table["seq"].dtype) == "int64"


def test_fping_unanswered_probes_are_rows_without_rtt(tmp_path):
    sender = tmp_path / "run" / "h1"
    sender.mkdir(parents=True)
    shutil.copy(FIXTURES / "fping/unreachable.stderr", sender / "fping.txt.stderr")
    run = fixture_ctx()
    rows = FpingCollector().parse(base.RunFiles(tmp_path, "run", run.hosts), run)["fping_rtt"]
    table = frame(rows, FpingCollector.tables["fping_rtt"])
    lost = table.loc[table["target"] == "198.19.250.9"]  # the address nobody has
    assert len(lost) == 4 and not lost["answered"].any() and lost["rtt_us"].isna().all()
    assert table.loc[table["target"] == "198.19.250.2", "answered"].all()
    assert table["start_offset_s"].isna().all()  # no .meta.json: not known


def test_fping_truncated_output_names_the_file(tmp_path):
    sender = tmp_path / "run" / "h1"
    sender.mkdir(parents=True)
    # fping stopped before its summary: only the ICMP error lines came
    (sender / "fping.txt.stderr").write_text(
        (FIXTURES / "fping/unreachable.stderr").read_text().split("\n\n")[0] + "\n")
    run = fixture_ctx()
    with pytest.raises(ParseError, match=r"fping\.txt\.stderr:4: truncated"):
        FpingCollector().parse(base.RunFiles(tmp_path, "run", run.hosts), run)


def test_sockperf_row_from_the_real_capture_is_a_round_trip():
    run = fixture_ctx()
    (row,) = SockperfCollector().parse(base.RunFiles(RUN, "run", run.hosts), run)["sockperf"]
    assert row["statistic"] == "rtt"  # --full-rtt: the output says avg-rtt, Round trip
    assert row["p50_us"] == pytest.approx(49.214) and row["p99_us"] == pytest.approx(4637.756)
    assert row["observations"] == 255 and row["dropped"] == 0
    assert (row["mps"], row["duration_s"]) == (100, 3)
    frame([row], SockperfCollector.tables["sockperf"])  # the declared dtypes hold


def test_sockperf_records_half_the_round_trip_when_its_output_says_so(tmp_path):
    sender = tmp_path / "run" / "h1"
    sender.mkdir(parents=True)
    # a real run without --full-rtt: sockperf's default one-way "latency", RTT/2
    shutil.copy(FIXTURES / "sockperf/pingpong_latency.stdout", sender / "sockperf.txt")
    run = fixture_ctx()
    (row,) = SockperfCollector().parse(base.RunFiles(tmp_path, "run", run.hosts),
                                       run)["sockperf"]
    assert row["statistic"] == "half_rtt" and row["p50_us"] == pytest.approx(2.099)


def test_the_parsers_agree_with_the_fixture_of_ping_run_beside_fping():
    from collectors.parsers import ping

    assert len(ping.parse(RUN / "run/h1/ping.txt").probes) == 200
    assert len(fping_parser.parse(RUN / "run/h1/fping.txt.stderr").samples["198.18.200.2"]) \
        == 200


# --------------------------------------------------------------------------- analysis


def rtt_rows(scenario, repetition, values, answered=None):
    answered = answered or [True] * len(values)
    return [{"scenario": scenario, "repetition": repetition, "host": "h1", "answered": a,
             "rtt_us": v} for v, a in zip(values, answered, strict=True)]


def test_p50_per_repetition_leaves_unanswered_probes_out():
    rtt = pd.DataFrame(rtt_rows("a", 1, [10.0, 30.0, 20.0, math.nan],
                                [True, True, True, False]))
    out = probes.p50_by_repetition(rtt, "ping")
    assert out.to_dict("records") == [{"scenario": "a", "repetition": 1, "ping_n": 3,
                                       "ping_p50_us": 20.0}]


@pytest.mark.parametrize(("ratio", "flag"), [(1.0, False), (1.1, False), (0.9, False),
                                              (1.1001, True), (0.8999, True), (2.0, True),
                                              (math.nan, False)])
def test_a_disagreement_is_more_than_ten_percent_either_way(ratio, flag):
    assert probes.disagrees(ratio) is flag


def test_the_scenario_shows_the_median_over_repetitions_and_their_ratio():
    ping = pd.DataFrame(rtt_rows("a", 1, [10.0, 12.0, 14.0]) + rtt_rows("a", 2, [20.0])
                        + rtt_rows("a", 3, [30.0]) + rtt_rows("b", 1, [100.0])
                        + rtt_rows("c", 1, [50.0]))
    fping = pd.DataFrame(rtt_rows("a", 1, [11.0]) + rtt_rows("a", 2, [23.0])
                         + rtt_rows("a", 3, [33.0]) + rtt_rows("b", 1, [130.0])
                         + rtt_rows("c", 1, [1.0], [False]))
    by_rep = probes.agreement_by_repetition(ping, fping)
    assert by_rep.loc[by_rep["scenario"] == "a", "ping_p50_us"].tolist() == [12.0, 20.0, 30.0]
    assert by_rep.loc[by_rep["scenario"] == "a", "ratio"].tolist() == pytest.approx(
        [11 / 12, 23 / 20, 33 / 30])
    table = probes.agreement_table(["a", "b", "c", "d"], by_rep, True).set_index("scenario")
    # a: medians 20 (ping) and 23 (fping) over the same 3 repetitions; ratio 1.15
    assert table.loc["a", ["repetitions", "ping_p50_us", "fping_p50_us"]].tolist() == [
        3, 20.0, 23.0]
    assert table.loc["a", "ratio"] == pytest.approx(1.15)
    assert table.loc["a", "disagree"] and table.loc["a", "verdict"] == "disagree (> 10 %)"
    assert table.loc["b", "disagree"] and table.loc["b", "ratio"] == pytest.approx(1.3)
    # c: fping ran but no probe was answered; d: no data at all
    assert pd.isna(table.loc["c", "disagree"]) and math.isnan(table.loc["c", "ratio"])
    assert table.loc["c", "verdict"] == "no answered fping probe"
    assert table.loc["c", "ping_p50_us"] == 50.0 and table.loc["c", "repetitions"] == 1
    assert table.loc["d", "verdict"] == "no RTT data" and table.loc["d", "repetitions"] == 0


def test_agreement_within_ten_percent_is_not_flagged():
    by_rep = probes.agreement_by_repetition(pd.DataFrame(rtt_rows("a", 1, [100.0])),
                                            pd.DataFrame(rtt_rows("a", 1, [109.0])))
    row = probes.agreement_table(["a"], by_rep, True).iloc[0]
    assert not row["disagree"] and row["verdict"] == "agree (within 10 %)"


def test_without_fping_the_table_says_it_was_not_collected():
    by_rep = probes.agreement_by_repetition(pd.DataFrame(rtt_rows("a", 1, [10.0])
                                                         + rtt_rows("a", 2, [14.0])), None)
    row = probes.agreement_table(["a"], by_rep, False).iloc[0]
    assert row["verdict"] == probes.NOT_COLLECTED and pd.isna(row["disagree"])
    assert row["ping_p50_us"] == 12.0 and row["repetitions"] == 2
    assert math.isnan(row["fping_p50_us"]) and math.isnan(row["ratio"])


def test_sockperf_is_shown_with_its_statistic_never_compared():
    sock = pd.DataFrame([{"scenario": "a", "repetition": r, "host": "h1", "statistic": "rtt",
                          "observations": 10, "p50_us": v} for r, v in ((1, 40.0), (2, 60.0),
                                                                         (3, 50.0))])
    by_rep = probes.agreement_by_repetition(pd.DataFrame(rtt_rows("a", 1, [10.0])), None)
    row = probes.agreement_table(["a"], by_rep, False, sock).iloc[0]
    assert (row["sockperf_repetitions"], row["sockperf_p50_us"], row["sockperf_statistic"]) \
        == (3, 50.0, "rtt")
    assert row["verdict"] == probes.NOT_COLLECTED


# --------------------------------------------------------------------------- report


def test_a_campaign_collected_before_fping_reports_it_not_collected(tmp_path):
    campaign = Path(shutil.copytree(CAMPAIGNS / "small2", tmp_path / "small2"))
    assert load_campaign(campaign).fping_rtt is None
    out = tmp_path / "report"
    build_report(Options(campaign, out=out, resamples=200))
    text = (out / "report.md").read_text()
    assert "## Probe agreement — ping and fping" in text
    assert "fping was not collected in this campaign" in text
    table = pd.read_csv(out / "tables" / "probe_agreement.csv")
    assert set(table["verdict"]) == {probes.NOT_COLLECTED}


def test_a_campaign_with_fping_reports_the_ratio_and_flags(tmp_path):
    campaign = Path(shutil.copytree(CAMPAIGNS / "small2", tmp_path / "small2"))
    rtt = pd.read_parquet(campaign / "data" / "rtt.parquet")
    # fping sees the baseline 20 % slower, every other scenario as ping does
    fping = rtt.loc[:, ["scenario", "repetition", "host", "answered", "rtt_us"]].copy()
    slower = fping["scenario"].astype(str) == "baseline"
    fping.loc[slower, "rtt_us"] *= 1.2
    fping.to_parquet(campaign / "data" / "fping_rtt.parquet", index=False)
    loaded = load_campaign(campaign)
    assert loaded.fping_rtt is not None and loaded.sockperf is None
    out = tmp_path / "report"
    build_report(Options(campaign, out=out, resamples=200))
    table = pd.read_csv(out / "tables" / "probe_agreement.csv").set_index("scenario")
    assert table.loc["baseline", "disagree"] and table.loc["baseline", "ratio"] == \
        pytest.approx(1.2)
    assert not table.drop(index="baseline")["disagree"].any()
    assert (table.drop(index="baseline")["ratio"] == 1.0).all()
    text = (out / "report.md").read_text()
    assert "Disagreement above 10 %: baseline." in text
    per_rep = pd.read_csv(out / "tables" / "probe_agreement_repetitions.csv")
    assert set(per_rep.columns) == set(probes.REPETITION_COLUMNS)
