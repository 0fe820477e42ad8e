"""Errors raised on the controller while reading tool output or the result store."""

from __future__ import annotations

from pathlib import Path


def human_bytes(count: int) -> str:
    """``12.0 MiB (12582912 bytes)``: the exact count beside a readable one."""
    value, unit = float(count), "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    readable = f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({count} bytes)"
    return readable


class ParseError(ValueError):
    """A tool's output does not have the shape its parser expects.

    The message always names the file and, where one is to blame, the 1-based line.
    """

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class UnreadableError(ParseError):
    """A raw file is there by name but cannot be read: a directory, a FIFO or another
    file that is not a regular one, a dangling or looping symbolic link, an I/O error.

    Unlike a file that does not parse, it says nothing about the tool's output: the
    store itself is damaged, so ingest fails the whole run whichever collector met it.
    """


class StoreError(RuntimeError):
    """The result store is inconsistent (missing file, checksum mismatch, bad manifest)."""


class FormatError(StoreError):
    """A results folder does not match the result-store format (kvmnetlab.store_format).

    ``path`` is the offending file and ``field`` the column or dotted manifest key.
    """

    def __init__(self, path: str | Path, field: str | None, message: str) -> None:
        self.path = str(path)
        self.field = field
        self.reason = message
        where = f"{self.path}: {field}" if field else self.path
        super().__init__(f"{where}: {message}")


class StoreFull(StoreError):
    """The results file system filled up (ENOSPC, EDQUOT) while the store wrote something.

    The message names the path, the space still free there and what was being written.
    """

    def __init__(self, path: str | Path, free: int, what: str, mount: str | Path) -> None:
        self.path = str(path)
        self.free = free
        self.what = what
        super().__init__(
            f"{self.path}: no space left on the results file system (mounted on {mount}) "
            f"while writing {what}: {human_bytes(free)} free. Free some space there and run "
            "the same command with the same kvmnetlab_campaign_id to resume: what is "
            "stored is kept")


class ConfigError(ValueError):
    """A campaign parameter, scenario or inventory value is invalid.

    ``source`` names the file (or the variable's origin) and ``field`` the dotted key.
    """

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        self.reason = message
        super().__init__(f"{source}: {field}: {message}")
