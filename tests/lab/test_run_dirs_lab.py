"""On the embedded lab: a base folder of run folders planted by another user stops the
campaign before anything changes, naming the path, its owner and its mode, and nothing
the plant points at is written.

The lab's hosts share this machine's /var/tmp, so a local user who creates
/var/tmp/kvmnetlab first (with a link in it to a file of root's) is exactly the attack
of a shared lab host. The preflight refuses it, read-only, once it holds the lab lock and
before the lab is built (tests/collectors/test_run_dirs.py covers each capture's own checks, which
refuse the same).
That no run folder is left after a campaign is checked in tests/lab/test_lab_e2e.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kvmnetlab import lock
from tests.helpers import lab_namespaces, playbook

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("root_only")]

BASE = Path("/var/tmp/kvmnetlab")  # roles/campaign: campaign_remote_dir
LOCK = Path("/run/kvmnetlab/local.lock")
NOBODY = 65534
PARAMS = {"kvmnetlab_scenarios": "baseline", "kvmnetlab_repetitions": 1,
          "kvmnetlab_ping_count": 10, "kvmnetlab_search": False}


@pytest.fixture()
def planted(tmp_path):
    """/var/tmp/kvmnetlab made by nobody (mode 0755), holding a link named like the
    search agent to a file of root's; removed afterwards."""
    if BASE.is_symlink() or BASE.exists():
        assert BASE.lstat().st_uid == 0, f"{BASE} exists and is not root's"
        shutil.rmtree(BASE)  # an earlier run's leftovers (teardown removes it too)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    BASE.mkdir(mode=0o755)
    os.chown(BASE, NOBODY, NOBODY)
    link = BASE / "throughput.py"
    link.symlink_to(victim)
    os.lchown(link, NOBODY, NOBODY)
    try:
        yield victim
    finally:
        shutil.rmtree(BASE, ignore_errors=True)


def test_a_base_folder_planted_by_another_user_stops_the_campaign_before_anything_changes(
        planted, tmp_path):
    results = tmp_path / "results"
    namespaces = lab_namespaces()
    locked_before = LOCK.exists()
    done = playbook("site.yml", "--skip-tags", "guests",
                    extra={**PARAMS, "kvmnetlab_results_dir": results})
    out = " ".join(done.stdout.split())  # Ansible folds long messages
    assert done.returncode != 0, out[-3000:]
    assert f"{BASE}: refused as the private folder of raw files" in out, out[-3000:]
    assert "owned by nobody (uid 65534), mode 0755" in out
    assert "kvmnl-h1:" in out  # the host is named
    # refused before the lab was built or written to; the lab lock it took (the hosts of
    # a lab are read only once it is ours) is no one's any more
    assert lab_namespaces() == namespaces
    assert lock.holder(LOCK) is None
    assert not results.exists() or list(results.iterdir()) == []
    # the plant is as it was: nothing followed its link or wrote beside it
    assert planted.read_text() == "precious\n"
    assert sorted(p.name for p in BASE.iterdir()) == ["throughput.py"]
    assert BASE.lstat().st_uid == NOBODY and (BASE / "throughput.py").is_symlink()
    if not locked_before:  # the refused run's own lock file, stale since it ended
        LOCK.unlink()
