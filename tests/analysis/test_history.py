"""The nightly history: one night's rows from its campaign folder, the catalog, the segments.

Every expected number is computed here, independently, from the tables the test wrote
(numpy's percentile, plain sums), never by the code under test.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import history
from analysis.load import InputError
from kvmnetlab.errors import StoreError
from tests.analysis_data import store
from tests.helpers import TESTS

CAMPAIGNS = TESTS / "analysis_data" / "campaigns"
SCENARIOS = ("base", "guest")
REPS = 3
HOSTS = ("h1", "h2", "hv", "g1")


def profile_host(host: str, *, kernel: str, accel: str | None) -> dict:
    """A capability document as lab.profile.hosts holds it (trimmed)."""
    return {
        "host": host, "reachable": True, "hostname": host, "kernel_release": kernel,
        "kernel_cmdline": "quiet", "modules": True, "modules_reason": "", "kvm_device": True,
        "kvm_openable": True, "accel": accel if host == "hv" else None,
        # a reason carries the probe's timing: it must not change the lab's identity
        "accel_reason": f"kvm: marker after {np.random.default_rng().uniform(1, 9):.1f} s",
        "vhost_net": host == "hv", "pf_ring": False, "pf_ring_version": None,
        "pf_ring_reason": "pf_ring.ko is not loaded", "elvis_patched_kernel": False,
        "qemu_version": "QEMU emulator version 7.2.22" if host == "hv" else None,
        "qemu_poll_us": host == "hv", "halt_poll_ns_value": 200000, "cpus_online": 2,
        "isolated_cores": "", "nohz_full": "", "governors": [],
        "nics": {"data0": {"address": f"198.18.0.{len(host)}", "driver": "veth",
                           "rx_queues": 1, "tx_queues": 1, "offloads_on": ["sg"],
                           "key_offloads": {"tso": True, "gro": False}}},
        "tools": {"ping": "ping from iputils 20221126"},
        "kvm_host": {"thp": {"requested": "never", "status": "applied", "observed": "never",
                             "reason": "set by kvm_host"}},
    }


def night_manifest(campaign_id: str, *, commit: str = "a" * 40, kernel: str = "6.1.0-50",
                   accel: str = "kvm", qemu: str = "QEMU emulator version 7.2.22",
                   ping_count: int = 50, seed: int = 1, started_at: str = "2026-11-01T02:15:00Z",
                   statuses: dict | None = None) -> dict:
    """A current-format manifest: two scenarios, REPS repetitions each, all done unless
    ``statuses`` says otherwise ((scenario, repetition) -> status)."""
    m = store.manifest(campaign_id)
    m["started_at"] = started_at
    m["git"] = {"commit": commit, "dirty": False}
    m["tool_versions"] = {
        "kernel": {h: kernel for h in HOSTS},
        "qemu": {h: (qemu if h == "hv" else None) for h in HOSTS},
        "ping": {h: "ping from iputils 20221126" for h in HOSTS},
        "ansible-core": {"controller": "2.19.14"},
    }
    m["lab"] = {"name": "local", "kind": "embedded", "profile": {
        "format_version": 1,
        "hosts": {h: profile_host(h, kernel=kernel, accel=accel) for h in HOSTS},
        "roles": {"hypervisor": "hv", "guests": [{"name": "g1", "hypervisor": "hv"}]},
        "declared": {"passthrough": False}}}
    m["parameters"] = {"repetitions": REPS, "ping_count": ping_count, "ping_interval_s": 0.01,
                       "ping_payload_bytes": 56, "seed": seed, "control": None}
    m["scenarios"] = {s: copy.deepcopy(store.SCENARIOS[s]) for s in SCENARIOS}
    for spec in m["scenarios"].values():
        spec["knobs"] = {"poll_us": 50, "halt_poll_ns": 200000}
    statuses = statuses or {}
    m["runs"] = [{"scenario": s, "repetition": r, "block": r,
                  "status": statuses.get((s, r), "done"), "reason": None}
                 for r in range(1, REPS + 1) for s in SCENARIOS]
    return m


def night_tables(rng: np.random.Generator, *, scale: float = 1.0, rate: bool = True,
                 costs: bool = True) -> dict[str, pd.DataFrame]:
    """RTTs (40 probes per repetition over two hosts, a few unanswered), ping summaries,
    rate and costs, per (scenario, repetition)."""
    rtt, ping, rate_rows, cost_rows = [], [], [], []
    for s, base in zip(SCENARIOS, (20.0, 600.0), strict=True):
        for r in range(1, REPS + 1):
            level = base * scale * rng.lognormal(0, 0.03)
            for host in ("h1", "h2"):
                values = level * rng.lognormal(0, 0.2, size=20)
                values[rng.random(20) < 0.1] = math.nan
                rtt += [(s, r, host, float(v)) for v in values]
                sent = 20
                ping.append((s, r, host, sent, sent - int(np.isnan(values).sum())))
            rate_rows.append((s, r, "trafgen_tcpdump", 1000, 1000 - int(rng.integers(0, 30)),
                              60, 10000.0))
            cost_rows.append((s, r, "h1", "cpu_us_per_packet", float(rng.uniform(2, 3)),
                              store.CPU))
            cost_rows.append((s, r, "hv", "cpu_us_per_packet", float(rng.uniform(5, 6)),
                              store.CPU))
    tables = {"rtt": store.rtt_frame(rtt), "ping_summary": store.ping_frame(ping)}
    if rate:
        tables["rate"] = store.rate_frame(rate_rows)
    if costs:
        tables["costs"] = store.cost_frame(cost_rows)
    return tables


def write_night(root: Path, name: str, rng: np.random.Generator, *, scale: float = 1.0,
                tables: dict | None = None, **manifest_args) -> Path:
    m = night_manifest(name, **manifest_args)
    return store.write_campaign(root / name, manifest_data=m,
                                tables=tables or night_tables(rng, scale=scale))


def by_key(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.set_index(["scenario", "metric"])


# --------------------------------------------------------------------------- one night


def test_values_are_night_values_of_per_repetition_statistics(tmp_path):
    """RTT percentiles: the geometric mean of the repetitions' (the report's typical median);
    losses: the arithmetic mean."""
    rng = np.random.default_rng(7)
    tables = night_tables(rng)
    folder = write_night(tmp_path, "c1", rng, tables=tables)
    rows = history.night_rows(folder, night="20261101T021500Z")

    assert list(rows.columns) == list(history.COLUMNS)
    assert rows["night"].eq("20261101T021500Z").all() and rows["outcome"].eq("done").all()
    got = by_key(rows)
    rtt = tables["rtt"]
    for s in SCENARIOS:
        for metric, q in (("rtt_p50_us", 50), ("rtt_p90_us", 90), ("rtt_p99_us", 99)):
            per_rep = [np.percentile(rtt.loc[(rtt.scenario == s) & (rtt.repetition == r)
                                             & rtt.answered, "rtt_us"], q)
                       for r in range(1, REPS + 1)]
            row = got.loc[(s, metric)]
            assert row["value"] == pytest.approx(np.exp(np.mean(np.log(per_rep))), rel=1e-12)
            assert row["value"] < np.mean(per_rep)  # not the arithmetic mean
            assert row["sd"] == pytest.approx(np.std(per_rep, ddof=1), rel=1e-9)
            assert row["n_reps"] == REPS and row["unit"] == "µs"
        ping = tables["ping_summary"].query("scenario == @s").groupby("repetition")[
            ["transmitted", "received"]].sum()
        loss = 100 * (ping.transmitted - ping.received) / ping.transmitted
        assert got.loc[(s, "ping_loss_pct"), "value"] == pytest.approx(loss.mean())
        assert got.loc[(s, "ping_loss_pct"), "unit"] == "%"
        rate = tables["rate"].query("scenario == @s")
        rate_loss = 100 * (rate.sent - rate.received) / rate.sent
        assert got.loc[(s, "rate_loss_pct"), "value"] == pytest.approx(rate_loss.mean())
        costs = tables["costs"].query("scenario == @s and host == 'hv'")
        row = got.loc[(s, "cpu_us_per_packet[hv]")]
        assert row["value"] == pytest.approx(costs.value.mean())
        assert row["unit"] == store.CPU
    # no throughput table, no throughput metric (never a zero)
    assert not rows["metric"].isin(["ndr_pps", "pdr_pps"]).any()
    assert rows["value"].notna().all()
    context = json.loads(rows["context"].iloc[0])
    assert context["git"]["commit"] == "a" * 40
    assert context["tool_versions"]["kernel"]["hv"] == "6.1.0-50"
    assert context["lab"]["hosts"]["hv"]["accel"] == "kvm"
    assert context["parameters"]["ping_count"] == 50
    assert context["scenarios"]["guest"]["substitutions"] == ["io_path: virtio → virtio_user"]
    assert rows["context"].iloc[0] == history.canonical(context)  # compact, sorted keys


@pytest.mark.parametrize("legacy", [False, True], ids=["flagged-by-ingest", "older-campaign"])
def test_a_flagged_rate_repetition_is_left_out_of_the_nights_loss(tmp_path, legacy):
    rng = np.random.default_rng(5)
    tables = night_tables(rng)
    rate = tables["rate"]
    # guest repetition 2 counted 7 frames more than it sent (foreign frames)
    bad = (rate.scenario == "guest") & (rate.repetition == 2)
    rows = list(rate[["scenario", "repetition", "backend", "sent", "received", "frame_bytes",
                      "rate_pps"]].itertuples(index=False, name=None))
    rows = [(*r[:4], r[3] + 7, *r[5:]) if b else r for r, b in zip(rows, bad, strict=True)]
    tables["rate"] = store.rate_frame(rows, legacy=legacy)
    got = by_key(history.night_rows(write_night(tmp_path, "c1", rng, tables=tables),
                                    night="20261101T021500Z"))
    kept = rate.loc[(rate.scenario == "guest") & ~bad]
    loss = 100 * (kept.sent - kept.received) / kept.sent
    row = got.loc[("guest", "rate_loss_pct")]
    assert row["n_reps"] == REPS - 1
    assert row["value"] == pytest.approx(loss.mean())
    assert row["sd"] == pytest.approx(loss.std(ddof=1))
    assert got.loc[("base", "rate_loss_pct"), "n_reps"] == REPS


def test_only_done_runs_count_and_absent_tables_give_absent_metrics(tmp_path):
    rng = np.random.default_rng(8)
    tables = night_tables(rng, rate=False, costs=False)
    folder = write_night(tmp_path, "c1", rng, tables=tables,
                         statuses={("guest", 3): "failed"})
    got = by_key(history.night_rows(folder, night="n1"))
    rtt = tables["rtt"]
    per_rep = [np.percentile(rtt.loc[(rtt.scenario == "guest") & (rtt.repetition == r)
                                     & rtt.answered, "rtt_us"], 50) for r in (1, 2)]
    assert got.loc[("guest", "rtt_p50_us"), "value"] == pytest.approx(
        np.exp(np.mean(np.log(per_rep))))
    assert got.loc[("guest", "rtt_p50_us"), "n_reps"] == 2
    assert got.loc[("base", "rtt_p50_us"), "n_reps"] == REPS
    assert set(got.index.get_level_values("metric")) == {
        "rtt_p50_us", "rtt_p90_us", "rtt_p99_us", "ping_loss_pct"}


def test_one_repetition_has_no_sd(tmp_path):
    rng = np.random.default_rng(9)
    statuses = {(s, r): "failed" for s in SCENARIOS for r in (2, 3)}
    folder = write_night(tmp_path, "c1", rng, statuses=statuses)
    rows = history.night_rows(folder, night="n1")
    assert rows["n_reps"].eq(1).all() and rows["sd"].isna().all()


def test_throughput_table_when_present(tmp_path):
    rng = np.random.default_rng(10)
    tables = night_tables(rng)
    tables["throughput"] = store.throughput_frame(pd.DataFrame({
        "scenario": ["base", "base", "base", "guest"], "repetition": [1, 2, 3, 1],
        "ndr_pps": [1.0e6, 1.2e6, 1.1e6, 2.0e5], "pdr_pps": [1.5e6, 1.6e6, 1.7e6, math.nan]}))
    folder = write_night(tmp_path, "c1", rng, tables=tables)
    got = by_key(history.night_rows(folder, night="n1"))
    assert got.loc[("base", "ndr_pps"), "value"] == pytest.approx(1.1e6)
    assert got.loc[("base", "pdr_pps"), "sd"] == pytest.approx(1e5)
    assert got.loc[("guest", "ndr_pps"), "n_reps"] == 1
    assert ("guest", "pdr_pps") not in got.index  # NaN is no value
    assert got.loc[("base", "ndr_pps"), "unit"] == history.METRICS["ndr_pps"] == "packets/s"
    assert history.better("ndr_pps") == history.better("pdr_pps") == 1
    assert history.better("rtt_p99_us") == history.better("cpu_us_per_packet[hv]") == -1


def test_captured_campaign_values_match_an_independent_computation():
    folder = CAMPAIGNS / "quickstart1"
    rows = by_key(history.night_rows(folder, night="20261129T221500Z"))
    rtt = pd.read_parquet(folder / "data" / "rtt.parquet")
    answered = rtt.loc[rtt.answered]
    for s, group in answered.groupby("scenario", observed=True):
        p99 = group.groupby("repetition")["rtt_us"].apply(lambda v: np.percentile(v, 99))
        assert rows.loc[(str(s), "rtt_p99_us"), "value"] == pytest.approx(
            np.exp(np.log(p99).mean()))
        assert rows.loc[(str(s), "rtt_p99_us"), "n_reps"] == len(p99)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(rows["campaign_id"]) == {manifest["campaign_id"]}
    assert set(rows["started_at"]) == {manifest["started_at"]}
    assert set(rows["commit"]) == {manifest["git"]["commit"]}


# --------------------------------------------------------------------------- hashes


def test_hashes_ignore_the_seed_and_timings_and_follow_parameters_and_lab(tmp_path):
    rng = np.random.default_rng(11)

    def hashes(name, **kw):
        row = history.night_rows(write_night(tmp_path, name, rng, **kw), night=name).iloc[0]
        return row["params_hash"], row["lab_hash"]

    first = hashes("a", seed=1)
    assert len(first[0]) == len(first[1]) == 16
    assert hashes("b", seed=2, commit="b" * 40) == first  # seed, commit, timing text: same
    assert hashes("c", ping_count=100)[0] != first[0]
    assert hashes("c2", ping_count=100)[1] == first[1]
    assert hashes("d", accel="tcg")[1] != first[1]
    assert hashes("e", qemu="QEMU emulator version 8.0.0") == first  # a version is context


# --------------------------------------------------------------------------- catalog


def test_catalog_update_replaces_nights_and_keeps_the_others(tmp_path):
    rng = np.random.default_rng(12)
    hist = tmp_path / "history"
    empty = history.read_catalog(hist)
    assert empty.empty and list(empty.columns) == list(history.COLUMNS)
    assert empty.dtypes.to_dict() == history.empty().dtypes.to_dict()

    n2 = history.night_rows(write_night(tmp_path, "c2", rng), night="20261102T021500Z")
    n1 = history.night_rows(write_night(tmp_path, "c1", rng), night="20261101T021500Z")
    history.update_catalog(hist, n2)
    catalog = history.update_catalog(hist, n1)
    assert catalog["night"].is_monotonic_increasing
    assert len(catalog) == len(n1) + len(n2)
    again = history.night_rows(write_night(tmp_path, "c2b", rng, scale=2.0),
                               night="20261102T021500Z")
    catalog = history.update_catalog(hist, again)
    assert len(catalog) == len(n1) + len(again)
    assert set(catalog.loc[catalog.night == "20261102T021500Z", "campaign_id"]) == {"c2b"}
    failed = history.outcome_row(night="20261103T021500Z", started_at="2026-11-03T02:15:00Z",
                                 outcome="failed", reason="guest did not boot")
    catalog = history.update_catalog(hist, failed)
    on_disk = history.read_catalog(hist)
    pd.testing.assert_frame_equal(on_disk, catalog)
    # a night's rows share one context string, in memory as read back
    for frame in (again, on_disk.loc[on_disk.outcome == "done"]):
        shared = frame.groupby("night")["context"].agg(lambda c: len({id(t) for t in c}))
        assert (shared == 1).all()
    assert [p.name for p in hist.iterdir()] == [history.CATALOG]  # no temporary file left
    last = on_disk.iloc[-1]
    assert (last["outcome"], last["reason"], last["n_reps"]) == (
        "failed", "guest did not boot", 0)
    assert pd.isna(last["metric"]) and pd.isna(last["params_hash"]) and math.isnan(last["value"])
    with pytest.raises(ValueError, match="done"):
        history.outcome_row(night="n", started_at=None, outcome="done", reason=None)


def test_segments_start_where_parameters_or_lab_change(tmp_path):
    rng = np.random.default_rng(13)
    plan = [("20261101", {}), ("20261102", {"commit": "b" * 40}),
            ("20261103", {"ping_count": 100}), ("20261104", {"ping_count": 100}),
            ("20261105", {"ping_count": 100, "accel": "tcg"}),
            ("20261107", {"ping_count": 100, "accel": "tcg", "kernel": "6.1.0-51"})]
    rows = [history.night_rows(write_night(tmp_path, night, rng, **kw), night=night)
            for night, kw in plan]
    rows.insert(4, history.outcome_row(night="20261104T9", started_at=None,
                                       outcome="refused", reason="lab busy"))
    catalog = history.update_catalog(tmp_path / "h", pd.concat(rows))
    seg = history.segments(catalog)
    assert list(seg.columns) == ["night", "segment", "segment_reason"]
    assert seg["night"].tolist() == [n for n, _ in plan]  # done nights only
    assert seg["segment"].tolist() == [0, 0, 1, 1, 2, 3]
    reasons = seg.groupby("segment")["segment_reason"].first()
    assert pd.isna(reasons[0])
    assert reasons[1].startswith("parameters changed (params_hash ")
    assert "parameters.ping_count: 50 → 100" in reasons[1]
    assert reasons[2] == "lab changed: hv accel kvm → tcg"
    assert "hv kernel_release 6.1.0-50 → 6.1.0-51" in reasons[3]


def test_differences_name_commit_kernel_and_versions():
    old = night_manifest("a")
    new = night_manifest("b", commit="c" * 40, kernel="6.1.0-51",
                         qemu="QEMU emulator version 8.0.0", ping_count=60, seed=99)
    path = Path("manifest.json")
    diff = history.differences(history.context(path, old), history.context(path, new))
    assert f"commit: {'a' * 12} → {'c' * 12}" in diff
    assert "hv kernel_release: 6.1.0-50 → 6.1.0-51" in diff
    assert "hv qemu: QEMU emulator version 7.2.22 → QEMU emulator version 8.0.0" in diff
    assert "parameters.ping_count: 50 → 60" in diff
    assert not any("seed" in d for d in diff)
    assert sum("6.1.0-51" in d and d.startswith("hv ") for d in diff) == 1  # listed once
    assert history.differences(history.context(path, old), history.context(path, old)) == []


# --------------------------------------------------------------------------- bad input


def test_malformed_manifest_names_file_and_field(tmp_path):
    rng = np.random.default_rng(14)
    cases = [
        ("lab.profile.hosts", lambda m: m["lab"]["profile"].update(hosts="kvmnl-h1")),
        ("runs[2].repetition", lambda m: m["runs"][2].update(repetition="one")),
        ("git.commit", lambda m: m["git"].update(commit=1234)),
        ("scenarios.guest.knobs", lambda m: m["scenarios"]["guest"].update(knobs=[1])),
        ("format_version", lambda m: m.pop("format_version")),  # load_campaign's own check
    ]
    for field, spoil in cases:
        m = night_manifest("bad")
        spoil(m)
        folder = store.write_campaign(tmp_path / field, manifest_data=m,
                                      tables=night_tables(rng))
        with pytest.raises(InputError) as info:
            history.night_rows(folder, night="n1")
        assert isinstance(info.value, StoreError)
        assert info.value.path == str(folder / "manifest.json")
        assert info.value.field == field
        assert f"manifest.json: {field}" in str(info.value)


def test_malformed_throughput_table_names_file_and_column(tmp_path):
    rng = np.random.default_rng(15)
    tables = night_tables(rng)
    tables["throughput"] = store.throughput_frame(pd.DataFrame(
        {"scenario": ["base"], "repetition": [1], "ndr_pps": ["fast"], "pdr_pps": [1.0]}))
    folder = write_night(tmp_path, "c1", rng, tables=tables)
    with pytest.raises(InputError) as info:
        history.night_rows(folder, night="n1")
    assert info.value.path.endswith("data/throughput.parquet")
    assert info.value.field == "ndr_pps"


def test_older_manifest_without_runs_git_or_host_profiles(tmp_path):
    m = store.manifest("old")  # flat lab profile, tool name -> version string, few runs
    for key in ("git", "runs"):
        m.pop(key)
    folder = store.write_campaign(tmp_path / "old", manifest_data=m)
    rows = history.night_rows(folder, night="n1")
    assert set(rows["scenario"]) == {"base", "guest", "elvis"}  # every repetition counts
    assert rows["commit"].isna().all()
    context = json.loads(rows["context"].iloc[0])
    assert context["lab"]["hosts"] == {"lab": {"kvm": False, "vhost_net": False,
                                               "accel": "tcg"}}
    assert context["tool_versions"] == {"ping": "iputils 20221126"}


def test_a_night_without_results_keeps_its_row(tmp_path):
    m = night_manifest("empty", statuses={(s, r): "failed" for s in SCENARIOS
                                          for r in range(1, REPS + 1)})
    folder = store.write_campaign(tmp_path / "empty", manifest_data=m,
                                  tables=night_tables(np.random.default_rng(16)))
    rows = history.night_rows(folder, night="n1")
    assert len(rows) == 1 and pd.isna(rows["metric"].iloc[0])
    assert rows["n_reps"].iloc[0] == 0 and isinstance(rows["lab_hash"].iloc[0], str)
