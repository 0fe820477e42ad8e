"""What the driver checks before a night starts: free disk space and the lab lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 1024**3


def venv_bin(name: str) -> str:
    """The ansible executable ``name`` beside this interpreter (the venv's), else on PATH."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def ansible_env(repo: Path) -> dict[str, str]:
    """Environment for ansible commands: the checkout's ansible.cfg, the venv first on PATH."""
    return {
        "ANSIBLE_CONFIG": str(repo / "ansible.cfg"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
    }


# --------------------------------------------------------------------------- disk


def free_gib(path: Path) -> float:
    """Free space (GiB) available to an unprivileged writer at ``path`` or its nearest
    existing parent."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    st = os.statvfs(probe)
    return st.f_bavail * st.f_frsize / GIB


# --------------------------------------------------------------------------- lock


class LockResolveError(RuntimeError):
    """The inventory's lock path could not be worked out."""


def resolve_lock_file(repo: Path, inventory: Path, extra_vars: dict[str, Any],
                      timeout_s: float = 120.0) -> Path:
    """``{{ kvmnetlab_lock_dir }}/{{ kvmnetlab_lab_name }}.lock`` as the inventory (and the
    night's extra vars) define them for localhost, templated by Ansible itself, exactly as
    the preflight's kvmnetlab.lab.campaign_validate will see them
    (kvmnetlab.parameters.lock_path)."""
    from kvmnetlab.parameters import LOCK_PATH_EXPRESSION

    expr = LOCK_PATH_EXPRESSION
    cmd = [venv_bin("ansible"), "localhost", "-i", str(inventory),
           "-m", "ansible.builtin.debug", "-a", f"msg={expr}"]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    env = {**os.environ, **ansible_env(repo), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
           "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}
    try:
        done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LockResolveError(f"{' '.join(cmd[:2])}: {exc}") from None
    out = done.stdout
    try:  # "localhost | SUCCESS => {...}"
        result = json.loads(out[out.index("=> {") + 3:])
    except ValueError:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise LockResolveError(f"ansible exited {done.returncode}: {' '.join(tail)}") from None
    msg = result.get("msg")
    if result.get("failed") or not isinstance(msg, str) or not msg.endswith(".lock"):
        raise LockResolveError(f"inventory {inventory}: {msg}")
    return Path(msg)


@dataclass(frozen=True)
class Holder:
    pid: int
    campaign_id: str | None
    since: str | None
    path: Path

    def describe(self) -> str:
        return (f"lab is busy: {self.path} is held by live pid {self.pid} "
                f"(campaign {self.campaign_id!r}, since {self.since})")


def live_holder(path: Path) -> Holder | None:
    """The live process holding the lab lock at ``path``, or None (free, or stale: its
    process is gone), judged by kvmnetlab.lock (PID and kernel start time)."""
    from kvmnetlab import lock

    info = lock.holder(path)
    if info is None:
        return None
    return Holder(pid=int(info["pid"]), campaign_id=info.get("campaign_id"),
                  since=info.get("since"), path=path)
