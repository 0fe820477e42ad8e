"""Seeded mutations of the parsers' real fixtures, and the invariants an accepted output keeps.

Used by tests/collectors/test_parsers_fuzz.py (a bounded number of mutations, in the
default suite) and by bench/bench_fuzz.py (many more, and the same against an older
copy of the parsers). Everything here is a pure function of its seed: a failure is
reproduced by its (parser, fixture, seed).

A parser is imported by name at run time (:func:`parser`), so the bench can point
``collectors`` at another copy of the package. The invariants read only what every
version of a parser returns.
"""

from __future__ import annotations

import importlib
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: parser module -> the real captures it reads (tests/fixtures/<tool>/CAPTURE.md)
CORPUS: dict[str, tuple[str, ...]] = {
    "ping": ("ping/clean.txt", "ping/dup.txt", "ping/unanswered.txt", "ping/unreachable.txt",
             "ping/truncated.txt"),
    "fping": ("fping/clean.stderr", "fping/unreachable.stderr"),
    "sockperf": ("sockperf/pingpong_full_rtt.stdout", "sockperf/pingpong_latency.stdout"),
    "trafgen": ("trafgen/burst.stdout", "trafgen/rate.stdout"),
    "pfsend": ("pfring/pfsend_guest.stdout", "pfring/pfsend_guest_maxrate.stdout"),
    "pfcount": ("pfring/pfcount_guest.stderr", "pfring/pfcount_guest_drops.stderr",
                "pfring/pfcount_guest_stalled.stderr"),
    "tcpdump": ("tcpdump/stats.stderr",),
    "proc_stat": ("procfs/stat.txt",),
    "proc_interrupts": ("procfs/interrupts.txt",),
    "proc_net_dev": ("procfs/net_dev.txt",),
    "sys_net_statistics": ("procfs/sys_statistics.txt",),
    "proc_task_stat": ("procfs/task_stat.txt",),
    "ethtool_info": ("ethtool/veth_i.txt", "ethtool/virtio_i.txt"),
    "ethtool_features": ("ethtool/veth_k.txt", "ethtool/virtio_k.txt"),
    "ethtool_stats": ("ethtool/veth_S.txt", "ethtool/virtio_S.txt"),
}


def parser(name: str) -> Callable[[Path], Any]:
    """``collectors.parsers.<name>.parse``, imported when asked for."""
    return importlib.import_module(f"collectors.parsers.{name}").parse


def parse_error() -> type[Exception]:
    """The project's parse error, from the copy of the package in use."""
    return importlib.import_module("kvmnetlab.errors").ParseError


# --------------------------------------------------------------------------- mutations

_NUMBER = re.compile(rb"\d+(?:\.\d+)?")


def _numbers(data: bytes) -> list[re.Match[bytes]]:
    return list(_NUMBER.finditer(data))


def _replace_number(data: bytes, rng: random.Random, make: Callable[[bytes], bytes]) -> bytes:
    found = _numbers(data)
    if not found:
        return data
    m = rng.choice(found)
    return data[:m.start()] + make(m.group()) + data[m.end():]


def _inflate(rng: random.Random) -> Callable[[bytes], bytes]:
    """A number of hundreds (or thousands) of digits."""
    def make(number: bytes) -> bytes:
        digits = rng.choice((20, 25, 100, 400, 5000))
        return b"9" * digits if rng.random() < 0.5 else number + b"0" * digits
    return make


def _odd(rng: random.Random) -> Callable[[bytes], bytes]:
    """A number another tool, a broken printer or a flipped bit could have printed."""
    def make(number: bytes) -> bytes:
        return rng.choice((
            b"-" + number, b"nan", b"NaN", b"inf", b"-inf", b"Infinity", b"1e999",
            b"1e308", b"0", b"00", number + b".5", number.replace(b".", b""),
            str(rng.randrange(10**rng.randrange(1, 12))).encode(),
            str(int(number.split(b".")[0][:30]) * rng.choice((2, 10, 1000)) + 1).encode(),
            b"1_000", "\u0663".encode(), b"+" + number, b"999999", b"1000000",
            b"65536", b"65535", b"4294967296", b"9223372036854775808"))
    return make


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _delete_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    if lines:
        del lines[rng.randrange(len(lines))]
    return b"".join(lines)


def _duplicate_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    if lines:
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines) + 1), lines[i])
    return b"".join(lines)


