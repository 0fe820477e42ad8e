"""pfsend / pfcount parsers on real output of PF_RING 8.8.0 in two embedded-lab guests
(tests/fixtures/pfring/CAPTURE.md says how each file was captured). Expected values are
read from the fixture text independently of the parser, and every malformed variant is
derived from a real file."""

from __future__ import annotations

import pytest

from collectors.parsers import pfcount, pfsend
from kvmnetlab.errors import ParseError
from tests.helpers import TESTS

FIX = TESTS / "fixtures" / "pfring"
PFSEND = FIX / "pfsend_guest.stdout"
PFSEND_MAX = FIX / "pfsend_guest_maxrate.stdout"
PFCOUNT = FIX / "pfcount_guest.stderr"
PFCOUNT_STALLED = FIX / "pfcount_guest_stalled.stderr"
PFCOUNT_DROPS = FIX / "pfcount_guest_drops.stderr"


def _bracketed(line: str) -> list[str]:
    """'[a b][c d]' -> ['a b', 'c d'] (text between brackets)."""
    return [part.split("]")[0] for part in line.split("[")[1:]]


def _plain(number: str) -> float:
    return float(number.replace("'", ""))


@pytest.mark.parametrize(("path", "sent", "rate_set"), [
    (PFSEND, 20000, 10000.0), (PFSEND_MAX, 100000, None)], ids=["paced", "maxrate"])
def test_pfsend_values(path, sent, rate_set):
    result = pfsend.parse(path)
    lines = path.read_text().splitlines()
    tx = [x for x in lines if x.startswith("TX rate:")]
    assert result.sent_packets == sent
    assert len(result.rates) == len(tx) >= 2
    for rate, line in zip(result.rates, tx, strict=True):
        cur, avg, total = _bracketed(line)
        assert rate["current_pps"] == _plain(cur.split()[1])
        assert rate["average_pps"] == _plain(avg.split()[1])
        assert rate["average_line_gbps"] == _plain(avg.split()[2].split("/")[1])
        assert rate["total_packets"] == _plain(total.split()[1])
    assert result.rates[-1]["total_packets"] == sent
    assert result.interface == "data0"
    assert result.pfring_version == "8.8.0"
    assert result.rate_set_pps == rate_set


def test_pfsend_paced_run_reports_the_cpu_frequency_it_paces_with():
    result = pfsend.parse(PFSEND)
    line = next(x for x in PFSEND.read_text().splitlines() if x.startswith("Estimated CPU"))
    assert result.cpu_freq_hz == int(line.split()[3])
    # paced at 10 kpps: every reported average lies within 15 % of the set rate
    assert all(abs(r["average_pps"] / 10000 - 1) < 0.15 for r in result.rates)


def test_pfsend_truncated(tmp_path):
    lines = PFSEND.read_text().splitlines()
    cut = tmp_path / "pfsend.stdout"
    cut.write_text("\n".join(lines[:-1]) + "\n")  # no 'Sent N packets'
    with pytest.raises(ParseError, match="truncated") as err:
        pfsend.parse(cut)
    assert err.value.line == len(lines) - 1
    assert str(cut) in str(err.value)


def test_pfsend_total_mismatch(tmp_path):
    text = PFSEND.read_text().replace("Sent 20000 packets", "Sent 19999 packets")
    bad = tmp_path / "pfsend.stdout"
    bad.write_text(text)
    with pytest.raises(ParseError, match="last TX rate total") as err:
        pfsend.parse(bad)
    assert err.value.line == len(text.splitlines())


def test_pfsend_open_error(tmp_path):
    # the first real line, then the error pfsend prints when pf_ring is not loaded
    lines = [PFSEND.read_text().splitlines()[0],
             "pfring_open error [No such device] (pf_ring not loaded or interface data0 is down ?)"]
    bad = tmp_path / "pfsend.stdout"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError, match="pf_ring not loaded") as err:
        pfsend.parse(bad)
    assert err.value.line == 2


