#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the store_ingest action plugin (plugins/action/store_ingest.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: store_ingest
short_description: Parse raw/ into data/*.parquet on the controller
description:
  - Every completed run's raw files are parsed by their tool's parser. A file that does not
    parse marks its run failed with the parser's message (file and line); raw/ is never
    touched. Fails at the end when any run failed to parse and I(fail_on_parse_error) is
    set.
  - A table whose bytes are unchanged is not rewritten, and the manifest is written only
    when it differs; C(changed) says whether anything was written.
version_added: "0.1.0"
author: kvmnetlab
extends_documentation_fragment:
  - kvmnetlab.lab.controller
  - kvmnetlab.lab.controller.campaign_dir
options:
  fail_on_parse_error:
    description: Fail when a raw file did not parse.
    type: bool
    default: false
attributes:
  check_mode:
    details: Reports a change; nothing is parsed or written.
"""

EXAMPLES = r"""
- name: Parse the raw files into tables
  kvmnetlab.lab.store_ingest:
    campaign_dir: "{{ campaign_started.campaign.dir }}"
  register: campaign_ingested
"""

RETURN = r"""
rows:
  description: Probes parsed.
  returned: success, not in check mode
  type: int
unparsed:
  description: One message (file and line) per run whose raw files did not parse.
  returned: success, not in check mode
  type: list
  elements: str
"""
