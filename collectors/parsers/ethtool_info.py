"""Parse ``ethtool -i <if>`` (driver information), ethtool 6.1.

Returns a dict with the keys as ethtool prints them, ``-`` turned into ``_``:
``driver``, ``version``, ``firmware_version``, ``expansion_rom_version``,
``bus_info`` (str, empty when the driver reports none) and the ``supports_*``
flags (bool, from ``yes``/``no``).
"""

from __future__ import annotations

from pathlib import Path

from collectors.parsers._text import read_lines
from kvmnetlab.errors import ParseError

REQUIRED = ("driver", "version", "bus_info")


def parse(path: str | Path) -> dict[str, str | bool]:
    path = Path(path)
    lines = read_lines(path)
    info: dict[str, str | bool] = {}
    for lineno, line in enumerate(lines, start=1):
        key, sep, value = line.partition(": ")
        if not sep and line.endswith(":"):  # ``bus-info:`` with nothing after it
            key, sep, value = line[:-1], ":", ""
        if not sep or not key or " " in key:
            raise ParseError(path, lineno, f"expected '<key>: <value>': {line!r}")
        name = key.replace("-", "_")
        if name in info:
            raise ParseError(path, lineno, f"{key} appears twice")
        value = value.strip()
        if name.startswith("supports_"):
            if value not in ("yes", "no"):
                raise ParseError(path, lineno, f"{key}: expected yes or no, got {value!r}")
            info[name] = value == "yes"
        else:
            info[name] = value
    missing = [k for k in REQUIRED if k not in info]
    if missing:
        raise ParseError(path, len(lines), f"no {missing[0].replace('_', '-')} line")
    return info
