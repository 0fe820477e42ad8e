"""Unpacking a host's tar of raw files (a bundle) on the controller.

A host packs the raw files of a repetition into an uncompressed tar and reports the
name and sha256 of every file it packed (``raw_capture.pack``, through
``kvmnetlab.lab.collect``); ``kvmnetlab.lab.store_commit`` unpacks each tar here before
committing the files to the result store.

Nothing in the tar's headers is trusted. Only regular files whose names the host
reported are written, each created afresh (never through a symbolic link) under a
private folder beside the staging folder, then checked against the host's sha256.
Links, devices, FIFOs and folders, absolute names and names with ``..`` are refused,
and so is a member claiming more bytes than the whole tar holds. Modes, owners and
times in the tar are ignored. On any refusal, what was unpacked so far is removed:
nothing is written outside the staging folder, and the staging folder is left as it
was. It needs nothing from tarfile's extraction filters (absent before Python 3.11.4).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from kvmnetlab.errors import StoreError

#: the tar member types a bundle may hold: regular files (pack adds nothing else)
REGULAR_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE)
KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.DIRTYPE: "a folder",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class BundleError(StoreError):
    """A bundle that cannot be unpacked: names the tar and, where one is to blame, the
    member."""

    def __init__(self, bundle: str | Path, member: str | None, message: str) -> None:
        self.bundle = str(bundle)
        self.member = member
        self.reason = message
        where = f"{self.bundle}: {member}" if member is not None else self.bundle
        super().__init__(f"{where}: {message}")


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a file under the staging folder, or None."""
    if not isinstance(name, str) or not name:
        return "an empty name"
    if "\0" in name:
        return "a NUL byte in its name"
    if name.startswith("/"):
        return "an absolute name"
    parts = name.split("/")
    if ".." in parts:
        return "'..' in its name, which leaves the staging folder"
    if any(part in ("", ".") for part in parts):
        return "an empty or '.' part in its name"
    return None


def expected_members(members: object, bundle: str | Path) -> dict[str, str]:
    """The host's list (name -> sha256), checked: every name a plain relative path,
    every digest a sha256 in hex."""
    if not isinstance(members, Mapping):
        raise BundleError(bundle, None, "the host's list of packed files is not a mapping "
                          f"(got {type(members).__name__})")
    for name, digest in members.items():
        problem = name_problem(name)
        if problem:
            raise BundleError(bundle, name, f"the host's list of packed files holds {problem}")
        if not isinstance(digest, str) or not SHA256.match(digest):
            raise BundleError(bundle, name, f"the host's sha256 {digest!r} is not a sha256")
    return dict(members)


def member_problem(member: tarfile.TarInfo, expected: Mapping[str, str], seen: set[str],
                   limit: int) -> str | None:
    """Why a tar member cannot be unpacked, or None. ``limit`` is the tar's own size: a
    regular member's bytes lie inside it."""
    problem = name_problem(member.name)
    if problem:
        return problem
    if member.type not in REGULAR_TYPES or member.issparse():
        kind = KINDS.get(member.type, f"of tar type {member.type!r}")
        return f"{kind}, not a regular file"
    if member.name not in expected:
        return "not a file the host packed"
    if member.name in seen:
        return "in the tar twice"
    if member.size > limit:
        return f"claims {member.size} bytes, more than the whole tar holds ({limit})"
    return None


def open_folder(root_fd: int, folders: list[str], bundle: str | Path, name: str) -> int:
    """A descriptor of ``root_fd``/``folders``, creating each folder that is missing and
    refusing a part that is a symbolic link or not a folder. The caller closes it."""
    fd = os.dup(root_fd)
    try:
        for part in folders:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            try:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise BundleError(bundle, name, f"{part}: a symbolic link or a file where "
                                  "a folder is needed") from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_member(root_fd: int, name: str, source: IO[bytes], bundle: str | Path) -> str:
    """Write ``source`` to the new file ``name`` under ``root_fd``; return its sha256."""
    *folders, leaf = name.split("/")
    parent = open_folder(root_fd, folders, bundle, name)
    try:
        fd = os.open(leaf, FILE_FLAGS, 0o644, dir_fd=parent)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ELOOP):
            raise
        raise BundleError(bundle, name, "already exists where it would be written") from None
    finally:
        os.close(parent)
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def unpack_members(tar_path: Path, folder: Path, expected: Mapping[str, str]) -> None:
    """Write the tar's members into the (new, empty) ``folder``, or raise BundleError."""
    limit = os.path.getsize(tar_path)
    seen: set[str] = set()
    root = os.open(folder, DIR_FLAGS)
    try:
        with tarfile.open(tar_path, "r:") as tar:
            for member in tar:
                problem = member_problem(member, expected, seen, limit)
                if problem:
                    raise BundleError(tar_path, member.name, problem)
                seen.add(member.name)
                source = tar.extractfile(member)
                if source is None:  # not reached: only regular members get here
                    raise BundleError(tar_path, member.name, "has no data")
                digest = write_member(root, member.name, source, tar_path)
                if digest != expected[member.name]:
                    raise BundleError(tar_path, member.name, f"sha256 {digest} differs from "
                                      f"the host's {expected[member.name]}: the transfer "
                                      "corrupted it")
    except tarfile.TarError as exc:
        raise BundleError(tar_path, None, f"not a readable uncompressed tar: {exc}") from None
    finally:
        os.close(root)
    missing = sorted(set(expected) - seen)
    if missing:
        raise BundleError(tar_path, missing[0], "packed by the host but not in the tar "
                          f"(missing: {', '.join(missing)})")


def unpack_bundle(tar_path: str | Path, into: str | Path, members: Mapping[str, str]) -> list[str]:
    """Unpack a host's tar of raw files into the folder ``into``; return the names.

    ``members`` is name -> sha256, as the host computed them before the transfer. The
    files are unpacked into a private folder beside ``into`` and renamed to ``into`` only
    once every one is checked; ``into`` left by an earlier attempt at the same tar is
    replaced. Raises :class:`BundleError` naming the tar and the member at fault.
    """
    tar_path, into = Path(tar_path), Path(into)
    expected = expected_members(members, tar_path)
    if into.is_symlink():
        raise BundleError(tar_path, None, f"{into}: a symbolic link, not a folder")
    into.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{into.name}.", suffix=".unpacking",
                                 dir=into.parent))
    try:
        unpack_members(tar_path, work, expected)
        os.chmod(work, 0o755)
        if into.is_dir():
            shutil.rmtree(into)
        elif into.exists():
            into.unlink()
        os.rename(work, into)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return sorted(expected)
