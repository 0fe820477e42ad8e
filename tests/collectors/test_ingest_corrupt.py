"""A corrupt raw file fails its repetition alone: every other one is ingested, nothing
already collected is lost, and the reason names the file and the line.

The campaign is made of real captures (tests/fixtures/ping, fping and procfs: four
repetitions of ping, fping beside it and the sender's netdev counters), ingested once;
then one raw file is corrupted the way the parsers' fuzzing found (a 5000-digit
icmp_seq, a 400-digit error count...) and the campaign ingested again.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import collectors.ingest
from collectors import base
from collectors.ingest import ingest
from kvmnetlab.store import Store, run_dir
from tests.helpers import TESTS

FIXTURES = TESTS / "fixtures"
PARAMS = {"repetitions": 4, "ping_count": 20, "ping_interval_s": 0.01, "ping_payload_bytes": 56,
          "seed": 1, "scenarios": ["a"]}
PING = {1: "clean.txt", 2: "dup.txt", 3: "unanswered.txt", 4: "unreachable.txt"}
TABLES = ("rtt", "ping_summary", "fping_rtt", "counters")


def campaign(tmp_path) -> Store:
    store = Store(tmp_path / "c")
    manifest = store.create("c", PARAMS, {"a": {"number": 1}},
                            [{"scenario": "a", "repetition": r} for r in PING],
                            {"name": "t"}, {"commit": None, "dirty": None})
    for rep, capture in PING.items():
        staging = tmp_path / f"stage{rep}" / "h1"
        staging.mkdir(parents=True)
        shutil.copyfile(FIXTURES / "ping" / capture, staging / "ping.txt")
        shutil.copyfile(FIXTURES / "fping" / "clean.stderr", staging / "fping.txt.stderr")
        for phase in ("before", "after"):
            shutil.copyfile(FIXTURES / "procfs" / "sys_statistics.txt",
                            staging / f"netdev_{phase}.sysfs.txt")
        store.commit_raw(manifest, staging.parent, run_dir("a", rep))
        store.find_run(manifest, "a", rep).update(
            status="done", context={"hosts": {"sender": "h1"}, "endpoint": {},
                                    "collectors": ["ping", "fping", "netdev"]})
    store.save(manifest)
    return store


def tables(store: Store) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(store.table_path(name)) for name in TABLES}


def rows_of(table: pd.DataFrame, reps) -> pd.DataFrame:
    return table[table.repetition.isin(list(reps))].reset_index(drop=True)


def damaged(raw) -> list[str]:
    """What the store's check says once ``raw`` is corrupted: that file alone (every
    table is the one the manifest records)."""
    return [f"{raw}: sha256 differs from the manifest (file was changed after it was "
            "collected)"]


def corrupt(store: Store, rep: int, name: str, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` in a committed raw file (as a damaged disk or a tool
    gone wrong would); the 1-based line changed."""
    path = store.root / run_dir("a", rep) / "h1" / name
    lines = path.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if old in line)
    lines[at] = lines[at].replace(old, new, 1)
    path.write_text("".join(lines))
    return at + 1


@pytest.fixture
def ingested(tmp_path):
    store = campaign(tmp_path)
    first = ingest(store.root)
    assert first["failed"] == []
    assert {r["status"] for r in store.load()["runs"]} == {"done"}
    return store, tables(store)


@pytest.mark.parametrize(("rep", "old", "new", "why"), [
    (1, "icmp_seq=5 ", "icmp_seq=" + "5" * 5000 + " ", "icmp_seq"),  # a bare ValueError
    (4, "+4 errors", "+" + "4" * 400 + " errors", "errors"),  # OverflowError in a table
    (3, "time=0.050 ms", "time=0.150 ms", "outside the summary's rtt min/max"),
    (2, "time=0.118 ms", "time=inf ms", "unrecognised line"),
])
def test_a_corrupt_ping_file_fails_its_repetition_alone(ingested, rep, old, new, why):
    store, before = ingested
    raw = store.root / run_dir("a", rep) / "h1" / "ping.txt"
    lineno = corrupt(store, rep, "ping.txt", old, new)
    corrupted = raw.read_bytes()

    outcome = ingest(store.root)

    manifest = store.load()
    run = store.find_run(manifest, "a", rep)
    assert run["status"] == "failed"
    assert run["reason"].startswith(f"parse error: {raw}:{lineno}: "), run["reason"][:200]
    assert why in run["reason"]
    assert len(outcome["failed"]) == 1 and outcome["failed"][0].startswith(f"{raw}:{lineno}: ")
    others = [r for r in PING if r != rep]
    assert all(store.find_run(manifest, "a", r)["status"] == "done" for r in others)
    after = tables(store)
    for name in TABLES:  # every other repetition's rows exactly as they were
        pd.testing.assert_frame_equal(rows_of(after[name], others), rows_of(before[name], others))
        assert rep not in set(after[name].repetition)
    assert raw.read_bytes() == corrupted  # raw/ is never touched
    assert store.verify() == damaged(raw)


