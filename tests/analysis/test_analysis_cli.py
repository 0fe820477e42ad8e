"""The command line: --help, bad input (exit 2), a full report, and --compare (exit 0, 3, 4)."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from tests.analysis_data import store


def _campaign(root, *, scale=1.0, started="2025-11-26T09:00:00Z", extra=None):
    m = store.manifest(root.name, started_at=started)
    tables = {"rtt": store.rtt_frame(scale=scale), "ping_summary": store.ping_frame(),
              **(extra or {})}
    return store.write_campaign(root, manifest_data=m, tables=tables)


def _big_campaign(root, shift, started):
    """Two scenarios with 3000 probes each, the guest's RTT multiplied by ``shift``."""
    rng = np.random.default_rng(zlib.crc32(started.encode()))
    rows = []
    for name, center in (("base", 20.0), ("guest", 200.0 * shift)):
        values = np.round(rng.normal(center, center / 10, 3000))
        rows += [(name, 1 + i % 2, "h1", v) for i, v in enumerate(values)]
    m = store.manifest(root.name, started_at=started)
    ping = store.ping_frame(rows=[("base", 1, "h1", 1500, 1500), ("base", 2, "h1", 1500, 1500),
                                  ("guest", 1, "h1", 1500, 1500), ("guest", 2, "h1", 1500, 1500)])
    return store.write_campaign(root, manifest_data=m,
                                tables={"rtt": store.rtt_frame(rows=rows), "ping_summary": ping})


def test_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("RESULTS_DIR", "--out", "--margin-us", "--margin-rel", "--percentile",
                   "--confidence", "--compare", "--regression-threshold", "--log-x",
                   "--history", "--no-prior", "exit status", "4  report written"):
        assert option in out


