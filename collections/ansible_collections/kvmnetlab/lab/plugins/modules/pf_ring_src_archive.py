#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack a source tree into a reproducible tarball, rewriting it only when its content changed."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pf_ring_src_archive
short_description: Pack a source tree (such as a PF_RING checkout) into a reproducible tarball
description:
  - Packs directory I(src) into the gzip-compressed tarball I(dest), with entries in sorted
    order, owner and group 0, and no gzip timestamp, so that an unchanged tree gives a
    byte-identical archive whose sha256 can key later build steps.
  - Version-control folders (C(.git), C(.svn), C(.hg)) and names in I(exclude) are left out.
  - Writes I(dest) atomically and only when its content would change; reports C(changed)
    truthfully. Supports check mode.
  - Usually run on the controller (C(delegate_to) localhost) before copying the archive.
version_added: "0.1.0"
author: kvmnetlab
options:
  src:
    description: Source directory.
    type: path
    required: true
  dest:
    description: Tarball to write (.tar.gz).
    type: path
    required: true
  prefix:
    description: Top-level folder name inside the archive; defaults to the basename of I(src).
    type: str
  exclude:
    description: File or folder names (not paths) to leave out, besides version-control folders.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Pack a local PF_RING checkout on the controller
  kvmnetlab.lab.pf_ring_src_archive:
    src: /srv/src/PF_RING
    dest: /srv/cache/pf_ring-src.tar.gz
    prefix: PF_RING-8.8.0
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
sha256:
  description: sha256 of the archive's content (of the file that is, or would be, at I(dest)).
  returned: always
  type: str
files:
  description: Number of entries (files, folders, links) in the archive.
  returned: always
  type: int
dest:
  description: The archive written.
  returned: always
  type: str
"""

import gzip
import hashlib
import io
import os
import tarfile
import tempfile

from ansible.module_utils.basic import AnsibleModule

VCS_DIRS = {".git", ".svn", ".hg"}


def walk_sorted(src, exclude):
    """Yield paths relative to ``src`` in a stable order, skipping excluded names."""
    skip = VCS_DIRS | set(exclude)
    for current, dirs, files in os.walk(src):
        rel_dir = os.path.relpath(current, src)
        if rel_dir != ".":
            yield rel_dir
        # A symlink to a folder (PF_RING's userland/libpcap -> libpcap-1.10.1) is
        # kept as a link; os.walk lists it among the folders but never enters it.
        links = {d for d in dirs if os.path.islink(os.path.join(current, d))}
        dirs[:] = sorted(d for d in dirs if d not in skip and d not in links)
        for name in sorted(f for f in set(files) | links if f not in skip):
            yield name if rel_dir == "." else os.path.join(rel_dir, name)


def _normalise(info):
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_archive(src, prefix, exclude):
    """Return (bytes of a reproducible .tar.gz of ``src``, number of entries)."""
    raw = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(src, arcname=prefix, recursive=False, filter=_normalise)
        for rel in walk_sorted(src, exclude):
            tar.add(
                os.path.join(src, rel),
                arcname=os.path.join(prefix, rel),
                recursive=False,
                filter=_normalise,
            )
            count += 1
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return packed.getvalue(), count


def file_sha256(path):
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def main():
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "prefix": {"type": "str"},
            "exclude": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    src = module.params["src"].rstrip("/") or "/"
    dest = module.params["dest"]
    if not os.path.isdir(src):
        module.fail_json(msg=f"src {src} is not a directory")
    prefix = module.params["prefix"] or os.path.basename(src)

    data, count = build_archive(src, prefix, module.params["exclude"])
    digest = hashlib.sha256(data).hexdigest()
    changed = file_sha256(dest) != digest
    if changed and not module.check_mode:
        folder = os.path.dirname(os.path.abspath(dest))
        os.makedirs(folder, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=folder, prefix=".pf_ring_src-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except OSError as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            module.fail_json(msg=f"cannot write {dest}: {exc}")
    module.exit_json(changed=changed, sha256=digest, files=count, dest=dest)


if __name__ == "__main__":
    main()
