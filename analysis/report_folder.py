"""The report folder: built next to its final place, swapped in at the end.

``staged(out)`` yields an empty working folder (with ``tables/`` and
``figures/``) beside ``out``; when the block succeeds the working folder is
marked as a report and replaces ``out``, when it fails it is removed and
``out`` is left as it was. ``check_target`` refuses to replace a non-empty
folder that is not an earlier report.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MARKER = ".kvmnetlab-report"


class TargetError(ValueError):
    """The output folder exists and is not an earlier report."""


def is_replaceable(out: Path) -> bool:
    """True when ``out`` is absent, an empty folder, or a folder holding an earlier report."""
    if not out.exists():
        return True
    return out.is_dir() and (not any(out.iterdir()) or (out / MARKER).exists())


def check_target(out: Path) -> None:
    if not is_replaceable(out):
        raise TargetError(f"{out}: exists and is not a report folder; refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)


def swap_in(work: Path, out: Path) -> None:
    """Move ``work`` to ``out``, replacing what was there; the old folder is then removed."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
    os.replace(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A working folder beside ``out``, swapped into place when the block succeeds."""
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (work / "tables").mkdir()
        (work / "figures").mkdir()
        yield work
        (work / MARKER).write_text("written by python -m analysis\n", encoding="utf-8")
        swap_in(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
