#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the nightly_config_check action plugin (plugins/action/nightly_config_check.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nightly_config_check
short_description: Check a kvmnetlab-nightly configuration with the driver's own validation
description:
  - Checks each setting with C(nightly.config.check_values), the validation kvmnetlab-nightly
    applies to its configuration file, so the role that writes the file and the driver that
    reads it share one set of keys, types and bounds. A bad value fails, naming the
    variable (I(prefix) and the key), before anything is written.
  - A null keeps the driver's default. Paths must be absolute. Numbers given as text (from
    C(-e key=value)) are read as numbers and returned as such.
  - Reads only; changes nothing.
version_added: "0.1.0"
author: kvmnetlab
extends_documentation_fragment:
  - kvmnetlab.lab.controller
options:
  config:
    description: The configuration, keyed as kvmnetlab-nightly's configuration file is.
    type: dict
    required: true
  prefix:
    description: What a key is prefixed with in an error (the role's variable names).
    type: str
    default: nightly_
  source:
    description: Where the values come from, named in an error.
    type: str
    default: nightly role
attributes:
  check_mode:
    details: Checks in any mode; it never writes.
"""

EXAMPLES = r"""
- name: Check the night's settings as kvmnetlab-nightly will
  kvmnetlab.lab.nightly_config_check:
    config:
      results_dir: /srv/kvmnetlab/nights
      p_value: 0.01
      min_segment: 3
  register: nightly_checked
"""

RETURN = r"""
config:
  description: The configuration as given, with numbers given as text read as numbers.
  returned: success
  type: dict
"""
