"""PF_RING through DKMS with the real source (opt-in: marker pfring).

Runs only when KVMNETLAB_PFRING_SRC names a PF_RING source tree and the machine is
root. On this machine no kernel can load the module, so the role builds and installs
it through DKMS for the embedded-lab guests' kernel release (its headers come from
Debian's archive) without loading it: `dkms install` must register the module,
modinfo must show the target's vermagic, a second run must change nothing and check
mode must change nothing. The DKMS registration, its source folder and the module
are removed afterwards. About 1-2 minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import playbook, recap

SRC = os.environ.get("KVMNETLAB_PFRING_SRC", "")
# The Debian cloud kernel the embedded-lab guests run (any release with headers works).
KVER = os.environ.get("KVMNETLAB_PFRING_DKMS_KVER", "6.1.0-50-cloud-amd64")

pytestmark = [
    pytest.mark.pfring,
    pytest.mark.skipif(not SRC, reason="set KVMNETLAB_PFRING_SRC to a PF_RING source tree"),
    pytest.mark.skipif(os.geteuid() != 0, reason="DKMS installs system-wide: needs root"),
]


def build(*extra: str) -> int:
    """Run the role through DKMS; return localhost's changed count (failing on failure)."""
    done = playbook("playbooks/build.yml", *extra, timeout=3600, check=True, extra={
        "pf_ring_hosts": "localhost", "pf_ring_install_method": "local",
        "pf_ring_local_src": SRC, "pf_ring_dkms": "true", "pf_ring_load": "false",
        "pf_ring_kernel_version": KVER})
    counters = recap(done.stdout)["localhost"]
    assert counters["failed"] == 0 and counters["unreachable"] == 0, done.stdout[-4000:]
    return counters["changed"]


@pytest.fixture
def dkms_cleanup():
    modules = Path("/lib/modules") / KVER
    existed = modules.exists()
    yield
    status = subprocess.run(["dkms", "status", "pf_ring"], capture_output=True, text=True)
    for version in re.findall(r"^pf_ring/([^,]+),", status.stdout, re.M):
        subprocess.run(["dkms", "remove", f"pf_ring/{version}", "--all"], capture_output=True)
        shutil.rmtree(f"/usr/src/pf_ring-{version}", ignore_errors=True)
    if not existed:
        shutil.rmtree(modules, ignore_errors=True)


def test_dkms_builds_registers_and_is_idempotent(dkms_cleanup):
    assert build() > 0
    status = subprocess.run(["dkms", "status", "pf_ring"], capture_output=True, text=True,
                            check=True).stdout
    assert re.search(rf"^pf_ring/8\.8\.0\.[0-9a-f]{{8}}, {re.escape(KVER)}, x86_64: installed",
                     status, re.M), status
    module = Path("/lib/modules") / KVER / "updates" / "dkms" / "pf_ring.ko"
    vermagic = subprocess.run(["modinfo", "-F", "vermagic", str(module)], capture_output=True,
                              text=True, check=True).stdout
    assert vermagic.split()[0] == KVER
    assert build() == 0
    assert build("--check") == 0
