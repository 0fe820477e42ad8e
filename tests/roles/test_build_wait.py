"""kvmnetlab.lab.build_wait without a host: its progress lines, the log's tail, and the wait
loop (job status, progress, timeout, failure) run on a fake clock against a fake job."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest

# tests/helpers.py (imported by conftest.py) has put the collection on sys.path
bw = importlib.import_module("ansible_collections.kvmnetlab.lab.plugins.action.build_wait")

# --- the pure parts ---------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0 s"), (59.9, "59 s"), (60, "1 min 00 s"), (125, "2 min 05 s"),
    (3599, "59 min 59 s"), (3600, "1 h 00 min"), (3723, "1 h 02 min"), (-3, "0 s")])
def test_elapsed_time_reads_in_seconds_minutes_or_hours(seconds, shown):
    assert bw.format_elapsed(seconds) == shown


def test_the_last_line_is_what_a_terminal_shows_last():
    log = "  CC      kernel/fork.o\n  CC      kernel/exit.o\n\n"
    assert bw.last_line(log) == "CC      kernel/exit.o"
    # progress bars redraw with carriage returns; colour codes and control characters go
    assert bw.last_line("I: Retrieving 10%\rI: Retrieving 55%\r") == "I: Retrieving 55%"
    assert bw.last_line("\x1b[1;32mok\x1b[0m done\x07\n") == "ok done"
    assert bw.last_line("") == "" and bw.last_line("\n \n") == ""
    cut = bw.last_line("x" * 500)
    assert len(cut) == bw.LINE_WIDTH and cut.endswith("...")


def test_the_tail_keeps_the_last_lines():
    text = "".join(f"line {n}\n" for n in range(1, 41))
    assert bw.tail_lines(text, 3) == "line 38\nline 39\nline 40"
    assert bw.tail_lines("only\n", 25) == "only"
    assert bw.tail_lines("", 25) == "" and bw.tail_lines(text, 0) == ""
    assert bw.tail_lines("\x1b[31merror\x1b[0m: bad\n", 5) == "error: bad"


def test_the_commands_on_the_host_quote_the_log_and_the_pattern():
    assert bw.progress_command("/var/b b/build.log", None) == \
        "tail -n 1 -- '/var/b b/build.log' 2>/dev/null"
    assert bw.progress_command("/l", "^  [A-Z0-9_]+ ") == \
        "grep -cE -e '^  [A-Z0-9_]+ ' -- /l 2>/dev/null; tail -n 1 -- /l 2>/dev/null"
    assert bw.tail_command("/l", 25) == "tail -n 25 -- /l 2>/dev/null"


def test_progress_output_is_parsed_with_and_without_a_step_count():
    assert bw.parse_progress("1441\n  CC      net/ipv6/addrconf.o\n", True) == \
        (1441, "CC      net/ipv6/addrconf.o")
    assert bw.parse_progress("I: Extracting zlib1g...\n", False) == \
        (None, "I: Extracting zlib1g...")
    # a log that is not there yet: grep and tail print nothing
    assert bw.parse_progress("", True) == (None, "")
    # a digits-only last line is not taken for the count when nothing is counted
    assert bw.parse_progress("42\n", False) == (None, "42")


def test_a_progress_line_names_the_build_the_host_the_time_and_the_log():
    where = bw.host_label("bm1", "build1")
    assert where == "build1 (for bm1)" and bw.host_label("bm1", None) == "bm1"
    assert bw.host_label("bm1", "bm1") == "bm1"
    assert bw.progress_line("pf_ring.ko", "bm1", 120, "CC [M]  pf_ring.o") == \
        "build pf_ring.ko on bm1: 2 min 00 s, last line: CC [M]  pf_ring.o"
    assert bw.progress_line("kernel bzImage", where, 442, "CC net/ipv6/addrconf.o", 1441) == (
        "build kernel bzImage on build1 (for bm1): 7 min 22 s, 1441 steps, "
        "last line: CC net/ipv6/addrconf.o")
    assert bw.progress_line("x", "h", 5) == "build x on h: 5 s"
    line = bw.start_line("x", "h", "/l", 60)
    assert line == "build x on h: waiting, log /l (a progress line every 1 min 00 s)"
    for text in (line, bw.progress_line("x", "h", 5, "error: no")):
        assert "FAILED" not in text and "RETRYING" not in text


@pytest.mark.parametrize(("status", "outcome"), [
    ({"started": 1, "finished": 0}, "running"),
    ({"started": True, "finished": False, "ansible_job_id": "j1"}, "running"),
    ({"finished": True, "rc": 0, "changed": True}, "ok"),
    ({"finished": 1, "rc": 2, "failed": True, "msg": "non-zero return code"}, "failed"),
    ({"finished": True, "rc": 1}, "failed"),
    # the async wrapper killed the job at its limit
    ({"finished": 1, "failed": True, "msg": "Timeout exceeded", "child_pid": 7}, "failed"),
    # the job's status file is gone (say the host rebooted)
    ({"finished": True, "started": True, "failed": True, "msg": "could not find job"},
     "failed"),
    ({"finished": False, "failed": True, "msg": "Could not parse job output"}, "failed"),
])
def test_the_job_outcome_follows_async_status(status, outcome):
    assert bw.job_outcome(status) == outcome


def test_the_wait_gives_up_only_past_the_timeout_and_the_grace():
    assert not bw.timed_out(10**6, 0, 5), "timeout 0 waits for the job"
    assert not bw.timed_out(100 + bw.MIN_GRACE, 100, 5)
    assert bw.timed_out(100 + bw.MIN_GRACE + 1, 100, 5)
    assert not bw.timed_out(100 + 60, 100, 30) and bw.timed_out(100 + 61, 100, 30)


def test_a_failure_message_says_why_and_ends_with_the_log_tail():
    text = bw.failure_message("pf_ring.ko", "bm1", 65,
                              {"rc": 2, "msg": "non-zero return code"}, 3600, "/b/build.log",
                              "make: *** [Makefile:5: all] Error 2\nerror: no rule")
    assert text == ("build pf_ring.ko on bm1 failed after 1 min 05 s (rc 2): non-zero return "
                    "code\nthe last 2 lines of /b/build.log:\n"
                    "make: *** [Makefile:5: all] Error 2\nerror: no rule")
    text = bw.failure_message("debootstrap", "h", 1900, None, 1800, "/l", "I: Unpacking x")
    assert text.startswith("build debootstrap on h is still running after 31 min 40 s, "
                           "past its timeout of 1800 s\nthe last line of /l:")
    assert bw.failure_message("x", "h", 1, {"msg": "could not find job"}, 0, "/l", "") == \
        "build x on h failed after 1 s: could not find job\n/l is empty or missing"
    assert bw.failure_message("x", "h", 1, {"rc": 1}) == "build x on h failed after 1 s (rc 1)"
    # a job that failed before its output went to the log: what it printed instead
    assert bw.failure_message("x", "h", 1, {"rc": 1}, 0, "/l", "", "mkdir: Permission denied") \
        == ("build x on h failed after 1 s (rc 1)\n/l is empty or missing\n"
            "the end of its output:\nmkdir: Permission denied")


# --- the wait loop on a fake clock ------------------------------------------------------


class FakeHost:
    """A job that runs for ``runs`` checks, then ends with ``final``; a log that grows."""

    def __init__(self, runs: int, final: dict | None):
        self.runs, self.final = runs, final
        self.checks = 0
        self.now = 0.0
        self.commands: list[str] = []
        self.forgotten: list[str] = []
        self.shown: list[str] = []

    def status(self, jid, task_vars):
        self.checks += 1
        if self.final is None or self.checks <= self.runs:
            return {"started": True, "finished": False, "ansible_job_id": jid}
        return {"finished": True, "ansible_job_id": jid, **self.final}

    def read(self, command):
        self.commands.append(command)
        lines = [f"  CC      obj{n}.o" for n in range(1, self.checks + 1)]
        if command.startswith("tail -n 1"):
            return lines[-1] + "\n"
        if command.startswith("grep"):
            return f"{len(lines)}\n{lines[-1]}\n"
        count = int(command.split()[2])
        return "\n".join([*lines, "make: *** Error 2"][-count:]) + "\n"


def waiting(host: FakeHost, monkeypatch, delegate_to=None, **given):
    args = {"jid": "j1", "name": "kernel bzImage", "log": "/w/build.log", **given}
    task = SimpleNamespace(args=args, action="build_wait",
                           resolved_action="kvmnetlab.lab.build_wait", check_mode=False,
                           async_val=0, delegate_to=delegate_to)
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir=None))
    plugin = bw.ActionModule(task, connection, None, None, None, None)
    plugin.job_status = host.status
    plugin.read = host.read
    plugin.forget = lambda jid, task_vars: host.forgotten.append(jid)
    plugin._clock = lambda: host.now

    def sleep(seconds):
        host.now += seconds

    plugin._sleep = sleep
    monkeypatch.setattr(bw.display, "display", lambda msg, *a, **k: host.shown.append(msg))
    return plugin.wait(plugin.validated_args(), {"inventory_hostname": "bm1"})


def test_a_build_shows_progress_every_interval_then_returns_the_job_result(monkeypatch):
    host = FakeHost(runs=12, final={"rc": 0, "changed": True, "delta": "0:01:00"})
    result = waiting(host, monkeypatch, delegate_to="build1", interval=20, poll=5,
                     steps="^  [A-Z]+ ")
    assert result == {"changed": False, "elapsed": 60, "log": "/w/build.log", "rc": 0,
                      "delta": "0:01:00"}
    # the job ended at 60 s: no line for it, the task's result follows
    assert host.shown == [
        "build kernel bzImage on build1 (for bm1): waiting, log /w/build.log "
        "(a progress line every 20 s)",
        "build kernel bzImage on build1 (for bm1): 20 s, 5 steps, last line: CC      obj5.o",
        "build kernel bzImage on build1 (for bm1): 40 s, 9 steps, last line: CC      obj9.o"]
    assert host.checks == 13 and host.forgotten == ["j1"]
    assert not any("RETRYING" in line or "FAILED" in line for line in host.shown)


def test_a_short_interval_checks_the_job_that_often(monkeypatch):
    # poll is the longest pause; a shorter interval shortens it
    host = FakeHost(runs=3, final={"rc": 0})
    result = waiting(host, monkeypatch, interval=1, poll=5)
    assert result["elapsed"] == 3 and host.checks == 4


def test_a_failed_build_fails_with_the_log_tail(monkeypatch):
    host = FakeHost(runs=2, final={"rc": 2, "failed": True, "msg": "non-zero return code"})
    result = waiting(host, monkeypatch, interval=30, poll=5, tail=3)
    assert result["failed"] is True and result["rc"] == 2
    assert result["msg"] == (
        "build kernel bzImage on bm1 failed after 10 s (rc 2): non-zero return code\n"
        "the last 3 lines of /w/build.log:\n  CC      obj2.o\n  CC      obj3.o\n"
        "make: *** Error 2")
    assert host.commands == ["tail -n 3 -- /w/build.log 2>/dev/null"]
    assert host.forgotten == ["j1"]


def test_a_build_past_its_timeout_fails_with_the_log_tail(monkeypatch):
    host = FakeHost(runs=0, final=None)
    result = waiting(host, monkeypatch, interval=600, poll=10, timeout=100, tail=2)
    assert result["failed"] is True
    assert result["elapsed"] == 100 + bw.MIN_GRACE + 10
    assert result["msg"].startswith("build kernel bzImage on bm1 is still running after "
                                    "2 min 20 s, past its timeout of 100 s\n")
    assert result["msg"].endswith("the last 2 lines of /w/build.log:\n  CC      obj15.o\n"
                                  "make: *** Error 2")
    assert "rc" not in result and host.forgotten == [], "a running job is left alone"


def test_without_a_log_progress_shows_the_time_only(monkeypatch):
    host = FakeHost(runs=4, final={"rc": 0})
    result = waiting(host, monkeypatch, log=None, interval=10, poll=5)
    assert "log" not in result and host.commands == []
    assert host.shown[1:] == ["build kernel bzImage on bm1: 10 s"]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("interval", 0, "interval must be positive (got 0)"),
    ("poll", -1, "poll must be positive (got -1)"),
    ("timeout", -5, "timeout must not be negative (got -5)"),
    ("tail", -1, "tail must not be negative (got -1)"),
])
def test_nonsense_timings_are_refused_naming_the_option(option, value, message):
    from ansible.errors import AnsibleActionFail

    task = SimpleNamespace(args={"jid": "j1", "name": "x", option: value}, action="build_wait",
                           resolved_action="kvmnetlab.lab.build_wait", check_mode=False,
                           async_val=0, delegate_to=None)
    plugin = bw.ActionModule(task, SimpleNamespace(_shell=SimpleNamespace(tmpdir=None)),
                             None, None, None, None)
    plugin.wait = lambda args, task_vars: pytest.fail("waited despite bad arguments")
    with pytest.raises(AnsibleActionFail) as refused:
        plugin.run(task_vars={})
    assert refused.value.message == f"kvmnetlab.lab.build_wait: {message}"
