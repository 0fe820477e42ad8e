"""Unpacking a host's tar of raw files (kvmnetlab.bundle): only the regular files the host
said it packed are written, each checked against its sha256, and a tar that holds anything
else is refused, naming the member, with nothing written outside the staging folder."""

from __future__ import annotations

import copy
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from ansible_collections.kvmnetlab.lab.plugins.module_utils.raw_capture import pack

from kvmnetlab.bundle import BundleError, unpack_bundle, write_member
from kvmnetlab.errors import StoreError

PING = b"64 bytes from 198.18.0.2: icmp_seq=1 ttl=64 time=0.041 ms\n"
META = b'{"rc": 0}\n'


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: what the host packed, by its own account (name -> sha256)
HOST_LIST = {"ping.txt": sha(PING), "ping.txt.meta.json": sha(META)}


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, None


def renamed(info: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    info = copy.copy(info)  # TarInfo.replace is newer than Debian 12's Python (3.11.2)
    info.name = name
    return info


def write_tar(path: Path, entries) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def tree(top: Path) -> dict[str, str]:
    """Everything under ``top``: each path with what it is (and a file's content)."""
    found = {}
    for path in sorted(top.rglob("*")):
        rel = path.relative_to(top).as_posix()
        if path.is_symlink():
            found[rel] = f"symlink to {os.readlink(path)}"
        elif path.is_dir():
            found[rel] = "folder"
        else:
            found[rel] = f"file {sha(path.read_bytes())}"
    return found


@pytest.fixture
def lab(tmp_path):
    """The campaign's layout: outside/ holds the tar and a file of its own, and
    outside/staging/ the folder each host's files are unpacked into."""
    outside = tmp_path / "outside"
    staging = outside / "staging"
    staging.mkdir(parents=True)
    (outside / "keep.txt").write_text("not the bundle's\n")
    return outside, staging


def good_entries():
    return [regular("ping.txt", PING), regular("ping.txt.meta.json", META)]


def test_a_tar_packed_by_the_host_unpacks_and_is_checked(lab, tmp_path):
    outside, staging = lab
    raw = tmp_path / "host"
    raw.mkdir()
    (raw / "ping.txt").write_bytes(PING)
    (raw / "ping.txt.meta.json").write_bytes(META)
    # the host packs into its run folder; the controller fetches the tar beside staging
    members, missing, tar = pack(str(raw), ["ping.txt", "ping.txt.meta.json"], "1.g1.tar")
    assert missing == []
    assert members == HOST_LIST
    os.replace(tar, outside / "1.g1.tar")

    names = unpack_bundle(outside / "1.g1.tar", staging / "g1", members)

    assert names == ["ping.txt", "ping.txt.meta.json"]
    assert (staging / "g1" / "ping.txt").read_bytes() == PING
    assert (staging / "g1" / "ping.txt.meta.json").read_bytes() == META
    assert sorted(p.name for p in staging.iterdir()) == ["g1"]  # no private folder left
    assert (staging / "g1" / "ping.txt").stat().st_mode & 0o777 == 0o644 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_files_in_sub_folders_unpack(lab):
    outside, staging = lab
    tar = write_tar(outside / "1.g1.tar", [regular("sub/deeper/x.txt", PING)])
    assert unpack_bundle(tar, staging / "g1", {"sub/deeper/x.txt": sha(PING)}) == \
        ["sub/deeper/x.txt"]
    assert (staging / "g1/sub/deeper/x.txt").read_bytes() == PING


def test_unpacking_again_replaces_an_earlier_attempt(lab):
    """A failed repetition's salvage commits the tars already fetched a second time."""
    outside, staging = lab
    tar = write_tar(outside / "1.g1.tar", good_entries())
    unpack_bundle(tar, staging / "g1", HOST_LIST)
    (staging / "g1" / "stale.txt").write_text("left by the first attempt\n")
    assert unpack_bundle(tar, staging / "g1", HOST_LIST) == sorted(HOST_LIST)
    assert sorted(p.name for p in (staging / "g1").iterdir()) == sorted(HOST_LIST)


REFUSED = {
    "symlink": ([special("ping.txt", tarfile.SYMTYPE, "../../keep.txt"),
                 regular("ping.txt.meta.json", META)], "ping.txt", "a symbolic link"),
    "symlink-then-file-through-it": (
        [special("ping.txt", tarfile.SYMTYPE, "/tmp"), regular("ping.txt/x", PING)],
        "ping.txt", "a symbolic link"),
    "hard link": ([regular("ping.txt.meta.json", META),
                   special("ping.txt", tarfile.LNKTYPE, "ping.txt.meta.json")],
                  "ping.txt", "a hard link"),
    "hard link outside": ([special("ping.txt", tarfile.LNKTYPE, "/etc/passwd")],
                          "ping.txt", "a hard link"),
    "absolute name": ([regular("ping.txt", PING), regular("{outside}/pwned.txt", PING)],
                      "{outside}/pwned.txt", "an absolute name"),
    "dot-dot": ([regular("ping.txt", PING), regular("../../pwned.txt", PING)],
                "../../pwned.txt", "'..'"),
    "dot-dot inside a name": ([regular("sub/../../../pwned.txt", PING)],
                              "sub/../../../pwned.txt", "'..'"),
    "character device": ([special("ping.txt", tarfile.CHRTYPE)], "ping.txt",
                         "a character device"),
    "block device": ([special("ping.txt", tarfile.BLKTYPE)], "ping.txt", "a block device"),
    "fifo": ([special("ping.txt", tarfile.FIFOTYPE)], "ping.txt", "a FIFO"),
    "folder": ([special("ping.txt", tarfile.DIRTYPE)], "ping.txt", "a folder"),
    "folder not packed": ([special("sub", tarfile.DIRTYPE), *good_entries()], "sub",
                          "a folder"),
    "not packed by the host": ([*good_entries(), regular("extra.txt", b"surprise\n")],
                               "extra.txt", "not a file the host packed"),
    "wrong sha256": ([regular("ping.txt", PING.replace(b"0.041", b"0.042")),
                      regular("ping.txt.meta.json", META)], "ping.txt",
                     "sha256"),
    "twice": ([*good_entries(), regular("ping.txt", PING)], "ping.txt", "twice"),
    "missing": ([regular("ping.txt", PING)], "ping.txt.meta.json", "not in the tar"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_a_tar_with_anything_else_is_refused_naming_the_member(lab, tmp_path, case):
    outside, staging = lab
    entries, member, reason = REFUSED[case]
    entries = [(renamed(info, info.name.format(outside=outside)), data)
               for info, data in entries]
    member = member.format(outside=outside)
    tar = write_tar(outside / "1.g1.tar", entries)
    before = tree(tmp_path)

    with pytest.raises(StoreError) as refused:
        unpack_bundle(tar, staging / "g1", HOST_LIST)

    assert isinstance(refused.value, BundleError)
    assert refused.value.member == member
    message = str(refused.value)
    assert message.startswith(f"{tar}: {member}: "), message
    assert reason in message
    # nothing written anywhere: not outside the staging folder, and not in it either
    assert tree(tmp_path) == before
    assert not (outside / "pwned.txt").exists()


def test_a_member_claiming_more_bytes_than_the_tar_holds_is_refused(lab, tmp_path):
    outside, staging = lab
    tar = write_tar(outside / "1.g1.tar", good_entries())
    data = bytearray(tar.read_bytes())
    header = tarfile.TarInfo("ping.txt")
    header.size = 1 << 40  # the header lies: a terabyte
    # replace the first member's ustar header (after the pax header block) in place
    offset = data.index(b"ping.txt\0")
    fake = header.tobuf(format=tarfile.GNU_FORMAT)  # base-256 size
    data[offset:offset + 512] = fake
    tar.write_bytes(bytes(data))
    before = tree(tmp_path)
    with pytest.raises(BundleError) as refused:
        unpack_bundle(tar, staging / "g1", HOST_LIST)
    assert refused.value.member == "ping.txt"
    assert "more than the whole tar holds" in str(refused.value)
    assert tree(tmp_path) == before


def test_a_compressed_or_broken_tar_is_refused_naming_it(lab, tmp_path):
    outside, staging = lab
    tar = outside / "1.g1.tar"
    tar.write_bytes(b"not a tar at all\n" * 64)
    before = tree(tmp_path)
    with pytest.raises(BundleError) as refused:
        unpack_bundle(tar, staging / "g1", HOST_LIST)
    assert refused.value.member is None
    assert str(refused.value).startswith(f"{tar}: ")
    assert tree(tmp_path) == before


@pytest.mark.parametrize(("members", "member"), [
    ({"/etc/passwd": "0" * 64}, "/etc/passwd"),
    ({"../x": "0" * 64}, "../x"),
    ({"ping.txt": "not-a-digest"}, "ping.txt"),
])
def test_a_host_list_with_unsafe_names_is_refused_before_reading_the_tar(lab, tmp_path,
                                                                         members, member):
    outside, staging = lab
    tar = write_tar(outside / "1.g1.tar", good_entries())
    before = tree(tmp_path)
    with pytest.raises(BundleError) as refused:
        unpack_bundle(tar, staging / "g1", members)
    assert refused.value.member == member
    assert tree(tmp_path) == before


def test_a_staging_folder_that_is_a_symlink_is_refused(lab, tmp_path):
    outside, staging = lab
    tar = write_tar(outside / "1.g1.tar", good_entries())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (staging / "g1").symlink_to(elsewhere)
    with pytest.raises(BundleError, match="a symbolic link"):
        unpack_bundle(tar, staging / "g1", HOST_LIST)
    assert list(elsewhere.iterdir()) == []


def test_a_folder_on_the_way_that_is_a_symlink_is_refused(tmp_path):
    """Folders are created one by one and opened without following links."""
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "sub").symlink_to(elsewhere)
    (root / "link.txt").symlink_to(elsewhere / "target.txt")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(BundleError) as refused:
            write_member(fd, "sub/x.txt", io.BytesIO(PING), "1.g1.tar")
        with pytest.raises(BundleError) as refused_file:
            write_member(fd, "link.txt", io.BytesIO(PING), "1.g1.tar")
    finally:
        os.close(fd)
    assert refused.value.member == "sub/x.txt"
    assert "sub: a symbolic link" in str(refused.value)
    assert refused_file.value.member == "link.txt"
    assert list(elsewhere.iterdir()) == []
