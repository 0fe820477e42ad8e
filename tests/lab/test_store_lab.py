"""The result store survives a full disk and hard kills of a campaign on the embedded lab.

Baseline only (no guests), few repetitions, few probes, no throughput search: these
tests are about the store, not the measurements.

- A campaign writes to a small tmpfs that is filled up while a repetition is being
  committed: it stops, naming the path and the free space; after space is freed the
  same command (same kvmnetlab_campaign_id) completes it.
- A campaign is killed (SIGKILL to ansible-playbook's process group) in the middle of a
  store commit, between fetching and committing a repetition, and right after a
  repetition was recorded, and resumed after each: it ends with exactly the planned
  repetitions, each recorded once, and every file matches its sha256.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from kvmnetlab import lock
from kvmnetlab.store import Store, sha256_file
from tests.helpers import BIN, REPO, ansible_env, extended_marks, playbook, tmpfs

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("root_only"),
              *extended_marks("a full disk and hard kills, then resume; about 1.5 min")]

PARAMS = {"kvmnetlab_scenarios": "baseline", "kvmnetlab_ping_count": 20,
          "kvmnetlab_ping_interval_s": 0.01, "kvmnetlab_rate_frames": 2000,
          "kvmnetlab_seed": 7, "kvmnetlab_search": False}
KILL_HOOK = REPO / "tests" / "lab" / "kill_hook"
REMOTE_DIR = Path("/var/tmp/kvmnetlab")  # roles/campaign: campaign_remote_dir (the base)
LOCK = Path("/run/kvmnetlab/local.lock")  # the embedded lab's lock (inventory/local)


def command(extra: dict) -> list[str]:
    cmd = [str(BIN / "ansible-playbook"), "site.yml", "--skip-tags", "guests"]
    for key, value in extra.items():
        cmd += ["-e", f"{key}={value}"]
    return cmd


def stop_orphans(campaign_id: str) -> None:
    """SIGKILL leaves the background captures this campaign started (each in its own
    session) running: stop them by the PIDs their meta files recorded (in the private run
    folders of this campaign's repetitions, named run-<campaign>.<scenario>.<rep>.<host>.*)."""
    for meta in REMOTE_DIR.glob(f"run-{campaign_id}.*/*.meta.json"):
        try:
            info = json.loads(meta.read_text())
            cmdline = Path(f"/proc/{info['pid']}/cmdline").read_bytes().split(b"\0")[0]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if os.path.basename(cmdline.decode(errors="replace")) == \
                os.path.basename(info["argv"][0]):
            os.kill(info["pid"], signal.SIGKILL)


def run_and_kill(extra: dict, log: Path, when=None, env: dict | None = None,
                 timeout_s: float = 600) -> tuple[int, str, bool]:
    """Run the campaign; SIGKILL its process group as soon as ``when()`` holds.

    Returns the exit status, the output and whether ``when`` fired.
    """
    with open(log, "w") as out:
        proc = subprocess.Popen(command(extra), cwd=REPO, env={**ansible_env(), **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        fired = False
        try:
            deadline = time.monotonic() + timeout_s
            while proc.poll() is None and time.monotonic() < deadline:
                if when is not None and when():
                    os.killpg(proc.pid, signal.SIGKILL)
                    fired = True
                    break
                time.sleep(0.02)
            proc.wait(timeout=60 if fired else max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            stop_orphans(extra["kvmnetlab_campaign_id"])
    # Ansible folds long messages over lines: compare with single spaces
    return proc.returncode, " ".join(log.read_text().split()), fired


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def done_runs(root: Path) -> int:
    try:
        return sum(r["status"] == "done" for r in manifest(root)["runs"])
    except (OSError, ValueError):
        return 0


def resumed(root: Path) -> bool:
    """Whether the campaign has been resumed at least once (its manifest says so)."""
    try:
        return bool(manifest(root)["resumed_at"])
    except (OSError, ValueError, KeyError):
        return False


def tars(root: Path) -> list[Path]:
    return list((root / ".staging").rglob("*.tar")) if (root / ".staging").is_dir() else []


def assert_complete(root: Path, repetitions: int) -> dict:
    """Exactly the planned repetitions, each done and recorded once; every file sound."""
    final = manifest(root)
    runs = [(r["scenario"], r["repetition"]) for r in final["runs"]]
    assert sorted(runs) == [("baseline", k) for k in range(1, repetitions + 1)]
    assert [(r["scenario"], r["repetition"]) for r in final["order"]] == runs
    assert {r["status"] for r in final["runs"]} == {"done"}
    assert Store(root).verify() == []
    for rel, entry in final["files"].items():
        assert sha256_file(root / rel) == entry["sha256"], rel
    for k in range(1, repetitions + 1):
        assert any(rel.startswith(f"raw/baseline/{k}/") and rel.endswith("/ping.txt")
                   for rel in final["files"]), k
    assert (root / "data" / "rtt.parquet").exists()
    return final


def wait_for_the_lab() -> None:
    """Another campaign holds the lab: wait for it (a second one would be refused)."""
    for _ in range(60):
        if lock.holder(LOCK) is None:  # free, or left by a run that died
            return
        time.sleep(30)
    pytest.fail(f"the lab stayed busy for 30 min: {lock.holder(LOCK)}")


def fill(path: Path) -> None:
    """Write to ``path`` until its file system is full."""
    chunk = b"\0" * (1 << 20)
    with open(path, "wb") as handle:
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError:
            pass


def test_a_full_results_file_system_stops_the_campaign_and_resume_completes_it(tmp_path):
    wait_for_the_lab()
    playbook("site.yml", "--tags", "lab", check=True)
    with tmpfs(tmp_path / "fs", "48m") as fs:
        extra = {**PARAMS, "kvmnetlab_repetitions": 2, "kvmnetlab_results_dir": fs,
                 "kvmnetlab_campaign_id": "full"}
        root = fs / "full"
        filler = fs / "filler"
        fired = []

        def fill_when_fetched() -> bool:  # the first repetition's tars are on the controller
            if not fired and tars(root):
                fill(filler)
                fired.append(time.monotonic())
            return False

        rc, out, _ = run_and_kill(extra, tmp_path / "first.log", when=fill_when_fetched)
        assert fired, out[-3000:]
        assert rc != 0, out[-3000:]
        assert "no space left on the results file system" in out, out[-4000:]
        assert f"(mounted on {fs})" in out
        assert "while writing the raw files of baseline rep" in out
        assert " free. Free some space there and run the same command" in out
        stopped = manifest(root)  # valid JSON, every stored file as recorded
        assert Store(root).check(stopped).altered == []
        assert Store(root).check(stopped).missing == []
        assert done_runs(root) < 2

        filler.unlink()
        rc, out, _ = run_and_kill(extra, tmp_path / "resume.log")
        assert rc == 0, out[-4000:]
        assert "(resumed)" in out
        final = assert_complete(root, 2)
        aside = [rel for rel, entry in final["files"].items() if entry.get("leftover")]
        assert aside and all(rel.startswith("superseded/") for rel in aside), aside
        assert any(line["reason"].startswith("leftovers of an interrupted commit")
                   for line in final["superseded"])


def test_hard_kills_at_several_points_then_resume_end_with_the_planned_repetitions(tmp_path):
    wait_for_the_lab()
    playbook("site.yml", "--tags", "lab", check=True)
    extra = {**PARAMS, "kvmnetlab_repetitions": 3, "kvmnetlab_results_dir": tmp_path,
             "kvmnetlab_campaign_id": "kills"}
    root = tmp_path / "kills"

    # 1. in the middle of a store commit: the files are in raw/, the manifest not written
    rc, out, _ = run_and_kill(
        extra, tmp_path / "1.log",
        env={"PYTHONPATH": str(KILL_HOOK),
             "KVMNETLAB_TEST_KILL_AFTER_RENAME_INTO": str(root / "raw")})
    assert rc == -signal.SIGKILL, out[-3000:]
    leftover = [p for p in (root / "raw").rglob("*") if p.is_file()]
    assert leftover and done_runs(root) == 0
    assert not [rel for rel in manifest(root)["files"] if rel.startswith("raw/")]

    # 2. between fetching a repetition's tars and committing them
    # (the first kill's tars are still in .staging/ until the resume moves them aside)
    rc, out, fired = run_and_kill(extra, tmp_path / "2.log",
                                  when=lambda: resumed(root) and bool(tars(root)))
    assert fired and rc == -signal.SIGKILL, out[-3000:]
    # resumed (its output, block-buffered into a file, may die with the kill)
    assert len(manifest(root)["resumed_at"]) == 1
    before = done_runs(root)

    # 3. right after a repetition was recorded done
    rc, out, fired = run_and_kill(extra, tmp_path / "3.log",
                                  when=lambda: done_runs(root) > before)
    assert fired and rc == -signal.SIGKILL, out[-3000:]

    rc, out, _ = run_and_kill(extra, tmp_path / "4.log")
    assert rc == 0, out[-4000:]
    final = assert_complete(root, 3)
    assert len(final["resumed_at"]) == 3
    # the first kill's renamed files went aside unchanged, recorded with their sha256
    first = leftover[0].relative_to(root / "raw").as_posix()
    assert any(rel.endswith(first) and rel.startswith("superseded/")
               for rel in final["files"]), first
    # none recorded twice: each repetition's raw files under one raw/ folder only
    raw = [rel for rel in final["files"] if rel.startswith("raw/")]
    assert len(raw) == len(set(raw))
    check = subprocess.run([str(BIN / "kvmnetlab-store"), "verify", str(root)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    assert "done: 3 (" in check.stdout
