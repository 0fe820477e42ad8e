"""collectors.parsers.trafgen against real trafgen output (tests/fixtures/trafgen/CAPTURE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.parsers import trafgen
from kvmnetlab.errors import ParseError
from tests.helpers import TESTS

FIX = TESTS / "fixtures" / "trafgen"


def _number_before(path: Path, suffix: str) -> int:
    line = next(x for x in path.read_text().splitlines() if x.endswith(suffix))
    return int(line.split()[0])


@pytest.mark.parametrize("name", ["rate", "burst"])
def test_totals_match_file(name):
    path = FIX / f"{name}.stdout"
    result = trafgen.parse(path)
    assert result.tx_packets == _number_before(path, "packets outgoing")
    assert result.tx_bytes == _number_before(path, "bytes outgoing")
    assert result.templates == _number_before(path, "packets to schedule")
    cpu_lines = [x for x in path.read_text().splitlines() if " on CPU" in x]
    assert len(result.per_cpu) == len(cpu_lines)
    for cpu, line in zip(result.per_cpu, cpu_lines, strict=True):
        words = line.split()
        assert cpu["elapsed_us"] == int(words[0]) * 1_000_000 + int(words[2])
        assert cpu["tx_packets"] == int(words[-2].lstrip("("))
    assert result.elapsed_us == max(c["elapsed_us"] for c in result.per_cpu)
    warnings = [x for x in path.read_text().splitlines() if x.startswith("Cannot set")]
    assert len(result.warnings) == len(warnings) > 0
    assert {w["path"].rsplit("/", 1)[0] for w in result.warnings} == {"/proc/sys/net/core"}


def test_command_line_figures():
    """The captures ran with -n 10000 (rate) and -n 200000 (burst) over 60-byte frames."""
    rate = trafgen.parse(FIX / "rate.stdout")
    burst = trafgen.parse(FIX / "burst.stdout")
    assert rate.tx_packets == 10000 and rate.tx_bytes == 60 * 10000
    assert burst.tx_packets == 200000 and burst.tx_bytes == 60 * 200000
    assert len(rate.per_cpu) == 1  # a rate (-b) runs one sender
    assert len(burst.per_cpu) >= 1


@pytest.mark.parametrize("name", ["rate", "burst"])
def test_cut_before_summary(tmp_path, name):
    lines = (FIX / f"{name}.stdout").read_text().splitlines(keepends=True)
    first_summary = next(i for i, x in enumerate(lines) if "packets outgoing" in x)
    cut = tmp_path / "cut.stdout"
    cut.write_text("".join(lines[:first_summary]))
    with pytest.raises(ParseError, match="truncated") as err:
        trafgen.parse(cut)
    assert err.value.line == first_summary
    assert str(cut) in str(err.value)


def test_lost_cpu_line(tmp_path):
    lines = (FIX / "burst.stdout").read_text().splitlines(keepends=True)
    cpu_lines = [i for i, x in enumerate(lines) if " on CPU" in x]
    if len(cpu_lines) < 2:
        pytest.skip("burst capture ran on one CPU")
    del lines[cpu_lines[-1]]
    cut = tmp_path / "cut.stdout"
    cut.write_text("".join(lines))
    with pytest.raises(ParseError, match="add up") as err:
        trafgen.parse(cut)
    assert err.value.line == next(i for i, x in enumerate(lines, 1) if "packets outgoing" in x)


def test_cut_mid_line(tmp_path):
    text = (FIX / "rate.stdout").read_text()
    cut = tmp_path / "cut.stdout"
    cut.write_text(text[:-10])
    with pytest.raises(ParseError) as err:
        trafgen.parse(cut)
    assert err.value.line == len(cut.read_text().splitlines())


def test_garbage_line(tmp_path):
    lines = (FIX / "rate.stdout").read_text().splitlines()
    lines.insert(2, "Cannot access udp60.cfg: No such file or directory!")
    bad = tmp_path / "bad.stdout"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        trafgen.parse(bad)
    assert err.value.line == 3


def test_stderr_is_empty():
    # trafgen writes everything to stdout; the collector still keeps stderr
    assert (FIX / "rate.stderr").read_text() == ""
    with pytest.raises(ParseError, match="empty"):
        trafgen.parse(FIX / "rate.stderr")