def _swap_lines(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    if len(lines) > 1:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


def _swap_numbers(data: bytes, rng: random.Random) -> bytes:
    found = _numbers(data)
    if len(found) < 2:
        return data
    # mostly two numbers of one line: min/max, sent/received, seconds/µs
    a = rng.choice(found)
    line_start, line_end = data.rfind(b"\n", 0, a.start()), data.find(b"\n", a.end())
    near = [m for m in found if m is not a and line_start < m.start()
            and (line_end < 0 or m.end() <= line_end)]
    b = rng.choice(near) if near and rng.random() < 0.8 else rng.choice(found)
    if a.start() > b.start():
        a, b = b, a
    if a.end() > b.start():
        return data
    return (data[:a.start()] + b.group() + data[a.end():b.start()] + a.group()
            + data[b.end():])


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data) + 1)]


def _bytes(data: bytes, rng: random.Random) -> bytes:
    """Bytes that are not UTF-8, a NUL, a carriage return, a stray character."""
    at = rng.randrange(len(data) + 1)
    junk = rng.choice((b"\xff", b"\xfe\xfe", b"\xc3", b"\x00", b"\r", b"\x1b[0m", b" ", b"\t",
                       "\u00e9".encode(), b"\n"))
    return data[:at] + junk + data[at:]


def _drop_text(data: bytes, rng: random.Random) -> bytes:
    """A word or a marker gone from one line: ``time=``, ``(DUP!)``, a unit."""
    words = list(re.finditer(rb"[^\s]+", data))
    if not words:
        return data
    m = rng.choice(words)
    return data[:m.start()] + data[m.end():]


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "inflate": lambda d, r: _replace_number(d, r, _inflate(r)),
    "odd_number": lambda d, r: _replace_number(d, r, _odd(r)),
    "sign": lambda d, r: _replace_number(d, r, lambda n: b"-" + n),
    "delete_line": _delete_line,
    "duplicate_line": _duplicate_line,
    "swap_lines": _swap_lines,
    "swap_numbers": _swap_numbers,
    "truncate": _truncate,
    "bytes": _bytes,
    "drop_word": _drop_text,
}


def mutate(data: bytes, seed: int) -> tuple[bytes, list[str]]:
    """``data`` changed by one to three mutations chosen by ``seed``; their names."""
    rng = random.Random(seed)
    names = [rng.choice(sorted(MUTATIONS)) for _ in range(rng.choice((1, 1, 2, 3)))]
    for name in names:
        data = MUTATIONS[name](data, rng)
    return data, names


# --------------------------------------------------------------------------- invariants


