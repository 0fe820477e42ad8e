# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An action plugin's argument spec, read from the DOCUMENTATION that ansible-doc prints.

Each controller-side action plugin of this collection has a module stub of the same name
in plugins/modules/ holding only its DOCUMENTATION, EXAMPLES and RETURN (as ansible.builtin
does for its action-only plugins). The options documented there, with those of the
collection's doc fragments it extends (``extends_documentation_fragment``), are the
argument spec the action validates its task arguments against (with Ansible's
ArgumentSpecValidator), so the documentation and the validation cannot drift apart.
"""

from __future__ import annotations

import importlib

import yaml

# Keys of a documented option that the argument spec validator reads as they are.
_SPEC_KEYS = ("type", "elements", "required", "default", "choices", "aliases", "no_log",
              "apply_defaults")

# Doc fragments are read from this collection only (kvmnetlab.lab.<file>[.<variable>]).
_COLLECTION = "kvmnetlab.lab"


def option_spec(documented):
    """One documented option as an argument spec entry (``suboptions`` become ``options``)."""
    spec = {key: documented[key] for key in _SPEC_KEYS if key in documented}
    if documented.get("suboptions"):
        spec["options"] = argument_spec(documented["suboptions"])
    return spec


def argument_spec(options):
    """The documented ``options`` mapping as an argument spec."""
    return {name: option_spec(documented or {}) for name, documented in (options or {}).items()}


def fragment_options(name):
    """The options of one of this collection's doc fragments, named as
    ``extends_documentation_fragment`` names it: ``kvmnetlab.lab.<file>`` (its
    DOCUMENTATION) or ``kvmnetlab.lab.<file>.<variable>`` (another variable of it, in any
    case)."""
    prefix = f"{_COLLECTION}."
    parts = name.strip()[len(prefix):].split(".") if name.strip().startswith(prefix) else []
    if len(parts) not in (1, 2) or not all(parts):
        raise ValueError(f"doc fragment {name!r}: only {prefix}<file>[.<variable>] is read "
                         "into an argument spec")
    module = importlib.import_module(
        f"ansible_collections.kvmnetlab.lab.plugins.doc_fragments.{parts[0]}")
    variable = parts[1].upper() if len(parts) == 2 else "DOCUMENTATION"
    text = getattr(module.ModuleDocFragment, variable, None)
    if text is None:
        raise ValueError(f"doc fragment {name!r}: {parts[0]}.py has no {variable}")
    return yaml.safe_load(text).get("options") or {}


def documented_options(doc):
    """The options of a parsed DOCUMENTATION with those of its doc fragments merged in the
    way ansible-doc merges them (an option of the module's own completes or overrides the
    fragment's of the same name)."""
    fragments = doc.get("extends_documentation_fragment") or []
    if isinstance(fragments, str):
        fragments = fragments.split(",")
    options = {}
    for fragment in fragments:
        for name, documented in fragment_options(fragment).items():
            options[name] = {**options.get(name, {}), **(documented or {})}
    for name, documented in (doc.get("options") or {}).items():
        options[name] = {**options.get(name, {}), **(documented or {})}
    return options


def spec_from_doc(documentation):
    """The argument spec of a DOCUMENTATION string (YAML), doc fragments included."""
    return argument_spec(documented_options(yaml.safe_load(documentation)))
