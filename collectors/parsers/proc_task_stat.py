"""Parse ``for f in /proc/PID/task/*/stat; do cat $f; done`` (one thread per line).

Each line is proc(5)'s ``stat``: ``tid (comm) state ppid ...``. ``comm`` may hold
spaces and parentheses (``vhost-1234``, but also ``a) (b``), so it runs from the
first ``(`` to the LAST ``)`` of the line. Fields 14 and 15 are ``utime`` and
``stime`` in clock ticks (USER_HZ, recorded by the collector, not converted here).
"""

from __future__ import annotations

from pathlib import Path

from collectors.parsers._text import read_lines, to_int
from kvmnetlab.errors import ParseError

#: fields after ``comm`` kept, by their 1-based number in proc(5)
_FIELDS = {
    4: "ppid",
    10: "minflt",
    12: "majflt",
    14: "utime_ticks",
    15: "stime_ticks",
    18: "priority",
    19: "nice",
    20: "num_threads",
    22: "starttime_ticks",
    39: "processor",
}
#: the fields that may be negative, and their lowest value: a real-time task's priority
#: is -2..-100, nice -20..19 (proc(5))
_SIGNED = {"priority": -100, "nice": -20}
_MIN_FIELDS = 39  # every kernel since 2.6.x prints at least up to ``processor``


def parse(path: str | Path) -> list[dict]:
    """One dict per thread: ``tid``, ``comm``, ``state`` and the _FIELDS values
    (``minflt``/``majflt`` are page faults, ``priority``/``nice`` scheduler values,
    ``processor`` the CPU it last ran on)."""
    path = Path(path)
    lines = read_lines(path)
    threads: list[dict] = []
    for lineno, line in enumerate(lines, start=1):
        open_at, close_at = line.find(" ("), line.rfind(")")
        if open_at < 1 or close_at < open_at:
            raise ParseError(path, lineno, f"expected '<tid> (<comm>) <state> ...': {line!r}")
        tid = to_int(path, lineno, line[:open_at], "tid", lo=1)
        comm = line[open_at + 2 : close_at]
        rest = line[close_at + 1 :].split()
        # rest[0] is field 3 (state)
        if len(rest) + 2 < _MIN_FIELDS:
            raise ParseError(
                path, lineno, f"tid {tid}: {len(rest) + 2} fields, expected >= {_MIN_FIELDS}"
            )
        state = rest[0]
        if len(state) != 1 or not state.isalpha():
            raise ParseError(path, lineno, f"tid {tid}: bad state {state!r}")
        row: dict = {"tid": tid, "comm": comm, "state": state}
        for number, name in _FIELDS.items():
            row[name] = to_int(path, lineno, rest[number - 3], f"field {number} ({name})",
                               lo=_SIGNED.get(name, 0))
        if any(t["tid"] == tid for t in threads):
            raise ParseError(path, lineno, f"tid {tid} appears twice")
        threads.append(row)
    return threads
