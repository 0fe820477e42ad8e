"""Raw ping output in a result store becomes tidy tables; bad raw files fail their run only."""

import os
import shutil

import pandas as pd

from collectors.ingest import ingest
from kvmnetlab.store import Store, run_dir
from tests.helpers import TESTS

FIXTURES = TESTS / "fixtures" / "ping"
PARAMS = {"repetitions": 2, "ping_count": 10, "ping_interval_s": 0.01, "ping_payload_bytes": 56,
          "seed": 1, "scenarios": ["a"]}


def store_with(tmp_path, files):
    store = Store(tmp_path / "c")
    manifest = store.create("c", PARAMS, {"a": {"number": 1}},
                            [{"scenario": "a", "repetition": r} for r in (1, 2)],
                            {"name": "t"}, {"commit": None, "dirty": None})
    for rep, fixture in files.items():
        staging = tmp_path / f"stage{rep}" / "h1"
        staging.mkdir(parents=True)
        shutil.copyfile(FIXTURES / fixture, staging / "ping.txt")
        store.commit_raw(manifest, staging.parent, run_dir("a", rep))
        store.find_run(manifest, "a", rep).update(
            status="done", context={"hosts": {"sender": "h1"}, "endpoint": {},
                                    "collectors": ["ping"]})
    store.save(manifest)
    return store


def test_ingest_writes_one_row_per_probe_and_a_summary(tmp_path):
    store = store_with(tmp_path, {1: "clean.txt", 2: "unanswered.txt"})
    outcome = ingest(store.root)
    assert outcome["failed"] == []
    rtt = pd.read_parquet(store.root / "data" / "rtt.parquet")
    summary = pd.read_parquet(store.root / "data" / "ping_summary.parquet")
    for rep, fixture in ((1, "clean.txt"), (2, "unanswered.txt")):
        text = (FIXTURES / fixture).read_text().splitlines()
        replies = [line for line in text if " bytes from " in line and "DUP!" not in line]
        last = next(line for line in text if "packets transmitted" in line)
        transmitted = int(last.split()[0])
        received = int(last.split(", ")[1].split()[0])
        rows = rtt[rtt.repetition == rep]
        assert rows.answered.sum() == len(replies) == received
        assert len(rows) == transmitted
        first_ms = float(replies[0].split("time=")[1].split()[0])
        assert rows.sort_values("seq").rtt_us.dropna().iloc[0] == first_ms * 1000
        row = summary[summary.repetition == rep].iloc[0]
        assert row.loss_pct == 100 * (transmitted - received) / transmitted
        assert row.interval_s == 0.01
    assert rtt.rtt_us[~rtt.answered].isna().all()
    manifest = store.load()
    assert "data/rtt.parquet" in manifest["files"]
    assert store.verify() == []


def test_truncated_raw_file_fails_only_its_run_and_names_file_and_line(tmp_path):
    store = store_with(tmp_path, {1: "clean.txt", 2: "truncated.txt"})
    before = (store.root / "raw/a/2/h1/ping.txt").read_bytes()
    outcome = ingest(store.root)
    assert len(outcome["failed"]) == 1
    assert "raw/a/2/h1/ping.txt:" in outcome["failed"][0]
    manifest = store.load()
    bad = store.find_run(manifest, "a", 2)
    assert bad["status"] == "failed"
    assert bad["reason"].startswith("parse error: ")
    assert store.find_run(manifest, "a", 1)["status"] == "done"
    assert (store.root / "raw/a/2/h1/ping.txt").read_bytes() == before
    rtt = pd.read_parquet(store.root / "data" / "rtt.parquet")
    assert set(rtt.repetition) == {1}


PROCFS = TESTS / "fixtures" / "procfs"


def test_unreadable_raw_files_fail_their_runs_and_ingest_goes_on(tmp_path):
    """Four runs of real captures (ping/clean.txt, and procfs/sys_statistics.txt as the
    sender's netdev counters before and after); then, in the committed store, run 2's
    ping.txt becomes a directory, run 3's netdev counters after (not the RTT measurement)
    a FIFO with no writer, and run 4's ping.txt a dangling symbolic link. All three fail
    to read as root too (chmod 000 would not): each fails its run, naming the file."""
    store = Store(tmp_path / "c")
    manifest = store.create("c", {**PARAMS, "repetitions": 4}, {"a": {"number": 1}},
                            [{"scenario": "a", "repetition": r} for r in (1, 2, 3, 4)],
                            {"name": "t"}, {"commit": None, "dirty": None})
    for rep in (1, 2, 3, 4):
        staging = tmp_path / f"stage{rep}" / "h1"
        staging.mkdir(parents=True)
        shutil.copyfile(FIXTURES / "clean.txt", staging / "ping.txt")
        for phase in ("before", "after"):
            shutil.copyfile(PROCFS / "sys_statistics.txt",
                            staging / f"netdev_{phase}.sysfs.txt")
        store.commit_raw(manifest, staging.parent, run_dir("a", rep))
        store.find_run(manifest, "a", rep).update(
            status="done", context={"hosts": {"sender": "h1"}, "endpoint": {},
                                    "collectors": ["ping", "netdev"]})
    store.save(manifest)
    raw = store.root / "raw" / "a"
    (raw / "2/h1/ping.txt").unlink()
    (raw / "2/h1/ping.txt").mkdir()
    (raw / "3/h1/netdev_after.sysfs.txt").unlink()
    os.mkfifo(raw / "3/h1/netdev_after.sysfs.txt")
    (raw / "4/h1/ping.txt").unlink()
    (raw / "4/h1/ping.txt").symlink_to(raw / "4/h1/gone.txt")

    outcome = ingest(store.root)

    manifest = store.load()
    assert store.find_run(manifest, "a", 1)["status"] == "done"
    for rep, name, why in ((2, "ping.txt", "not a regular file but a directory"),
                           (3, "netdev_after.sysfs.txt", "not a regular file but a FIFO"),
                           (4, "ping.txt", "dangling symbolic link")):
        run = store.find_run(manifest, "a", rep)
        assert run["status"] == "failed", rep
        assert run["reason"].startswith("unreadable raw file: "), run["reason"]
        assert f"raw/a/{rep}/h1/{name}: cannot read: {why}" in run["reason"]
        assert any(f"raw/a/{rep}/h1/{name}" in message for message in outcome["failed"])
    assert len(outcome["failed"]) == 3
    rtt = pd.read_parquet(store.root / "data" / "rtt.parquet")
    assert set(rtt.repetition) == {1}
    counters = pd.read_parquet(store.root / "data" / "counters.parquet")
    assert set(counters.repetition) == {1}
    assert outcome["rows"] == len(rtt) == 200