def test_pfsend_garbage(tmp_path):
    lines = PFSEND.read_text().splitlines()
    lines.insert(
        4, "TX rate: [current 1'2'3 pps/0.01 Gbps][average 1.00 pps/0.01 Gbps][total 1 pkts]")
    bad = tmp_path / "pfsend.stdout"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        pfsend.parse(bad)
    assert err.value.line == 5


@pytest.mark.parametrize("path", [PFCOUNT, PFCOUNT_STALLED, PFCOUNT_DROPS], ids=lambda p: p.name)
def test_pfcount_last_block_is_final(path):
    result = pfcount.parse(path)
    lines = path.read_text().splitlines()
    absolute = [i for i, x in enumerate(lines) if x.startswith("Absolute Stats:")]
    assert len(result.blocks) == len(absolute) > 2
    last = absolute[-1]
    total, dropped, pct = _bracketed(lines[last])
    rcvd, nbytes, *rates = _bracketed(lines[last + 1])
    final = result.final
    assert final["line"] == last + 1
    assert final["total_packets"] == _plain(total.split()[0])
    assert final["dropped_packets"] == _plain(dropped.split()[0])
    assert final["dropped_pct"] == float(pct.split("%")[0])
    assert final["received_packets"] == _plain(rcvd.split()[0])
    assert final["received_line_bytes"] == _plain(nbytes.split()[0])
    assert final["average_pps"] == _plain(rates[0].split()[0])
    assert result.interrupted is True  # both runs ended on SIGINT: 'Leaving...'


def test_pfcount_counted_every_frame_pfsend_sent():
    final = pfcount.parse(PFCOUNT).final
    assert final["received_packets"] == pfsend.parse(PFSEND).sent_packets == 20000
    assert final["dropped_packets"] == 0


def test_pfcount_ring_drops():
    # 256 ring slots and pfcount stopped for 8 s while 5 kpps arrived: the ring overflowed
    result = pfcount.parse(PFCOUNT_DROPS)
    final = result.final
    assert final["dropped_packets"] == 37045 and final["received_packets"] == 62955
    assert final["total_packets"] == final["received_packets"] + final["dropped_packets"]
    assert final["dropped_pct"] == pytest.approx(
        100 * final["dropped_packets"] / final["total_packets"], abs=0.05)
    drops = [b["dropped_packets"] for b in result.blocks]
    assert drops[0] == 0 and drops == sorted(drops)  # cumulative: never goes back


def test_pfcount_first_block_has_no_rates():
    first = pfcount.parse(PFCOUNT).blocks[0]
    assert first["average_pps"] is None
    assert "interval_packets" not in first


def test_pfcount_line_bytes_include_24_per_frame():
    for path in (PFCOUNT, PFCOUNT_STALLED, PFCOUNT_DROPS):  # 60-byte frames
        final = pfcount.parse(path).final
        assert final["received_line_bytes"] == final["received_packets"] * (60 + 24)


def test_pfcount_stalled_reader_shows_idle_intervals_and_catches_up():
    blocks = pfcount.parse(PFCOUNT_STALLED).blocks
    intervals = [b["interval_packets"] for b in blocks if "interval_packets" in b]
    assert 0 in intervals  # seconds with nothing read
    totals = [b["total_packets"] for b in blocks]
    assert totals == sorted(totals) and totals[-1] == 100000


def test_pfcount_truncated_block(tmp_path):
    lines = PFCOUNT.read_text().splitlines()
    last_abs = max(i for i, x in enumerate(lines) if x.startswith("Absolute Stats:"))
    cut = tmp_path / "pfcount.stderr"
    cut.write_text("\n".join(lines[: last_abs + 1]) + "\n")
    with pytest.raises(ParseError, match="truncated") as err:
        pfcount.parse(cut)
    assert err.value.line == last_abs + 1


