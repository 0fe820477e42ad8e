"""Parse the output of iputils ping (Debian 12: iputils 20221126), IPv4 or IPv6.

The collector runs ``ping -D -O -n -c COUNT -i INTERVAL -s SIZE ADDR`` and keeps its
stdout exactly as printed. Lines understood (each may carry the ``-D`` prefix
``[<epoch s>.<µs>] ``):

- ``PING <host> (<addr>) <size>(<ip size>) bytes of data.`` (IPv4) or
  ``PING <host>(<addr>) <size> data bytes`` (IPv6, ``ping -6`` or an IPv6 target);
  either may name the source (``from <addr> <device>: ``) before the size
- ``<n> bytes from <addr>: icmp_seq=<n> ttl=<n> time=<t> ms`` optionally followed by
  `` (DUP!)``, `` (BAD CHECKSUM!)`` (newer iputils: no ``!``) and `` (DIFFERENT ADDRESS!)``;
  a BAD CHECKSUM reply answers nothing (ping counts it as corrupted). ``<addr>`` may be
  an IPv6 address (``2001:db8::2``), colons and all
- ``no answer yet for icmp_seq=<n>`` (``-O``)
- ``From <addr> icmp_seq=<n> <ICMP error text>`` (e.g. Destination Host Unreachable,
  or for IPv6 ``Destination unreachable: Address unreachable``)
- ``--- <host> ping statistics ---``, then the summary
  ``N packets transmitted, M received[, +D duplicates][, +C corrupted][, +E errors],
  L% packet loss, time Tms``, then ``rtt min/avg/max/mdev = a/b/c/d ms`` (absent when
  nothing was received) and possibly ``pipe N``
- blank lines.

ping prints times in ms with 3, 2, 1 or 0 decimals (below 1 ms, 10 ms, 100 ms, above);
every time is returned in µs. ping prints ``time=`` on every reply or on none (none
when the payload is below 16 bytes, too small to carry a timestamp): an output where
no reply has ``time=`` is read with no RTTs, but a reply without ``time=`` among
replies that carry one is refused.

Every error is a :class:`ParseError` naming the file and, where one is to blame,
the line. The lines are recognised first, one by one: the first line that is not
iputils ping output is named (with a hint when the file has no iputils summary
line at all, as with busybox ping or fping). Then the summary line is required: a
file without it was cut short and the error names its last line (a file whose last
line has no newline and no summary was cut inside that line). ICMP sequence numbers
are 16 bits; a run of more than 65535 probes wraps them and is refused. A file that
cannot be read (a directory, a FIFO, a dangling link) raises
:class:`~kvmnetlab.errors.UnreadableError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from collectors.parsers._text import read_text
from kvmnetlab.errors import ParseError

_TS = re.compile(r"^\[(?P<ts>\d+\.\d+)\] (?P<rest>.*)$")
_HEADER = re.compile(
    r"^PING (?P<host>\S+) \((?P<addr>[^)]+)\)(?: from \S+(?: \S+)?:)? "
    r"(?P<size>\d+)\((?P<ipsize>\d+)\) bytes of data\.$"
)
# iputils' IPv6 header: "PING %s(%s) ", optionally "from %s %s: " (source, device), then
# "%zu data bytes"
_HEADER6 = re.compile(
    r"^PING (?P<host>[^\s(]+)\((?P<addr>[^)]+)\) (?:from \S+ \S*: )?"
    r"(?P<size>\d+) data bytes$"
)
# the source: an address (IPv6 ones hold colons), or "name (address)" without -n
_REPLY = re.compile(
    r"^(?P<bytes>\d+) bytes from (?P<src>\S+(?: \([^)]*\))?): icmp_seq=(?P<seq>\d+)"
    r" ttl=(?P<ttl>\d+)"
    r"(?: time=(?P<time>\d+(?:\.\d+)?) ms)?(?P<flags>(?: \([A-Z ]+!?\))*)$"
)
_FLAG = re.compile(r" \(([A-Z ]+)!?\)")
_KNOWN_FLAGS = {"DUP", "BAD CHECKSUM", "DIFFERENT ADDRESS"}
_NO_ANSWER = re.compile(r"^no answer yet for icmp_seq=(?P<seq>\d+)$")
# "From <addr> icmp_seq=..." (errors queued on the socket) or "From <addr>: icmp_seq=..."
_FROM = re.compile(r"^From (?P<src>\S+?)(?: \([^)]*\))?:? icmp_seq=(?P<seq>\d+) (?P<msg>\S.*)$")
_STATS_HEAD = re.compile(r"^--- (?P<host>\S+) ping statistics ---$")
_SUMMARY = re.compile(
    r"^(?P<tx>\d+) packets transmitted, (?P<rx>\d+) received"
    r"(?:, \+(?P<dup>\d+) duplicates)?(?:, \+(?P<corrupted>\d+) corrupted)?"
    r"(?:, \+(?P<err>\d+) errors)?"
    r"(?:, (?P<loss>\d+(?:\.\d+)?(?:e[+-]?\d+)?)% packet loss, time (?P<time>\d+)ms)?$"
)
_RTT = re.compile(
    r"^rtt min/avg/max/mdev = (?P<min>\d+\.\d+)/(?P<avg>\d+\.\d+)/(?P<max>\d+\.\d+)"
    r"/(?P<mdev>\d+\.\d+) ms(?:, pipe (?P<pipe>\d+))?"
    r"(?:, ipg/ewma (?P<ipg>\d+\.\d+)/(?P<ewma>\d+\.\d+) ms)?$"
)
_PIPE = re.compile(r"^pipe (?P<pipe>\d+)$")


@dataclass
class PingResult:
    """One ping run.

    ``probes``: one dict per icmp_seq, in seq order: ``seq`` (int), ``timestamp_s``
    (float epoch s: the first reply's ``-D`` stamp if answered, else the first line
    naming that seq; None if no line names it), ``answered`` (bool), ``rtt_us``
    (float µs, the first reply; None if unanswered or printed without time),
    ``duplicates`` (int, extra replies marked DUP!).

    ``summary``: ``transmitted``, ``received``, ``duplicates``, ``corrupted``, ``errors``
    (packets, from ping's summary line), ``loss_pct`` (percent, as printed by ping),
    ``time_ms`` (ms, wall time ping reports), ``pipe`` (probes in flight, or None) and,
    when ping printed them, ``rtt_min_us``, ``rtt_avg_us``, ``rtt_max_us``,
    ``rtt_mdev_us`` (µs; mdev is ping's standard deviation of the RTTs).

    ``errors``: ICMP errors ping printed as ``From`` lines: ``seq``, ``timestamp_s``,
    ``source``, ``message``.
    """

    host: str | None
    address: str | None
    payload_bytes: int | None
    probes: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)


def _ms_to_us(text: str) -> float:
    return float(Decimal(text) * 1000)


def _int(text: str | None) -> int:
    return int(text) if text is not None else 0


def parse(path: str | Path) -> PingResult:
    """Parse one ping capture; raise ParseError (file and line) on anything unexpected."""
    path = Path(path)
    text = read_text(path)
    lines = text.splitlines()
    if not lines:
        raise ParseError(path, None, "empty file: no ping output, no summary line")

    # Without an iputils summary line the capture stopped early, or is not iputils ping's.
    summarised = any(_SUMMARY.match(_strip_ts(line)[1]) for line in lines)
    if not summarised and not text.endswith("\n"):
        raise ParseError(path, len(lines), "truncated inside its last line, no 'packets "
                         f"transmitted' summary; last line is {lines[-1]!r}")
    hint = "" if summarised else " (not iputils ping output?)"

    result = PingResult(host=None, address=None, payload_bytes=None)
    probes: dict[int, dict] = {}
    reply_lines = dup_lines = corrupted_lines = 0
    timed = False
    untimed = 0  # the first reply line without time=
    state = "body"  # body -> stats_head -> summary -> rtt -> done
    summary_line = 0

    def probe(seq: int, ts: float | None) -> dict:
        if seq in probes:
            return probes[seq]
        p = {"seq": seq, "timestamp_s": ts, "answered": False, "rtt_us": None, "duplicates": 0}
        probes[seq] = p
        return p

    for lineno, raw in enumerate(lines, start=1):
        ts, line = _strip_ts(raw)
        if not line.strip():
            continue
        if state == "body":
            if m := _REPLY.match(line):
                flags = _FLAG.findall(m["flags"])
                unknown = [f for f in flags if f not in _KNOWN_FLAGS]
                if unknown:
                    raise ParseError(path, lineno, f"unknown reply marker {unknown[0]!r}")
                seq = int(m["seq"])
                rtt = _ms_to_us(m["time"]) if m["time"] is not None else None
                timed = timed or rtt is not None
                untimed = untimed or (lineno if rtt is None else 0)
                if timed and untimed:
                    # ping times every reply or none (payload below 16 bytes): never some
                    raise ParseError(path, untimed,
                                     "reply without time= while other replies carry times")
                reply_lines += 1
                p = probe(seq, ts)
                if "BAD CHECKSUM" in flags:
                    # ping counts it as corrupted, neither received nor a duplicate,
                    # and leaves it out of the rtt statistics.
                    corrupted_lines += 1
                    continue
                if "DUP" in flags:
                    dup_lines += 1
                    p["duplicates"] += 1
                    if not p["answered"]:
                        # ping saw an earlier reply we do not have: the file lost a line.
                        raise ParseError(
                            path, lineno, f"DUP! reply for icmp_seq={seq} without an earlier reply"
                        )
                elif p["answered"]:
                    raise ParseError(
                        path, lineno, f"second reply for icmp_seq={seq} not marked DUP!"
                    )
                else:
                    p["answered"] = True
                    p["rtt_us"] = rtt
                    p["timestamp_s"] = ts
                continue
            if m := _NO_ANSWER.match(line):
                probe(int(m["seq"]), ts)
                continue
            if m := _FROM.match(line):
                seq = int(m["seq"])
                probe(seq, ts)
                result.errors.append(
                    {"seq": seq, "timestamp_s": ts, "source": m["src"], "message": m["msg"]}
                )
                continue
            if line.startswith("PING "):
                if result.host is not None or reply_lines or probes:
                    raise ParseError(path, lineno, "PING header not at the start")
                if not (m := _HEADER.match(line) or _HEADER6.match(line)):
                    raise ParseError(path, lineno, f"malformed PING header: {line!r}{hint}")
                result.host, result.address = m["host"], m["addr"]
                result.payload_bytes = int(m["size"])
                continue
            if _STATS_HEAD.match(line):
                state = "stats_head"
                continue
            if _SUMMARY.match(line):
                state = "stats_head"  # tolerate a missing '--- statistics ---' line
            else:
                raise ParseError(path, lineno, f"unrecognised line {lineno}: {line!r}{hint}")
        if state == "stats_head":
            if not (m := _SUMMARY.match(line)):
                raise ParseError(path, lineno, f"expected the summary line, got {line!r}")
            if m["loss"] is None:
                raise ParseError(path, lineno, "summary without packet loss and time")
            summary_line = lineno
            result.summary = {
                "transmitted": int(m["tx"]),
                "received": int(m["rx"]),
                "duplicates": _int(m["dup"]),
                "corrupted": _int(m["corrupted"]),
                "errors": _int(m["err"]),
                "loss_pct": float(m["loss"]),
                "time_ms": int(m["time"]),
                "pipe": None,
            }
            state = "summary"
            continue
        if state == "summary" and (m := _RTT.match(line)):
            for key in ("min", "avg", "max", "mdev"):
                result.summary[f"rtt_{key}_us"] = _ms_to_us(m[key])
            if m["pipe"] is not None:
                result.summary["pipe"] = int(m["pipe"])
            if m["ipg"] is not None:
                result.summary["ipg_us"] = _ms_to_us(m["ipg"])
                result.summary["ewma_us"] = _ms_to_us(m["ewma"])
            state = "rtt"
            continue
        if state == "summary" and (m := _PIPE.match(line)):
            result.summary["pipe"] = int(m["pipe"])
            state = "done"
            continue
        raise ParseError(path, lineno, f"unexpected line after the summary: {line!r}")

    if state in ("body", "stats_head"):  # every line was ping's, but the summary never came
        raise ParseError(
            path,
            len(lines),
            f"truncated: no 'packets transmitted' summary; last line is {lines[-1]!r}",
        )
    s = result.summary
    if timed and s["received"] > 0 and state not in ("rtt", "done"):
        raise ParseError(
            path,
            len(lines),
            "truncated: summary reports replies but no 'rtt min/avg/max/mdev' line",
        )
    if reply_lines != s["received"] + s["duplicates"] + s["corrupted"]:
        raise ParseError(
            path,
            summary_line,
            f"summary counts {s['received']} received + {s['duplicates']} duplicates + "
            f"{s['corrupted']} corrupted but the file has {reply_lines} reply lines",
        )
    if dup_lines != s["duplicates"]:
        raise ParseError(
            path,
            summary_line,
            f"summary counts {s['duplicates']} duplicates but the file has {dup_lines} DUP! lines",
        )
    if corrupted_lines != s["corrupted"]:
        raise ParseError(
            path,
            summary_line,
            f"summary counts {s['corrupted']} corrupted "
            f"but the file has {corrupted_lines} BAD CHECKSUM lines",
        )
    if s["transmitted"] > 65535:
        raise ParseError(path, summary_line, "more than 65535 probes: icmp_seq wrapped")
    beyond = [seq for seq in probes if seq > s["transmitted"] or seq < 1]
    if beyond:
        raise ParseError(
            path, summary_line, f"icmp_seq={beyond[0]} outside 1..{s['transmitted']} transmitted"
        )
    # Every transmitted probe appears, answered or not, even if no line names it.
    for seq in range(1, s["transmitted"] + 1):
        probe(seq, None)
    result.probes = [probes[seq] for seq in sorted(probes)]
    return result


def _strip_ts(line: str) -> tuple[float | None, str]:
    m = _TS.match(line)
    if m:
        return float(m["ts"]), m["rest"]
    return None, line


__all__ = ["PingResult", "parse"]
