"""Run site.yml through ansible-runner, print progress, and read why it failed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from nightly.lab import ansible_env

# What kvmnetlab.lock.LabBusy says when another campaign holds the lab.
BUSY_MARKER = "lab is busy:"
_MAX_REASON = 600  # characters


@dataclass
class PlaybookResult:
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    rc: int | None
    artifacts: Path
    failures: list[dict[str, Any]] = field(default_factory=list)
    error_lines: list[str] = field(default_factory=list)
    timeout_s: int | None = None  # the bound site.yml was run under

    @property
    def busy_reason(self) -> str | None:
        """The preflight's busy message when the lab lock was taken before site.yml's."""
        for failure in self.failures:
            if BUSY_MARKER in failure["msg"]:
                return failure["msg"]
        for line in self.error_lines:
            if BUSY_MARKER in line:
                return line[line.index(BUSY_MARKER):]
        return None

    def reason(self) -> str:
        """One line: the last failed task with its host and message, or the error printed."""
        if self.status == "canceled":
            return "site.yml was stopped (the driver was asked to stop)"
        if self.status == "timeout":
            return (f"site.yml did not finish within {self.timeout_s} s (timeout_h); it was "
                    "stopped")
        if self.failures:
            last = self.failures[-1]
            if last["kind"] == "unreachable":
                text = f"host {last['host']} unreachable: {last['msg']}"
            else:
                text = f"task {last['task']!r} failed on host {last['host']}: {last['msg']}"
            if len(self.failures) > 1:
                text += f" (and {len(self.failures) - 1} earlier failure(s))"
            return _clip(text)
        if self.error_lines:
            return _clip(" ".join(self.error_lines[-3:]))
        return f"ansible-playbook exited with rc {self.rc} ({self.status})"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON - 3] + "..."


def _message(res: dict[str, Any]) -> str:
    msg = res.get("msg")
    if not isinstance(msg, str) or not msg:
        msg = json.dumps(msg) if msg else ""
    stderr = (res.get("stderr") or "").strip()
    if stderr:
        msg = f"{msg}: {stderr.splitlines()[-1]}" if msg else stderr.splitlines()[-1]
    if not msg and "rc" in res:
        msg = f"rc {res['rc']}"
    return msg or "no message"


class Progress:
    """ansible-runner event handler: one line per play and task, failures, the recap."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.start = time.monotonic()
        self.failures: list[dict[str, Any]] = []

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.start:7.0f} s] {text}", file=self.out, flush=True)

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self.say(f"PLAY {data.get('play') or data.get('name')}")
        elif kind == "playbook_on_task_start":
            self.say(f"  TASK {data.get('task')}")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self._failure("failed", data)
        elif kind == "runner_on_unreachable":
            self._failure("unreachable", data)
        elif kind == "playbook_on_stats":
            self._recap(data)
        return True

    def _recap(self, data: dict[str, Any]) -> None:
        """One line per host, in the words of ansible-playbook's PLAY RECAP."""
        words = (("ok", "ok"), ("changed", "changed"), ("dark", "unreachable"),
                 ("failures", "failed"), ("skipped", "skipped"), ("rescued", "rescued"))
        hosts = sorted(set().union(*((data.get(key) or {}) for key, _ in words)))
        for host in hosts:
            counts = " ".join(f"{word}={(data.get(key) or {}).get(host, 0)}"
                              for key, word in words)
            self.say(f"RECAP {host}: {counts}")

    def _failure(self, kind: str, data: dict[str, Any]) -> None:
        res = data.get("res") or {}
        failure = {"kind": kind, "task": data.get("task"), "host": data.get("host"),
                   "msg": _message(res)}
        self.failures.append(failure)
        word = "UNREACHABLE" if kind == "unreachable" else "FAILED"
        self.say(f"  {word} {failure['host']}: {_clip(failure['msg'])}")


def _error_lines(artifacts: Path) -> list[str]:
    """Lines where ansible-playbook reported an error outside any task (syntax, inventory)."""
    lines = []
    for name in ("stdout", "stderr"):
        try:
            text = (artifacts / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        lines += [line.strip() for line in text.splitlines()
                  if line.lstrip().startswith(("ERROR!", "[ERROR]"))]
    return lines


class _StopFlag:
    """SIGTERM/SIGINT while site.yml runs: ask ansible-runner to stop it."""

    def __init__(self) -> None:
        self.stop = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.stop = True

    def __call__(self) -> bool:
        return self.stop


RUN_MARKER = "KVMNETLAB_NIGHTLY_RUN"


def _marked(marker: str) -> list[int]:
    """PIDs of the processes whose environment carries ``RUN_MARKER=marker``: the ones
    this run of site.yml started (Ansible's workers leave its process group)."""
    needle = f"{RUN_MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def stop_leftovers(marker: str, grace_s: float = 5.0) -> list[int]:
    """Stop what a stopped run of site.yml left running (SIGTERM, then SIGKILL)."""
    pids = _marked(marker)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _marked(marker):
            time.sleep(0.1)
        pids = _marked(marker)
        if not pids:
            break
    return pids


def run_site(*, repo: Path, private_dir: Path, ident: str, inventory: Path,
             extravars: dict[str, Any], tags: str | None = None, skip_tags: str | None = None,
             limit: str | None = None, out: TextIO | None = None,
             run: Callable[..., Any] | None = None,
             timeout_s: int | None = None) -> PlaybookResult:
    """Run ``repo``/site.yml with ansible-runner; artifacts under ``private_dir``/artifacts/."""
    import ansible_runner

    private_dir.mkdir(parents=True, exist_ok=True)
    progress = Progress(out)
    marker = f"{private_dir}/{ident}"
    kwargs: dict[str, Any] = {
        "private_data_dir": str(private_dir),
        "project_dir": str(repo),
        "playbook": "site.yml",
        "ident": ident,
        "inventory": str(inventory),
        "extravars": extravars,
        # PATH starts with the venv's bin: ansible-runner finds ansible-playbook there (its
        # `binary` option would turn the run into a raw command without the playbook)
        "envvars": {**ansible_env(repo), RUN_MARKER: marker},
        "event_handler": progress,
        "quiet": True,
    }
    if timeout_s:
        kwargs["timeout"] = timeout_s  # ansible-runner stops the playbook past it
    for key, value in (("tags", tags), ("skip_tags", skip_tags), ("limit", limit)):
        if value:
            kwargs[key] = value
    with _StopFlag() as flag:
        runner = (run or ansible_runner.run)(cancel_callback=flag, **kwargs)
    if runner.status in ("canceled", "timeout"):
        left = stop_leftovers(marker)
        if left:
            progress.say(f"could not stop pids {', '.join(map(str, left))} of site.yml")
    artifacts = private_dir / "artifacts" / ident
    return PlaybookResult(status=runner.status, rc=runner.rc, artifacts=artifacts,
                          failures=progress.failures, error_lines=_error_lines(artifacts),
                          timeout_s=timeout_s)
