"""An interrupted campaign keeps what it collected and resumes only what is missing.

A campaign is stopped with SIGINT (Ctrl-C) to ansible-playbook's process group
after its first repetitions are stored, then re-run with the same campaign id.
It must end with the same repetitions as an uninterrupted campaign with the
same parameters, and every file collected before the interruption must still
be there, byte for byte (same sha256, same inode, same mtime).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import BIN, REPO, ansible_env, extended_marks, playbook

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("root_only"),
              *extended_marks("SIGINT and an edited raw file, then resume; about 2 min")]

PARAMS = {"kvmnetlab_scenarios": "baseline", "kvmnetlab_repetitions": 4,
          "kvmnetlab_ping_count": 150, "kvmnetlab_ping_interval_s": 0.01,
          "kvmnetlab_rate_frames": 10000, "kvmnetlab_seed": 5,
          # the interruption is about the repetitions, not the throughput search
          "kvmnetlab_search": False}


def extra_args(extra: dict) -> list[str]:
    args = []
    for key, value in extra.items():
        args += ["-e", f"{key}={value}"]
    return args


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def raw_files(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in (root / "raw").rglob("*") if p.is_file()}


def outcome(root: Path) -> set[tuple[str, int, str]]:
    return {(r["scenario"], r["repetition"], r["status"]) for r in manifest(root)["runs"]}


def test_sigint_then_resume_completes_only_the_missing_repetitions(tmp_path):
    playbook("site.yml", "--tags", "lab", check=True)
    root = tmp_path / "intr"
    cmd = [str(BIN / "ansible-playbook"), "site.yml", "--skip-tags", "guests",
           *extra_args({**PARAMS, "kvmnetlab_results_dir": tmp_path,
                        "kvmnetlab_campaign_id": "intr"})]
    first = subprocess.Popen(cmd, cwd=REPO, env=ansible_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if (root / "manifest.json").exists() and any(
                    r["status"] == "done" for r in manifest(root)["runs"]):
                break
            time.sleep(0.2)
        else:
            pytest.fail("no repetition was stored within 240 s")
        os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    assert first.returncode != 0, "the interrupted campaign should not report success"
    before = manifest(root)
    done_before = {(r["scenario"], r["repetition"]) for r in before["runs"]
                   if r["status"] == "done"}
    assert 1 <= len(done_before) < 4, out[-3000:]
    files_before = raw_files(root)
    sums_before = {rel: e["sha256"] for rel, e in before["files"].items()
                   if rel.startswith("raw/")}
    assert set(sums_before) == set(files_before)

    resumed = playbook("site.yml", "--skip-tags", "guests",
                       extra={**PARAMS, "kvmnetlab_results_dir": tmp_path,
                              "kvmnetlab_campaign_id": "intr"}, check=True)
    assert "(resumed)" in resumed.stdout
    after = manifest(root)
    assert len(after["resumed_at"]) == 1
    # nothing collected before the interruption was lost or rewritten
    files_after = raw_files(root)
    for rel, identity in files_before.items():
        assert files_after.get(rel) == identity, rel
        assert after["files"][rel]["sha256"] == sums_before[rel], rel
    # only the missing repetitions ran again: the stored ones kept their times
    for run in before["runs"]:
        if run["status"] == "done":
            again = next(r for r in after["runs"] if r["scenario"] == run["scenario"]
                         and r["repetition"] == run["repetition"])
            assert again["finished_at"] == run["finished_at"]

    reference = tmp_path / "ref"
    playbook("site.yml", "--skip-tags", "guests",
             extra={**PARAMS, "kvmnetlab_results_dir": tmp_path,
                    "kvmnetlab_campaign_id": "ref"}, check=True)
    assert outcome(root) == outcome(reference)
    assert outcome(root) == {("baseline", k, "done") for k in range(1, 5)}
    names = {rel.split("/", 3)[3] for rel in raw_files(reference)}
    assert {rel.split("/", 3)[3] for rel in raw_files(root)} == names
    assert manifest(root)["order"] == manifest(reference)["order"]


def test_an_edited_raw_file_is_named_and_blocks_the_resume(tmp_path):
    playbook("site.yml", "--tags", "lab", check=True)
    args = {"kvmnetlab_scenarios": "baseline", "kvmnetlab_repetitions": 1,
            "kvmnetlab_ping_count": 20, "kvmnetlab_rate_frames": 2000,
            "kvmnetlab_results_dir": tmp_path, "kvmnetlab_campaign_id": "edit"}
    playbook("site.yml", "--skip-tags", "guests", extra=args, check=True)
    target = next((tmp_path / "edit" / "raw").rglob("ping.txt"))
    target.write_text(target.read_text().replace("time=", "time=1"))
    again = playbook("site.yml", "--skip-tags", "guests", extra=args)
    assert again.returncode != 0
    rel = target.relative_to(tmp_path / "edit").as_posix()
    assert f"{rel}: sha256 differs from the manifest" in again.stdout
