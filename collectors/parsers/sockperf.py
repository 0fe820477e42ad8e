"""Parse the stdout of ``sockperf ping-pong`` (sockperf 3.7, Debian 12).

``sockperf ping-pong -i IP -p PORT -t SECONDS [--full-rtt]`` prints (with ANSI colour
codes, stripped here) its run totals, then for the one server::

    sockperf: [Valid Duration] RunTime=1.548 sec; SentMessages=N; ReceivedMessages=M
    sockperf: ====> avg-rtt=52.260 (std-dev=411.557)         (avg-latency= without --full-rtt)
    sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
    sockperf: Summary: Round trip is 52.260 usec              (Latency is ... without it)
    sockperf: Total 29603 observations; each percentile contains 296.03 observations
    sockperf: ---> <MAX> observation = 14387.908
    sockperf: ---> percentile 99.999 = 14387.908
    ...
    sockperf: ---> <MIN> observation =    7.575

All times are µs. With ``--full-rtt`` they are round-trip times (``statistic`` =
``"rtt"``); without it sockperf reports half the round trip (``"half_rtt"``). It
leaves out the first 400 ms (warm-up) and the last 50 ms of the run. The
``<MIN>`` line ends the report and is required.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.parsers._text import read_lines, to_float, to_int
from kvmnetlab.errors import ParseError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NUM = r"[0-9]+(?:\.[0-9]+)?"
#: the longest run read (s), and the largest time read (µs: an hour)
MAX_RUN_S, MAX_US = 10**7, 3.6e9
_TOTAL = re.compile(
    rf"^\[Total Run\] RunTime=(?P<t>{_NUM}) sec; Warm up time=(?P<w>\d+) msec; "
    r"SentMessages=(?P<s>\d+); ReceivedMessages=(?P<r>\d+)$"
)
_VALID = re.compile(
    rf"^\[Valid Duration\] RunTime=(?P<t>{_NUM}) sec; SentMessages=(?P<s>\d+); "
    r"ReceivedMessages=(?P<r>\d+)$"
)
_AVG = re.compile(rf"^====> avg-(?P<kind>rtt|latency)=(?P<avg>{_NUM}) \(std-dev=(?P<sd>{_NUM})\)$")
_COUNTS = re.compile(
    r"^# dropped messages = (?P<d>\d+); # duplicated messages = (?P<u>\d+); "
    r"# out-of-order messages = (?P<o>\d+)$"
)
_SUMMARY = re.compile(rf"^Summary: (?:Round trip|Latency) is (?P<v>{_NUM}) usec$")
_OBS = re.compile(
    rf"^Total (?P<n>\d+) observations; each percentile contains (?P<per>{_NUM}) observations$"
)
_MAX = re.compile(rf"^---> <MAX> observation = +(?P<v>{_NUM})$")
_MIN = re.compile(rf"^---> <MIN> observation = +(?P<v>{_NUM})$")
_PCT = re.compile(rf"^---> percentile (?P<p>{_NUM}) = +(?P<v>{_NUM})$")
_SERVER = re.compile(r"^========= Printing statistics for Server No: (?P<n>\d+)$")
_INFO = (
    re.compile(r"^== version #\S+ ==$"),
    re.compile(r"^Warmup stage \(sending a few dummy messages\)\.\.\.$"),
    re.compile(r"^Starting test\.\.\.$"),
    re.compile(r"^Test end \(.*\)$"),
    re.compile(r"^Test ended$"),
    re.compile(r"^using \S+\(\) to block on socket\(s\)$"),
)
_CLIENT = re.compile(r"^sockperf\[CLIENT\] send on:(?:sockperf: .*)?$")
_TARGET = re.compile(r"^\[ *\d+\] IP = \S+ +PORT = +\d+ # (?:UDP|TCP)$")


@dataclass
class SockperfResult:
    """``statistic``: ``"rtt"`` (--full-rtt) or ``"half_rtt"``; every ``*_us`` in µs of
    that statistic. ``run_time_s`` (s), ``warmup_ms`` (ms), ``sent_messages`` and
    ``received_messages`` for the whole run; ``valid_*`` for the part kept;
    ``avg_us`` and ``std_dev_us`` (sockperf's mean and standard deviation);
    ``dropped``, ``duplicated``, ``out_of_order`` (messages); ``observations``
    (count); ``percentiles``: list of ``{"percentile": p (percent), "value_us": v}``
    as printed, highest first; ``max_us``, ``min_us``."""

    statistic: str
    run_time_s: float
    warmup_ms: int
    sent_messages: int
    received_messages: int
    valid_run_time_s: float
    valid_sent_messages: int
    valid_received_messages: int
    avg_us: float
    std_dev_us: float
    dropped: int
    duplicated: int
    out_of_order: int
    observations: int
    max_us: float
    min_us: float
    percentiles: list[dict] = field(default_factory=list)


def parse(path: str | Path) -> SockperfResult:
    path = Path(path)
    lines = read_lines(path)
    got: dict = {}
    percentiles: list[dict] = []
    for lineno, raw in enumerate(lines, start=1):
        line = _ANSI.sub("", raw).strip()
        body = _body(path, lineno, line)
        if body is None:
            continue
        if "min_us" in got:
            raise ParseError(path, lineno, f"line after the <MIN> observation: {line!r}")
        for rx, read in _RESULT_LINES:
            if m := rx.match(body):
                read(path, lineno, m, got, percentiles)
                break
        else:
            raise ParseError(path, lineno, f"unrecognised line: {line!r}")
    _check_complete(path, lines, got, percentiles)
    return _result(got, percentiles)


def _body(path: Path, lineno: int, line: str) -> str | None:
    """The text after ``sockperf: `` of a line that carries results; None for the lines
    that do not (blank, client, target, informational, warnings)."""
    if not line or _CLIENT.match(line) or _TARGET.match(line):
        return None
    if not line.startswith("sockperf: "):
        raise ParseError(path, lineno, f"unrecognised line: {line!r}")
    body = line.removeprefix("sockperf: ").strip()
    if any(rx.match(body) for rx in _INFO) or body.startswith("Warning"):
        return None
    return body


_Read = Callable[[Path, int, re.Match[str], dict, list[dict]], None]
_Field = Callable[[str, str], Any]


def _once(key: str, value: Callable[[_Field, re.Match[str]], Any]) -> _Read:
    """A reader that keeps ``value(field, m)`` under ``key``, refusing a line printed
    twice; ``field(kind, name)`` reads group ``name`` of the line as ``kind``: ``"n"`` a
    count, ``"s"`` seconds, ``"us"`` µs, each range-checked."""
    def read(path: Path, lineno: int, m: re.Match[str], got: dict, _: list[dict]) -> None:
        if key in got:
            raise ParseError(path, lineno, f"{key} printed twice")

        def field(kind: str, name: str) -> int | float:
            what = f"{key} {name}"
            if kind == "n":
                return to_int(path, lineno, m[name], what)
            return to_float(path, lineno, m[name], what,
                            hi=MAX_RUN_S if kind == "s" else MAX_US)
        got[key] = value(field, m)
        got.setdefault("lines", {})[key] = lineno
    return read


def _server(path: Path, lineno: int, m: re.Match[str], got: dict, _: list[dict]) -> None:
    if m["n"] != "0":
        raise ParseError(path, lineno, "more than one server: not supported")


def _percentile(path: Path, lineno: int, m: re.Match[str], got: dict,
                percentiles: list[dict]) -> None:
    if "max_us" not in got:
        raise ParseError(path, lineno, "percentile before the <MAX> observation")
    rank = to_float(path, lineno, m["p"], "percentile", hi=100.0)
    if rank == 0 or any(p["percentile"] == rank for p in percentiles):
        raise ParseError(path, lineno, f"percentile {m['p']} is 0 or printed twice")
    value = to_float(path, lineno, m["v"], "percentile value (µs)", hi=MAX_US)
    if value > got["max_us"]:
        raise ParseError(path, lineno, f"percentile {m['p']} = {m['v']} above <MAX> "
                         f"{got['max_us']}")
    percentiles.append({"percentile": rank, "value_us": value})
    got.setdefault("percentile_lines", []).append(lineno)


# In the order they are tried.
_RESULT_LINES: tuple[tuple[re.Pattern[str], _Read], ...] = (
    (_SERVER, _server),
    (_TOTAL, _once("run", lambda f, m: (f("s", "t"), f("n", "w"), f("n", "s"), f("n", "r")))),
    (_VALID, _once("valid", lambda f, m: (f("s", "t"), f("n", "s"), f("n", "r")))),
    (_AVG, _once("avg", lambda f, m: ("rtt" if m["kind"] == "rtt" else "half_rtt",
                                      f("us", "avg"), f("us", "sd")))),
    (_COUNTS, _once("counts", lambda f, m: (f("n", "d"), f("n", "u"), f("n", "o")))),
    (_SUMMARY, _once("summary", lambda f, m: f("us", "v"))),
    (_OBS, _once("observations", lambda f, m: (f("n", "n"), f("us", "per")))),
    (_MAX, _once("max_us", lambda f, m: f("us", "v"))),
    (_PCT, _percentile),
    (_MIN, _once("min_us", lambda f, m: f("us", "v"))),
)


def _check_complete(path: Path, lines: list[str], got: dict, percentiles: list[dict]) -> None:
    """Every required line came, and the percentiles decrease."""
    for key, text in (
        ("run", "[Total Run]"),
        ("valid", "[Valid Duration]"),
        ("avg", "avg-rtt/avg-latency"),
        ("counts", "# dropped messages"),
        ("observations", "Total ... observations"),
        ("max_us", "<MAX> observation"),
        ("min_us", "<MIN> observation"),
    ):
        if key not in got:
            raise ParseError(
                path, len(lines), f"truncated: no '{text}' line; last line {lines[-1]!r}"
            )
    if not percentiles:
        raise ParseError(path, len(lines), "no percentile lines")
    _check_statistics(path, got, percentiles)


def _check_statistics(path: Path, got: dict, percentiles: list[dict]) -> None:
    """sockperf's numbers against each other: percentiles printed highest first, their
    values decreasing and within <MIN>..<MAX>, the mean within them too, the part of the
    run kept within the whole run."""
    low, high = got["min_us"], got["max_us"]
    lines = got["percentile_lines"]
    for i, (p, lineno) in enumerate(zip(percentiles, lines, strict=True)):
        if i and p["value_us"] > percentiles[i - 1]["value_us"]:
            raise ParseError(path, lineno, "percentile values are not in decreasing order")
        if i and p["percentile"] >= percentiles[i - 1]["percentile"]:
            raise ParseError(path, lineno, "percentiles are not printed highest first")
        if p["value_us"] < low:
            raise ParseError(path, lineno, f"percentile {p['percentile']:g} = {p['value_us']} "
                             f"below <MIN> {low}")
    at = got["lines"]
    _, avg, _ = got["avg"]
    if not low <= avg <= high:
        raise ParseError(path, at["avg"], f"avg {avg} outside <MIN> {low} .. <MAX> {high}")
    run_t, _, sent, received = got["run"]
    valid_t, valid_sent, valid_received = got["valid"]
    if valid_t > run_t or valid_sent > sent or valid_received > received:
        raise ParseError(path, at["valid"], "the [Valid Duration] counts more than the "
                         f"[Total Run] (line {at['run']})")
    if got["observations"][0] > valid_received:
        raise ParseError(path, at["observations"], f"{got['observations'][0]} observations "
                         f"of {valid_received} messages received")


def _result(got: dict, percentiles: list[dict]) -> SockperfResult:
    kind, avg, sd = got["avg"]
    run_t, warm, sent, rcvd = got["run"]
    v_t, v_sent, v_rcvd = got["valid"]
    d, u, o = got["counts"]
    return SockperfResult(
        statistic=kind,
        run_time_s=run_t,
        warmup_ms=warm,
        sent_messages=sent,
        received_messages=rcvd,
        valid_run_time_s=v_t,
        valid_sent_messages=v_sent,
        valid_received_messages=v_rcvd,
        avg_us=avg,
        std_dev_us=sd,
        dropped=d,
        duplicated=u,
        out_of_order=o,
        observations=got["observations"][0],
        max_us=got["max_us"],
        min_us=got["min_us"],
        percentiles=percentiles,
    )
