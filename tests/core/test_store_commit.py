"""A repetition's raw files enter the store all at once, and a campaign can always resume.

Unit level, no lab: a commit is killed (SIGKILL, in a child process) before each of
its file-system calls in turn; a commit runs on a small tmpfs that fills up; the
store check command reports and repairs what resume would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kvmnetlab.errors import StoreError, StoreFull
from kvmnetlab.store import Store, run_dir, sha256_file
from tests.helpers import BIN, REPO, tmpfs

PARAMS = {"repetitions": 2, "ping_count": 3, "ping_interval_s": 0.01, "ping_payload_bytes": 56,
          "seed": 1, "scenarios": ["a"]}
ORDER = [{"scenario": "a", "repetition": 1}, {"scenario": "a", "repetition": 2}]
HOSTS = {"h1": {"ping.txt": b"PING 198.18.0.2\n" * 40, "state.txt": b"up\n", "empty": b""},
         "h2": {"tcpdump.txt": b"3 packets\n"}}


def new_store(root: Path) -> Store:
    store = Store(root)
    store.create("c1", PARAMS, {"a": {"number": 1}}, ORDER, {"name": "t"},
                 {"commit": None, "dirty": None})
    return store


def stage(folder: Path, hosts: dict | None = None) -> Path:
    for host, files in (hosts or HOSTS).items():
        (folder / host).mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (folder / host / name).write_bytes(content)
    return folder


def expected_files(rep: int = 1) -> set[str]:
    return {f"raw/a/{rep}/{host}/{name}" for host, files in HOSTS.items() for name in files}


def raw_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / "raw").rglob("*") if p.is_file()}


def assert_sound(store: Store) -> dict:
    """Every recorded file is there with its sha256; nothing unrecorded is left."""
    manifest = store.load()
    assert store.verify(manifest) == []
    for rel, entry in manifest["files"].items():
        assert sha256_file(store.root / rel) == entry["sha256"], rel
    return manifest


def test_a_commit_renames_one_staged_folder_and_records_it_with_the_run(tmp_path):
    store = new_store(tmp_path / "c1")
    manifest = store.load()
    run = store.find_run(manifest, "a", 1)
    committed = store.commit_raw(manifest, stage(store.root / ".staging/a/1"), run_dir("a", 1),
                                 outcome=(run, {"status": "done"}))
    assert set(committed) == expected_files()
    saved = assert_sound(store)
    assert store.find_run(saved, "a", 1)["status"] == "done"
    assert set(saved["files"]) == expected_files()
    assert not (store.root / ".incoming").exists()
    assert not (store.root / ".staging/a/1").exists()


def test_a_commit_from_another_file_system_copies_then_renames(tmp_path):
    store = new_store(tmp_path / "c1")
    other = Path("/dev/shm")
    if not other.is_dir() or os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system to stage on")
    staging = other / f"kvmnetlab-test-{os.getpid()}"
    try:
        manifest = store.load()
        store.commit_raw(manifest, stage(staging), run_dir("a", 1))
        assert raw_files(store.root) == expected_files()
        assert_sound(store)
    finally:
        subprocess.run(["rm", "-rf", str(staging)], check=True)


CHILD = textwrap.dedent("""
    import os, signal, sys
    from kvmnetlab.store import Store, run_dir

    root, staging, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    calls = []

    def hooked(name, real):
        def call(*args, **kwargs):
            calls.append(name)
            if len(calls) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # a hard kill, before this call
            return real(*args, **kwargs)
        return call

    for name in ("rename", "replace", "fsync", "mkdir", "open"):
        setattr(os, name, hooked(name, getattr(os, name)))
    store = Store(root)
    manifest = store.load()
    run = store.find_run(manifest, "a", 1)
    store.commit_raw(manifest, staging, run_dir("a", 1), outcome=(run, {"status": "done"}))
    print(len(calls))
