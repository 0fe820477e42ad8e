"""Parse the summary fping 5.1 prints on stderr with ``-C N``.

``fping -C N [-p PERIOD_MS] HOST...`` prints one line per reply or timeout on stdout
and, at the end, on stderr::

    <blank>
    <host> : <ms> <ms> - <ms> ...

one line per host, N samples each, ``-`` for a probe that got no reply. ICMP errors
(``ICMP Host Unreachable from <addr> for ICMP Echo sent to <host>``) come on stderr
before the summary. Times are printed in ms (3 decimals below 1 ms; any number of
decimals is accepted) and returned in µs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from collectors.parsers._text import read_lines, to_float
from collectors.parsers.ping import MAX_RTT_US
from kvmnetlab.errors import ParseError

_SUMMARY = re.compile(r"^(?P<host>\S+)\s+: (?P<samples>.+)$")
_SAMPLE = re.compile(r"^(?:-|[0-9]+(?:\.[0-9]+)?)$")
_ICMP = re.compile(r"^ICMP (?P<what>.+) from (?P<src>\S+) for ICMP Echo sent to (?P<host>\S+)$")


@dataclass
class FpingResult:
    """``samples``: host -> list of RTTs in µs, None where no reply came, in probe
    order (index 0 = first probe); ``icmp_errors``: ``what``, ``source``, ``host``
    for each ICMP error line."""

    samples: dict[str, list[float | None]] = field(default_factory=dict)
    icmp_errors: list[dict] = field(default_factory=list)

    def rows(self) -> list[dict]:
        """Tidy rows: host, probe (0-based), answered (bool), rtt_us (None if not)."""
        return [
            {"host": host, "probe": i, "answered": rtt is not None, "rtt_us": rtt}
            for host, values in self.samples.items()
            for i, rtt in enumerate(values)
        ]


def parse(path: str | Path) -> FpingResult:
    path = Path(path)
    lines = read_lines(path)
    result = FpingResult()
    count: int | None = None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if m := _ICMP.match(line):
            if result.samples:
                raise ParseError(path, lineno, "ICMP error line after the summary started")
            result.icmp_errors.append({"what": m["what"], "source": m["src"], "host": m["host"]})
            continue
        host, tokens = _summary_line(path, lineno, line)
        if count is None:
            count = len(tokens)
        elif len(tokens) != count:
            raise ParseError(
                path, lineno, f"{host}: {len(tokens)} samples, the first host has {count}"
            )
        if host in result.samples:
            raise ParseError(path, lineno, f"{host} appears twice")
        result.samples[host] = [None if t == "-" else
                                to_float(path, lineno, t, f"{host} sample (ms)", hi=MAX_RTT_US,
                                         scale=1000) for t in tokens]
    if not result.samples:
        raise ParseError(
            path, len(lines), f"truncated: no '<host> : ...' summary; last line {lines[-1]!r}"
        )
    return result


def _summary_line(path: Path, lineno: int, line: str) -> tuple[str, list[str]]:
    """A ``<host> : <ms|-> ...`` line: the host and its sample tokens."""
    m = _SUMMARY.match(line)
    if not m:
        raise ParseError(path, lineno, f"expected '<host> : <ms|-> ...': {line!r}")
    host, tokens = m["host"], m["samples"].split()
    bad = [t for t in tokens if not _SAMPLE.match(t)]
    if bad:
        raise ParseError(path, lineno, f"{host}: not a sample: {bad[0]!r}")
    return host, tokens
