"""Reading a captured text file, and the numbers in it, the same strict way in every
parser.

Every number a parser takes from a tool's text goes through :func:`to_int` or
:func:`to_float`: ASCII digits only (no sign unless the range allows it, no ``_``, no
NaN or infinity in any spelling), at most ``MAX_DIGITS`` characters, a finite value
within the field's range. Anything else is a :class:`ParseError` naming the file, the
line and the field, never a bare ValueError or OverflowError.
"""

from __future__ import annotations

import math
import os
import re
import stat
from decimal import Decimal
from pathlib import Path

from kvmnetlab.errors import ParseError, UnreadableError

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes; a :class:`ParseError` naming the file when it cannot be read.

    A path with nothing at all behind it raises a plain ParseError (``cannot read: No
    such file or directory``). Anything that is there but cannot be read raises
    :class:`UnreadableError`: a directory, a FIFO, a socket or a device (refused
    before any read, so a FIFO without a writer never blocks), a dangling or looping
    symbolic link, a permission or I/O error.
    """
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        if os.path.lexists(path):
            raise UnreadableError(path, None, "cannot read: dangling symbolic link "
                                  f"({exc.strerror})") from exc
        raise ParseError(path, None, f"cannot read: {exc.strerror}") from exc
    except OSError as exc:
        raise UnreadableError(path, None, f"cannot read: {exc.strerror}") from exc
    try:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind != stat.S_IFREG:
            raise UnreadableError(path, None, "cannot read: not a regular file but "
                                  f"{_KINDS.get(kind, 'an unknown kind of file')}")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableError(path, None, f"cannot read: {exc.strerror}") from exc
    finally:
        os.close(fd)


def read_text(path: str | Path) -> str:
    """The file's text (UTF-8), read by :func:`read_bytes`; a ParseError otherwise.

    Line ends are translated as Python's text mode does (``\\r\\n`` and ``\\r``
    become ``\\n``).
    """
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(path, None, f"not UTF-8 text: {exc}") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_lines(path: Path, *, require_newline: bool = True) -> list[str]:
    """Return the file's lines; refuse an empty, non-UTF-8, cut-short or unreadable file.

    A capture made with ``cat`` or a redirect always ends with a newline; a file
    that does not was cut short, and the error names its last line.
    """
    text = read_text(path)
    if not text.strip():
        raise ParseError(path, None, "empty file")
    lines = text.splitlines()
    if require_newline and not text.endswith("\n"):
        raise ParseError(path, len(lines), f"truncated: last line has no newline: {lines[-1]!r}")
    return lines


#: the largest integer a data table stores (int64): a count beyond it cannot be kept
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
#: no number a tool prints is longer; a longer token is refused before it is converted
MAX_DIGITS = 40
_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _token(path: Path, lineno: int | None, token: str, what: str) -> str:
    if len(token) > MAX_DIGITS:
        raise ParseError(path, lineno, f"{what}: a number of {len(token)} characters is out "
                         f"of range: {token[:20]!r}...")
    return token


def _in_range(path: Path, lineno: int | None, value: int | float, what: str,
              lo: int | float, hi: int | float) -> None:
    if not lo <= value <= hi:
        raise ParseError(path, lineno, f"{what}: {value!r} is outside {lo!r}..{hi!r}")


def to_int(path: Path, lineno: int | None, token: str, what: str, *, lo: int = 0,
           hi: int = INT64_MAX) -> int:
    """A decimal integer within ``lo..hi`` (by default a count a table can store), or a
    ParseError naming the file, the line and the field."""
    if not _INTEGER.fullmatch(_token(path, lineno, token, what)):
        raise ParseError(path, lineno, f"{what}: not an integer: {token!r}")
    value = int(token)
    _in_range(path, lineno, value, what, lo, hi)
    return value


def to_float(path: Path, lineno: int | None, token: str, what: str, *, lo: float = 0.0,
             hi: float = float("inf"), scale: int = 1) -> float:
    """A finite decimal number times ``scale`` (``1000``: ms read as µs, exactly as
    printed) within ``lo..hi`` (in the scaled unit), or a ParseError naming the file,
    the line and the field. NaN and infinities are refused whatever their spelling."""
    if not _DECIMAL.fullmatch(_token(path, lineno, token, what)):
        raise ParseError(path, lineno, f"{what}: not a finite decimal number: {token!r}")
    exact = Decimal(token)
    value = float(exact * scale)
    if not math.isfinite(value):
        raise ParseError(path, lineno, f"{what}: out of range: {token!r}")
    _in_range(path, lineno, value, what, lo, hi)
    return value
