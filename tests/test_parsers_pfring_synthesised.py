"""pfsend / pfcount parsers on fixtures SYNTHESISED FROM THE REFERENCE FORMAT, NOT REAL
CAPTURE (tests/fixtures/pfring/CAPTURE.md). Replace the fixtures with real output when a
lab runs PF_RING; every test name here says ``synthesised`` until then."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.errors import ParseError
from collectors.parsers import pfcount, pfsend

FIX = Path(__file__).parent / "fixtures" / "pfring"
PFSEND = FIX / "pfsend_SYNTHESISED.stdout"
PFCOUNT = FIX / "pfcount_SYNTHESISED.stderr"
PFCOUNT_DROPS = FIX / "pfcount_drops_SYNTHESISED.stderr"


def _bracketed(line: str) -> list[str]:
    """'[a b][c d]' -> ['a b', 'c d'] (text between brackets)."""
    return [part.split("]")[0] for part in line.split("[")[1:]]


def _plain(number: str) -> float:
    return float(number.replace("'", ""))


def test_synthesised_pfsend_values():
    result = pfsend.parse(PFSEND)
    lines = PFSEND.read_text().splitlines()
    sent = int(next(x for x in lines if x.startswith("Sent ")).split()[1])
    tx = [x for x in lines if x.startswith("TX rate:")]
    assert result.sent_packets == sent
    assert len(result.rates) == len(tx)
    for rate, line in zip(result.rates, tx, strict=True):
        cur, avg, total = _bracketed(line)
        assert rate["current_pps"] == _plain(cur.split()[1])
        assert rate["average_line_gbps"] == _plain(avg.split()[2].split("/")[1])
        assert rate["total_packets"] == _plain(total.split()[1])
    assert result.rates[-1]["total_packets"] == sent
    assert result.interface == "eth1"
    assert result.pfring_version == "8.8.0"
    assert result.rate_set_pps == 20000.0


def test_synthesised_pfsend_truncated(tmp_path):
    lines = PFSEND.read_text().splitlines()
    cut = tmp_path / "pfsend.stdout"
    cut.write_text("\n".join(lines[:-1]) + "\n")  # no 'Sent N packets'
    with pytest.raises(ParseError, match="truncated") as err:
        pfsend.parse(cut)
    assert err.value.line == len(lines) - 1
    assert str(cut) in str(err.value)


def test_synthesised_pfsend_total_mismatch(tmp_path):
    text = PFSEND.read_text().replace("Sent 60000 packets", "Sent 59999 packets")
    bad = tmp_path / "pfsend.stdout"
    bad.write_text(text)
    with pytest.raises(ParseError, match="last TX rate total") as err:
        pfsend.parse(bad)
    assert err.value.line == len(text.splitlines())


def test_synthesised_pfsend_open_error(tmp_path):
    bad = tmp_path / "pfsend.stdout"
    bad.write_text(
        "Sending packets on eth1\n"
        "pfring_open error [No such device] (pf_ring not loaded or interface eth1 is down ?)\n"
    )
    with pytest.raises(ParseError, match="pf_ring not loaded") as err:
        pfsend.parse(bad)
    assert err.value.line == 2


def test_synthesised_pfsend_garbage(tmp_path):
    lines = PFSEND.read_text().splitlines()
    lines.insert(
        5, "TX rate: [current 1'2'3 pps/0.01 Gbps][average 1.00 pps/0.01 Gbps][total 1 pkts]"
    )
    bad = tmp_path / "pfsend.stdout"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        pfsend.parse(bad)
    assert err.value.line == 6


@pytest.mark.parametrize("path", [PFCOUNT, PFCOUNT_DROPS], ids=lambda p: p.name)
def test_synthesised_pfcount_last_block_is_final(path):
    result = pfcount.parse(path)
    lines = path.read_text().splitlines()
    absolute = [i for i, x in enumerate(lines) if x.startswith("Absolute Stats:")]
    assert len(result.blocks) == len(absolute)
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
    # and the last block is not the first one
    assert result.blocks[0]["total_packets"] < final["total_packets"]


def test_synthesised_pfcount_first_block_has_no_rates():
    first = pfcount.parse(PFCOUNT).blocks[0]
    assert first["average_pps"] is None
    assert "interval_packets" not in first
    assert pfcount.parse(PFCOUNT).interrupted is True


def test_synthesised_pfcount_line_bytes_include_24_per_frame():
    final = pfcount.parse(PFCOUNT).final
    assert final["received_line_bytes"] == final["received_packets"] * (60 + 24)


def test_synthesised_pfcount_truncated_block(tmp_path):
    lines = PFCOUNT.read_text().splitlines()
    last_abs = max(i for i, x in enumerate(lines) if x.startswith("Absolute Stats:"))
    cut = tmp_path / "pfcount.stderr"
    cut.write_text("\n".join(lines[: last_abs + 1]) + "\n")
    with pytest.raises(ParseError, match="truncated") as err:
        pfcount.parse(cut)
    assert err.value.line == last_abs + 1


def test_synthesised_pfcount_inconsistent_counts(tmp_path):
    text = PFCOUNT_DROPS.read_text().replace("[24'690 pkts dropped]", "[24'691 pkts dropped]")
    bad = tmp_path / "pfcount.stderr"
    bad.write_text(text)
    with pytest.raises(ParseError, match="pkts total") as err:
        pfcount.parse(bad)
    lines = text.splitlines()
    assert err.value.line == next(i for i, x in enumerate(lines, 1) if "24'691" in x) + 1


def test_synthesised_pfcount_garbage(tmp_path):
    lines = PFCOUNT.read_text().splitlines()
    lines.insert(6, "Absolute Stats: [12,345 pkts total][0 pkts dropped][0.0% dropped]")
    bad = tmp_path / "pfcount.stderr"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError) as err:
        pfcount.parse(bad)
    assert err.value.line == 7


def test_synthesised_pfcount_empty(tmp_path):
    empty = tmp_path / "pfcount.stderr"
    empty.write_text("\n")
    with pytest.raises(ParseError, match="empty"):
        pfcount.parse(empty)
