# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for a long build running as an async job on a host, printing its progress.

The job was started by a task with ``async`` and ``poll: 0``. This action checks it with
the async_status module every ``poll`` seconds and prints, every ``interval`` seconds,
one line at normal verbosity with the time spent and the last line of the build's log
(read with ``tail`` on the host), instead of the ``FAILED - RETRYING`` lines that an
``until:`` loop over async_status prints. A failed job fails the task with the log's
tail. The formatting and the decisions are pure functions, tested without a host.
"""

from __future__ import annotations

import re
import shlex
import time

from ansible.errors import AnsibleActionFail
from ansible.utils.display import Display
from ansible_collections.kvmnetlab.lab.plugins.modules.build_wait import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.documented import DocumentedAction

display = Display()

# Width of the log line a progress line shows.
LINE_WIDTH = 160
# Least grace (s) the async wrapper gets past the timeout to record its own verdict.
MIN_GRACE = 30
# The job result keys the action returns.
JOB_KEYS = ("rc", "start", "end", "delta")

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def format_elapsed(seconds: float) -> str:
    """``45 s``, ``2 min 05 s`` or ``1 h 02 min``."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def clean_line(line: str, width: int = LINE_WIDTH) -> str:
    """One log line as a progress line shows it: what a terminal would show last after
    carriage returns, without colour codes or control characters, cut to ``width``."""
    line = _ANSI.sub("", line)
    shown = [part for part in line.split("\r") if part.strip()]
    line = _CONTROL.sub(" ", shown[-1] if shown else "").strip()
    return line if len(line) <= width else line[: width - 3] + "..."


def last_line(text: str, width: int = LINE_WIDTH) -> str:
    """The last line of ``text`` that shows something, cleaned (``""`` when none)."""
    for line in reversed(text.split("\n")):
        cleaned = clean_line(line, width)
        if cleaned:
            return cleaned
    return ""


def tail_lines(text: str, count: int) -> str:
    """The last ``count`` lines of ``text``, colour codes removed, without a final newline."""
    lines = _ANSI.sub("", text).rstrip("\n").split("\n")
    return "\n".join(lines[-count:]) if count > 0 and text.strip() else ""


def progress_command(log: str, steps: str | None) -> str:
    """The shell command printing the step count (when ``steps`` is given) on its first line,
    then the log's last line."""
    quoted = shlex.quote(log)
    read = f"tail -n 1 -- {quoted} 2>/dev/null"
    if steps:
        return f"grep -cE -e {shlex.quote(steps)} -- {quoted} 2>/dev/null; {read}"
    return read


def tail_command(log: str, count: int) -> str:
    return f"tail -n {int(count)} -- {shlex.quote(log)} 2>/dev/null"


def parse_progress(stdout: str, counted: bool) -> tuple[int | None, str]:
    """``(steps, last line)`` from the output of ``progress_command``."""
    lines = stdout.split("\n")
    steps = None
    if counted and lines and lines[0].strip().isdigit():
        steps = int(lines.pop(0).strip())
    return steps, last_line("\n".join(lines))


def host_label(host: str, delegate_to: str | None) -> str:
    """Where the build runs: ``bm1``, or ``build1 (for bm1)`` when delegated."""
    if delegate_to and delegate_to != host:
        return f"{delegate_to} (for {host})"
    return host


def progress_line(name: str, where: str, elapsed: float, last: str = "",
                  steps: int | None = None) -> str:
    parts = [format_elapsed(elapsed)]
    if steps is not None:
        parts.append(f"{steps} steps")
    if last:
        parts.append(f"last line: {last}")
    return f"build {name} on {where}: {', '.join(parts)}"


def start_line(name: str, where: str, log: str | None, interval: int) -> str:
    logged = f", log {log}" if log else ""
    return (f"build {name} on {where}: waiting{logged} "
            f"(a progress line every {format_elapsed(interval)})")


def job_outcome(status: dict) -> str:
    """``running``, ``ok`` or ``failed``, from an async_status result."""
    if not status.get("finished"):
        return "failed" if status.get("failed") else "running"
    if status.get("failed") or status.get("rc") not in (None, 0):
        return "failed"
    return "ok"


def timed_out(elapsed: float, timeout: int, poll: int) -> bool:
    """Whether the wait should give up: past ``timeout`` (0: never) and the grace the async
    wrapper gets to record its own timeout."""
    return timeout > 0 and elapsed > timeout + max(2 * poll, MIN_GRACE)


