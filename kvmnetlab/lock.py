"""One campaign at a time per lab: a lock file owned by the ansible-playbook process.

The lock records the PID and the kernel's start time of the process that holds
it, so a lock left behind by a run that died is recognised as stale and taken
over, while a live holder refuses the newcomer with a clear message.
"""

from __future__ import annotations

import contextlib
import json
import os
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


def acquire(path: str | Path, owner_pid: int, details: dict[str, Any]) -> dict[str, Any]:
    """Take the lab lock for ``owner_pid``; idempotent for the same owner.

    Raises :class:`LabBusy` naming the campaign and PID that hold it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"pid": owner_pid, "start_time": process_start_time(owner_pid), **details}
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
    # link() fails if another run created the lock between our check and now.
    with contextlib.suppress(FileNotFoundError):
        if holder(path) is None:
            path.unlink()
    try:
        os.link(tmp, path)
    except FileExistsError:
        current = holder(path) or {}
        raise LabBusy(f"lab is busy: {path} was just taken by pid {current.get('pid')}") from None
    finally:
        tmp.unlink()
    return info


def release(path: str | Path, owner_pid: int) -> bool:
    """Remove the lock if ``owner_pid`` holds it (or it is stale); return whether removed."""
    path = Path(path)
    current = holder(path)
    if current is not None and current["pid"] != owner_pid:
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