def test_a_corrupt_file_beside_ping_is_recorded_on_its_repetition(ingested):
    """fping is not the RTT measurement: its repetition keeps its RTT rows, and records
    the fping file's error (file and line)."""
    store, before = ingested
    raw = store.root / run_dir("a", 2) / "h1" / "fping.txt.stderr"
    lineno = corrupt(store, 2, "fping.txt.stderr", "0.025", "1" + "0" * 400)

    outcome = ingest(store.root)

    run = store.find_run(store.load(), "a", 2)
    assert run["status"] == "done"
    assert run["collector_errors"]["fping"].startswith(f"{raw}:{lineno}: ")
    assert outcome["failed"] == [run["collector_errors"]["fping"]]
    after = tables(store)
    pd.testing.assert_frame_equal(after["rtt"], before["rtt"])
    assert 2 not in set(after["fping_rtt"].repetition)
    assert store.verify() == damaged(raw)


def test_an_exception_other_than_a_parse_error_fails_its_repetition_naming_the_file(
        ingested, monkeypatch):
    """A collector that raises something else (a bug, or a value no parser checked) fails
    its repetition, naming the collector and the raw file it read last."""
    store, before = ingested
    netdev = base.REGISTRY["netdev"]
    real = netdev.parse

    def parse(self, files, ctx):
        if ctx.repetition == 3:
            files.path("sender", "netdev_after.sysfs.txt")
            raise OverflowError("Python int too large to convert to C long")
        return real(self, files, ctx)

    monkeypatch.setattr(netdev, "parse", parse)
    outcome = ingest(store.root)

    manifest = store.load()
    run = store.find_run(manifest, "a", 3)
    raw = store.root / run_dir("a", 3) / "h1" / "netdev_after.sysfs.txt"
    assert run["status"] == "failed"
    assert run["reason"] == (f"ingest error: netdev: {raw}: OverflowError: Python int too "
                             "large to convert to C long")
    assert len(outcome["failed"]) == 1
    assert [store.find_run(manifest, "a", r)["status"] for r in PING] == \
        ["done", "done", "failed", "done"]
    after = tables(store)
    pd.testing.assert_frame_equal(rows_of(after["rtt"], (1, 2, 4)),
                                  rows_of(before["rtt"], (1, 2, 4)))
    assert store.verify() == []


def test_a_value_a_table_cannot_hold_fails_its_repetition_alone(ingested, monkeypatch):
    """Rows are converted to the tables' types one repetition at a time: a count beyond
    int64 fails that repetition, and no table is written before all are built."""
    store, before = ingested
    real = collectors.ingest.derive_costs

    def derive_costs(counters, rate):
        if counters and counters[0]["repetition"] == 2:
            counters[0]["delta"] = 2**70
        return real(counters, rate)

    monkeypatch.setattr(collectors.ingest, "derive_costs", derive_costs)
    outcome = ingest(store.root)

    run = store.find_run(store.load(), "a", 2)
    assert run["status"] == "failed"
    assert run["reason"].startswith("ingest error: raw/a/2: StoreError: table counters: "
                                    "OverflowError"), run["reason"]
    assert outcome["failed"] == [run["reason"].removeprefix("ingest error: ")]
    after = tables(store)
    for name in TABLES:
        pd.testing.assert_frame_equal(rows_of(after[name], (1, 3, 4)),
                                      rows_of(before[name], (1, 3, 4)))
    assert store.verify() == []


def test_no_mutated_raw_file_stops_an_ingest(tmp_path):
    """24 repetitions, each with one of its raw files (ping, fping or netdev counters)
    mutated by the parsers' fuzzing before it is committed: one ingest takes them all,
    each repetition ends done or failed by its own files, and a done one's ping rows are
    in the tables."""
    from tests.collectors import fuzzing

    reps = range(1, 25)
    store = Store(tmp_path / "c")
    manifest = store.create("c", {**PARAMS, "repetitions": len(reps)}, {"a": {"number": 1}},
                            [{"scenario": "a", "repetition": r} for r in reps],
                            {"name": "t"}, {"commit": None, "dirty": None})
    victims = ("ping.txt", "fping.txt.stderr", "netdev_after.sysfs.txt")
    for rep in reps:
        staging = tmp_path / f"stage{rep}" / "h1"
        staging.mkdir(parents=True)
        files = {"ping.txt": FIXTURES / "ping" / PING[1 + rep % 4],
                 "fping.txt.stderr": FIXTURES / "fping" / "clean.stderr",
                 "netdev_before.sysfs.txt": FIXTURES / "procfs" / "sys_statistics.txt",
                 "netdev_after.sysfs.txt": FIXTURES / "procfs" / "sys_statistics.txt"}
        for name, source in files.items():
            data = source.read_bytes()
            if name == victims[rep % 3]:
                data, _ = fuzzing.mutate(data, 1000 + rep)
            (staging / name).write_bytes(data)
        store.commit_raw(manifest, staging.parent, run_dir("a", rep))
        store.find_run(manifest, "a", rep).update(
            status="done", context={"hosts": {"sender": "h1"}, "endpoint": {},
                                    "collectors": ["ping", "fping", "netdev"]})
    store.save(manifest)

    outcome = ingest(store.root)

    manifest = store.load()
    done = {r["repetition"] for r in manifest["runs"] if r["status"] == "done"}
    for run in manifest["runs"]:
        assert run["status"] in ("done", "failed")
        own = f"{store.root / run_dir('a', run['repetition'])}/"
        if run["status"] == "failed":
            assert own in run["reason"], run["reason"]
        for message in (run.get("collector_errors") or {}).values():
            assert own in message, message
    assert done and done != set(reps)  # the mutations both pass and fail
    rtt = pd.read_parquet(store.table_path("rtt"))
    assert set(rtt.repetition) == done  # ping is the RTT measurement: it parsed
    assert outcome["rows"] == len(rtt)
    assert store.verify() == []
