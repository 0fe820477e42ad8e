"""fping -C and sockperf ping-pong parsers against real captures
(tests/fixtures/fping/CAPTURE.md, tests/fixtures/sockperf/CAPTURE.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from collectors.parsers import fping, sockperf
from kvmnetlab.errors import ParseError
from tests.helpers import TESTS

FPING = TESTS / "fixtures" / "fping"
SOCKPERF = TESTS / "fixtures" / "sockperf"


def _stdout_replies(path: Path) -> dict[str, list[float | None]]:
    """Per host, from the per-probe stdout lines: ms -> µs, None for 'timed out'."""
    out: dict[str, list[float | None]] = {}
    for line in path.read_text().splitlines():
        host, rest = line.split(" : ", 1)
        if "timed out" in rest:
            out.setdefault(host, []).append(None)
        else:
            out.setdefault(host, []).append(float(rest.split(", ")[2].split()[0]) * 1000)
    return out


@pytest.mark.parametrize("name", ["clean", "unreachable"])
def test_fping_summary_matches_per_probe_stdout(name):
    result = fping.parse(FPING / f"{name}.stderr")
    # the stderr summary and the stdout lines are two prints of the same samples
    expected = _stdout_replies(FPING / f"{name}.stdout")
    assert list(result.samples) == list(expected)
    for host, values in expected.items():
        assert result.samples[host] == pytest.approx(values)
    assert len(result.rows()) == sum(len(v) for v in expected.values())


def test_fping_probe_count_and_unreachable():
    clean = fping.parse(FPING / "clean.stderr")
    assert [len(v) for v in clean.samples.values()] == [20]  # fping -C 20
    assert all(v is not None for v in clean.samples["198.19.250.2"])
    result = fping.parse(FPING / "unreachable.stderr")
    assert result.samples["198.19.250.9"] == [None] * 4
    icmp = [x for x in (FPING / "unreachable.stderr").read_text().splitlines() if "ICMP" in x]
    assert len(result.icmp_errors) == len(icmp) > 0
    assert {e["what"] for e in result.icmp_errors} == {"Host Unreachable"}


def test_fping_cut_mid_line(tmp_path):
    text = (FPING / "clean.stderr").read_text()
    cut = tmp_path / "f.stderr"
    cut.write_text(text[:-7])
    with pytest.raises(ParseError) as err:
        fping.parse(cut)
    assert err.value.line == len(cut.read_text().splitlines())


def test_fping_only_icmp_lines_is_truncated(tmp_path):
    lines = (FPING / "unreachable.stderr").read_text().splitlines()
    cut = tmp_path / "f.stderr"
    cut.write_text("\n".join(lines[:4]) + "\n")
    with pytest.raises(ParseError, match="truncated") as err:
        fping.parse(cut)
    assert err.value.line == 4


def test_fping_sample_count_mismatch(tmp_path):
    lines = (FPING / "unreachable.stderr").read_text().splitlines()
    lines[-1] = lines[-1] + " -"
    bad = tmp_path / "f.stderr"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError, match="samples") as err:
        fping.parse(bad)
    assert err.value.line == len(lines)


def test_fping_garbage(tmp_path):
    lines = (FPING / "clean.stderr").read_text().splitlines()
    lines[-1] = lines[-1].replace(" 0.0", " x.0", 1)
    bad = tmp_path / "f.stderr"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError, match="not a sample") as err:
        fping.parse(bad)
    assert err.value.line == len(lines)


# ------------------------------------------------------------------ sockperf


def _clean(path: Path) -> list[str]:
    return [re.sub(r"\x1b\[[0-9;]*m", "", x) for x in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("name", "statistic"), [("pingpong_full_rtt", "rtt"), ("pingpong_latency", "half_rtt")]
)
def test_sockperf_values(name, statistic):
    path = SOCKPERF / f"{name}.stdout"
    result = sockperf.parse(path)
    lines = _clean(path)
    assert result.statistic == statistic
    pct = [x for x in lines if "---> percentile" in x]
    assert [p["percentile"] for p in result.percentiles] == [float(x.split()[3]) for x in pct]
    assert [p["value_us"] for p in result.percentiles] == [float(x.split()[-1]) for x in pct]
    assert result.max_us == float(next(x for x in lines if "<MAX>" in x).split()[-1])
    assert result.min_us == float(next(x for x in lines if "<MIN>" in x).split()[-1])
    assert result.max_us >= result.percentiles[0]["value_us"]
    assert result.min_us <= result.percentiles[-1]["value_us"]
    summary = next(x for x in lines if "Summary:" in x)
    assert result.avg_us == float(summary.split()[-2])
    valid = next(x for x in lines if "[Valid Duration]" in x)
    assert result.valid_received_messages == int(valid.rsplit("=", 1)[1])
    observations = next(x for x in lines if "observations;" in x)
    assert result.observations == int(observations.split()[2])
    # sockperf drops the first 400 ms and the last 50 ms of the run
    assert result.warmup_ms == 400
    assert result.valid_run_time_s == pytest.approx(result.run_time_s - 0.45, abs=0.01)


def test_sockperf_full_rtt_median_is_about_twice_half_rtt():
    """Two runs on the same veth pair: RTT median about 2x the half-RTT median."""
    rtt = sockperf.parse(SOCKPERF / "pingpong_full_rtt.stdout")
    half = sockperf.parse(SOCKPERF / "pingpong_latency.stdout")
    p50 = {
        r.statistic: next(p for p in r.percentiles if p["percentile"] == 50.0) for r in (rtt, half)
    }
    assert 1.2 < p50["rtt"]["value_us"] / p50["half_rtt"]["value_us"] < 3.5


def test_sockperf_truncated(tmp_path):
    lines = (SOCKPERF / "pingpong_full_rtt.stdout").read_text().splitlines()
    cut = tmp_path / "s.stdout"
    cut.write_text("\n".join(lines[:-1]) + "\n")  # no <MIN> line
    with pytest.raises(ParseError, match="truncated") as err:
        sockperf.parse(cut)
    assert err.value.line == len(lines) - 1
    assert str(cut) in str(err.value)


def test_sockperf_garbage(tmp_path):
    lines = (SOCKPERF / "pingpong_full_rtt.stdout").read_text().splitlines()
    idx = next(i for i, x in enumerate(lines) if "percentile 50.000" in x)
    lines[idx] = lines[idx].replace("percentile 50.000 =", "percentile 50.000 ~")
    bad = tmp_path / "s.stdout"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        sockperf.parse(bad)
    assert err.value.line == idx + 1


def test_sockperf_server_output_is_not_a_client_report():
    with pytest.raises(ParseError):
        sockperf.parse(SOCKPERF / "server.stdout")
