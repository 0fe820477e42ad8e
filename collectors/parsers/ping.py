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

The summary is checked against the lines, as ping computes it: received <= transmitted,
the printed loss is ping's ``%g`` of the counts, ``+N errors`` is at least the ICMP
error lines (``From <addr> icmp_seq=``; ping counts each) and at most one local error
(reported on stderr) more per probe sent. Replies carry ``time=`` exactly when the
payload holds a timestamp (16 bytes or more), with iputils' decimals for the time's
size; the rtt line comes exactly when timed replies did, with min <= avg <= max, and
every reply's time but a corrupted one's lies within its min/max (printed to the µs)
to half the reply's last printed digit. Every number is range-checked where it is
read (``_text.to_int``, ``_text.to_float``): icmp_seq 0..65535, ttl 0..255, RTTs
0..MAX_RTT_US, counts within int64.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from collectors.parsers._text import read_text, to_float, to_int
from kvmnetlab.errors import ParseError

_TS = re.compile(r"^\[(?P<ts>[0-9]+\.[0-9]+)\] (?P<rest>.*)$")
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
_FROM = re.compile(
    r"^From (?P<src>\S+?)(?: \([^)]*\))?(?P<colon>:?) icmp_seq=(?P<seq>\d+) (?P<msg>\S.*)$")