def test_module_entry_point(tmp_path):
    done = subprocess.run([sys.executable, "-m", "analysis", str(tmp_path / "missing")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "missing" in done.stderr


def test_bad_folder_exits_2_naming_the_file(tmp_path, capsys):
    (tmp_path / "c").mkdir()
    assert main([str(tmp_path / "c")]) == 2
    assert "manifest.json" in capsys.readouterr().err


def test_bad_field_exits_2_naming_the_field(tmp_path, capsys):
    root = _campaign(tmp_path / "c")
    m = json.loads((root / "manifest.json").read_text())
    m["scenarios"]["elvis"]["status"] = "maybe"
    (root / "manifest.json").write_text(json.dumps(m))
    assert main([str(root)]) == 2
    err = capsys.readouterr().err
    assert "manifest.json: scenarios.elvis.status" in err
    assert not (root / "report").exists()


@pytest.mark.parametrize(
    "args",
    [["--confidence", "1.5"], ["--percentile", "0"], ["--margin-us", "-1"],
     ["--margin-us", "1", "--margin-rel", "0.1"], ["--resamples", "x"]],
)
def test_bad_options_exit_2(tmp_path, capsys, args):
    root = _campaign(tmp_path / "c")
    with pytest.raises(SystemExit) as info:
        main([str(root), *args])
    assert info.value.code == 2


def test_unknown_baseline_exits_2(tmp_path, capsys):
    root = _campaign(tmp_path / "c")
    assert main([str(root), "--baseline", "ghost"]) == 2
    assert "--baseline 'ghost'" in capsys.readouterr().err
    assert main([str(root), "--baseline", "pending"]) == 2
    assert "no RTT data" in capsys.readouterr().err
    assert main([str(root), "--baseline", "guest"]) == 0


def test_full_report(tmp_path, capsys):
    extra = {"rate": store.rate_frame(), "costs": store.cost_frame()}
    root = _campaign(tmp_path / "c", extra=extra)
    assert main([str(root), "--margin-us", "5", "--log-x"]) == 0
    out = root / "report"
    for rel in ("report.md", "index.html", "tables/table1_loss.csv", "tables/table2_rtt.csv",
                "tables/pairwise_verdicts.csv", "tables/closeness.csv", "tables/intervals.csv",
                "tables/summary.csv", "tables/repetitions.csv", "figures/figure5_repetitions.png",
                "tables/costs.csv", "tables/substitutions.csv",
                "figures/figure1_rtt_distributions.png", "figures/figure1_rtt_distributions.svg",
                "figures/figure2_rtt_cdf.png", "figures/figure2_rtt_cdf.svg",
                "figures/figure3_costs.png"):
        assert (out / rel).is_file(), rel
    md = (out / "report.md").read_text()
    for words in ("campaign c", "0123abc (dirty", "ping_interval_s | 0.2 | s",
                  "io_path | virtio | virtio_user | /dev/vhost-net absent",
                  "| 4 | pending | not_run |", "| 5 | broken | failed |", "guest did not boot",
                  "±5 µs (absolute)", "RTT mean (µs)", "Mann-Whitney", "Holm",
                  "ping loss mean (%)", "cpu_us_per_packet"):
        assert words in md, words
    html = (out / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    assert 'src="figures/' not in html
    # the answers come first: the summary opens the page, the metadata closes it
    h2 = [part.split("</h2>")[0] for part in html.split("<h2>")[1:]]
    assert h2[0] == "Summary" and h2[-1] == "Campaign metadata"
    first_table = html.index("<table>")
    assert html.index("<h2>Summary</h2>") < first_table < html.index("<h2>Campaign metadata")
    for caption in ("Parameters", "Campaign", "Scenarios as requested", "Substitutions"):
        assert html.index(f"<caption>{caption}") > html.index("<h2>Campaign metadata"), caption
    t2 = pd.read_csv(out / "tables" / "table2_rtt.csv")
    assert t2["rtt_mean_us"].tolist()[:3] == pytest.approx([11.5, 30.0, 15.0])


def test_a_flagged_rate_repetition_is_shown_and_never_averaged(tmp_path, capsys):
    # guest's repetition 2 counted 3 frames more than it sent: no loss can be measured
    rate = store.rate_frame([*store.RATE_ROWS, ("guest", 2, "pf_ring", 1000, 1003, 64, 1000.0)])
    old = _campaign(tmp_path / "old", started="2025-11-25T09:00:00Z",
                    extra={"rate": store.rate_frame()})
    root = _campaign(tmp_path / "c", extra={"rate": rate})
    assert main([str(root), "--compare", str(old)]) == 4  # no history: inconclusive
    out = root / "report"
    t1 = pd.read_csv(out / "tables" / "table1_loss.csv").set_index("scenario")
    assert t1.loc["guest", "flagged_repetitions"] == 1 and t1.loc["guest", "repetitions"] == 1
    assert t1.loc["guest", "mean_pct"] == 5.0  # repetition 1 alone; never -0.3 averaged in
    assert t1.loc["guest", "sent_frames"] == 1000 and t1.loc["guest", "lost_frames"] == 50
    md = (out / "report.md").read_text()
    assert "flagged reps" in md
    assert "guest repetition 2 (3 frames more)" in md
    comparison = pd.read_csv(out / "tables" / "comparison.csv").set_index("scenario")
    assert comparison.loc["guest", "loss_new_pct"] == 5.0
    assert comparison.loc["guest", "repetitions_new"] == 2  # RTT: both repetitions count


def test_absent_tables_are_said_so(tmp_path):
    root = _campaign(tmp_path / "c")
    assert main([str(root)]) == 0
    md = (root / "report" / "report.md").read_text()
    assert "Per-packet costs (data/costs.parquet): not collected in this campaign." in md
    assert "(data/rate.parquet) was not collected in this campaign" in md


def test_out_refuses_a_foreign_folder(tmp_path, capsys):
    root = _campaign(tmp_path / "c")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main([str(root), "--out", str(foreign)]) == 2
    assert (foreign / "notes.txt").read_text() == "keep me"
    # an earlier report is replaced
    assert main([str(root), "--out", str(tmp_path / "r")]) == 0
    assert main([str(root), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "index.html").is_file()


def test_compare_exit_codes(tmp_path, capsys):
    """0 unchanged, 3 regressed, 4 inconclusive; --history reads campaign folders."""
    history = tmp_path / "history"
    for k in range(4):
        _big_campaign(history / f"h{k}", 1.0, f"2025-11-1{k}T01:00:00Z")
    old = _big_campaign(tmp_path / "night1", 1.0, "2025-11-25T01:00:00Z")
    same = _big_campaign(tmp_path / "night2", 1.0, "2025-11-26T01:00:00Z")
    slower = _big_campaign(tmp_path / "night3", 1.5, "2025-11-27T01:00:00Z")
    # nights of this lab hardly differ: with their history alone, no change is shown unchanged
    assert main([str(same), "--compare", str(old), "--history", str(history), "--no-prior"]) == 0
    md = (same / "report" / "report.md").read_text()
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "Comparison with night1: UNCHANGED" in summary
    # without a history, the prior's between-night sd (df 2) cannot show a change within 10 %
    assert main([str(same), "--compare", str(old)]) == 4
    assert "INCONCLUSIVE" in capsys.readouterr().err
    md = (same / "report" / "report.md").read_text()
    assert "Comparison with night1: INCONCLUSIVE" in md and "No history was given" in md
    # and refuses to judge anything without a prior either
    assert main([str(same), "--compare", str(old), "--no-prior"]) == 4
    capsys.readouterr()
    assert main([str(slower), "--compare", str(same), str(old), "--history", str(history)]) == 3
    err = capsys.readouterr().err
    assert "REGRESSION guest vs night2" in err and "REGRESSION guest vs night1" in err
    assert "base" not in err
    assert main([str(slower), "--compare", str(old), "--history", str(history), "--no-prior",
                 "--regression-threshold", "80"]) == 0
    report = slower / "report"
    assert (report / "figures" / "figure4_trend.png").is_file()
    trend = pd.read_csv(report / "tables" / "trend.csv")
    assert trend["campaign"].drop_duplicates().tolist() == ["night1", "night3"]
    comparison = pd.read_csv(report / "tables" / "comparison.csv")
    guest = comparison.set_index("scenario").loc["guest"]
    assert guest["median_change_pct"] == pytest.approx(50.0, abs=2.0)
    assert "history of 4 nights" in guest["between_source"]


def test_history_needs_compare_and_a_readable_folder(tmp_path, capsys):
    root = _campaign(tmp_path / "c")
    assert main([str(root), "--history", str(tmp_path)]) == 2
    assert "--history needs --compare" in capsys.readouterr().err
    old = _campaign(tmp_path / "old", started="2025-11-25T09:00:00Z")
    (tmp_path / "empty").mkdir()
    assert main([str(root), "--compare", str(old), "--history", str(tmp_path / "empty")]) == 2
    assert "nights.parquet or campaign folders" in capsys.readouterr().err


def test_compare_with_a_bad_folder_exits_2(tmp_path, capsys):
    root = _campaign(tmp_path / "c")
    assert main([str(root), "--compare", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_campaign_where_nothing_ran_still_reports_every_scenario(tmp_path):
    m = store.manifest("idle")
    for spec in m["scenarios"].values():
        spec["status"], spec["reason"] = "not_run", "no guests booted"
    root = store.write_campaign(tmp_path / "idle", manifest_data=m, tables={})
    assert main([str(root)]) == 0
    md = (root / "report" / "report.md").read_text()
    for name in store.SCENARIOS:
        assert f"| {name} | not_run |" in md
    assert "No baseline with RTT data." in md


def _blocked_campaign(root, medians, *, started="2025-11-26T01:00:00Z", control=None,
                      probes=300):
    """Scenarios with the given repetition medians (µs), one block per repetition."""
    rng = np.random.default_rng(zlib.crc32(root.name.encode()))
    rows, ping, runs = [], [], []
    for name, meds in medians.items():
        for rep, med in enumerate(meds, start=1):
            values = np.round(rng.lognormal(np.log(med), 0.2, probes))
            rows += [(name, rep, "h1", v) for v in values]
            ping.append((name, rep, "h1", probes, probes))
            runs.append({"scenario": name, "repetition": rep, "block": rep, "status": "done",
                         "reason": ""})
    m = store.manifest(root.name, started_at=started, runs=runs)
    m["scenarios"] = {n: {**store.SCENARIOS["guest" if n != "base" else "base"], "number": i}
                      for i, n in enumerate(medians, start=1)}
    if control:
        m["scenarios"][control[0]]["control_of"] = control[1]
    return store.write_campaign(root, manifest_data=m,
                                tables={"rtt": store.rtt_frame(rows=rows),
                                        "ping_summary": store.ping_frame(rows=ping)})


def test_a_control_is_reported_with_its_verdict(tmp_path):
    drift = [1.0, 1.2, 0.9, 1.1]
    root = _blocked_campaign(tmp_path / "aa", {
        "base": [40 * d for d in drift], "guest": [500 * d for d in drift],
        "guest_aa": [500 * d * e for d, e in zip(drift, [1.01, 0.99, 1.0, 1.02], strict=True)],
    }, control=("guest_aa", "guest"))
    assert main([str(root)]) == 0
    md = (root / "report" / "report.md").read_text()
    assert "## A/A control: guest_aa (a copy of guest)" in md
    assert "A/A control: guest_aa is a copy of guest, run in the same blocks" in md
    assert "a correct method must not find them different" in md
    pairs = pd.read_csv(root / "report" / "tables" / "pairwise_verdicts.csv")
    control = pairs.loc[(pairs["scenario_a"] == "guest") & (pairs["scenario_b"] == "guest_aa")]
    assert control["design"].iloc[0] == "paired"
    assert control["outcome"].iloc[0] == "equivalent"  # the blocks' drift cancels
    base = pairs.loc[(pairs["scenario_a"] == "base") & (pairs["scenario_b"] == "guest")]
    assert base["outcome"].iloc[0] == "different"


def test_a_rise_within_the_noise_between_repetitions_is_no_regression(tmp_path, capsys):
    old = _blocked_campaign(tmp_path / "old", {"guest": [100.0, 130.0, 80.0]},
                            started="2025-11-25T01:00:00Z", probes=2000)
    new = _blocked_campaign(tmp_path / "new", {"guest": [115.0, 150.0, 92.0]}, probes=2000)
    assert main([str(new), "--compare", str(old)]) == 4
    row = pd.read_csv(new / "report" / "tables" / "comparison.csv").iloc[0]
    assert row["median_change_pct"] == pytest.approx(15.0, abs=3.0)
    # not significant, and not shown within ±10 % either: inconclusive, never "unchanged"
    assert row["median_p_holm"] > 0.05 and row["verdict"] == "inconclusive"
    assert row["median_ci_low_pct"] < -10 and row["median_ci_high_pct"] > 10
