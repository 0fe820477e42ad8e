"""Parse ``ethtool -S <if>`` (driver statistics), ethtool 6.1.

The first line is ``NIC statistics:``; then ``     <name>: <integer>`` per counter.
Names and meanings are the driver's own. veth prints ``peer_ifindex`` and per-queue
XDP counters (``rx_queue_0_xdp_packets``, ...). virtio_net on a 6.1 guest kernel
prints per-queue ``rx_queue_<n>_packets``, ``_bytes``, ``_drops``, ``_kicks`` (and
``tx_queue_<n>_*``); on 6.18 it prints ``rx_drops``, ``rx_kicks``, ``tx_kicks``, ...
and per-queue ``rx<n>_*``/``tx<n>_*`` (see tests/fixtures/ethtool/virtio_S.txt).
"""

from __future__ import annotations

import re
from pathlib import Path

from collectors.parsers._text import INT64_MIN, read_lines, to_int
from kvmnetlab.errors import ParseError

_LINE = re.compile(r"^\s+(?P<name>\S(?:.*\S)?): (?P<value>-?\d+)$")


def parse(path: str | Path) -> dict[str, int]:
    """Counter name -> value, in the order ethtool printed them."""
    path = Path(path)
    lines = read_lines(path)
    if lines[0] != "NIC statistics:":
        raise ParseError(path, 1, f"expected 'NIC statistics:', got {lines[0]!r}")
    stats: dict[str, int] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        m = _LINE.match(line)
        if not m:
            raise ParseError(path, lineno, f"expected '<counter>: <integer>': {line!r}")
        if m["name"] in stats:
            raise ParseError(path, lineno, f"{m['name']} appears twice")
        stats[m["name"]] = to_int(path, lineno, m["value"], m["name"], lo=INT64_MIN)
    if not stats:
        raise ParseError(path, len(lines), "truncated: no counters")
    return stats