_STATS_HEAD = re.compile(r"^--- (?P<host>\S+) ping statistics ---$")
_SUMMARY = re.compile(
    r"^(?P<tx>\d+) packets transmitted, (?P<rx>\d+) received"
    r"(?:, \+(?P<dup>\d+) duplicates)?(?:, \+(?P<corrupted>\d+) corrupted)?"
    r"(?:, \+(?P<err>\d+) errors)?"
    r"(?:, (?P<loss>\d+(?:\.\d+)?(?:e[+-]?\d+)?)% packet loss, time (?P<time>\d+)ms)?$"
)
_RTT = re.compile(
    r"^rtt min/avg/max/mdev = (?P<min>\d+\.\d{3})/(?P<avg>\d+\.\d{3})/(?P<max>\d+\.\d{3})"
    r"/(?P<mdev>\d+\.\d{3}) ms(?:, pipe (?P<pipe>\d+))?"
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


#: the longest round trip read (µs): a day; ping stops long before
MAX_RTT_US = 86_400e6
#: the latest -D stamp read (epoch s, year 2286)
MAX_EPOCH_S = 1e10
#: ICMP sequence numbers, TTLs and payload sizes are 16, 8 and 16 bits
MAX_SEQ, MAX_TTL, MAX_PAYLOAD_BYTES = 65535, 255, 65535
#: ping times a reply only when its payload holds a struct timeval (16 bytes)
TIMED_PAYLOAD_BYTES = 16


def _ms_to_us(path: Path, lineno: int, text: str, what: str) -> float:
    """ping's ms as µs, exactly as printed; finite, 0..MAX_RTT_US."""
    return to_float(path, lineno, text, what, hi=MAX_RTT_US, scale=1000)


def _rtt_decimals(us: float) -> int:
    """How many decimals iputils prints a reply's time in ms with (ping_common.c)."""
    return 3 if us < 1_000 else 2 if us < 10_000 else 1 if us < 100_000 else 0


def rtt_tolerance_us(us: float) -> float:
    """Half the last printed digit of a reply's time: how far the printed value may be
    from the µs ping measured (and printed in its min/max, at 3 decimals always)."""
    return 0.5 * 10 ** (3 - _rtt_decimals(us))


def _count(path: Path, lineno: int, text: str | None, what: str) -> int:
    return to_int(path, lineno, text, what) if text is not None else 0


@dataclass
class _Reading:
    """What :func:`parse` has learnt so far, line by line."""

    path: Path
    hint: str  # added to the error for a line that is not ping's
    result: PingResult
    probes: dict[int, dict] = field(default_factory=dict)
    reply_lines: int = 0
    icmp_error_lines: int = 0  # From lines ping counts in +N errors (no colon)
    rtts: list[tuple[int, float]] = field(default_factory=list)  # (line, µs) in min/max
    dup_lines: int = 0
    corrupted_lines: int = 0
    timed: int = 0  # the first reply line with time=
    untimed: int = 0  # the first reply line without time=
    phase: str = "body"  # body -> stats_head -> summary -> rtt -> done
    summary_line: int = 0
    loss_text: str = ""
    rtt_line: int = 0

    def seq(self, lineno: int, text: str) -> int:
        return to_int(self.path, lineno, text, "icmp_seq", hi=MAX_SEQ)

    def probe(self, seq: int, ts: float | None) -> dict:
        """The probe of ``seq``, made (first seen at ``ts``) when no line named it yet."""
        if seq not in self.probes:
            self.probes[seq] = {"seq": seq, "timestamp_s": ts, "answered": False,
                                "rtt_us": None, "duplicates": 0}
        return self.probes[seq]


def parse(path: str | Path) -> PingResult:
    """Parse one ping capture; raise ParseError (file and line) on anything unexpected."""
    path = Path(path)
    text = read_text(path)
    lines = text.splitlines()
    st = _Reading(path=path, hint=_start_hint(path, text, lines),
                  result=PingResult(host=None, address=None, payload_bytes=None))
    for lineno, raw in enumerate(lines, start=1):
        stamp, line = _strip_ts(raw)
        ts = None if stamp is None else to_float(path, lineno, stamp, "-D timestamp (s)",
                                                 hi=MAX_EPOCH_S)
        if line.strip():
            _PHASES[st.phase](st, lineno, ts, line)
    _check_complete(st, lines)
    _check_counts(st)
    _check_timing(st)
    _check_seqs(st)
    # Every transmitted probe appears, answered or not, even if no line names it.
    for seq in range(1, st.result.summary["transmitted"] + 1):
        st.probe(seq, None)
    st.result.probes = [st.probes[seq] for seq in sorted(st.probes)]
    return st.result


def _start_hint(path: Path, text: str, lines: list[str]) -> str:
    """Refuse an empty file or one cut inside its last line; the hint for unknown lines."""
    if not lines:
        raise ParseError(path, None, "empty file: no ping output, no summary line")
    # Without an iputils summary line the capture stopped early, or is not iputils ping's.
    summarised = any(_SUMMARY.match(_strip_ts(line)[1]) for line in lines)
    if not summarised and not text.endswith("\n"):
        raise ParseError(path, len(lines), "truncated inside its last line, no 'packets "
                         f"transmitted' summary; last line is {lines[-1]!r}")
    return "" if summarised else " (not iputils ping output?)"


# --------------------------------------------------------------------------- the body


def _body_line(st: _Reading, lineno: int, ts: float | None, line: str) -> None:
    if m := _REPLY.match(line):
        _reply(st, lineno, ts, m)
    elif m := _NO_ANSWER.match(line):
        st.probe(st.seq(lineno, m["seq"]), ts)
    elif m := _FROM.match(line):
        seq = st.seq(lineno, m["seq"])
        st.probe(seq, ts)
        st.icmp_error_lines += not m["colon"]
        st.result.errors.append(
            {"seq": seq, "timestamp_s": ts, "source": m["src"], "message": m["msg"]}
        )
    elif line.startswith("PING "):
        _header(st, lineno, line)
    elif _STATS_HEAD.match(line):
        st.phase = "stats_head"
    elif _SUMMARY.match(line):  # tolerate a missing '--- statistics ---' line
        st.phase = "stats_head"
        _summary_line(st, lineno, ts, line)
    else:
        raise ParseError(st.path, lineno, f"unrecognised line {lineno}: {line!r}{st.hint}")


def _header(st: _Reading, lineno: int, line: str) -> None:
    result = st.result
    if result.host is not None or st.reply_lines or st.probes:
        raise ParseError(st.path, lineno, "PING header not at the start")
    if not (m := _HEADER.match(line) or _HEADER6.match(line)):
        raise ParseError(st.path, lineno, f"malformed PING header: {line!r}{st.hint}")
    result.host, result.address = m["host"], m["addr"]
    result.payload_bytes = to_int(st.path, lineno, m["size"], "payload size (bytes)",
                                  hi=MAX_PAYLOAD_BYTES)


def _reply(st: _Reading, lineno: int, ts: float | None, m: re.Match[str]) -> None:
    flags = _FLAG.findall(m["flags"])
    unknown = [f for f in flags if f not in _KNOWN_FLAGS]
    if unknown:
        raise ParseError(st.path, lineno, f"unknown reply marker {unknown[0]!r}")
    seq = st.seq(lineno, m["seq"])
    to_int(st.path, lineno, m["ttl"], "ttl", hi=MAX_TTL)
    rtt = _reply_time(st, lineno, m["time"])
    _check_timed(st, lineno, rtt)
    st.reply_lines += 1
    p = st.probe(seq, ts)
    if "BAD CHECKSUM" in flags:
        # ping counts it as corrupted, neither received nor a duplicate,
        # and leaves it out of the rtt statistics.
        st.corrupted_lines += 1
        return
    if rtt is not None:  # ping's min/max take in every reply but a corrupted one
        st.rtts.append((lineno, rtt))
    if "DUP" in flags:
        _duplicate(st, lineno, p)
    elif p["answered"]:
        raise ParseError(st.path, lineno, f"second reply for icmp_seq={seq} not marked DUP!")
    else:
        p.update(answered=True, rtt_us=rtt, timestamp_s=ts)


def _reply_time(st: _Reading, lineno: int, text: str | None) -> float | None:
    """A reply's ``time=`` in µs (None without one), printed as iputils prints it."""
    if text is None:
        return None
    rtt = _ms_to_us(st.path, lineno, text, "reply time (ms)")
    decimals = len(text.partition(".")[2])
    if decimals != _rtt_decimals(rtt):
        raise ParseError(st.path, lineno, f"time={text} ms: ping prints "
                         f"{_rtt_decimals(rtt)} decimals for that time, not {decimals}")
    return rtt


def _check_timed(st: _Reading, lineno: int, rtt: float | None) -> None:
    """ping times every reply or none (payload below 16 bytes): never some."""
    st.timed = st.timed or (lineno if rtt is not None else 0)
    st.untimed = st.untimed or (lineno if rtt is None else 0)
    if st.timed and st.untimed:
        raise ParseError(st.path, st.untimed,
                         "reply without time= while other replies carry times")


def _duplicate(st: _Reading, lineno: int, p: dict) -> None:
    st.dup_lines += 1
    p["duplicates"] += 1
    if not p["answered"]:
        # ping saw an earlier reply we do not have: the file lost a line.
        raise ParseError(
            st.path, lineno, f"DUP! reply for icmp_seq={p['seq']} without an earlier reply"
        )


# --------------------------------------------------------------------------- the statistics


def _summary_line(st: _Reading, lineno: int, ts: float | None, line: str) -> None:
    if not (m := _SUMMARY.match(line)):
        raise ParseError(st.path, lineno, f"expected the summary line, got {line!r}")
    if m["loss"] is None:
        raise ParseError(st.path, lineno, "summary without packet loss and time")
    st.summary_line = lineno
    path = st.path
    st.result.summary = {
        "transmitted": to_int(path, lineno, m["tx"], "packets transmitted"),
        "received": to_int(path, lineno, m["rx"], "packets received"),
        "duplicates": _count(path, lineno, m["dup"], "duplicates"),
        "corrupted": _count(path, lineno, m["corrupted"], "corrupted"),
        "errors": _count(path, lineno, m["err"], "errors"),
        "loss_pct": to_float(path, lineno, m["loss"], "packet loss (%)", hi=100.0),
        "time_ms": to_int(path, lineno, m["time"], "time (ms)"),
        "pipe": None,
    }
    st.loss_text = m["loss"]
    st.phase = "summary"


def _after_summary(st: _Reading, lineno: int, ts: float | None, line: str) -> None:
    summary = st.result.summary
    path = st.path
    if m := _RTT.match(line):
        for key in ("min", "avg", "max", "mdev"):
            summary[f"rtt_{key}_us"] = _ms_to_us(path, lineno, m[key], f"rtt {key} (ms)")
        if m["pipe"] is not None:
            summary["pipe"] = _pipe(st, lineno, m["pipe"])
        if m["ipg"] is not None:
            summary["ipg_us"] = _ms_to_us(path, lineno, m["ipg"], "ipg (ms)")
            summary["ewma_us"] = _ms_to_us(path, lineno, m["ewma"], "ewma (ms)")
        st.rtt_line = lineno
        st.phase = "rtt"
    elif m := _PIPE.match(line):
        summary["pipe"] = _pipe(st, lineno, m["pipe"])
        st.phase = "done"
    else:
        _nothing_more(st, lineno, ts, line)


def _pipe(st: _Reading, lineno: int, text: str) -> int:
    """Probes in flight at once: printed only above 1, never above those sent."""
    return to_int(st.path, lineno, text, "pipe", lo=2,
                  hi=max(2, st.result.summary["transmitted"]))


def _nothing_more(st: _Reading, lineno: int, ts: float | None, line: str) -> None:
    raise ParseError(st.path, lineno, f"unexpected line after the summary: {line!r}")


_PHASES = {"body": _body_line, "stats_head": _summary_line, "summary": _after_summary,
           "rtt": _nothing_more, "done": _nothing_more}


# --------------------------------------------------------------------------- the checks


def _check_complete(st: _Reading, lines: list[str]) -> None:
    """The summary came, and the rtt line with it when replies were timed."""
    if st.phase in ("body", "stats_head"):  # every line was ping's, the summary never came
        raise ParseError(
            st.path,
            len(lines),
            f"truncated: no 'packets transmitted' summary; last line is {lines[-1]!r}",
        )
    if st.timed and st.result.summary["received"] > 0 and st.phase not in ("rtt", "done"):
        raise ParseError(
            st.path,
            len(lines),
            "truncated: summary reports replies but no 'rtt min/avg/max/mdev' line",
        )


def _check_counts(st: _Reading) -> None:
    """The summary's counts against the reply lines of the file."""
    s = st.result.summary
    if st.reply_lines != s["received"] + s["duplicates"] + s["corrupted"]:
        raise ParseError(
            st.path,
            st.summary_line,
            f"summary counts {s['received']} received + {s['duplicates']} duplicates + "
            f"{s['corrupted']} corrupted but the file has {st.reply_lines} reply lines",
        )
    if st.dup_lines != s["duplicates"]:
        raise ParseError(
            st.path,
            st.summary_line,
            f"summary counts {s['duplicates']} duplicates but the file has {st.dup_lines} "
            "DUP! lines",
        )
    if st.corrupted_lines != s["corrupted"]:
        raise ParseError(
            st.path,
            st.summary_line,
            f"summary counts {s['corrupted']} corrupted "
            f"but the file has {st.corrupted_lines} BAD CHECKSUM lines",
        )
    _check_loss(st)


def _check_loss(st: _Reading) -> None:
    """The printed loss is ping's: ``%g`` of the single-precision percentage of the
    probes sent that got no reply."""
    s = st.result.summary
    sent, received = s["transmitted"], s["received"]
    if received > sent or sent == 0:  # with nothing sent ping prints no loss
        raise ParseError(st.path, st.summary_line,
                         f"{received} received of {sent} transmitted")
    lost = struct.unpack("f", struct.pack("f", (sent - received) * 100.0 / sent))[0]
    if st.loss_text != f"{lost:g}":
        raise ParseError(st.path, st.summary_line,
                         f"{st.loss_text}% packet loss, but {sent - received} of {sent} lost "
                         f"is {lost:g}%")
    if not st.icmp_error_lines <= s["errors"] <= st.icmp_error_lines + sent:
        raise ParseError(st.path, st.summary_line,
                         f"+{s['errors']} errors, but the file has {st.icmp_error_lines} ICMP "
                         f"error lines (ping counts each, and at most one local error per "
                         f"probe sent, {sent})")


def _check_timing(st: _Reading) -> None:
    """Replies timed exactly when their payload holds a timestamp; the rtt line exactly
    when timed replies came, its min <= avg <= max, every reply's time within them."""
    s, payload = st.result.summary, st.result.payload_bytes
    if st.timed and payload is not None and payload < TIMED_PAYLOAD_BYTES:
        raise ParseError(st.path, st.timed, f"a timed reply with {payload}-byte payloads "
                         f"(ping times only payloads of {TIMED_PAYLOAD_BYTES} bytes or more)")
    if st.untimed and (payload is None or payload >= TIMED_PAYLOAD_BYTES):
        size = "no PING header" if payload is None else f"{payload}-byte payloads"
        raise ParseError(st.path, st.untimed, f"replies without time= with {size} (ping "
                         f"times every payload of {TIMED_PAYLOAD_BYTES} bytes or more)")
    if "rtt_min_us" not in s:
        return
    if not st.timed or s["received"] == 0:
        raise ParseError(st.path, st.rtt_line, "an rtt line, but no timed reply was received")
    low, avg, high = s["rtt_min_us"], s["rtt_avg_us"], s["rtt_max_us"]
    if not low <= avg <= high:
        raise ParseError(st.path, st.rtt_line, "rtt min/avg/max not in order")
    for lineno, rtt in st.rtts:
        slack = rtt_tolerance_us(rtt) + 1e-6
        if not low - slack <= rtt <= high + slack:
            raise ParseError(st.path, lineno, f"reply time {rtt / 1000:g} ms outside the "
                             f"summary's rtt min/max {low / 1000:.3f}/{high / 1000:.3f} ms")


def _check_seqs(st: _Reading) -> None:
    """Every icmp_seq within 1..transmitted, and no wrap."""
    transmitted = st.result.summary["transmitted"]
    if transmitted > 65535:
        raise ParseError(st.path, st.summary_line, "more than 65535 probes: icmp_seq wrapped")
    beyond = [seq for seq in st.probes if seq > transmitted or seq < 1]
    if beyond:
        raise ParseError(
            st.path, st.summary_line, f"icmp_seq={beyond[0]} outside 1..{transmitted} transmitted"
        )


def _strip_ts(line: str) -> tuple[str | None, str]:
    """The ``-D`` stamp's text (None without one) and the rest of the line."""
    m = _TS.match(line)
    if m:
        return m["ts"], m["rest"]
    return None, line


__all__ = ["PingResult", "parse"]
