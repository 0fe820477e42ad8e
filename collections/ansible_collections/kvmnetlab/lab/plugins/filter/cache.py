# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The content-hash cache key of the lab's build caches (guest images, kernels).

One function for every cache, called by FQCN (``kvmnetlab.lab.cache_key``) and unit-tested
as Python: a cache entry is named after the sha256 of its inputs as canonical JSON (keys
sorted, the separators and escaping of Ansible's ``to_json``), so the same inputs always
give the same key, whichever role asks. The guest_image role names its images with it, the
elvis_kernel role its builds.
"""

from __future__ import annotations

import hashlib
import json

try:
    from ansible.errors import AnsibleFilterError
    from ansible.module_utils.common.json import get_encoder
except ImportError:  # pragma: no cover - only when imported outside Ansible's venv
    AnsibleFilterError = ValueError  # type: ignore[assignment,misc]

    def get_encoder(profile):  # the standard encoder, without Ansible's types
        return json.JSONEncoder

# A cache folder is named after this many leading characters of the key.
SHORT = 16


def canonical_json(inputs) -> str:
    """The text the key hashes: ``to_json(sort_keys=true)`` of the inputs."""
    return json.dumps(inputs, cls=get_encoder("tagless"), sort_keys=True)


def cache_key(inputs, short: bool = False) -> str:
    """sha256 (hex) of the inputs as canonical JSON; ``short``: its first 16 characters,
    the name of the cache folder. The inputs must be a non-empty dict (a recipe)."""
    if not isinstance(inputs, dict) or not inputs:
        raise AnsibleFilterError(
            f"cache_key: the inputs must be a non-empty dict of named inputs, got {inputs!r}")
    try:
        text = canonical_json(inputs)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"cache_key: an input is not plain data: {exc}") from exc
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return key[:SHORT] if short else key


class FilterModule:
    """The cache key of the lab's build caches."""

    def filters(self):
        return {"cache_key": cache_key}
