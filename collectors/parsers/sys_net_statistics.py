"""Parse ``grep -r . /sys/class/net/<if>/statistics/`` (one ``path:value`` per counter).

The result is the interface name and a dict counter -> value. Counters named
``*_bytes`` are bytes; ``*_packets``, ``multicast`` and ``*_dropped`` are packets;
``collisions`` and ``*_errors`` are events. All count since the interface was created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from collectors.parsers._text import read_lines, to_int
from kvmnetlab.errors import ParseError

_LINE = re.compile(
    r"^/sys/class/net/(?P<iface>[^/\s:]+)/statistics/(?P<name>[a-z0-9_]+):(?P<v>.*)$"
)
#: counters every kernel since 2.6 has; a capture missing one was cut short
REQUIRED = (
    "rx_bytes",
    "rx_packets",
    "rx_dropped",
    "rx_errors",
    "tx_bytes",
    "tx_packets",
    "tx_dropped",
    "tx_errors",
)


@dataclass
class NetStatistics:
    interface: str
    counters: dict[str, int] = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """Tidy rows: interface, counter, value (sorted by counter)."""
        return [
            {"interface": self.interface, "counter": k, "value": v}
            for k, v in sorted(self.counters.items())
        ]


def parse(path: str | Path) -> NetStatistics:
    path = Path(path)
    lines = read_lines(path)
    result: NetStatistics | None = None
    for lineno, line in enumerate(lines, start=1):
        m = _LINE.match(line)
        if not m:
            raise ParseError(
                path, lineno, f"expected '/sys/class/net/<if>/statistics/<name>:<value>': {line!r}"
            )
        if result is None:
            result = NetStatistics(interface=m["iface"])
        elif m["iface"] != result.interface:
            raise ParseError(
                path,
                lineno,
                f"interface {m['iface']!r} after {result.interface!r}: one interface per file",
            )
        if m["name"] in result.counters:
            raise ParseError(path, lineno, f"{m['name']} appears twice")
        result.counters[m["name"]] = to_int(path, lineno, m["v"], m["name"])
    assert result is not None  # read_lines refuses an empty file
    missing = [name for name in REQUIRED if name not in result.counters]
    if missing:
        raise ParseError(path, len(lines), f"truncated: no {missing[0]} counter")
    return result
