"""Reading a captured text file the same strict way in every parser."""

from __future__ import annotations

from pathlib import Path

from collectors.errors import ParseError


def read_lines(path: Path, *, require_newline: bool = True) -> list[str]:
    """Return the file's lines; refuse an empty, non-UTF-8 or cut-short file.

    A capture made with ``cat`` or a redirect always ends with a newline; a file
    that does not was cut short, and the error names its last line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(path, None, f"not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise ParseError(path, None, f"cannot read: {exc.strerror}") from exc
    if not text.strip():
        raise ParseError(path, None, "empty file")
    lines = text.splitlines()
    if require_newline and not text.endswith("\n"):
        raise ParseError(path, len(lines), f"truncated: last line has no newline: {lines[-1]!r}")
    return lines


def to_int(path: Path, lineno: int, token: str, what: str) -> int:
    """A decimal integer, or a ParseError naming the field."""
    try:
        return int(token)
    except ValueError:
        raise ParseError(path, lineno, f"{what}: not an integer: {token!r}") from None
