#!/usr/bin/python
# Copyright: kvmnetlab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assemble a BIOS-bootable disk image: MBR + grub core image + one ext4 partition."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grub_disk_image
short_description: Assemble a grub-bootable, MBR-partitioned raw disk image from an ext4 image
description:
  - Writes I(dest) as a raw disk whose first partition (bootable, type 0x83) starts at
    1 MiB and holds the bytes of I(rootfs); grub's C(boot.img) goes into the MBR's
    boot code (440 bytes) and grub's C(core.img) into the gap after it (from sector 1),
    which is what C(grub-install --target=i386-pc) writes to a disk.
  - Needs no loop device, partition nodes or partitioning tool. Zero blocks of the
    root image are skipped, so the result is as sparse as the input.
  - The core image must have been made for that layout, e.g.
    C(grub-mkimage -O i386-pc -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2).
  - Always reports a change (it is run only while building an image); nothing is
    written in check mode.
options:
  rootfs:
    description: The ext4 file system image of the first partition.
    type: path
    required: true
  boot_img:
    description: grub's i386-pc C(boot.img) (512 bytes).
    type: path
    required: true
  core_img:
    description: grub's i386-pc C(core.img) built for (hd0,msdos1).
    type: path
    required: true
  dest:
    description: The disk image to write (replaced).
    type: path
    required: true
author:
  - kvmnetlab contributors
"""

EXAMPLES = r"""
- name: Assemble the grub-bootable disk
  kvmnetlab.lab.grub_disk_image:
    rootfs: /var/lib/kvmnetlab/local/images/0123/rootfs.ext4
    boot_img: /var/lib/kvmnetlab/local/images/0123/boot.img
    core_img: /var/lib/kvmnetlab/local/images/0123/core.img
    dest: /var/lib/kvmnetlab/local/images/0123/disk.img
"""

RETURN = r"""
partition_start_bytes:
  description: Offset of the first partition, in bytes.
  returned: always
  type: int
  sample: 1048576
size_bytes:
  description: Size of the disk image, in bytes.
  returned: always
  type: int
"""

import os
import struct

from ansible.module_utils.basic import AnsibleModule

SECTOR = 512
FIRST_LBA = 2048  # 1 MiB, where partitioning tools put the first partition
BOOT_CODE = 440   # bytes of boot code before the disk signature and the partition table
CHUNK = 1 << 20


def chs(lba: int) -> bytes:
    """The CHS triple of an LBA (255 heads, 63 sectors), or the 'beyond CHS' marker."""
    cylinder, rest = divmod(lba, 255 * 63)
    if cylinder > 1023:
        return b"\xfe\xff\xff"
    head, sector = divmod(rest, 63)
    sector += 1
    return bytes([head, ((cylinder >> 2) & 0xC0) | sector, cylinder & 0xFF])


def mbr(boot_img: bytes, first_lba: int, sectors: int, signature: int) -> bytes:
    """A 512-byte MBR: grub's boot code, a disk signature, one bootable Linux partition."""
    if len(boot_img) != SECTOR:
        raise ValueError(f"boot.img is {len(boot_img)} bytes, not {SECTOR}")
    if boot_img[510:512] != b"\x55\xaa":
        raise ValueError("boot.img lacks the 0x55AA boot signature")
    if not 0 < sectors < 2**32 or not 0 < first_lba < 2**32:
        raise ValueError(f"partition out of MBR range: start {first_lba}, {sectors} sectors")
    entry = (b"\x80" + chs(first_lba) + b"\x83" + chs(first_lba + sectors - 1)
             + struct.pack("<II", first_lba, sectors))
    table = entry + bytes(48)
    return (boot_img[:BOOT_CODE] + struct.pack("<I", signature) + b"\x00\x00"
            + table + b"\x55\xaa")


def partitions(sector0: bytes) -> list[dict]:
    """The primary partitions of an MBR (for checks and tests)."""
    if sector0[510:512] != b"\x55\xaa":
        raise ValueError("no MBR boot signature")
    out = []
    for i in range(4):
        raw = sector0[446 + 16 * i: 462 + 16 * i]
        start, count = struct.unpack("<II", raw[8:16])
        if raw[4]:
            out.append({"bootable": raw[0] == 0x80, "type": raw[4], "start": start,
                        "sectors": count})
    return out


def assemble(rootfs: str, boot_img: str, core_img: str, dest: str) -> dict:
    size = os.path.getsize(rootfs)
    if size % SECTOR:
        raise ValueError(f"{rootfs}: {size} bytes is not a whole number of sectors")
    with open(boot_img, "rb") as fh:
        boot = fh.read()
    with open(core_img, "rb") as fh:
        core = fh.read()
    gap = (FIRST_LBA - 1) * SECTOR
    if len(core) > gap:
        raise ValueError(f"{core_img}: {len(core)} bytes do not fit the {gap}-byte gap "
                         "before the first partition")
    signature = int.from_bytes(os.urandom(4), "little") or 1
    sector0 = mbr(boot, FIRST_LBA, size // SECTOR, signature)
    start = FIRST_LBA * SECTOR
    tmp = dest + ".partial"
    with open(rootfs, "rb") as src, open(tmp, "wb") as out:
        out.write(sector0)
        out.write(core)
        out.truncate(start + size)
        out.seek(start)
        while True:
            block = src.read(CHUNK)
            if not block:
                break
            if block.count(0) == len(block):
                out.seek(len(block), os.SEEK_CUR)
            else:
                out.write(block)
    os.replace(tmp, dest)
    return {"partition_start_bytes": start, "size_bytes": start + size}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "rootfs": {"type": "path", "required": True},
            "boot_img": {"type": "path", "required": True},
            "core_img": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    for key in ("rootfs", "boot_img", "core_img"):
        if not os.path.isfile(p[key]):
            module.fail_json(msg=f"{key}: {p[key]} does not exist")
    if module.check_mode:
        module.exit_json(changed=True, partition_start_bytes=FIRST_LBA * SECTOR,
                         size_bytes=FIRST_LBA * SECTOR + os.path.getsize(p["rootfs"]))
    try:
        result = assemble(p["rootfs"], p["boot_img"], p["core_img"], p["dest"])
    except (OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
