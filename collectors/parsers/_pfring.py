"""Number format shared by PF_RING's example tools (``pfring_format_numbers``)."""

from __future__ import annotations

import re
from pathlib import Path

from kvmnetlab.errors import ParseError

#: ``1'234'567``, ``1'234'567.89`` or ``12.34``: apostrophes group thousands
NUMBER = r"\d{1,3}(?:'\d{3})*(?:\.\d+)?"
_NUMBER = re.compile(rf"^{NUMBER}$")


def number(path: Path, lineno: int, text: str) -> float:
    """Strip the apostrophes and parse. Values of 10**12 or more wrap in PF_RING's
    printer (it keeps only four groups of three digits), which cannot be undone."""
    if not _NUMBER.match(text):
        raise ParseError(path, lineno, f"not a PF_RING number: {text!r}")
    return float(text.replace("'", ""))


def integer(path: Path, lineno: int, text: str) -> int:
    value = number(path, lineno, text)
    if value != int(value):
        raise ParseError(path, lineno, f"expected a whole number: {text!r}")
    return int(value)