def failure_message(name: str, where: str, elapsed: float, status: dict | None,
                    timeout: int = 0, log: str | None = None, tail: str = "",
                    output: str = "") -> str:
    """Why the wait failed, with the log's tail when there is one, else the end of the
    job's own ``output`` (what it printed before its output went to the log)."""
    if status is None:
        text = (f"build {name} on {where} is still running after {format_elapsed(elapsed)}, "
                f"past its timeout of {timeout} s")
    else:
        text = f"build {name} on {where} failed after {format_elapsed(elapsed)}"
        if status.get("rc") not in (None, 0):
            text += f" (rc {status['rc']})"
        if status.get("msg"):
            text += f": {status['msg']}"
    if log:
        count = len(tail.splitlines())
        lines = "line" if count == 1 else f"{count} lines"
        text += f"\nthe last {lines} of {log}:\n{tail}" if tail else f"\n{log} is empty or missing"
    if output and not tail:
        text += f"\nthe end of its output:\n{output}"
    return text


class ActionModule(DocumentedAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    _supports_check_mode = True
    # Replaced in unit tests.
    _clock = staticmethod(time.monotonic)
    _sleep = staticmethod(time.sleep)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        for option in ("interval", "poll"):
            if args[option] <= 0:
                raise AnsibleActionFail(f"kvmnetlab.lab.build_wait: {option} must be positive "
                                        f"(got {args[option]})")
        for option in ("timeout", "tail"):
            if args[option] < 0:
                raise AnsibleActionFail(f"kvmnetlab.lab.build_wait: {option} must not be "
                                        f"negative (got {args[option]})")
        try:
            result.update(self.wait(args, task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def wait(self, args, task_vars) -> dict:
        where = host_label(task_vars.get("inventory_hostname", "?"), self._task.delegate_to)
        name, log = args["name"], args["log"]
        display.display(start_line(name, where, log, args["interval"]))
        started = last_report = self._clock()
        while True:
            status = self.job_status(args["jid"], task_vars)
            elapsed = self._clock() - started
            outcome = job_outcome(status)
            if outcome != "running":
                break
            if timed_out(elapsed, args["timeout"], args["poll"]):
                status = None
                break
            if self._clock() - last_report >= args["interval"]:
                display.display(self.progress(name, where, elapsed, log, args["steps"]))
                last_report = self._clock()
            self._sleep(min(args["poll"], args["interval"]))

        result = {"changed": False, "elapsed": int(elapsed)}
        if log:
            result["log"] = log
        if status is not None:
            result.update({key: status[key] for key in JOB_KEYS if key in status})
            self.forget(args["jid"], task_vars)
            if outcome == "ok":
                return result
        tail = self.read(tail_command(log, args["tail"])) if log and args["tail"] else ""
        tail = tail_lines(tail, args["tail"])
        output = tail_lines((status or {}).get("stderr") or (status or {}).get("stdout") or "",
                            args["tail"])
        result.update(failed=True, msg=failure_message(name, where, elapsed, status,
                                                       args["timeout"], log, tail, output))
        return result

    def progress(self, name, where, elapsed, log, steps) -> str:
        if not log:
            return progress_line(name, where, elapsed)
        counted, last = parse_progress(self.read(progress_command(log, steps)), bool(steps))
        return progress_line(name, where, elapsed, last, counted)

    # --- the host: the job's status and the log -------------------------------------------

    def _async_dir(self) -> str:
        # where async_wrapper keeps job results, as ansible.builtin.async_status finds it
        return self._remote_expand_user(self.get_shell_option("async_dir",
                                                              default="~/.ansible_async"))

    def job_status(self, jid: str, task_vars: dict) -> dict:
        return self._execute_module(
            module_name="ansible.legacy.async_status", task_vars=task_vars,
            module_args={"jid": jid, "mode": "status", "_async_dir": self._async_dir()})

    def forget(self, jid: str, task_vars: dict) -> None:
        """Remove a finished job's status file, as async_status mode=cleanup does."""
        self._execute_module(
            module_name="ansible.legacy.async_status", task_vars=task_vars,
            module_args={"jid": jid, "mode": "cleanup", "_async_dir": self._async_dir()})

    def read(self, command: str) -> str:
        """The output of a read-only command on the host ("" when it fails)."""
        done = self._low_level_execute_command(command, sudoable=True)
        return done.get("stdout") or ""
