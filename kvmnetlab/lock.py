"""One campaign at a time per lab: a lock file owned by the ansible-playbook process.

The lock records the PID and the kernel's start time of the process that holds
it, so a lock left behind by a run that died is recognised as stale and taken
over, while a live holder refuses the newcomer with a clear message. Taking and
releasing happen under an ``fcntl.flock`` on ``<lock>.guard``: of two runs that
find the same stale lock, exactly one takes it over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class LabBusy(RuntimeError):
    """Another campaign holds the lab."""


def process_start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19]  # field 22 of proc(5): starttime, in clock ticks since boot


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [p.decode(errors="replace") for p in handle.read().split(b"\0") if p]
    except OSError:
        return []


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _is_playbook(pid: int) -> bool:
    return any(Path(arg).name == "ansible-playbook" for arg in _cmdline(pid)[:2])


def playbook_pid(start: int | None = None) -> int:
    """The PID of the ansible-playbook process this code runs under (else our own).

    Ansible's workers are forks of the main process and carry the same command
    line, so the answer is the topmost of the consecutive ansible-playbook
    ancestors.
    """
    pid = start or os.getpid()
    found = None
    for _ in range(64):
        if pid <= 1:
            break
        if _is_playbook(pid):
            found = pid
        elif found is not None:
            break
        pid = _parent(pid)
    return found or start or os.getpid()


def holder(path: Path) -> dict[str, Any] | None:
    """The live holder recorded in ``path``, or None when free or stale."""
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, json.JSONDecodeError):
        return None
    pid = info.get("pid")
    if isinstance(pid, int) and process_start_time(pid) == info.get("start_time"):
        return info
    return None


GUARD_WAIT_S = 30.0  # the guard is held only for a read and a rename


@contextlib.contextmanager
def _guarded(path: Path) -> Iterator[None]:
    """Hold ``<path>.guard`` exclusively (bounded wait): checks and changes of the lock
    under it cannot interleave with another run's."""
    guard = path.with_name(f"{path.name}.guard")
    fd = os.open(guard, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + GUARD_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabBusy(f"lab is busy: {guard} stayed locked for {GUARD_WAIT_S:g} s "
                                  "by another run taking or releasing the lab lock") from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # releases the flock


def acquire(path: str | Path, owner_pid: int, details: dict[str, Any]) -> dict[str, Any]:
    """Take the lab lock for ``owner_pid``; idempotent for the same owner. A stale lock
    (its holder gone) is taken over; of runs racing for it, exactly one gets it.

    Raises :class:`LabBusy` naming the campaign and PID that hold it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"pid": owner_pid, "start_time": process_start_time(owner_pid), **details}
    with _guarded(path):
        current = holder(path)
        if current is not None:
            if current["pid"] == owner_pid:
                return current
            raise LabBusy(
                f"lab is busy: {path} is held by pid {current['pid']} "
                f"(campaign {current.get('campaign_id')!r}, since {current.get('since')}); "
                "wait for it to finish, or run teardown after it ends"
            )
        tmp = path.with_name(f".{path.name}.{owner_pid}")
        tmp.write_text(json.dumps(info) + "\n", encoding="utf-8")
        os.replace(tmp, path)  # a stale lock is replaced in one step
    return info


def release(path: str | Path, owner_pid: int) -> bool:
    """Remove the lock if ``owner_pid`` holds it (or it is stale); return whether removed."""
    path = Path(path)
    if not path.exists():
        return False
    with _guarded(path):
        current = holder(path)
        if current is not None and current["pid"] != owner_pid:
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
    return True
