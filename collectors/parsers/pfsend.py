"""Parse PF_RING pfsend's stdout (PF_RING 8.x ``userland/examples/pfsend.c``).

Checked against real output of PF_RING 8.8.0 in embedded-lab guests
(tests/fixtures/pfring/CAPTURE.md).

Lines understood:

- ``Sending packets on <if>``, ``Using PF_RING v.<x.y.z> on <if>`` (8.8.0 names the
  device; older releases did not),
  ``Estimated CPU freq: <n> Hz``, ``Rate set to <r> pps`` or
  ``Rate set to <g> Gbit/s, <n>-byte packets, <r> pps``
- once a second (not with ``-v``), and once more at the end:
  ``TX rate: [current <pps> pps/<g> Gbps][average <pps> pps/<g> Gbps][total <n> pkts]``
- ``Leaving...`` (on SIGINT/SIGTERM)
- ``Sent <n> packets`` (required: without it the run did not finish or the file was
  cut short).

Gbps figures are line rates: pfsend counts 24 extra bytes per frame (preamble,
CRC, inter-frame gap). ``pfring_open error [...]`` is reported as a ParseError that
quotes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from collectors.parsers._pfring import LIMIT, NUMBER, integer, number
from collectors.parsers._text import read_lines, to_float, to_int
from kvmnetlab.errors import ParseError

_TX = re.compile(
    rf"^TX rate: \[current (?P<cur_pps>{NUMBER}) pps/(?P<cur_gbps>{NUMBER}) Gbps\]"
    rf"\[average (?P<avg_pps>{NUMBER}) pps/(?P<avg_gbps>{NUMBER}) Gbps\]"
    rf"\[total (?P<total>{NUMBER}) pkts\]$"
)
_SENT = re.compile(r"^Sent (?P<n>[0-9]+) packets$")
_DEVICE = re.compile(r"^Sending packets on (?P<dev>\S+)$")
_VERSION = re.compile(r"^Using PF_RING v\.(?P<v>\d+\.\d+\.\d+)(?: on (?P<dev>\S+))?$")
_FREQ = re.compile(r"^Estimated CPU freq: (?P<hz>\d+) Hz$")
_RATE_PPS = re.compile(r"^Rate set to (?P<pps>\d+(?:\.\d+)?) pps$")
_RATE_GBPS = re.compile(
    r"^Rate set to (?P<gbps>\d+(?:\.\d+)?) Gbit/s, (?P<len>\d+)-byte packets, "
    r"(?P<pps>\d+(?:\.\d+)?) pps$"
)


@dataclass
class PfsendResult:
    """``sent_packets`` (frames, the ``Sent`` line); ``rates``: one dict per ``TX rate``
    line: ``current_pps``, ``average_pps`` (frames/s), ``current_line_gbps``,
    ``average_line_gbps`` (Gbit/s including 24 B/frame of preamble, CRC and gap),
    ``total_packets`` (frames so far); ``interface``, ``pfring_version``,
    ``cpu_freq_hz`` (Hz), ``rate_set_pps`` (frames/s) and ``rate_set_line_gbps``
    (Gbit/s) when printed; ``interrupted``: ``Leaving...`` was printed."""

    sent_packets: int
    rates: list[dict] = field(default_factory=list)
    interface: str | None = None
    pfring_version: str | None = None
    cpu_freq_hz: int | None = None
    rate_set_pps: float | None = None
    rate_set_line_gbps: float | None = None
    interrupted: bool = False


def parse(path: str | Path) -> PfsendResult:
    path = Path(path)
    lines = read_lines(path)
    info: dict = {"interrupted": False}
    rates: list[dict] = []
    sent: int | None = None
    sent_line = 0
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if sent is not None:
            raise ParseError(path, lineno, f"line after 'Sent ... packets': {line!r}")
        if line.startswith("pfring_open error"):
            raise ParseError(path, lineno, f"pfsend could not open the device: {line}")
        if m := _TX.match(line):
            rates.append(_tx_rate(path, lineno, m))
        elif m := _SENT.match(line):
            sent, sent_line = to_int(path, lineno, m["n"], "packets sent"), lineno
        elif not _info(path, lineno, info, line):
            raise ParseError(path, lineno, f"unrecognised line: {line!r}")
    if sent is None:
        raise ParseError(
            path, len(lines), f"truncated: no 'Sent <n> packets' line; last line {lines[-1]!r}"
        )
    _check_totals(path, sent_line, sent, rates)
    return PfsendResult(sent_packets=sent, rates=rates, **info)


def _tx_rate(path: Path, lineno: int, m: re.Match[str]) -> dict:
    return {
        "current_pps": number(path, lineno, m["cur_pps"], "current pps"),
        "current_line_gbps": number(path, lineno, m["cur_gbps"], "current Gbps"),
        "average_pps": number(path, lineno, m["avg_pps"], "average pps"),
        "average_line_gbps": number(path, lineno, m["avg_gbps"], "average Gbps"),
        "total_packets": integer(path, lineno, m["total"], "total pkts"),
    }


def _info(path: Path, lineno: int, info: dict, line: str) -> bool:
    """Put what an informational line says into ``info``; False when it is not one."""
    if m := _DEVICE.match(line):
        info["interface"] = m["dev"]
    elif m := _VERSION.match(line):
        info["pfring_version"] = m["v"]
        if m["dev"]:
            info.setdefault("interface", m["dev"])
    elif m := _FREQ.match(line):
        info["cpu_freq_hz"] = to_int(path, lineno, m["hz"], "CPU frequency (Hz)")
    elif m := _RATE_GBPS.match(line):
        info["rate_set_line_gbps"] = to_float(path, lineno, m["gbps"], "rate (Gbit/s)",
                                              hi=LIMIT)
        to_int(path, lineno, m["len"], "packet size (bytes)")
        info["rate_set_pps"] = to_float(path, lineno, m["pps"], "rate (pps)", hi=LIMIT)
    elif m := _RATE_PPS.match(line):
        info["rate_set_pps"] = to_float(path, lineno, m["pps"], "rate (pps)", hi=LIMIT)
    elif line == "Leaving...":
        info["interrupted"] = True
    else:
        return False
    return True


def _check_totals(path: Path, sent_line: int, sent: int, rates: list[dict]) -> None:
    """The TX rate totals never go back, and the last one is the Sent count."""
    totals = [r["total_packets"] for r in rates]
    if totals != sorted(totals):
        raise ParseError(path, sent_line, "TX rate totals go backwards")
    if rates and totals[-1] != sent:
        raise ParseError(
            path, sent_line, f"Sent {sent} packets but the last TX rate total is {totals[-1]}"
        )
