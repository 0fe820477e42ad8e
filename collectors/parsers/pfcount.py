"""Parse PF_RING pfcount's stderr (PF_RING 8.x ``userland/examples/pfcount.c``).

Checked against real output of PF_RING 8.8.0 in embedded-lab guests
(tests/fixtures/pfring/CAPTURE.md), including a run that dropped in the ring.

pfcount prints a block once a second, on SIGINT/SIGTERM and when ``-N`` is reached::

    =========================
    Absolute Stats: [<total> pkts total][<dropped> pkts dropped][<pct>% dropped]
    [<rcvd> pkts rcvd][<bytes> bytes rcvd][<pps> pkt/sec][<mbit> Mbit/sec]
    =========================
    Actual Stats: [<n> pkts rcvd][<ms> ms][<pps> pps][<gbps> Gbps]
    =========================
    <blank>

The first block has no rates and no Actual Stats. Numbers group thousands with
apostrophes. The LAST Absolute Stats block is the final count. ``pkts total`` is
received plus dropped (ring drops); ``bytes rcvd`` counts 24 extra bytes per frame
(preamble, CRC, inter-frame gap), so it is a line-rate byte count.

The collector always stops pfcount with SIGINT, on which it prints ``Leaving...``
and one last block: a complete output ends with that final block. By default
(``require_final=True``) an output without ``Leaving...`` (pfcount was not stopped
by SIGINT, or its output was cut before it) or without a complete block after it
is refused, since its last block is not the final count. Every error is a
:class:`ParseError` naming the file and line: a cut inside a block names the last
line, as do the two above; an unexpected line, a count that does not add up or a
total that goes backwards names that line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from collectors.parsers._pfring import NUMBER, integer, number
from collectors.parsers._text import read_lines, to_float
from kvmnetlab.errors import ParseError

_RULE = "========================="
_ABS = re.compile(
    rf"^Absolute Stats: \[(?P<total>{NUMBER}) pkts total\]\[(?P<dropped>{NUMBER}) pkts "
    rf"dropped\]\[(?P<pct>[0-9]+\.[0-9])% dropped\]$"
)
_RCVD = re.compile(
    rf"^\[(?P<rcvd>{NUMBER}) pkts rcvd\]\[(?P<bytes>{NUMBER}) bytes rcvd\]"
    rf"(?:\[(?P<pps>{NUMBER}) pkt/sec\]\[(?P<mbit>{NUMBER}) Mbit/sec\])?$"
)
_ACTUAL = re.compile(
    rf"^Actual Stats: \[(?P<rcvd>{NUMBER}) pkts rcvd\]\[(?P<ms>{NUMBER}) ms\]"
    rf"\[(?P<pps>{NUMBER}) pps\]\[(?P<gbps>{NUMBER}) Gbps\]$"
)
_DUMPING = re.compile(r"^Dumping statistics on \S+$")


@dataclass
class PfcountResult:
    """``final``: the last block; ``blocks``: every block, in order. A block holds
    ``line`` (where its Absolute Stats line is), ``total_packets``,
    ``dropped_packets``, ``received_packets`` (frames), ``dropped_pct`` (percent, as
    printed, one decimal), ``received_line_bytes`` (bytes incl. 24 B/frame),
    ``average_pps`` (frames/s) and ``average_line_mbit_s`` (Mbit/s) since start, or
    None in the first block; and, when printed, ``interval_packets`` (frames),
    ``interval_ms`` (ms), ``interval_pps`` (frames/s), ``interval_line_gbps``
    (Gbit/s) for the last interval. ``interrupted``: ``Leaving...`` was printed."""

    final: dict
    blocks: list[dict] = field(default_factory=list)
    interrupted: bool = False


@dataclass
class _Reading:
    """What :func:`parse` has read so far.

    States: idle -> (rule) opened -> (Absolute) abs -> (rcvd) rcvd -> (rule) closed;
    closed -> (Actual) actual -> (rule) end -> (blank) idle | closed -> (blank) idle.
    """

    path: Path
    blocks: list[dict] = field(default_factory=list)
    block: dict = field(default_factory=dict)
    interrupted: bool = False
    before_leaving: int = 0  # complete blocks before 'Leaving...'
    state: str = "idle"


def parse(path: str | Path, *, require_final: bool = True) -> PfcountResult:
    """Parse one pfcount stderr capture. ``require_final``: refuse an output that does not
    end with ``Leaving...`` and a complete block after it (the count at SIGINT)."""
    path = Path(path)
    lines = read_lines(path)
    st = _Reading(path=path)
    for lineno, line in enumerate(lines, start=1):
        _STATES[st.state](st, lineno, line)
    _check_complete(st, lines, require_final=require_final)
    for prev, cur in pairwise(st.blocks):
        if cur["total_packets"] < prev["total_packets"]:
            raise ParseError(path, cur["line"], "pkts total went backwards")
    return PfcountResult(final=st.blocks[-1], blocks=st.blocks, interrupted=st.interrupted)


def _idle(st: _Reading, lineno: int, line: str) -> None:
    if line == _RULE:
        st.state = "opened"
    elif line == "Leaving...":
        if st.interrupted:
            raise ParseError(st.path, lineno, "a second 'Leaving...'")
        st.interrupted = True
        st.before_leaving = len(st.blocks)
    elif line.strip() and not _DUMPING.match(line):
        raise ParseError(st.path, lineno, f"unrecognised line: {line!r}")


def _opened(st: _Reading, lineno: int, line: str) -> None:
    if not (m := _ABS.match(line)):
        raise ParseError(st.path, lineno, f"expected 'Absolute Stats: ...': {line!r}")
    st.block = {
        "line": lineno,
        "total_packets": integer(st.path, lineno, m["total"], "pkts total"),
        "dropped_packets": integer(st.path, lineno, m["dropped"], "pkts dropped"),
        "dropped_pct": to_float(st.path, lineno, m["pct"], "% dropped", hi=100.0),
    }
    _check_dropped_pct(st.path, lineno, st.block)
    st.state = "abs"


def _check_dropped_pct(path: Path, lineno: int, block: dict) -> None:
    """The printed percentage is pkts dropped of pkts total, at one decimal."""
    total, dropped = block["total_packets"], block["dropped_packets"]
    if dropped > total:
        raise ParseError(path, lineno, f"{dropped} pkts dropped of {total} in total")
    expected = 100.0 * dropped / total if total else 0.0
    if abs(block["dropped_pct"] - expected) > 0.05 + 1e-9:
        raise ParseError(path, lineno, f"{block['dropped_pct']}% dropped, but {dropped} of "
                         f"{total} is {expected:.1f}%")


def _absolute(st: _Reading, lineno: int, line: str) -> None:
    path, block = st.path, st.block
    if not (m := _RCVD.match(line)):
        raise ParseError(path, lineno, f"expected '[<n> pkts rcvd][...]': {line!r}")
    block["received_packets"] = integer(path, lineno, m["rcvd"], "pkts rcvd")
    block["received_line_bytes"] = integer(path, lineno, m["bytes"], "bytes rcvd")
    block["average_pps"] = number(path, lineno, m["pps"], "pkt/sec") if m["pps"] else None
    block["average_line_mbit_s"] = number(path, lineno, m["mbit"], "Mbit/sec") \
        if m["mbit"] else None
    if block["received_packets"] + block["dropped_packets"] != block["total_packets"]:
        raise ParseError(path, lineno, "pkts rcvd + pkts dropped != pkts total")
    st.state = "rcvd"


def _rule(after: str) -> Callable[[_Reading, int, str], None]:
    """The state that expects the closing rule, then goes to ``after`` (closing a block
    first when ``after`` is "end")."""
    def expect_rule(st: _Reading, lineno: int, line: str) -> None:
        if line != _RULE:
            raise ParseError(st.path, lineno, f"expected {_RULE!r}: {line!r}")
        if after == "end":
            st.blocks.append(st.block)
        st.state = after
    return expect_rule


def _closed(st: _Reading, lineno: int, line: str) -> None:
    path = st.path
    if m := _ACTUAL.match(line):
        st.block["interval_packets"] = integer(path, lineno, m["rcvd"], "pkts rcvd")
        st.block["interval_ms"] = number(path, lineno, m["ms"], "ms")
        st.block["interval_pps"] = number(path, lineno, m["pps"], "pps")
        st.block["interval_line_gbps"] = number(path, lineno, m["gbps"], "Gbps")
        st.state = "actual"
    elif not line.strip():
        st.blocks.append(st.block)
        st.state = "idle"
    else:
        raise ParseError(path, lineno, f"expected 'Actual Stats' or a blank: {line!r}")


def _end(st: _Reading, lineno: int, line: str) -> None:
    if line.strip():
        raise ParseError(st.path, lineno, f"expected a blank line: {line!r}")
    st.state = "idle"


_STATES: dict[str, Callable[[_Reading, int, str], None]] = {
    "idle": _idle, "opened": _opened, "abs": _absolute, "rcvd": _rule("closed"),
    "closed": _closed, "actual": _rule("end"), "end": _end,
}


def _check_complete(st: _Reading, lines: list[str], *, require_final: bool) -> None:
    """No block cut short, at least one block, and (``require_final``) the final one."""
    path = st.path
    if st.state not in ("idle", "end"):
        which = " (the final one, after 'Leaving...')" if st.interrupted else ""
        raise ParseError(
            path, len(lines), f"truncated inside a stats block{which}; last line {lines[-1]!r}"
        )
    if not st.blocks:
        raise ParseError(path, len(lines), "no 'Absolute Stats' block")
    final_blocks = len(st.blocks) - st.before_leaving if st.interrupted else 0
    if require_final and not st.interrupted:
        raise ParseError(
            path, len(lines), "no 'Leaving...': pfcount was not stopped by SIGINT, or its "
            f"output was cut; last line {lines[-1]!r}")
    if require_final and not final_blocks:
        raise ParseError(
            path, len(lines), "cut short: no final statistics block after 'Leaving...'; "
            f"last line {lines[-1]!r}")
