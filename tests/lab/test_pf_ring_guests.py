"""PF_RING for real in two embedded-lab guests (opt-in: marker pfring).

Runs only when KVMNETLAB_PFRING_SRC names a local PF_RING source tree or tarball
(tag 8.8.0, classic layout) and the machine is root. The test runs site.yml with
two guests and -e kvmnetlab_guests_pf_ring=true, so that
1. the hypervisor builds PF_RING against the guests' kernel headers
   (pf_ring_build_host) and ships pf_ring.ko, pfsend and pfcount into both guests,
   where the role loads and verifies it;
2. the campaign runs scenario `virtio` with the second guest as the sender: the rate
   collector sends with pfsend in kvmnl-g2 and counts with pfcount in kvmnl-g1,
   counting only pfsend's flow (`udp and dst port 3000`).
Then testinfra checks pf_ring.ko in both guests, the stored rate table is checked
against the raw pfsend/pfcount output, and with KVMNETLAB_PFRING_SAVE_FIXTURES=1 that
raw output is copied to tests/fixtures/pfring/ (see its CAPTURE.md). The guests are
torn down afterwards. Takes about 6 minutes once PF_RING is built (+4 min the first time).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, lab_guest, playbook

SRC = os.environ.get("KVMNETLAB_PFRING_SRC", "")
FRAMES = 20000
SSH_CONFIG = "/var/lib/kvmnetlab/local/ssh/config"

pytestmark = [
    pytest.mark.pfring,
    pytest.mark.skipif(not SRC, reason="set KVMNETLAB_PFRING_SRC to a PF_RING source tree"),
]


def extra_vars(results: Path) -> dict:
    return {
        "guest_vm_guests": [lab_guest("kvmnl-g1", 1), lab_guest("kvmnl-g2", 2)],
        "kvmnetlab_guests_pf_ring": True,
        "pf_ring_install_method": "local",
        "pf_ring_local_src": SRC,
        "campaign_endpoints": {
            "bare_metal": {"sender": "kvmnl-h1", "source_address": "198.18.0.1",
                           "receiver": "kvmnl-h2", "target_address": "198.18.0.2"},
            "guest": {"sender": "kvmnl-g2", "source_address": "198.18.1.12"}},
        "kvmnetlab_scenarios": ["virtio"],
        "kvmnetlab_repetitions": 1,
        "kvmnetlab_rate_frames": FRAMES,
        "kvmnetlab_results_dir": str(results),
    }


@pytest.fixture
def two_guests(tmp_path):
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(extra_vars(tmp_path / "results")))
    yield extra
    playbook("playbooks/guests.yml", "-e", f"@{extra}", "--tags", "guests_teardown")


def test_pfsend_to_pfcount_between_two_guests(tmp_path, two_guests):
    if os.geteuid() != 0:
        pytest.skip("the embedded lab needs root")
    testinfra = pytest.importorskip("testinfra")
    import pandas as pd

    playbook("site.yml", "-e", f"@{two_guests}", timeout=7200, check=True)

    for name in ("kvmnl-g1", "kvmnl-g2"):
        host = testinfra.get_host(f"ssh://{name}", ssh_config=SSH_CONFIG, sudo=True)
        assert host.file("/proc/modules").contains("^pf_ring ")
        assert "PF_RING Version" in host.file("/proc/net/pf_ring/info").content_string
        assert host.file("/sys/module/pf_ring/parameters/min_num_slots").content_string \
            .strip() == "4096"
        assert host.file("/usr/local/bin/pfsend").mode == 0o755
        assert host.run("/usr/local/bin/pfcount -h").stdout.startswith("pfcount")

    (campaign,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    rate = pd.read_parquet(campaign / "data" / "rate.parquet")
    assert list(rate["backend"]) == ["pf_ring"]
    row = rate.iloc[0]
    assert row["host"] == "kvmnl-g2" and row["receiver_host"] == "kvmnl-g1"
    raw = campaign / "raw" / "virtio" / "1"
    sent = (raw / "kvmnl-g2" / "pfsend.txt").read_text()
    counted = (raw / "kvmnl-g1" / "pfcount.txt.stderr").read_text()
    assert f"Sent {FRAMES} packets" in sent
    assert row["sent"] == FRAMES
    final = counted.split("Absolute Stats: [")[-1].split(" pkts total")[0]
    assert row["received"] + row["receiver_drops"] == int(final.replace("'", ""))
    manifest = json.loads((campaign / "manifest.json").read_text())
    subs = manifest["scenarios"]["virtio"]["substitutions"]
    assert not [s for s in subs if s["knob"] == "capture"], subs  # PF_RING ran for real

    if os.environ.get("KVMNETLAB_PFRING_SAVE_FIXTURES") == "1":
        target = REPO / "tests" / "fixtures" / "pfring"
        shutil.copy(raw / "kvmnl-g2" / "pfsend.txt", target / "pfsend_guest.stdout")
        shutil.copy(raw / "kvmnl-g1" / "pfcount.txt.stderr", target / "pfcount_guest.stderr")
