"""Parse a copy of /proc/stat (``cat /proc/stat``).

Times are returned in clock ticks (USER_HZ) exactly as the kernel prints them; the
collector records USER_HZ (``os.sysconf("SC_CLK_TCK")`` on the measured host) so
that analysis can turn ticks into seconds. Nothing here converts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from collectors.parsers._text import INT64_MAX, read_lines, to_int
from kvmnetlab.errors import ParseError

#: the columns of a ``cpu`` line, in order (proc(5)); every one is in ticks
CPU_FIELDS = (
    "user_ticks",
    "nice_ticks",
    "system_ticks",
    "idle_ticks",
    "iowait_ticks",
    "irq_ticks",
    "softirq_ticks",
    "steal_ticks",
    "guest_ticks",
    "guest_nice_ticks",
)
#: the columns of the ``softirq`` line after its total (kernel/softirq.c softirq_to_name)
SOFTIRQ_NAMES = (
    "HI",
    "TIMER",
    "NET_TX",
    "NET_RX",
    "BLOCK",
    "IRQ_POLL",
    "TASKLET",
    "SCHED",
    "HRTIMER",
    "RCU",
)
_REQUIRED = ("cpu", "intr", "ctxt", "btime", "processes", "procs_running", "procs_blocked")


@dataclass
class ProcStat:
    """One /proc/stat snapshot.

    ``cpus``: one dict per ``cpu``/``cpuN`` line: ``cpu`` (``"all"`` for the
    aggregate line, else the CPU number as int) and the ``*_ticks`` of CPU_FIELDS
    (None for columns an older kernel does not print).
    ``interrupts_total``: all interrupts since boot (count, the ``intr`` line's first
    number); ``context_switches``, ``processes_forked`` (counts since boot),
    ``boot_time_s`` (epoch s), ``procs_running``, ``procs_blocked`` (tasks now),
    ``softirqs_total`` and ``softirqs`` (name -> count since boot).
    """

    cpus: list[dict] = field(default_factory=list)
    interrupts_total: int = 0
    context_switches: int = 0
    boot_time_s: int = 0
    processes_forked: int = 0
    procs_running: int = 0
    procs_blocked: int = 0
    softirqs_total: int | None = None
    softirqs: dict[str, int] = field(default_factory=dict)


# the lines of one number, and the field each fills
_SINGLE = {"ctxt": "context_switches", "btime": "boot_time_s", "processes": "processes_forked",
           "procs_running": "procs_running", "procs_blocked": "procs_blocked"}


def parse(path: str | Path) -> ProcStat:
    """Parse /proc/stat; ParseError names the file and line of anything malformed."""
    path = Path(path)
    lines = read_lines(path)
    result = ProcStat()
    seen: set[str] = set()
    for lineno, line in enumerate(lines, start=1):
        key, numbers = _numbers(path, lineno, line)
        if key.startswith("cpu"):
            _cpu(path, lineno, key, numbers, result)
            seen.add("cpu")
            continue
        if key in seen:
            raise ParseError(path, lineno, f"{key} appears twice")
        seen.add(key)
        _counter(path, lineno, key, numbers, result)
    missing = [k for k in _REQUIRED if k not in seen]
    if missing:
        raise ParseError(path, len(lines), f"truncated: no {missing[0]!r} line")
    if not any(c["cpu"] == "all" for c in result.cpus):
        raise ParseError(path, None, "no aggregate 'cpu' line")
    return result


def _numbers(path: Path, lineno: int, line: str) -> tuple[str, list[int]]:
    """A line's key and its numbers (at least one)."""
    words = line.split()
    if not words:
        raise ParseError(path, lineno, "blank line")
    key, values = words[0], words[1:]
    if not values:
        raise ParseError(path, lineno, f"{key}: no value")
    return key, [to_int(path, lineno, v, key) for v in values]


def _cpu(path: Path, lineno: int, key: str, numbers: list[int], result: ProcStat) -> None:
    """A ``cpu`` or ``cpuN`` line."""
    suffix = key[3:]
    if suffix and not (suffix.isascii() and suffix.isdigit()):
        raise ParseError(path, lineno, f"unknown cpu line {key!r}")
    if sum(numbers) > INT64_MAX:
        raise ParseError(path, lineno, f"{key}: the ticks add up beyond {INT64_MAX}")
    if not 4 <= len(numbers) <= len(CPU_FIELDS):
        raise ParseError(
            path, lineno, f"{key}: {len(numbers)} columns, expected 4 to {len(CPU_FIELDS)}"
        )
    cpu: dict = {"cpu": to_int(path, lineno, suffix, "cpu number") if suffix else "all"}
    for i, name in enumerate(CPU_FIELDS):
        cpu[name] = numbers[i] if i < len(numbers) else None
    if any(c["cpu"] == cpu["cpu"] for c in result.cpus):
        raise ParseError(path, lineno, f"{key} appears twice")
    result.cpus.append(cpu)


def _counter(path: Path, lineno: int, key: str, numbers: list[int], result: ProcStat) -> None:
    """Any other line: intr, softirq, or one of the one-number lines."""
    if key == "intr":
        result.interrupts_total = numbers[0]
    elif key == "softirq":
        if len(numbers) != 1 + len(SOFTIRQ_NAMES):
            raise ParseError(
                path,
                lineno,
                f"softirq: {len(numbers)} numbers, expected {1 + len(SOFTIRQ_NAMES)}",
            )
        result.softirqs_total = numbers[0]
        result.softirqs = dict(zip(SOFTIRQ_NAMES, numbers[1:], strict=True))
    elif len(numbers) != 1:
        raise ParseError(path, lineno, f"{key}: expected one number, got {len(numbers)}")
    elif key in _SINGLE:
        setattr(result, _SINGLE[key], numbers[0])
    else:
        raise ParseError(path, lineno, f"unknown line {key!r}")
