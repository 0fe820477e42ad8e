"""collectors.parsers.ping against real ping captures (tests/fixtures/ping/CAPTURE.md).

Expected values are recomputed here from the fixture text with plain string
operations, independently of the parser's regular expressions.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collectors.parsers import ping
from kvmnetlab.errors import ParseError, UnreadableError
from tests.helpers import TESTS

FIX = TESTS / "fixtures" / "ping"


def _lines(name: str) -> list[str]:
    return (FIX / name).read_text().splitlines()


def _seq(line: str) -> int:
    return int(line.split("icmp_seq=")[1].split()[0])


def _summary_numbers(name: str) -> dict[str, float]:
    """'N packets transmitted, M received, +D duplicates, L% packet loss, time Tms'."""
    line = next(raw for raw in _lines(name) if "packets transmitted" in raw)
    out: dict[str, float] = {}
    for part in line.split(", "):
        words = part.split()
        if part.endswith("packets transmitted"):
            out["transmitted"] = int(words[0])
        elif part.endswith("received"):
            out["received"] = int(words[0])
        elif part.endswith("duplicates") or part.endswith("errors"):
            out[words[1]] = int(words[0].lstrip("+"))
        elif part.endswith("packet loss"):
            out["loss_pct"] = float(words[0].rstrip("%"))
        elif part.startswith("time "):
            out["time_ms"] = int(words[1].removesuffix("ms"))
    return out


def _replies(name: str) -> list[str]:
    return [raw for raw in _lines(name) if " bytes from " in raw]


def _rtt_line_us(name: str) -> list[float]:
    line = next(raw for raw in _lines(name) if raw.startswith("rtt min/avg/max/mdev"))
    return [float(v) * 1000 for v in line.split(" = ")[1].split()[0].split("/")]


def test_clean_probes_match_file():
    result = ping.parse(FIX / "clean.txt")
    expected = _summary_numbers("clean.txt")
    replies = _replies("clean.txt")
    assert len(replies) == expected["transmitted"] == expected["received"]
    for key, value in expected.items():
        assert result.summary[key] == value, key
    assert result.host == "198.19.250.2"
    assert result.payload_bytes == 56

    assert [p["seq"] for p in result.probes] == [_seq(r) for r in replies]
    for probe, raw in zip(result.probes, replies, strict=True):
        assert probe["answered"] is True
        assert probe["duplicates"] == 0
        ms = float(raw.split("time=")[1].split()[0])
        assert probe["rtt_us"] == pytest.approx(ms * 1000, abs=1e-9)
        assert probe["timestamp_s"] == float(raw[1 : raw.index("]")])

    rtts = [p["rtt_us"] for p in result.probes]
    rmin, ravg, rmax, rmdev = _rtt_line_us("clean.txt")
    assert result.summary["rtt_min_us"] == pytest.approx(rmin)
    assert result.summary["rtt_max_us"] == pytest.approx(rmax)
    assert result.summary["rtt_mdev_us"] == pytest.approx(rmdev)
    # ping's own min/max come from the same samples it printed
    assert min(rtts) == pytest.approx(rmin)
    assert max(rtts) == pytest.approx(rmax)
    # its avg is computed from µs-resolution times, ours from the printed values
    assert sum(rtts) / len(rtts) == pytest.approx(ravg, abs=1.0)


def test_unanswered_probes_present_with_answered_false():
    result = ping.parse(FIX / "unanswered.txt")
    expected = _summary_numbers("unanswered.txt")
    no_answer = {_seq(r) for r in _lines("unanswered.txt") if "no answer yet" in r}
    answered = {_seq(r) for r in _replies("unanswered.txt")}
    assert no_answer, "fixture must contain 'no answer yet' lines"

    assert len(result.probes) == expected["transmitted"]
    assert {p["seq"] for p in result.probes if not p["answered"]} == no_answer - answered
    assert {p["seq"] for p in result.probes if p["answered"]} == answered
    for p in result.probes:
        assert (p["rtt_us"] is None) == (not p["answered"])
    assert result.summary["received"] == expected["received"] == len(answered)
    tx, rx = expected["transmitted"], expected["received"]
    assert result.summary["loss_pct"] == pytest.approx(100 * (tx - rx) / tx, abs=1e-3)


def test_unreachable_counts_errors_and_has_no_rtt():
    result = ping.parse(FIX / "unreachable.txt")
    expected = _summary_numbers("unreachable.txt")
    from_lines = [r for r in _lines("unreachable.txt") if "] From " in r]
    assert result.summary["received"] == expected["received"] == 0
    assert result.summary["errors"] == expected["errors"] == len(from_lines)
    assert "rtt_avg_us" not in result.summary
    assert result.summary["pipe"] == int(_lines("unreachable.txt")[-1].split()[1])
    assert [e["seq"] for e in result.errors] == [_seq(r) for r in from_lines]
    assert {e["message"] for e in result.errors} == {"Destination Host Unreachable"}
    assert len(result.probes) == expected["transmitted"]
    assert not any(p["answered"] for p in result.probes)


def test_dup_counts_and_first_reply_rtt():
    result = ping.parse(FIX / "dup.txt")
    expected = _summary_numbers("dup.txt")
    replies = _replies("dup.txt")
    dups = [r for r in replies if r.endswith("(DUP!)")]
    assert dups, "fixture must contain (DUP!) replies"
    assert result.summary["duplicates"] == expected["duplicates"] == len(dups)
    assert sum(p["duplicates"] for p in result.probes) == len(dups)

    first: dict[int, float] = {}
    for r in replies:
        first.setdefault(_seq(r), float(r.split("time=")[1].split()[0]) * 1000)
    for p in result.probes:
        assert p["rtt_us"] == pytest.approx(first[p["seq"]])
        assert p["duplicates"] == sum(1 for d in dups if _seq(d) == p["seq"])


def test_truncated_names_file_and_last_line():
    path = FIX / "truncated.txt"
    lines = path.read_text().splitlines()
    with pytest.raises(ParseError) as err:
        ping.parse(path)
    assert err.value.path == str(path)
    assert err.value.line == len(lines)
    assert lines[-1] in str(err.value)
    assert str(path) in str(err.value)


def test_summary_without_rtt_line_is_truncated(tmp_path):
    lines = _lines("clean.txt")
    cut = tmp_path / "cut.txt"
    cut.write_text("\n".join(lines[:-1]) + "\n")  # drop 'rtt min/avg/max/mdev'
    with pytest.raises(ParseError, match="rtt min/avg/max/mdev") as err:
        ping.parse(cut)
    assert err.value.path == str(cut)


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ParseError, match="empty"):
        ping.parse(empty)


@pytest.mark.parametrize("garbage", ["garbage", "[1795685627.5] 64 bytes from x: icmp_seq=", "%%%"])
def test_garbage_line_names_line(tmp_path, garbage):
    lines = _lines("clean.txt")
    lines.insert(49, garbage)  # becomes line 50
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        ping.parse(bad)
    assert err.value.line == 50
    assert f"{bad}:50" in str(err.value)


def test_lost_reply_line_is_detected(tmp_path):
    lines = _lines("clean.txt")
    del lines[10]  # a reply line vanishes; the summary still counts it
    bad = tmp_path / "lost.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError, match="reply lines"):
        ping.parse(bad)


# Edited copies of real captures, for forms netem-less namespaces cannot produce.


def _edit_reply(tmp_path, index: int, old: str, new: str) -> tuple[Path, int]:
    lines = _lines("clean.txt")
    reply_idx = [i for i, r in enumerate(lines) if " bytes from " in r][index]
    assert old in lines[reply_idx]
    lines[reply_idx] = lines[reply_idx].replace(old, new)
    out = tmp_path / "edited.txt"
    out.write_text("\n".join(lines) + "\n")
    return out, _seq(lines[reply_idx])


@pytest.mark.parametrize(
    ("printed", "expected_us"),
    [("time=1.25 ms", 1250.0), ("time=12.5 ms", 12500.0), ("time=123 ms", 123000.0)],
)
def test_ms_with_fewer_decimals(tmp_path, printed, expected_us):
    line = next(r for r in _replies("clean.txt")[3:4])
    old = "time=" + line.split("time=")[1].split()[0] + " ms"
    edited, seq = _edit_reply(tmp_path, 3, old, printed)
    # the summary's max (printed to the µs) is that reply's time
    rtt_line = "rtt min/avg/max/mdev = 0.012/0.037/0.055/0.006 ms"
    assert rtt_line in edited.read_text()
    edited.write_text(edited.read_text().replace(
        rtt_line, rtt_line.replace("/0.055/", f"/{expected_us / 1000:.3f}/")))
    result = ping.parse(edited)
    assert result.probes[seq - 1]["rtt_us"] == expected_us


def test_different_address_still_answers(tmp_path):
    edited, seq = _edit_reply(tmp_path, 5, " ms", " ms (DIFFERENT ADDRESS!)")
    probe = ping.parse(edited).probes[seq - 1]
    assert probe["answered"] is True
    assert probe["rtt_us"] is not None


def test_bad_checksum_must_be_counted_as_corrupted(tmp_path):
    edited, seq = _edit_reply(tmp_path, 5, " ms", " ms (BAD CHECKSUM!)")
    # the summary of the real file does not count it: inconsistent
    with pytest.raises(ParseError, match="BAD CHECKSUM"):
        ping.parse(edited)
    text = edited.read_text().replace("200 received, 0% packet loss",
                                      "199 received, +1 corrupted, 0.5% packet loss")
    edited.write_text(text)
    result = ping.parse(edited)
    assert result.summary["corrupted"] == 1
    assert result.probes[seq - 1]["answered"] is False


def test_unknown_marker_names_line(tmp_path):
    edited, _ = _edit_reply(tmp_path, 2, " ms", " ms (WEIRD!)")
    lineno = next(i for i, r in enumerate(edited.read_text().splitlines(), start=1) if "WEIRD" in r)
    with pytest.raises(ParseError) as err:
        ping.parse(edited)
    assert err.value.line == lineno


def test_from_line_with_colon(tmp_path):
    """Edited copy: iputils prints "From <addr>: icmp_seq=N ..." for some ICMP errors."""
    text = (FIX / "unreachable.txt").read_text()
    edited = tmp_path / "edited.txt"
    edited.write_text(text.replace("From 198.19.250.1 icmp_seq=2", "From 198.19.250.1: icmp_seq=2"))
    result = ping.parse(edited)
    assert [e["seq"] for e in result.errors] == [
        e["seq"] for e in ping.parse(FIX / "unreachable.txt").errors
    ]
    assert result.errors[1]["source"] == "198.19.250.1"


# A reply without time= among timed ones (variants of clean.txt).


def _without_time(line: str) -> str:
    return line.split(" time=")[0]


@pytest.mark.parametrize("index", [0, 57, 199], ids=["first", "middle", "last"])
def test_reply_without_time_among_timed_replies(tmp_path, index):
    lines = _lines("clean.txt")
    at = [i for i, r in enumerate(lines) if " bytes from " in r][index]
    lines[at] = _without_time(lines[at])
    bad = tmp_path / "untimed.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError, match="reply without time= while other replies carry times") \
            as err:
        ping.parse(bad)
    assert err.value.line == at + 1
    assert f"{bad}:{at + 1}:" in str(err.value)


def test_no_reply_timed_is_accepted_as_a_payload_below_16_bytes(tmp_path):
    """Variant of clean.txt as `ping -s 8` prints it: no time= on any reply, no rtt line."""
    lines = _lines("clean.txt")
    assert lines[0].endswith(" 56(84) bytes of data.")
    lines[0] = lines[0].replace(" 56(84) ", " 8(36) ")
    lines = [_without_time(r).replace("] 64 bytes", "] 16 bytes") if " bytes from " in r else r
             for r in lines if not r.startswith("rtt ")]
    quiet = tmp_path / "small.txt"
    quiet.write_text("\n".join(lines) + "\n")
    result = ping.parse(quiet)
    assert result.payload_bytes == 8
    assert all(p["answered"] and p["rtt_us"] is None for p in result.probes)
    assert len(result.probes) == 200


# IPv6: iputils' -6 output, derived from the real IPv4 captures (no IPv6 traffic was sent).

V4_TARGET, V6_TARGET = "198.19.250.2", "2001:db8::2"


def _as_ipv6(name: str, target: str, target6: str) -> list[str]:
    """``name`` rewritten the way iputils 20221126 prints an IPv6 run: header
    'PING %s(%s) %zu data bytes', every address replaced by one of 2001:db8::/32."""
    lines = _lines(name)
    assert lines[0] == f"PING {target} ({target}) 56(84) bytes of data."
    lines[0] = f"PING {target6}({target6}) 56 data bytes"
    return [line.replace(target, target6) for line in lines]


def test_ipv6_output_derived_from_clean(tmp_path):
    """Derived from clean.txt (IPv4): same probes, times and summary, IPv6 addresses."""
    v6 = tmp_path / "clean6.txt"
    lines = _as_ipv6("clean.txt", V4_TARGET, V6_TARGET)
    assert f"64 bytes from {V6_TARGET}: icmp_seq=1 ttl=64 time=" in lines[1]
    v6.write_text("\n".join(lines) + "\n")
    result, v4 = ping.parse(v6), ping.parse(FIX / "clean.txt")
    assert (result.host, result.address, result.payload_bytes) == (V6_TARGET, V6_TARGET, 56)
    assert result.probes == v4.probes
    assert result.summary == v4.summary


def test_ipv6_header_naming_its_source(tmp_path):
    """Derived from clean.txt: 'PING %s(%s) from %s %s: %zu data bytes' (-I)."""
    lines = _as_ipv6("clean.txt", V4_TARGET, V6_TARGET)
    lines[0] = f"PING {V6_TARGET}({V6_TARGET}) from 2001:db8::1 kvfx-va: 56 data bytes"
    v6 = tmp_path / "clean6.txt"
    v6.write_text("\n".join(lines) + "\n")
    assert ping.parse(v6).address == V6_TARGET


def test_ipv6_unreachable_derived_from_unreachable(tmp_path):
    """Derived from unreachable.txt (IPv4): the router's From lines as iputils prints an
    ICMPv6 'Address unreachable', with IPv6 addresses."""
    lines = _as_ipv6("unreachable.txt", "198.19.250.9", "2001:db8::9")
    lines = [line.replace("From 198.19.250.1 ", "From 2001:db8::1 ").replace(
        "Destination Host Unreachable", "Destination unreachable: Address unreachable")
        for line in lines]
    v6 = tmp_path / "unreachable6.txt"
    v6.write_text("\n".join(lines) + "\n")
    result, v4 = ping.parse(v6), ping.parse(FIX / "unreachable.txt")
    assert [e["seq"] for e in result.errors] == [e["seq"] for e in v4.errors]
    assert {e["source"] for e in result.errors} == {"2001:db8::1"}
    assert {e["message"] for e in result.errors} == {
        "Destination unreachable: Address unreachable"}
    assert result.summary == v4.summary


# Complete output of another tool: the first line that is not iputils' is named.


@pytest.mark.parametrize(("path", "lineno"), [
    (FIX.parent / "fping" / "clean.stdout", 1),
    (FIX.parent / "fping" / "clean.stderr", 2),  # after a blank line: fping's summary
    (FIX / "busybox.txt", 1),  # its header already differs: 'PING a (a): 56 data bytes'
], ids=["fping-stdout", "fping-stderr", "busybox"])
def test_another_tools_output_names_its_first_unexpected_line(path, lineno):
    first = path.read_text().splitlines()[lineno - 1]
    with pytest.raises(ParseError) as err:
        ping.parse(path)
    assert err.value.line == lineno
    assert repr(first) in str(err.value)
    assert "(not iputils ping output?)" in str(err.value)
    assert "truncated" not in str(err.value)


def test_busybox_reply_is_named_past_an_iputils_header(tmp_path):
    """Variant of busybox.txt with an iputils header: the first busybox reply is named."""
    lines = (FIX / "busybox.txt").read_text().splitlines()
    lines[0] = "PING 198.18.250.2 (198.18.250.2) 56(84) bytes of data."
    variant = tmp_path / "busybox.txt"
    variant.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        ping.parse(variant)
    assert err.value.line == 2
    assert err.value.reason == (f"unrecognised line 2: {lines[1]!r} (not iputils ping output?)")


def test_a_garbage_line_in_iputils_output_gets_no_other_tool_hint(tmp_path):
    lines = _lines("clean.txt")
    lines.insert(9, "garbage")
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        ping.parse(bad)
    assert err.value.reason == "unrecognised line 10: 'garbage'"


def test_cut_at_a_line_end_is_truncated(tmp_path):
    """Variant of clean.txt cut after a whole reply line: every line is ping's."""
    lines = _lines("clean.txt")[:120]
    cut = tmp_path / "cut.txt"
    cut.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError, match="truncated: no 'packets transmitted' summary") as err:
        ping.parse(cut)
    assert err.value.line == 120


@pytest.mark.parametrize("make", [
    lambda p: p.mkdir(),
    lambda p: os.mkfifo(p),
    lambda p: p.symlink_to(p.parent / "gone.txt"),
], ids=["directory", "fifo", "dangling-symlink"])
def test_unreadable_file_is_a_parse_error_naming_it(tmp_path, make):
    path = tmp_path / "ping.txt"
    make(path)
    with pytest.raises(UnreadableError, match="cannot read") as err:
        ping.parse(path)
    assert err.value.path == str(path) and err.value.line is None
    assert isinstance(err.value, ParseError)
