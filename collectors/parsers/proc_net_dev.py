"""Parse a copy of /proc/net/dev (``cat /proc/net/dev``, in the namespace measured)."""

from __future__ import annotations

from pathlib import Path

from collectors.parsers._text import read_lines, to_int
from kvmnetlab.errors import ParseError

#: columns after ``<iface>:``, in order; ``*_bytes`` in bytes, the rest in packets
#: (``rx_frame_errors``, ``tx_collisions`` and ``tx_carrier_errors`` are events)
COLUMNS = (
    "rx_bytes",
    "rx_packets",
    "rx_errors",
    "rx_dropped",
    "rx_fifo_errors",
    "rx_frame_errors",
    "rx_compressed",
    "rx_multicast",
    "tx_bytes",
    "tx_packets",
    "tx_errors",
    "tx_dropped",
    "tx_fifo_errors",
    "tx_collisions",
    "tx_carrier_errors",
    "tx_compressed",
)
_HEADER_1 = ["Inter-", "Receive", "Transmit"]
_HEADER_2 = (
    "face |bytes packets errs drop fifo frame compressed multicast"
    "|bytes packets errs drop fifo colls carrier compressed"
)


def parse(path: str | Path) -> list[dict]:
    """One dict per interface: ``interface`` plus the COLUMNS (counters since creation)."""
    path = Path(path)
    lines = read_lines(path)
    if len(lines) < 2:
        raise ParseError(path, len(lines), "truncated: fewer than the two header lines")
    if [w.strip() for w in lines[0].replace("|", " ").split()] != _HEADER_1:
        raise ParseError(path, 1, f"not a /proc/net/dev header: {lines[0]!r}")
    if " ".join(lines[1].split()).replace("| ", "|") != _HEADER_2:
        raise ParseError(path, 2, f"unexpected column header: {lines[1]!r}")
    rows: list[dict] = []
    for lineno, line in enumerate(lines[2:], start=3):
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or not name or " " in name:
            raise ParseError(path, lineno, f"expected '<interface>: <counters>': {line!r}")
        values = rest.split()
        if len(values) != len(COLUMNS):
            raise ParseError(
                path, lineno, f"{name}: {len(values)} counters, expected {len(COLUMNS)}"
            )
        row: dict = {"interface": name}
        for col, v in zip(COLUMNS, values, strict=True):
            row[col] = to_int(path, lineno, v, f"{name} {col}")
        if any(r["interface"] == name for r in rows):
            raise ParseError(path, lineno, f"interface {name} appears twice")
        rows.append(row)
    return rows
