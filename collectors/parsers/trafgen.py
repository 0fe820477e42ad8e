"""Parse what netsniff-ng trafgen (0.6.8, Debian 12) prints on stdout.

Run as ``trafgen -o IF -n COUNT [-b RATEpps] -c CFG``. trafgen forks one sender per
CPU (one when a rate is set) and prints, all on stdout:

- ``Cannot set system socket memory in /proc/sys/net/core/<knob>: Permission denied``
  (inside a network namespace; once per process, each process tries; it carries on)
- ``<n> packets to schedule`` and ``<n> bytes in total`` (the packet templates)
- ``Running! Hang up with ^C!``
- then, each line starting with a carriage return, the summary:
  ``<n> packets outgoing``, ``<n> bytes outgoing`` and per CPU
  ``<s> sec, <µs> usec on CPU<k> (<n> packets)``.

The summary is required (a file without it was cut short), the per-CPU packets
must add up to the total, each ``usec`` is below 10^6 (a struct timeval's) and, with
one packet template, the bytes sent are the packets sent times its size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from collectors.parsers._text import read_lines, to_int
from kvmnetlab.errors import ParseError

_SOCKMEM = re.compile(r"^Cannot set system socket memory in (?P<path>\S+): (?P<err>.+)$")
_SCHEDULE = re.compile(r"^(?P<n>\d+) packets to schedule$")
_TOTAL = re.compile(r"^(?P<n>\d+) bytes in total$")
_RUNNING = "Running! Hang up with ^C!"
_OUT_PKTS = re.compile(r"^(?P<n>\d+) packets outgoing$")
_OUT_BYTES = re.compile(r"^(?P<n>\d+) bytes outgoing$")
#: the highest CPU number Linux has (NR_CPUS at most 8192), and a sender's longest run (s)
MAX_CPU, MAX_SECONDS = 8191, 10**9
_CPU = re.compile(r"^(?P<s>\d+) sec, (?P<us>\d+) usec on CPU(?P<cpu>\d+) \((?P<n>\d+) packets\)$")


@dataclass
class TrafgenResult:
    """``tx_packets`` (frames) and ``tx_bytes`` (bytes, frames without CRC) sent in
    all; ``per_cpu``: ``cpu``, ``elapsed_us`` (µs that CPU's sender ran),
    ``tx_packets`` (frames); ``elapsed_us``: the longest sender's time (µs);
    ``templates`` (packets) and ``template_bytes`` (bytes) from the configuration;
    ``warnings``: the sysctl writes refused, as ``{"path", "error"}``."""

    tx_packets: int
    tx_bytes: int
    elapsed_us: int
    per_cpu: list[dict] = field(default_factory=list)
    templates: int | None = None
    template_bytes: int | None = None
    warnings: list[dict] = field(default_factory=list)


# the lines that carry one count, and the key each fills
_COUNTS = (
    ("templates", _SCHEDULE),
    ("template_bytes", _TOTAL),
    ("tx_packets", _OUT_PKTS),
    ("tx_bytes", _OUT_BYTES),
)


def parse(path: str | Path) -> TrafgenResult:
    path = Path(path)
    lines = read_lines(path)
    found: dict[str, int] = {}
    per_cpu: list[dict] = []
    warnings: list[dict] = []
    count_lines: dict[str, int] = {}
    for lineno, raw in enumerate(lines, start=1):
        line = raw.lstrip("\r").strip()
        if not line or line == _RUNNING:
            continue
        if m := _SOCKMEM.match(line):
            warnings.append({"path": m["path"], "error": m["err"]})
        elif key := _count(path, lineno, line, found):
            count_lines[key] = lineno
        elif m := _CPU.match(line):
            per_cpu.append(_cpu(path, lineno, m, found, per_cpu))
        else:
            raise ParseError(path, lineno, f"unrecognised line: {line!r}")
    _check_totals(path, lines, found, per_cpu, count_lines)
    return TrafgenResult(
        tx_packets=found["tx_packets"],
        tx_bytes=found["tx_bytes"],
        elapsed_us=max(c["elapsed_us"] for c in per_cpu),
        per_cpu=per_cpu,
        templates=found.get("templates"),
        template_bytes=found.get("template_bytes"),
        warnings=warnings,
    )


def _count(path: Path, lineno: int, line: str, found: dict[str, int]) -> str | None:
    """Put a count line's number into ``found``; its key, or None when it is not one."""
    for key, regex in _COUNTS:
        if m := regex.match(line):
            if key in found:
                raise ParseError(path, lineno, f"'{line}' appears twice")
            found[key] = to_int(path, lineno, m["n"], key)
            return key
    return None


def _cpu(path: Path, lineno: int, m: re.Match[str], found: dict[str, int],
         per_cpu: list[dict]) -> dict:
    """One ``<s> sec, <us> usec on CPU<n> (<n> packets)`` line, after the totals."""
    if "tx_bytes" not in found:
        raise ParseError(path, lineno, "per-CPU line before the totals")
    cpu = to_int(path, lineno, m["cpu"], "CPU number", hi=MAX_CPU)
    if any(c["cpu"] == cpu for c in per_cpu):
        raise ParseError(path, lineno, f"CPU{cpu} appears twice")
    # trafgen prints a struct timeval: tv_usec is below 10^6
    seconds = to_int(path, lineno, m["s"], "sec", hi=MAX_SECONDS)
    micro = to_int(path, lineno, m["us"], "usec", hi=999_999)
    return {
        "cpu": cpu,
        "elapsed_us": seconds * 1_000_000 + micro,
        "tx_packets": to_int(path, lineno, m["n"], f"CPU{cpu} packets"),
    }


def _check_totals(path: Path, lines: list[str], found: dict[str, int], per_cpu: list[dict],
                  count_lines: dict[str, int]) -> None:
    """Both totals and a CPU line came, and the CPU lines add up to the packets sent."""
    for key, text in (("tx_packets", "packets outgoing"), ("tx_bytes", "bytes outgoing")):
        if key not in found:
            raise ParseError(
                path, len(lines), f"truncated: no '{text}' summary; last line {lines[-1]!r}"
            )
    if not per_cpu:
        raise ParseError(path, len(lines), "truncated: no per-CPU 'sec, usec on CPU' line")
    if found.get("templates") == 1 and "template_bytes" in found and \
            found["tx_bytes"] != found["tx_packets"] * found["template_bytes"]:
        # one template: every frame sent is that template
        raise ParseError(path, count_lines["tx_bytes"], f"{found['tx_packets']} packets of one "
                         f"{found['template_bytes']}-byte template, but {found['tx_bytes']} "
                         "bytes outgoing")
    counted = sum(c["tx_packets"] for c in per_cpu)
    if counted != found["tx_packets"]:
        raise ParseError(
            path,
            count_lines["tx_packets"],
            f"{found['tx_packets']} packets outgoing but the CPU lines add up to {counted}",
        )
