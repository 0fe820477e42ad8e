"""Parse ``ethtool -k <if>`` (offload features), ethtool 6.1.

The first line is ``Features for <if>:``; then one ``<feature>: on|off`` per line,
optionally followed by `` [fixed]`` (the driver cannot change it) and/or
`` [requested on|off]`` (asked for but not in effect). A tab-indented line is a
sub-feature of the last unindented one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from collectors.parsers._text import read_lines
from kvmnetlab.errors import ParseError

_HEAD = re.compile(r"^Features for (?P<iface>\S+):$")
_LINE = re.compile(
    r"^(?P<indent>\t?)(?P<name>[a-z0-9][a-z0-9_-]*): (?P<state>on|off)"
    r"(?P<fixed> \[fixed\])?(?: \[requested (?P<requested>on|off)\])?$"
)


@dataclass
class Features:
    """``features``: one dict per line: ``feature``, ``parent`` (the group it is indented
    under, or None), ``enabled`` (bool), ``fixed`` (bool), ``requested`` (bool or None:
    the requested state when ethtool shows one that differs)."""

    interface: str
    features: list[dict] = field(default_factory=list)

    def enabled(self) -> dict[str, bool]:
        return {f["feature"]: f["enabled"] for f in self.features}


def parse(path: str | Path) -> Features:
    path = Path(path)
    lines = read_lines(path)
    head = _HEAD.match(lines[0])
    if not head:
        raise ParseError(path, 1, f"expected 'Features for <if>:', got {lines[0]!r}")
    result = Features(interface=head["iface"])
    parent: str | None = None
    seen: set[str] = set()
    for lineno, line in enumerate(lines[1:], start=2):
        m = _LINE.match(line)
        if not m:
            raise ParseError(path, lineno, f"expected '<feature>: on|off [...]': {line!r}")
        name = m["name"]
        if name in seen:
            raise ParseError(path, lineno, f"{name} appears twice")
        seen.add(name)
        if m["indent"] and parent is None:
            raise ParseError(path, lineno, f"sub-feature {name} before any feature")
        requested = None if m["requested"] is None else m["requested"] == "on"
        result.features.append(
            {
                "feature": name,
                "parent": parent if m["indent"] else None,
                "enabled": m["state"] == "on",
                "fixed": m["fixed"] is not None,
                "requested": requested,
            }
        )
        if not m["indent"]:
            parent = name
    if not result.features:
        raise ParseError(path, len(lines), "truncated: no feature lines")
    return result
