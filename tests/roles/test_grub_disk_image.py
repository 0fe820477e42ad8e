"""kvmnetlab.lab.grub_disk_image: the MBR disk a grub-booted guest starts from.

The MBR layout is checked byte by byte against hand-decoded values; the root file
system is a real ext4 image made by mkfs.ext4 and read back from inside the assembled
disk by debugfs (e2fsprogs' `image?offset=N` syntax), which knows nothing of this
module. The boot and core images here are test inputs (grub's real ones come from the
guest tree and are exercised by the opt-in test tests/lab/test_kernel_install_embedded.py,
which boots the disk).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import struct
import subprocess

import pytest

from tests.helpers import REPO
from tests.roles.test_guests_modules import module

PLUGIN = REPO / "collections/ansible_collections/kvmnetlab/lab/plugins/modules/grub_disk_image.py"
spec = importlib.util.spec_from_file_location("grub_disk_image", PLUGIN)
gdi = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gdi)


def boot_img() -> bytes:
    code = bytes((i * 7) % 251 for i in range(440))
    return code + b"\xaa" * 70 + b"\x55\xaa"


def test_chs_of_the_first_partition_and_beyond_the_chs_limit():
    # LBA 2048 = cylinder 0, head 2048 // 63 = 32, sector 2048 % 63 + 1 = 33
    assert gdi.chs(2048) == bytes([32, 33, 0])
    # LBA 16065 * 5 + 63 * 3 + 4: cylinder 5, head 3, sector 5
    assert gdi.chs(16065 * 5 + 63 * 3 + 4) == bytes([3, 5, 5])
    assert gdi.chs(1024 * 255 * 63) == b"\xfe\xff\xff"


def test_mbr_keeps_the_boot_code_and_describes_one_bootable_linux_partition():
    sector = gdi.mbr(boot_img(), 2048, 4_194_304, 0x12345678)
    assert len(sector) == 512
    assert sector[:440] == boot_img()[:440]
    assert sector[440:444] == bytes.fromhex("78563412")
    entry = sector[446:462]
    assert entry[0] == 0x80 and entry[4] == 0x83
    assert struct.unpack("<II", entry[8:16]) == (2048, 4_194_304)
    assert sector[462:510] == bytes(48)
    assert sector[510:] == b"\x55\xaa"
    assert gdi.partitions(sector) == [{"bootable": True, "type": 0x83, "start": 2048,
                                       "sectors": 4_194_304}]


@pytest.mark.parametrize("bad, message", [
    (b"\x00" * 512, "0x55AA"),
    (b"\x55\xaa" * 100, "not 512"),
])
def test_mbr_refuses_what_is_not_a_boot_sector(bad, message):
    with pytest.raises(ValueError, match=message):
        gdi.mbr(bad, 2048, 100, 1)


@pytest.fixture
def inputs(tmp_path):
    if not shutil.which("mkfs.ext4") or not shutil.which("debugfs"):
        pytest.skip("needs e2fsprogs")
    tree = tmp_path / "tree"
    (tree / "boot" / "grub").mkdir(parents=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text("set timeout=1\n")
    rootfs = tmp_path / "rootfs.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "kvmnlroot", "-d", str(tree), str(rootfs),
                    "64M"], check=True)
    (tmp_path / "boot.img").write_bytes(boot_img())
    (tmp_path / "core.img").write_bytes(b"CORE" * 8000)  # 32000 bytes, 63 sectors
    return {"rootfs": str(rootfs), "boot_img": str(tmp_path / "boot.img"),
            "core_img": str(tmp_path / "core.img"), "dest": str(tmp_path / "disk.img")}


def test_assembled_disk_boots_grub_and_holds_the_file_system_at_1_mib(inputs):
    rc, result = module("grub_disk_image", inputs)
    assert rc == 0, result
    with open(inputs["dest"], "rb") as fh:
        disk = fh.read()
    assert result["partition_start_bytes"] == 1 << 20
    assert len(disk) == result["size_bytes"] == (1 << 20) + 64 * (1 << 20)
    assert disk[:440] == boot_img()[:440]
    assert struct.unpack("<II", disk[446 + 8:446 + 16]) == (2048, 64 * 2048)
    assert disk[512:512 + 32000] == b"CORE" * 8000
    assert disk[512 + 32000:1 << 20] == bytes((1 << 20) - 512 - 32000)
    read = subprocess.run(["debugfs", "-R", "cat /boot/grub/grub.cfg",
                           f"{inputs['dest']}?offset={1 << 20}"],
                          capture_output=True, text=True, check=True)
    assert read.stdout == "set timeout=1\n"
    label = subprocess.run(["dumpe2fs", "-h", f"{inputs['dest']}?offset={1 << 20}"],
                           capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Filesystem volume name:\s+kvmnlroot$", label, re.M)
    # zero blocks of the root image are holes in the disk, not written zeros
    assert os.stat(inputs["dest"]).st_blocks * 512 < 0.5 * len(disk)


def test_a_core_image_too_big_for_the_gap_is_refused(inputs, tmp_path):
    (tmp_path / "core.img").write_bytes(b"x" * (2047 * 512 + 1))
    rc, result = module("grub_disk_image", inputs)
    assert rc != 0
    assert f"{inputs['core_img']}: 1048065 bytes do not fit" in result["msg"]
    assert not (tmp_path / "disk.img").exists()


def test_check_mode_writes_nothing(inputs, tmp_path):
    rc, result = module("grub_disk_image", inputs, "--check")
    assert rc == 0 and result["changed"]
    assert not (tmp_path / "disk.img").exists()