def _walk(value: Any, where: str = "") -> list[str]:
    """Every number stored anywhere in ``value``: ints fit int64, floats are finite."""
    problems = []
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return problems
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            problems.append(f"{where}: {value} does not fit int64")
    elif isinstance(value, float):
        if not math.isfinite(value):
            problems.append(f"{where}: {value} is not finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            problems += _walk(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problems += _walk(item, f"{where}[{i}]")
    elif hasattr(value, "__dataclass_fields__"):
        for key in value.__dataclass_fields__:
            problems += _walk(getattr(value, key), f"{where}.{key}")
    return problems


def _ping_tolerance_us(us: float) -> float:
    """Half the last digit iputils prints a reply's time with (3, 2, 1, 0 decimals in ms
    below 1, 10, 100 ms and above); its min/max carry 3 decimals."""
    decimals = 3 if us < 1_000 else 2 if us < 10_000 else 1 if us < 100_000 else 0
    return 0.5 * 10 ** (3 - decimals) + 1e-6


def _ping(r: Any, text: str) -> list[str]:
    s, out = r.summary, []
    sent, received = s["transmitted"], s["received"]
    if not 0 <= received <= sent:
        out.append(f"{received} received of {sent} transmitted")
    if sent and not math.isclose(s["loss_pct"], 100 * (sent - received) / sent,
                                 rel_tol=1e-5, abs_tol=1e-9):
        out.append(f"loss {s['loss_pct']}% but {sent - received} of {sent} lost")
    if min(s["duplicates"], s["corrupted"], s["errors"], s["time_ms"]) < 0:
        out.append("a negative count in the summary")
    if len(r.probes) != sent or [p["seq"] for p in r.probes] != list(range(1, sent + 1)):
        out.append("probes are not icmp_seq 1..transmitted")
    answered = [p for p in r.probes if p["answered"]]
    if len(answered) != received:
        out.append(f"{len(answered)} answered probes, {received} received")
    if sum(p["duplicates"] for p in r.probes) != s["duplicates"]:
        out.append("duplicates do not add up")
    if any(p["duplicates"] < 0 for p in r.probes):
        out.append("negative duplicates")
    icmp_lines = len(re.findall(r"(?m)^(?:\[[0-9.]+\] )?From \S*[^\s:](?: \([^)]*\))? icmp_seq=",
                                text))
    if not icmp_lines <= s["errors"] <= icmp_lines + sent:
        out.append(f"+{s['errors']} errors against {icmp_lines} ICMP error lines")
    timed = [p["rtt_us"] for p in answered if p["rtt_us"] is not None]
    if timed and len(timed) != len(answered):
        out.append("some answered probes have an RTT, others not")
    if answered and not timed and (r.payload_bytes is None or r.payload_bytes >= 16):
        out.append("answered probes with no RTT, though ping times such payloads")
    if any(rtt < 0 for rtt in timed):
        out.append("a negative RTT")
    if any(p["timestamp_s"] is not None and p["timestamp_s"] < 0 for p in r.probes):
        out.append("a negative timestamp")
    if "rtt_min_us" in s:
        low, avg, high = s["rtt_min_us"], s["rtt_avg_us"], s["rtt_max_us"]
        if not 0 <= low <= avg <= high or s["rtt_mdev_us"] < 0:
            out.append(f"rtt min/avg/max/mdev {low}/{avg}/{high}/{s['rtt_mdev_us']}")
        if not timed:
            out.append("an rtt line without any timed reply")
        for rtt in timed:
            slack = _ping_tolerance_us(rtt)
            if not low - slack <= rtt <= high + slack:
                out.append(f"reply RTT {rtt} µs outside min/max {low}..{high}")
                break
    elif timed:
        out.append("timed replies but no rtt line")
    if s.get("pipe") is not None and not 2 <= s["pipe"] <= max(2, sent):
        out.append(f"pipe {s['pipe']}")
    return out


def _fping(r: Any, text: str) -> list[str]:
    out = []
    counts = {len(values) for values in r.samples.values()}
    if len(counts) > 1:
        out.append("hosts with different sample counts")
    if any(v is not None and v < 0 for values in r.samples.values() for v in values):
        out.append("a negative RTT")
    return out


def _sockperf(r: Any, text: str) -> list[str]:
    out = []
    ranks = [p["percentile"] for p in r.percentiles]
    values = [p["value_us"] for p in r.percentiles]
    if len(set(ranks)) != len(ranks) or not all(0 < p <= 100 for p in ranks):
        out.append(f"percentile ranks {ranks}")
    if not 0 <= r.min_us <= r.max_us:
        out.append(f"min {r.min_us} max {r.max_us}")
    if not all(r.min_us <= v <= r.max_us for v in values):
        out.append("a percentile outside min..max")
    pairs = sorted(zip(ranks, values, strict=True))
    if [v for _, v in pairs] != sorted(v for _, v in pairs):
        out.append("percentile values not increasing with the rank")
    if not r.min_us <= r.avg_us <= r.max_us or r.std_dev_us < 0:
        out.append(f"avg {r.avg_us} outside min..max or negative std-dev")
    if min(r.run_time_s, r.valid_run_time_s, r.observations, r.dropped, r.duplicated,
           r.out_of_order, r.sent_messages, r.received_messages) < 0:
        out.append("a negative count or time")
    if r.valid_run_time_s > r.run_time_s or r.valid_sent_messages > r.sent_messages or \
            r.valid_received_messages > r.received_messages:
        out.append("the valid part of the run exceeds the run")
    return out


def _trafgen(r: Any, text: str) -> list[str]:
    out = []
    usecs = [int(u) for u in re.findall(r"sec, ([0-9]+) usec on CPU", text)]
    if any(u >= 10**6 for u in usecs):
        out.append("usec of 10^6 or more")
    if r.templates == 1 and r.template_bytes is not None and \
            r.tx_bytes != r.tx_packets * r.template_bytes:
        out.append("bytes sent are not the packets sent times the one template's size")
    if sum(c["tx_packets"] for c in r.per_cpu) != r.tx_packets:
        out.append("per-CPU packets do not add up")
    cpus = [c["cpu"] for c in r.per_cpu]
    if len(set(cpus)) != len(cpus):
        out.append("a CPU twice")
    if min([r.tx_packets, r.tx_bytes, r.elapsed_us, *cpus,
            *(c["elapsed_us"] for c in r.per_cpu)]) < 0:
        out.append("a negative count or time")
    return out


def _pfsend(r: Any, text: str) -> list[str]:
    out = []
    totals = [x["total_packets"] for x in r.rates]
    if totals != sorted(totals) or (totals and totals[-1] != r.sent_packets):
        out.append("TX totals do not end at the packets sent")
    if any(v < 0 for x in r.rates for v in x.values()) or r.sent_packets < 0:
        out.append("a negative rate or count")
    return out


def _pfcount(r: Any, text: str) -> list[str]:
    out = []
    for b in r.blocks:
        if b["received_packets"] + b["dropped_packets"] != b["total_packets"]:
            out.append(f"line {b['line']}: rcvd + dropped != total")
        total = b["total_packets"]
        expected = 100 * b["dropped_packets"] / total if total else 0.0
        if abs(b["dropped_pct"] - expected) > 0.05 + 1e-9:
            out.append(f"line {b['line']}: {b['dropped_pct']}% dropped, counts say {expected}")
        if any(isinstance(v, (int, float)) and v < 0 for v in b.values()):
            out.append(f"line {b['line']}: a negative number")
    totals = [b["total_packets"] for b in r.blocks]
    if totals != sorted(totals):
        out.append("pkts total goes backwards")
    return out


def _tcpdump(r: Any, text: str) -> list[str]:
    return [f"{k} negative" for k, v in r.items() if isinstance(v, int) and v < 0]


def _non_negative(r: Any, text: str) -> list[str]:
    """Kernel counters: none below zero."""
    rows = r if isinstance(r, list) else [r]
    out = []
    for row in rows:
        items = row.items() if isinstance(row, dict) else vars(row).items()
        for key, value in items:
            values = value.values() if isinstance(value, dict) else \
                value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, dict):
                    v = v.get("total", 0)
                if isinstance(v, int) and not isinstance(v, bool) and v < 0 \
                        and key not in ("priority", "nice"):
                    out.append(f"{key} negative")
    return out


