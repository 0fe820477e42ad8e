"""Number format shared by PF_RING's example tools (``pfring_format_numbers``)."""

from __future__ import annotations

import re
from pathlib import Path

from collectors.parsers._text import to_float
from kvmnetlab.errors import ParseError

#: ``1'234'567``, ``1'234'567.89`` or ``12.34``: apostrophes group thousands
NUMBER = r"[0-9]{1,3}(?:'[0-9]{3})*(?:\.[0-9]+)?"
#: the printer keeps four groups of three digits: nothing it prints reaches 10**12
LIMIT = 10.0**12
_NUMBER = re.compile(rf"^{NUMBER}$")


def number(path: Path, lineno: int, text: str, what: str = "number") -> float:
    """Strip the apostrophes and parse. Values of 10**12 or more wrap in PF_RING's
    printer (it keeps only four groups of three digits), which cannot be undone: a
    number of more groups is not pfsend's or pfcount's."""
    if not _NUMBER.match(text):
        raise ParseError(path, lineno, f"not a PF_RING number: {text!r}")
    value = to_float(path, lineno, text.replace("'", ""), what, hi=LIMIT)
    if value >= LIMIT:
        raise ParseError(path, lineno, f"{what}: {text} has more than four groups of digits")
    return value


def integer(path: Path, lineno: int, text: str, what: str = "count") -> int:
    value = number(path, lineno, text, what)
    if value != int(value):
        raise ParseError(path, lineno, f"expected a whole number: {text!r}")
    return int(value)
