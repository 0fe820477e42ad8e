"""pfcount parser on the one fixture still SYNTHESISED FROM THE REFERENCE FORMAT, NOT REAL
CAPTURE (tests/fixtures/pfring/CAPTURE.md): a run that dropped frames in the ring. The real
captures are tested in test_parsers_pfring.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.errors import ParseError
from collectors.parsers import pfcount

FIX = Path(__file__).parent / "fixtures" / "pfring"
PFCOUNT_DROPS = FIX / "pfcount_drops_SYNTHESISED.stderr"


def test_synthesised_pfcount_drops_final_block():
    final = pfcount.parse(PFCOUNT_DROPS).final
    assert final["dropped_packets"] > 0
    assert final["total_packets"] == final["received_packets"] + final["dropped_packets"]
    assert final["dropped_pct"] == pytest.approx(
        100 * final["dropped_packets"] / final["total_packets"], abs=0.05)


def test_synthesised_pfcount_inconsistent_counts(tmp_path):
    text = PFCOUNT_DROPS.read_text().replace("[24'690 pkts dropped]", "[24'691 pkts dropped]")
    bad = tmp_path / "pfcount.stderr"
    bad.write_text(text)
    with pytest.raises(ParseError, match="pkts total") as err:
        pfcount.parse(bad)
    lines = text.splitlines()
    assert err.value.line == next(i for i, x in enumerate(lines, 1) if "24'691" in x) + 1
