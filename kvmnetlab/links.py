"""Find a host's data interface from `ip -j addr show` output (controller side)."""

from __future__ import annotations

import json
from typing import Any


class LinkError(ValueError):
    """No interface, or malformed `ip -j addr show` output."""


def owner(ip_json: str, address: str) -> dict[str, Any]:
    """The interface holding ``address``: ``{"ifname", "mac"}``."""
    try:
        links = json.loads(ip_json)
    except json.JSONDecodeError as exc:
        raise LinkError(f"`ip -j addr show` output is not JSON: {exc}") from None
    if not isinstance(links, list):
        raise LinkError("`ip -j addr show` output is not a list of interfaces")
    for link in links:
        for info in link.get("addr_info", []):
            if info.get("local") == address:
                return {"ifname": link["ifname"], "mac": link.get("address")}
    raise LinkError(f"no interface holds {address}")
