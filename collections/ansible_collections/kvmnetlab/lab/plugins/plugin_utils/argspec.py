# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An action plugin's argument spec, read from the DOCUMENTATION that ansible-doc prints.

Each controller-side action plugin of this collection has a module stub of the same name
in plugins/modules/ holding only its DOCUMENTATION, EXAMPLES and RETURN (as ansible.builtin
does for its action-only plugins). The options documented there are the argument spec
the action validates its task arguments against (with Ansible's ArgumentSpecValidator),
so the documentation and the validation cannot drift apart.
"""

from __future__ import annotations

import yaml

# Keys of a documented option that the argument spec validator reads as they are.
_SPEC_KEYS = ("type", "elements", "required", "default", "choices", "aliases", "no_log",
              "apply_defaults")


def option_spec(documented):
    """One documented option as an argument spec entry (``suboptions`` become ``options``)."""
    spec = {key: documented[key] for key in _SPEC_KEYS if key in documented}
    if documented.get("suboptions"):
        spec["options"] = argument_spec(documented["suboptions"])
    return spec


def argument_spec(options):
    """The documented ``options`` mapping as an argument spec."""
    return {name: option_spec(documented or {}) for name, documented in (options or {}).items()}


def spec_from_doc(documentation):
    """The argument spec of a DOCUMENTATION string (YAML)."""
    return argument_spec(yaml.safe_load(documentation).get("options"))
