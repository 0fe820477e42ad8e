"""A guest killed mid-campaign fails its repetitions clearly, keeps everything collected
before, and a resumed campaign completes only what is missing.

Boots the embedded lab's guest (minutes under TCG). Needs root.
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

pytestmark = [pytest.mark.guests, pytest.mark.usefixtures("root_only"),
              *extended_marks("a guest killed mid-campaign, then resume; about 3.5 min")]

PIDFILE = Path("/var/lib/kvmnetlab/local/guests/kvmnl-g1/qemu.pid")
PARAMS = {"kvmnetlab_scenarios": "baseline,virtio", "kvmnetlab_repetitions": 3,
          "kvmnetlab_ping_count": 300, "kvmnetlab_ping_interval_s": 0.01,
          "kvmnetlab_rate_frames": 5000, "kvmnetlab_seed": 3,
          # the kill and the resume are about the repetitions, not the throughput search
          "kvmnetlab_search": False}


def runs(root: Path) -> list[dict]:
    return json.loads((root / "manifest.json").read_text())["runs"]


def test_killed_guest_fails_its_repetitions_and_resume_completes(tmp_path):
    root = tmp_path / "kill"
    args = {**PARAMS, "kvmnetlab_results_dir": tmp_path, "kvmnetlab_campaign_id": "kill"}
    cmd = [str(BIN / "ansible-playbook"), "site.yml"]
    for key, value in args.items():
        cmd += ["-e", f"{key}={value}"]
    campaign = subprocess.Popen(cmd, cwd=REPO, env=ansible_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    killed = None
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and campaign.poll() is None:
            if (root / "manifest.json").exists():
                virtio = [r for r in runs(root) if r["scenario"] == "virtio"]
                if any(r["status"] == "done" for r in virtio) and any(
                        r["status"] == "pending" for r in virtio):
                    killed = int(PIDFILE.read_text().strip())
                    os.kill(killed, signal.SIGKILL)
                    break
            time.sleep(0.5)
        out, _ = campaign.communicate(timeout=900)
    finally:
        if campaign.poll() is None:
            campaign.kill()
    assert killed, "the campaign never reached a point with a virtio repetition stored"
    assert campaign.returncode == 0, out[-4000:]  # the campaign goes on and reports
    manifest = json.loads((root / "manifest.json").read_text())
    failed = [r for r in manifest["runs"] if r["status"] == "failed"]
    assert failed, "killing the guest should fail the repetitions that needed it"
    assert all(r["scenario"] == "virtio" for r in failed)
    assert all("kvmnl-g1" in r["reason"] or "UNREACHABLE" in r["reason"].upper()
               or "unreachable" in r["reason"] for r in failed), failed
    assert all(r["status"] == "done" for r in manifest["runs"] if r["scenario"] == "baseline")
    kept = {rel: e["sha256"] for rel, e in manifest["files"].items() if rel.startswith("raw/")}
    assert any(rel.startswith("raw/virtio/") for rel in kept)

    # resume: the guest boots again and only the failed repetitions run
    resumed = playbook("site.yml", extra=args, check=True)
    assert "(resumed)" in resumed.stdout
    after = json.loads((root / "manifest.json").read_text())
    assert {(r["scenario"], r["repetition"], r["status"]) for r in after["runs"]} == {
        (s, k, "done") for s in ("baseline", "virtio") for k in (1, 2, 3)}
    done_dirs = {f"raw/{r['scenario']}/{r['repetition']}/" for r in manifest["runs"]
                 if r["status"] == "done"}
    for rel, digest in kept.items():
        if any(rel.startswith(d) for d in done_dirs):
            assert after["files"][rel]["sha256"] == digest, rel  # kept in place, unchanged
        else:  # a failed repetition's partial files move to superseded/<n>/, unchanged
            moved = "superseded/1/" + rel[len("raw/"):]
            assert after["files"][moved]["sha256"] == digest, rel
            assert (root / moved).exists()
