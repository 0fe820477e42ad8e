"""The result store keeps raw files verbatim, detects edits, and resumes what is missing."""

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from kvmnetlab import lock
from kvmnetlab.errors import StoreError
from kvmnetlab.store import Store, atomic_write_bytes, run_dir

PARAMS = {"repetitions": 2, "ping_count": 3, "ping_interval_s": 0.01, "ping_payload_bytes": 56,
          "seed": 1, "scenarios": ["a"]}
ORDER = [{"scenario": "a", "repetition": 2}, {"scenario": "a", "repetition": 1}]


def new_store(tmp_path):
    store = Store(tmp_path / "c1")
    manifest = store.create("c1", PARAMS, {"a": {"number": 1}}, ORDER, {"name": "t"},
                            {"commit": None, "dirty": None})
    return store, manifest


def stage(tmp_path, name, content):
    staging = tmp_path / f"staging-{name}"
    (staging / "h1").mkdir(parents=True)
    (staging / "h1" / "ping.txt").write_bytes(content)
    return staging


def test_commit_records_sha256_and_never_rewrites(tmp_path):
    store, manifest = new_store(tmp_path)
    content = b"PING 198.18.0.2\n"
    committed = store.commit_raw(manifest, stage(tmp_path, "1", content), run_dir("a", 1))
    assert committed == ["raw/a/1/h1/ping.txt"]
    entry = manifest["files"]["raw/a/1/h1/ping.txt"]
    assert entry == {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
    assert (store.root / "raw/a/1/h1/ping.txt").read_bytes() == content
    with pytest.raises(StoreError, match="never rewritten"):
        store.commit_raw(manifest, stage(tmp_path, "2", b"other"), run_dir("a", 1))
    assert (store.root / "raw/a/1/h1/ping.txt").read_bytes() == content


def test_verify_names_edited_missing_and_unrecorded_files(tmp_path):
    store, manifest = new_store(tmp_path)
    store.commit_raw(manifest, stage(tmp_path, "1", b"one\n"), run_dir("a", 1))
    store.commit_raw(manifest, stage(tmp_path, "2", b"two\n"), run_dir("a", 2))
    store.save(manifest)
    assert store.verify() == []
    (store.root / "raw/a/1/h1/ping.txt").write_bytes(b"one, edited\n")
    (store.root / "raw/a/2/h1/ping.txt").unlink()
    (store.root / "raw/a/2/h1/extra.txt").write_bytes(b"?")
    problems = store.verify()
    assert len(problems) == 3
    assert "raw/a/1/h1/ping.txt: sha256 differs" in problems[0]
    assert "raw/a/2/h1/ping.txt: recorded in the manifest but missing" in problems[1]
    assert "raw/a/2/h1/extra.txt: in raw/ but not recorded" in problems[2]
    with pytest.raises(StoreError, match="refusing to resume"):
        store.resume(PARAMS)



def test_verify_names_pruned_files_as_pruned_not_missing(tmp_path):
    store, manifest = new_store(tmp_path)
    store.commit_raw(manifest, stage(tmp_path, "1", b"one\n"), run_dir("a", 1))
    store.save(manifest)
    entry = manifest["files"]["raw/a/1/h1/ping.txt"]
    entry.update(pruned=True, pruned_at="2026-12-01T01:30:00Z")  # what nightly retention writes
    store.save(manifest)
    (store.root / "raw/a/1/h1/ping.txt").unlink()
    problems = store.verify()
    assert len(problems) == 1
    assert "raw/a/1/h1/ping.txt: pruned by nightly retention at 2026-12-01T01:30:00Z" \
        in problems[0]
    assert "missing" not in problems[0]
    with pytest.raises(StoreError, match=r"refusing to resume.*pruned"):
        store.resume(PARAMS)

def test_resume_keeps_done_runs_and_supersedes_partial_ones(tmp_path):
    store, manifest = new_store(tmp_path)
    store.commit_raw(manifest, stage(tmp_path, "1", b"done\n"), run_dir("a", 1))
    store.find_run(manifest, "a", 1)["status"] = "done"
    store.commit_raw(manifest, stage(tmp_path, "2", b"half\n"), run_dir("a", 2))
    store.find_run(manifest, "a", 2).update(status="failed", reason="guest killed")
    store.save(manifest)
    resumed = store.resume(PARAMS)
    assert store.find_run(resumed, "a", 1)["status"] == "done"
    assert store.find_run(resumed, "a", 2)["status"] == "pending"
    assert (store.root / "raw/a/1/h1/ping.txt").read_bytes() == b"done\n"
    assert (store.root / "superseded/1/a/2/h1/ping.txt").read_bytes() == b"half\n"
    assert "superseded/1/a/2/h1/ping.txt" in resumed["files"]
    assert store.verify() == []
    assert len(resumed["resumed_at"]) == 1


def test_resume_refuses_other_parameters(tmp_path):
    store, _ = new_store(tmp_path)
    with pytest.raises(StoreError, match="kvmnetlab_ping_count"):
        store.resume({**PARAMS, "ping_count": 4})


def test_bad_manifest_is_named(tmp_path):
    store, _ = new_store(tmp_path)
    store.manifest_path.write_text("{not json")
    with pytest.raises(StoreError, match=r"manifest\.json: not valid JSON: line 1"):
        store.load()
    store.manifest_path.write_text(json.dumps({"format_version": 1, "campaign_id": "c1"}))
    with pytest.raises(StoreError, match=r"manifest\.json: parameters: missing"):
        store.load()


def test_atomic_write_leaves_old_content_on_failure(tmp_path):
    path = tmp_path / "f.json"
    atomic_write_bytes(path, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_lock_refuses_a_live_holder_and_takes_over_a_stale_one(tmp_path):
    path = tmp_path / "lab.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock.acquire(path, holder.pid, {"campaign_id": "first", "since": "now"})
        with pytest.raises(lock.LabBusy, match=f"held by pid {holder.pid}.*'first'"):
            lock.acquire(path, os.getpid(), {"campaign_id": "second"})
        assert lock.acquire(path, holder.pid, {"campaign_id": "first"})["pid"] == holder.pid
        assert not lock.release(path, os.getpid())
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.05)
    assert lock.holder(path) is None  # the holder died: stale
    info = lock.acquire(path, os.getpid(), {"campaign_id": "second"})
    assert info["pid"] == os.getpid()
    assert lock.release(path, os.getpid())
    assert not path.exists()