""")


def killed_commit(root: Path, staging: Path, kill_at: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(root), str(staging), str(kill_at)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_a_commit_killed_at_any_point_leaves_all_or_nothing_and_resumes(tmp_path):
    """SIGKILL before each file-system call of a commit in turn. Then the repetition is
    either recorded with all its files, or absent from raw/; resume moves what is left,
    unchanged, to superseded/ and the repetition commits again."""
    outcomes = set()
    kill_at = 1
    while True:
        root = tmp_path / f"k{kill_at}"
        store = new_store(root)
        done = killed_commit(root, stage(root / ".staging/a/1"), kill_at)
        if done.returncode == 0:
            assert kill_at > 5, "the commit made fewer file-system calls than expected"
            break
        assert done.returncode == -signal.SIGKILL, done.stderr
        manifest = store.load()  # still valid JSON, format checked
        run = store.find_run(manifest, "a", 1)
        in_raw = raw_files(root)
        if run["status"] == "done":
            assert in_raw == expected_files() == {r for r in manifest["files"]}
            outcomes.add("committed")
        else:
            assert not manifest["files"]
            assert in_raw in (set(), expected_files()), in_raw
            outcomes.add("renamed, not recorded" if in_raw else "nothing in raw/")
        resumed = store.resume(PARAMS)
        assert_sound(store)
        assert not raw_files(root) - set(resumed["files"])
        if store.find_run(resumed, "a", 1)["status"] == "pending":
            assert raw_files(root) == set()
            moved = [rel for rel in resumed["files"] if rel.startswith("superseded/")]
            assert all(resumed["files"][rel].get("leftover") for rel in moved)
            if moved:
                assert resumed["superseded"][-1]["reason"].startswith("leftovers of an")
            again = store.load()
            store.commit_raw(again, stage(tmp_path / f"again{kill_at}"), run_dir("a", 1),
                             outcome=(store.find_run(again, "a", 1), {"status": "done"}))
            final = assert_sound(store)
            assert {r for r in final["files"] if r.startswith("raw/")} == expected_files()
        kill_at += 1
    assert outcomes == {"nothing in raw/", "renamed, not recorded", "committed"}


def test_committing_again_moves_unrecorded_files_aside_and_never_rewrites(tmp_path):
    store = new_store(tmp_path / "c1")
    manifest = store.load()
    leftover = store.root / "raw/a/1/h1/ping.txt"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a commit\n")
    store.commit_raw(manifest, stage(tmp_path / "s1"), run_dir("a", 1))
    saved = assert_sound(store)
    assert (store.root / "superseded/1/a/1/h1/ping.txt").read_bytes() == b"half a commit\n"
    assert saved["superseded"][0]["dir"] == "superseded/1"
    with pytest.raises(StoreError, match=r"raw/a/1/h1/\S+: already collected; raw files are "
                                         "never rewritten"):
        store.commit_raw(saved, stage(tmp_path / "s2"), run_dir("a", 1))


def test_resume_refuses_only_an_altered_recorded_file(tmp_path):
    store = new_store(tmp_path / "c1")
    store.commit_raw(store.load(), stage(tmp_path / "s1"), run_dir("a", 1))
    (store.root / ".incoming/a/2/h1").mkdir(parents=True)
    (store.root / ".incoming/a/2/h1/ping.txt").write_bytes(b"staged\n")
    (store.root / "raw/a/1/h2/tcpdump.txt").write_bytes(b"4 packets\n")
    before = store.manifest_path.read_bytes()
    with pytest.raises(StoreError, match=r"raw/a/1/h2/tcpdump\.txt: sha256 differs"):
        store.resume(PARAMS)
    assert store.manifest_path.read_bytes() == before  # refused: nothing moved
    assert (store.root / ".incoming/a/2/h1/ping.txt").exists()


def fill(path: Path, leave_bytes: int) -> None:
    """Write zeros to ``path`` until ``leave_bytes`` or less are free on its file system."""
    stat = os.statvfs(path.parent)
    chunk = b"\0" * (64 << 10)
    with open(path, "wb") as handle:
        remaining = stat.f_bavail * stat.f_frsize - leave_bytes
        try:
            while remaining > 0:
                remaining -= handle.write(chunk[:remaining])
        except OSError:
            pass


def test_a_full_file_system_stops_the_commit_naming_the_path_and_the_free_space(tmp_path):
    with tmpfs(tmp_path / "fs", "2m") as fs:
        store = new_store(fs / "c1")
        big = {"h1": {"ping.txt": os.urandom(600 << 10)}, "h2": {"tcpdump.txt": b"1\n"}}
        staging = stage(tmp_path / "s1", big)  # another file system: the commit copies
        fill(fs / "filler", 300 << 10)
        manifest = store.load()
        with pytest.raises(StoreFull) as caught:
            store.commit_raw(manifest, staging, run_dir("a", 1))
        message = str(caught.value)
        assert "no space left on the results file system" in message
        assert f"mounted on {fs}" in message
        assert "while writing the raw files of raw/a/1" in message
        assert " bytes) free" in message or " bytes free" in message
        assert str(fs / "c1") in message
        after = store.load()  # valid, and nothing recorded
        assert after["files"] == {} and store.find_run(after, "a", 1)["status"] == "pending"
        assert raw_files(store.root) == set()
        (fs / "filler").unlink()
        resumed = store.resume(PARAMS)
        store.commit_raw(resumed, staging, run_dir("a", 1))
        final = assert_sound(store)
        assert {r for r in final["files"] if r.startswith("raw/")} == {
            "raw/a/1/h1/ping.txt", "raw/a/1/h2/tcpdump.txt"}
        # the partial staged copy was moved aside, unchanged, not deleted
        assert all(rel.startswith("superseded/1/commit-staged/a/1/")
                   for rel in final["files"] if rel.startswith("superseded/"))


def test_a_manifest_that_cannot_be_saved_is_left_as_it_was(tmp_path):
    with tmpfs(tmp_path / "fs", "1m") as fs:
        store = new_store(fs / "c1")
        before = store.manifest_path.read_bytes()
        fill(fs / "filler", 0)
        manifest = store.load()
        with pytest.raises(StoreFull, match=r"while writing the manifest"):
            store.commit_raw(manifest, stage(fs / ".staging-a-1", {"h1": {"f": b""}}),
                             run_dir("a", 1))
        assert store.manifest_path.read_bytes() == before
        assert [p.name for p in store.root.iterdir() if p.name.startswith(".manifest")] == []


# -- the store check: kvmnetlab-store verify ---------------------------------------------


def store_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kvmnetlab-store"), *args], capture_output=True,
                          text=True, timeout=60)


def damaged(tmp_path: Path) -> Store:
    store = new_store(tmp_path / "c1")
    manifest = store.load()
    store.commit_raw(manifest, stage(tmp_path / "s1"), run_dir("a", 1),
                     outcome=(store.find_run(manifest, "a", 1), {"status": "done"}))
    (store.root / "raw/a/2/h1").mkdir(parents=True)
    (store.root / "raw/a/2/h1/ping.txt").write_bytes(b"unrecorded\n")
    (store.root / ".staging/a/2.h1.tar").parent.mkdir(parents=True)
    (store.root / ".staging/a/2.h1.tar").write_bytes(b"tar\n")
    return store


def test_store_check_reports_and_changes_nothing(tmp_path):
    store = damaged(tmp_path)
    clean = store_cli("verify", str(store.root))
    assert clean.returncode == 1, clean.stdout + clean.stderr
    assert "raw/a/2/h1/ping.txt: in raw/ but not recorded in the manifest" in clean.stdout
    assert ".staging/a/2.h1.tar: fetched for a repetition that was not committed" \
        in clean.stdout
    assert "done: 1 (a/1)" in clean.stdout and "pending: 1 (a/2)" in clean.stdout
    (store.root / "raw/a/1/h1/state.txt").write_bytes(b"down\n")
    (store.root / "raw/a/1/h2/tcpdump.txt").unlink()
    before = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()}
    out = store_cli("verify", str(store.root)).stdout
    assert "raw/a/1/h1/state.txt: sha256 differs from the manifest" in out
    assert "raw/a/1/h2/tcpdump.txt: recorded in the manifest but missing" in out
    assert "4 problem(s)" in out
    assert {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()} == before


def test_store_check_repair_only_moves_leftovers_aside(tmp_path):
    store = damaged(tmp_path)
    repaired = store_cli("verify", "--repair", str(store.root))
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "moved to superseded/1/a/2/h1/ping.txt" in repaired.stdout
    manifest = assert_sound(store)
    assert (store.root / "superseded/1/fetched/a/2.h1.tar").read_bytes() == b"tar\n"
    assert manifest["superseded"][-1]["reason"].endswith("moved by the store check")
    assert store.find_run(manifest, "a", 2)["status"] == "pending"  # runs are resume's
    assert store_cli("verify", str(store.root)).returncode == 0
    (store.root / "raw/a/1/h1/state.txt").write_bytes(b"down\n")
    refused = store_cli("verify", "--repair", str(store.root))
    assert refused.returncode == 1
    assert "raw/a/1/h1/state.txt: sha256 differs" in refused.stdout
    assert (store.root / "raw/a/1/h1/state.txt").read_bytes() == b"down\n"


def test_store_check_names_a_folder_that_is_not_a_campaign(tmp_path):
    done = store_cli("verify", str(tmp_path))
    assert done.returncode == 2
    assert f"{tmp_path}" in done.stderr and "no manifest" in done.stderr
