"""The pf_ring role's build, install, check-mode and idempotence paths, without PF_RING.

A stand-in source tree (a trivial kernel module named pf_ring, a configure script
and two stand-in example programs; no PF_RING code) goes through the local
method: packed on the controller, unpacked, its module built against Debian's
cloud kernel headers (installed by the role with apt), its userland built, and
everything installed into a staging root (pf_ring_destdir) with loading off, so
the host itself is left alone apart from the build packages. Runs as root, needs
Debian's apt archive.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import extended_marks
from tests.roles.test_pf_ring_role import changed, failures, run_role

pytestmark = [pytest.mark.lab,
              *extended_marks("builds and installs a stand-in PF_RING tree; about 2 min")]

KERNEL_MAKEFILE = "obj-m := pf_ring.o\n"
KERNEL_SOURCE = """\
#include <linux/module.h>
static int __init stand_in_init(void) { return 0; }
static void __exit stand_in_exit(void) { }
module_init(stand_in_init);
module_exit(stand_in_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kvmnetlab test stand-in named pf_ring");
"""
CONFIGURE = "#!/bin/sh\necho configured > config.status\n"
USERLAND_MAKEFILE = (
    "all: examples/pfsend examples/pfcount\nexamples/%: examples/%.c\n\t$(CC) -O2 -o $@ $<\n"
)
PROGRAM = '#include <stdio.h>\nint main(void) {{ puts("{name} stand-in"); return 0; }}\n'


def stand_in_tree(base: Path) -> Path:
    tree = base / "PF_RING"
    (tree / "kernel").mkdir(parents=True)
    (tree / "userland" / "examples").mkdir(parents=True)
    (tree / "kernel" / "Makefile").write_text(KERNEL_MAKEFILE)
    (tree / "kernel" / "pf_ring.c").write_text(KERNEL_SOURCE)
    configure = tree / "userland" / "configure"
    configure.write_text(CONFIGURE)
    configure.chmod(0o755)
    (tree / "userland" / "Makefile").write_text(USERLAND_MAKEFILE)
    for name in ("pfsend", "pfcount"):
        (tree / "userland" / "examples" / f"{name}.c").write_text(PROGRAM.format(name=name))
    return tree


def cloud_kernel_release() -> str:
    """The ABI name of Debian's current cloud kernel, e.g. 6.1.0-56-cloud-amd64."""
    done = subprocess.run(
        ["apt-cache", "depends", "linux-headers-cloud-amd64"], capture_output=True, text=True
    )
    for line in done.stdout.splitlines():
        name = line.split(":", 1)[-1].strip()
        if line.strip().startswith("Depends:") and name.startswith("linux-headers-"):
            return name.removeprefix("linux-headers-")
    pytest.skip("apt does not know linux-headers-cloud-amd64 (run apt-get update)")


def test_stand_in_tree_builds_installs_and_is_idempotent(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("installs build packages with apt: needs root")
    kver = cloud_kernel_release()
    root = tmp_path / "stage"
    extra = {
        "pf_ring_install_method": "local",
        "pf_ring_local_src": str(stand_in_tree(tmp_path)),
        "pf_ring_controller_cache_dir": str(tmp_path / "cache"),
        "pf_ring_build_dir": str(tmp_path / "build"),
        "pf_ring_destdir": str(root),
        "pf_ring_kernel_version": kver,
        "pf_ring_load": False,
        "pf_ring_build_poll": 2,
    }

    done, report = run_role(tmp_path, extra, "--check")
    assert done.returncode == 0, failures(report) or done.stdout[-3000:]
    assert changed(report) > 0
    assert not (root / "usr/local/bin/pfcount").exists(), "check mode installed something"

    done, report = run_role(tmp_path, extra)
    assert done.returncode == 0, failures(report) or done.stdout[-3000:]
    assert changed(report) > 0
    module = root / "lib/modules" / kver / "extra/pf_ring.ko"
    vermagic = subprocess.run(
        ["modinfo", "-F", "vermagic", str(module)], capture_output=True, text=True, check=True
    ).stdout
    assert vermagic.split()[0] == kver
    assert "extra/pf_ring.ko" in (root / "lib/modules" / kver / "modules.dep").read_text()
    for name in ("pfsend", "pfcount"):
        ran = subprocess.run([str(root / "usr/local/bin" / name)], capture_output=True, text=True)
        assert ran.stdout.strip() == f"{name} stand-in"
    conf = (root / "etc/modprobe.d/pf_ring.conf").read_text()
    assert "options pf_ring enable_tx_capture=1 min_num_slots=4096" in conf
    assert (root / "etc/modules-load.d/pf_ring.conf").read_text().splitlines()[-1] == "pf_ring"

    done, report = run_role(tmp_path, extra)
    assert done.returncode == 0, failures(report)
    assert changed(report) == 0, "second run changed something"
    done, report = run_role(tmp_path, extra, "--check")
    assert done.returncode == 0, failures(report)
    assert changed(report) == 0, "check mode after a full run would change something"

    # A changed source gets a new tree keyed by its checksum, and is rebuilt.
    source = tmp_path / "PF_RING" / "kernel" / "pf_ring.c"
    source.write_text(source.read_text().replace("stand-in named", "stand-in, edited, named"))
    done, report = run_role(tmp_path, extra)
    assert done.returncode == 0, failures(report)
    assert changed(report) > 0
    assert len(list((tmp_path / "build").glob("src-*"))) == 2