@pytest.mark.parametrize(("path", "dropped", "edited"), [
    (PFCOUNT, "[0 pkts dropped]", "[7 pkts dropped]"),
    (PFCOUNT_DROPS, "[37'045 pkts dropped]", "[37'046 pkts dropped]"),
], ids=["no-drops", "drops"])
def test_pfcount_inconsistent_counts(tmp_path, path, dropped, edited):
    lines = path.read_text().splitlines()
    last_abs = max(i for i, x in enumerate(lines) if x.startswith("Absolute Stats:"))
    assert dropped in lines[last_abs]
    lines[last_abs] = lines[last_abs].replace(dropped, edited)
    bad = tmp_path / "pfcount.stderr"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError, match="pkts total") as err:
        pfcount.parse(bad)
    assert err.value.line == last_abs + 2


def test_pfcount_garbage(tmp_path):
    lines = PFCOUNT.read_text().splitlines()
    lines.insert(6, "Absolute Stats: [12,345 pkts total][0 pkts dropped][0.0% dropped]")
    bad = tmp_path / "pfcount.stderr"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        pfcount.parse(bad)
    assert err.value.line == 7


def test_pfcount_empty(tmp_path):
    empty = tmp_path / "pfcount.stderr"
    empty.write_text("\n")
    with pytest.raises(ParseError, match="empty"):
        pfcount.parse(empty)


def _leaving(lines: list[str]) -> int:
    """0-based index of the 'Leaving...' line (exactly one in every real capture)."""
    [at] = [i for i, x in enumerate(lines) if x == "Leaving..."]
    return at


@pytest.mark.parametrize(("cut", "words"), [
    # the block before SIGINT is complete, but pfcount never said Leaving...
    (lambda at: at, "no 'Leaving...': pfcount was not stopped by SIGINT, or its output was cut"),
    (lambda at: at - 1, "no 'Leaving...'"),  # without the blank line after that block
    # Leaving... printed, the final block not yet
    (lambda at: at + 1, "cut short: no final statistics block after 'Leaving...'"),
    # inside the final block: after its opening rule, its Absolute Stats, its closing rule
    (lambda at: at + 2, "truncated inside a stats block (the final one, after 'Leaving...')"),
    (lambda at: at + 3, "truncated inside a stats block (the final one"),
    (lambda at: at + 5, "truncated inside a stats block (the final one"),
    # inside an earlier block
    (lambda at: at - 3, "truncated inside a stats block; last line"),
], ids=["before-leaving", "before-blank", "after-leaving", "after-rule", "after-absolute",
        "after-closing-rule", "earlier-block"])
@pytest.mark.parametrize("path", [PFCOUNT, PFCOUNT_STALLED, PFCOUNT_DROPS], ids=lambda p: p.name)
def test_pfcount_cut_before_its_final_block(tmp_path, path, cut, words):
    lines = path.read_text().splitlines()
    keep = cut(_leaving(lines))
    variant = tmp_path / "pfcount.stderr"
    variant.write_text("\n".join(lines[:keep]) + "\n")
    with pytest.raises(ParseError) as err:
        pfcount.parse(variant)
    assert words in str(err.value)
    assert err.value.line == keep  # the last line of what is left
    assert str(variant) in str(err.value)


def test_pfcount_final_block_complete_without_its_trailing_blank(tmp_path):
    lines = PFCOUNT.read_text().splitlines()
    assert lines[-1] == ""
    variant = tmp_path / "pfcount.stderr"
    variant.write_text("\n".join(lines[:-1]) + "\n")
    assert pfcount.parse(variant).final == pfcount.parse(PFCOUNT).final


def test_pfcount_cut_output_is_read_when_the_final_block_is_not_required(tmp_path):
    lines = PFCOUNT.read_text().splitlines()
    at = _leaving(lines)
    variant = tmp_path / "pfcount.stderr"
    variant.write_text("\n".join(lines[:at]) + "\n")
    result = pfcount.parse(variant, require_final=False)
    assert result.interrupted is False
    assert result.final == pfcount.parse(PFCOUNT).blocks[-2]


def test_pfcount_second_leaving(tmp_path):
    lines = PFCOUNT.read_text().splitlines()
    at = _leaving(lines)
    lines.insert(at + 1, "Leaving...")
    variant = tmp_path / "pfcount.stderr"
    variant.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError, match=r"a second 'Leaving\.\.\.'") as err:
        pfcount.parse(variant)
    assert err.value.line == at + 2
