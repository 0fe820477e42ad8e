"""Every parser against seeded mutations of its real fixtures (tests/collectors/fuzzing.py).

A mutated capture (a number inflated to hundreds of digits, a sign flipped, a line
deleted or duplicated, two numbers swapped, the file cut short, NaN or infinity
spelled out, bytes that are not UTF-8...) is either refused with the project's
ParseError, or accepted with numbers that keep the tool's own invariants (finite,
non-negative RTTs; ping's replies within its printed min/max; sockperf's percentiles
within min..max; trafgen's usec below 10^6; every count fitting a table). Bounded:
``MUTATIONS`` inputs per fixture, a few seconds in all; bench/bench_fuzz.py runs many
more.
"""

from __future__ import annotations

import pytest

from kvmnetlab.errors import ParseError
from tests.collectors import fuzzing

#: mutated inputs per fixture (about 2,800 in all)
MUTATIONS = 100
#: the seeds: fixed, so a finding is reproduced by its seed
SEEDS = range(MUTATIONS)


@pytest.mark.parametrize("name", sorted(fuzzing.CORPUS))
def test_no_mutation_crashes_or_is_accepted_with_impossible_numbers(tmp_path, name):
    findings, accepted = [], 0
    for fixture in fuzzing.CORPUS[name]:
        got, found = fuzzing.fuzz(name, fixture, SEEDS, tmp_path)
        accepted, findings = accepted + got, findings + found
    assert not findings, "\n".join(str(f) for f in findings[:10])
    # the mutations leave inputs a parser accepts: the invariants were exercised
    assert accepted


def test_the_real_fixtures_keep_the_invariants(tmp_path):
    """The invariants hold for every real capture a parser accepts (so they are not
    stricter than the tools), and every parser accepts at least one of its fixtures."""
    for name, fixtures in fuzzing.CORPUS.items():
        parse, accepted = fuzzing.parser(name), 0
        for fixture in fixtures:
            path = fuzzing.FIXTURES / fixture
            try:
                result = parse(path)
            except ParseError:
                continue
            accepted += 1
            assert fuzzing.invariants(name, result, path.read_text()) == [], fixture
        assert accepted, name


@pytest.mark.parametrize(("name", "fixture", "old", "new", "why"), [
    # what the fuzzing found in the parsers before their numbers were range-checked
    ("ping", "ping/clean.txt", "icmp_seq=5 ", "icmp_seq=" + "5" * 5000 + " ", "icmp_seq"),
    ("ping", "ping/unreachable.txt", "+4 errors", "+" + "4" * 400 + " errors", "errors"),
    ("ping", "ping/clean.txt", "time=0.031 ms", "time=9" + "9" * 400 + " ms",
     "reply time"),
    ("ping", "ping/clean.txt", "time=0.031 ms", "time=0.091 ms", "outside the summary"),
    ("ping", "ping/unanswered.txt", "33.3333% packet loss", "3.3333% packet loss",
     "packet loss"),
    ("ping", "ping/unreachable.txt", "+4 errors", "+400 errors", "errors"),
    ("sockperf", "sockperf/pingpong_full_rtt.stdout", "<MIN> observation =    3.504",
     "<MIN> observation =    4.000", "below <MIN>"),
    ("sockperf", "sockperf/pingpong_full_rtt.stdout", "percentile 90.000", "percentile 99.000",
     "printed twice"),
    ("sockperf", "sockperf/pingpong_full_rtt.stdout", "percentile 75.000", "percentile 95.000",
     "highest first"),
    ("sockperf", "sockperf/pingpong_full_rtt.stdout", "avg-rtt=10.497", "avg-rtt=9999.497",
     "outside <MIN>"),
    ("sockperf", "sockperf/pingpong_full_rtt.stdout", "Valid Duration] RunTime=2.549",
     "Valid Duration] RunTime=3.549", "more than the"),
    ("trafgen", "trafgen/rate.stdout", "1 sec, 516 usec", "0 sec, 1000516 usec", "usec"),
    ("trafgen", "trafgen/rate.stdout", "600000 bytes outgoing", "600060 bytes outgoing",
     "one 60-byte template"),
    ("tcpdump", "tcpdump/stats.stderr", "5000 packets captured",
     "9" * 4400 + " packets captured", "captured"),
    ("tcpdump", "tcpdump/stats.stderr", "listening on vb,", "listening on \nvb,",
     "no interface named"),
    ("fping", "fping/clean.stderr", "0.025", "1" + "0" * 400, "sample"),
])
def test_a_found_input_is_a_parse_error_naming_file_line_and_field(tmp_path, name, fixture, old,
                                                                   new, why):
    text = (fuzzing.FIXTURES / fixture).read_text()
    assert old in text
    path = tmp_path / "mutated.txt"
    path.write_text(text.replace(old, new, 1))
    # the line named: the (last) one changed, or (a minimum raised) the percentile now below it
    named = "percentile 25.000" if why == "below <MIN>" else new.splitlines()[0][:30]
    lineno = max(i for i, line in enumerate(path.read_text().splitlines(), start=1)
                 if named in line)
    with pytest.raises(ParseError, match=why) as err:
        fuzzing.parser(name)(path)
    assert err.value.path == str(path)
    assert err.value.line == lineno
    assert str(err.value).startswith(f"{path}:{lineno}: ")


def test_a_summary_of_nothing_sent_is_refused_not_divided_by(tmp_path):
    """iputils prints no loss when it sent nothing: a summary that does is not ping's
    (and its loss is not computed: no ZeroDivisionError)."""
    lines = (fuzzing.FIXTURES / "ping/unreachable.txt").read_text().splitlines()
    assert lines[-2].startswith("4 packets transmitted, 0 received, +4 errors, 100% packet")
    path = tmp_path / "nothing.txt"
    path.write_text("\n".join([lines[0], *lines[-3:-2],
                               "0 packets transmitted, 0 received, 100% packet loss, time 0ms"])
                    + "\n")
    with pytest.raises(ParseError, match="0 received of 0 transmitted") as err:
        fuzzing.parser("ping")(path)
    assert err.value.line == 3