def _nothing(r: Any, text: str) -> list[str]:
    return []


#: parser -> its own invariants (on top of every number fitting int64, finite)
INVARIANTS: dict[str, Callable[[Any, str], list[str]]] = {
    "ping": _ping, "fping": _fping, "sockperf": _sockperf, "trafgen": _trafgen,
    "pfsend": _pfsend, "pfcount": _pfcount, "tcpdump": _tcpdump,
    "proc_stat": _non_negative, "proc_interrupts": _non_negative,
    "proc_net_dev": _non_negative, "sys_net_statistics": _non_negative,
    "proc_task_stat": _non_negative, "ethtool_info": _nothing, "ethtool_features": _nothing,
    "ethtool_stats": _nothing,
}


def invariants(name: str, result: Any, text: str) -> list[str]:
    """What is impossible in ``result``, the output of parser ``name`` on ``text``."""
    return _walk(result, name) + INVARIANTS[name](result, text)


# --------------------------------------------------------------------------- a run


@dataclass
class Finding:
    """One mutated input a parser did not handle: ``kind`` "crash" (an exception other
    than ParseError) or "impossible" (accepted, breaking an invariant)."""

    kind: str
    name: str
    fixture: str
    seed: int
    mutations: list[str]
    detail: str

    def __str__(self) -> str:
        return (f"{self.kind}: {self.name} {self.fixture} seed={self.seed} "
                f"{'+'.join(self.mutations)}: {self.detail}")


def fuzz(name: str, fixture: str, seeds: range, workdir: Path) -> tuple[int, list[Finding]]:
    """Parse ``fixture`` mutated by every seed of ``seeds`` with parser ``name``;
    return how many mutated inputs it accepted, and every crash and impossible output."""
    parse, error = parser(name), parse_error()
    original = (FIXTURES / fixture).read_bytes()
    path = workdir / Path(fixture).name
    accepted, findings = 0, []
    for seed in seeds:
        data, names = mutate(original, seed)
        path.write_bytes(data)
        try:
            result = parse(path)
        except error:
            continue
        except Exception as exc:  # what the fuzzer looks for
            findings.append(Finding("crash", name, fixture, seed, names,
                                    f"{type(exc).__name__}: {str(exc)[:120]}"))
            continue
        accepted += 1
        text = data.decode("utf-8", "replace")
        problems = invariants(name, result, text)
        if problems:
            findings.append(Finding("impossible", name, fixture, seed, names,
                                    "; ".join(problems[:3])[:200]))
    return accepted, findings
