"""Parse tcpdump's closing counters (stderr after SIGINT/SIGTERM).

    tcpdump: listening on vb, link-type EN10MB (Ethernet), snapshot length 262144 bytes
    5000 packets captured
    5000 packets received by filter
    0 packets dropped by kernel

"packets received by filter" counts what matched the BPF filter in the kernel;
"captured" what tcpdump processed; "dropped by kernel" what the capture buffer
lost. A file without the three counters was cut short: ParseError.
"""

from __future__ import annotations

import re
from pathlib import Path

from collectors.parsers._text import read_lines, to_int
from kvmnetlab.errors import ParseError

_COUNTERS = {
    "packets captured": "captured_packets",
    "packets received by filter": "received_by_filter_packets",
    "packets dropped by kernel": "dropped_by_kernel_packets",
}
_LINE = re.compile(r"^([0-9]+) (packets? (?:captured|received by filter|dropped by kernel))$")


def parse(path: str | Path) -> dict[str, int | str | None]:
    """Return ``captured_packets``, ``received_by_filter_packets``,
    ``dropped_by_kernel_packets`` (counts) and ``interface`` (from the banner)."""
    path = Path(path)
    lines = read_lines(path)
    result: dict[str, int | str | None] = {"interface": None}
    for lineno, line in enumerate(lines, start=1):
        if line.startswith("tcpdump: listening on "):
            words = line.split()
            if len(words) < 4:
                raise ParseError(path, lineno, f"no interface named: {line[:80]!r}")
            result["interface"] = words[3].rstrip(",")
            continue
        if line.startswith("tcpdump: "):
            continue  # other notices (e.g. verbose output suppressed)
        match = _LINE.match(line)
        if not match:
            raise ParseError(path, lineno, f"unexpected line: {line[:80]!r}")
        key = _COUNTERS[match.group(2).replace("packet ", "packets ")]
        if key in result:
            raise ParseError(path, lineno, f"{match.group(2)!r} printed twice")
        result[key] = to_int(path, lineno, match.group(1), match.group(2))
    missing = [name for name, key in _COUNTERS.items() if key not in result]
    if missing:
        raise ParseError(path, len(lines) or None,
                         f"truncated: no {', '.join(repr(m) for m in missing)} line")
    return result
