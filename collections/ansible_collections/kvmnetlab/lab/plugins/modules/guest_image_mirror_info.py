#!/usr/bin/python
# Copyright: kvmnetlab contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the Debian mirror the host's apt is configured with."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: guest_image_mirror_info
short_description: Find the Debian archive mirror configured in the host's apt sources
description:
  - Reads C(/etc/apt/sources.list) (one-line format) and C(/etc/apt/sources.list.d/*.list)
    and C(*.sources) (deb822 format) and returns the first C(deb) source that serves
    the requested suite with the requested component.
  - Read-only; supports check mode.
options:
  suite:
    description: Suite (codename) the guest image is built from, for example C(bookworm).
    type: str
    required: true
  component:
    description: Component the source must carry.
    type: str
    default: main
  sources_dir:
    description: Root of the apt configuration (for tests).
    type: path
    default: /etc/apt
author:
  - kvmnetlab contributors
"""

EXAMPLES = r"""
- name: Find the mirror for bookworm
  kvmnetlab.lab.guest_image_mirror_info:
    suite: bookworm
  register: guest_image_mirror_result
"""

RETURN = r"""
mirror:
  description: Base URI of the first matching source, without a trailing slash.
  returned: always
  type: str
  sample: http://deb.debian.org/debian
source_file:
  description: File the source was read from.
  returned: always
  type: str
  sample: /etc/apt/sources.list.d/debian.sources
candidates:
  description: Every C(deb) source read, in the order apt reads them.
  returned: always
  type: list
  elements: dict
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule


def _one_line_sources(path):
    out = []
    with open(path, encoding="utf-8") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            if words[0] != "deb":
                continue
            words = words[1:]
            if words and words[0].startswith("["):
                # options such as [signed-by=...] may span several words
                while words and not words[0].endswith("]"):
                    words = words[1:]
                words = words[1:]
            if len(words) < 2:
                continue
            out.append(
                {
                    "file": path,
                    "line": lineno,
                    "uris": [words[0]],
                    "suites": [words[1]],
                    "components": words[2:],
                    "enabled": True,
                }
            )
    return out


def _deb822_sources(path):
    out = []
    stanza = {}
    start = None
    key = None

    def flush():
        if stanza:
            types = stanza.get("types", "").split()
            if "deb" in types:
                out.append(
                    {
                        "file": path,
                        "line": start,
                        "uris": stanza.get("uris", "").split(),
                        "suites": stanza.get("suites", "").split(),
                        "components": stanza.get("components", "").split(),
                        "enabled": stanza.get("enabled", "yes").strip().lower() != "no",
                    }
                )

    with open(path, encoding="utf-8") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n")
            if line.startswith("#"):
                continue
            if not line.strip():
                flush()
                stanza, start, key = {}, None, None
                continue
            if line[0] in " \t" and key is not None:
                stanza[key] += " " + line.strip()
                continue
            if ":" not in line:
                continue
            key, value = line.split(":", 1)
            key = key.strip().lower()
            stanza[key] = value.strip()
            if start is None:
                start = lineno
    flush()
    return out


def read_sources(root):
    """Every deb source under root, in apt's reading order."""
    sources = []
    main = os.path.join(root, "sources.list")
    if os.path.isfile(main):
        sources.extend(_one_line_sources(main))
    for path in sorted(glob.glob(os.path.join(root, "sources.list.d", "*"))):
        if path.endswith(".list"):
            sources.extend(_one_line_sources(path))
        elif path.endswith(".sources"):
            sources.extend(_deb822_sources(path))
    return sources


def main():
    module = AnsibleModule(
        argument_spec={
            "suite": {"type": "str", "required": True},
            "component": {"type": "str", "default": "main"},
            "sources_dir": {"type": "path", "default": "/etc/apt"},
        },
        supports_check_mode=True,
    )
    suite = module.params["suite"]
    component = module.params["component"]
    try:
        sources = read_sources(module.params["sources_dir"])
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg=f"cannot read apt sources under {module.params['sources_dir']}: {exc}")
    for src in sources:
        if src["enabled"] and suite in src["suites"] and component in src["components"]:
            for uri in src["uris"]:
                if uri.startswith(("http://", "https://", "file:/")):
                    module.exit_json(
                        changed=False,
                        mirror=uri.rstrip("/"),
                        source_file=src["file"],
                        candidates=sources,
                    )
    module.fail_json(
        msg=(
            f"no enabled 'deb' source for suite {suite!r} with component {component!r} "
            f"under {module.params['sources_dir']}/sources.list(.d); set guest_image_mirror"
        ),
        candidates=sources,
    )


if __name__ == "__main__":
    main()
