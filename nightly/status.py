"""status.json: what one night did (written atomically), and the notify command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvmnetlab.lock import process_start_time

FORMAT_VERSION = 1
OUTCOMES = ("done", "failed", "skipped", "refused")
# status.json says "running" from the night's start until its end; a night left "running" by
# a process that no longer runs (killed, or the machine rebooted) was interrupted.
RUNNING = "running"
INTERRUPTED = "interrupted"
CHANGE_FIELDS = ("scenario", "metric", "night", "change_pct", "ci_low_pct", "ci_high_pct",
                 "p_value", "differs")
NOTIFY_TIMEOUT_S = 300


@dataclass
class NightStatus:
    night: str
    started_at: str
    outcome: str = "failed"
    reason: str | None = None
    rc: int | None = None
    finished_at: str | None = None
    campaign_id: str | None = None
    regressions: list[dict[str, Any]] = field(default_factory=list)
    progressions: list[dict[str, Any]] = field(default_factory=list)
    dashboard: str | None = None
    report: str | None = None
    runner_artifacts: str | None = None
    pruned: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    driver: dict[str, Any] = field(default_factory=dict)  # pid, pid_start, boot_id

    def document(self) -> dict[str, Any]:
        if self.outcome not in (*OUTCOMES, RUNNING):
            raise ValueError(f"outcome must be one of {OUTCOMES} or {RUNNING}, "
                             f"got {self.outcome!r}")
        return {
            "format_version": FORMAT_VERSION,
            "night": self.night,
            "campaign_id": self.campaign_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "outcome": self.outcome,
            "reason": self.reason,
            "rc": self.rc,
            "regressions": self.regressions,
            "progressions": self.progressions,
            "dashboard": self.dashboard,
            "report": self.report,
            "runner_artifacts": self.runner_artifacts,
            "pruned": self.pruned,
            "warnings": self.warnings,
            "driver": self.driver,
        }


def boot_id() -> str | None:
    """This boot's id (``/proc/sys/kernel/random/boot_id``): a reboot changes it."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def this_driver() -> dict[str, Any]:
    """What identifies the running driver: its PID, the PID's start time, the boot id."""
    pid = os.getpid()
    return {"pid": pid, "pid_start": process_start_time(pid), "boot_id": boot_id()}


def driver_gone(driver: Any) -> str | None:
    """Why the driver recorded in a status document no longer runs, or None when it may
    (the same boot, its PID alive with the recorded start time)."""
    if not isinstance(driver, dict) or not isinstance(driver.get("pid"), int):
        return "no driver is recorded"
    if driver.get("boot_id") and driver["boot_id"] != boot_id():
        return "the machine was restarted since"
    if process_start_time(driver["pid"]) != driver.get("pid_start"):
        return f"its driver (PID {driver['pid']}) no longer runs"
    return None


def read(path: Path) -> dict[str, Any] | None:
    """A status.json, or None when there is none or it cannot be read as JSON."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write(status: NightStatus, night_path: Path, history_path: Path) -> None:
    """The night's status.json, then the same document as history/status.json (the latest)."""
    from kvmnetlab.store import atomic_write_json

    document = status.document()
    atomic_write_json(night_path, document)
    history_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = history_path.with_name(f".{history_path.name}.incoming")
    shutil.copyfile(night_path, tmp)
    tmp.replace(history_path)


def notify(command: list[str], status_path: Path,
           timeout_s: float = NOTIFY_TIMEOUT_S) -> str | None:
    """Run ``command`` with the status path as its last argument; return a problem, or None.

    Its failure is reported, never fatal.
    """
    argv = [*command, str(status_path)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"notify command {argv[0]} did not finish within {timeout_s:g} s"
    except OSError as exc:
        return f"notify command {argv[0]} could not run: {exc.strerror}"
    for line in (done.stdout + done.stderr).splitlines():
        print(f"notify: {line}", file=sys.stderr)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        return f"notify command {argv[0]} exited {done.returncode}: {tail[0]}".rstrip(": ")
    return None
