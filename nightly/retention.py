"""Retention: the raw files of old nights are deleted; what they measured is kept.

A night is a folder ``<results_dir>/<night-id>/`` holding ``nightly/status.json``
(written by this driver); campaign folders made by hand are never touched. Only
nights whose outcome is ``done`` are pruned, and only those older than the newest
``keep`` done nights. Pruning deletes the raw files the manifest records (under
``raw/``, and ``superseded/`` from resumed attempts); every entry keeps its sha256
and bytes and gets ``"pruned": true`` and ``pruned_at``. ``manifest.json``,
``data/``, ``report/`` and ``nightly/`` are kept. Running it again changes nothing.

The functions here are pure except :func:`apply`, :func:`prune_campaign` and the
readers.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RAW_PREFIXES = ("raw/", "superseded/")


@dataclass(frozen=True)
class Night:
    night: str
    path: Path
    outcome: str | None
    started_at: str

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.started_at, self.night)


@dataclass
class Pruned:
    """What pruning one campaign did."""

    night: str
    files: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)  # recorded, not pruned, not on disk


# --------------------------------------------------------------------------- pure


def nights_to_prune(nights: list[Night], keep: int) -> list[Night]:
    """The done nights older than the newest ``keep`` done nights, oldest first."""
    done = sorted((n for n in nights if n.outcome == "done"), key=lambda n: n.sort_key)
    return done[:max(len(done) - keep, 0)]


def raw_entries(manifest: dict[str, Any]) -> list[str]:
    """Manifest paths of raw files (recorded, pruned or not)."""
    return sorted(rel for rel in (manifest.get("files") or {}) if rel.startswith(RAW_PREFIXES))


def mark_pruned(manifest: dict[str, Any], rels: list[str], when: str) -> dict[str, Any]:
    """A copy of ``manifest`` whose entries ``rels`` carry pruned/pruned_at (sha256 kept)."""
    files = dict(manifest.get("files") or {})
    for rel in rels:
        entry = dict(files[rel])
        if not entry.get("pruned"):
            entry.update(pruned=True, pruned_at=when)
        files[rel] = entry
    return {**manifest, "files": files}


def is_pruned(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("pruned") is True


# --------------------------------------------------------------------------- file system


def read_nights(results_dir: Path) -> list[Night]:
    """Every night folder of ``results_dir`` (those with nightly/status.json)."""
    nights = []
    if not results_dir.is_dir():
        return nights
    for path in sorted(p for p in results_dir.iterdir() if p.is_dir()):
        status_path = path / "nightly" / "status.json"
        try:
            status = json.loads(status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(status, dict):
            continue
        nights.append(Night(night=path.name, path=path, outcome=status.get("outcome"),
                            started_at=str(status.get("started_at") or "")))
    return nights


def _remove_empty_dirs(top: Path) -> None:
    """Remove the empty folders below ``top`` (``top`` itself stays)."""
    if not top.is_dir():
        return
    for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            folder.rmdir()


def prune_campaign(root: Path, when: str) -> Pruned:
    """Delete the raw files of the campaign at ``root``; mark them pruned in its manifest.

    The manifest is rewritten (atomically) before any file is deleted, so an
    interruption leaves files marked pruned that still exist, which the next run
    deletes; never a recorded file that vanished unmarked.
    """
    from kvmnetlab.errors import StoreError
    from kvmnetlab.store import Store

    result = Pruned(night=root.name)
    try:
        manifest = Store(root).load()
    except StoreError:
        return result  # no campaign (a night that never created one), or not one to touch
    files = manifest.get("files") or {}
    doomed = []
    for rel in raw_entries(manifest):
        if is_pruned(files[rel]) or (root / rel).is_file():
            doomed.append(rel)
        else:
            result.missing.append(rel)
    newly = [rel for rel in doomed if not is_pruned(files[rel])]
    if newly:
        def mark(latest: dict[str, Any]) -> None:
            latest["files"] = mark_pruned(latest, newly, when)["files"]

        Store(root).update(mark)  # the store's one writer: atomic and fsynced
    for rel in doomed:
        path = root / rel
        with contextlib.suppress(FileNotFoundError):
            size = path.stat().st_size
            path.unlink()
            result.files += 1
            result.bytes += size
    for top in {rel.split("/", 1)[0] for rel in doomed}:
        _remove_empty_dirs(root / top)
    return result


def apply(results_dir: Path, keep: int, when: str,
          current: Night | None = None) -> list[Pruned]:
    """Prune every done night of ``results_dir`` older than the newest ``keep`` done nights.

    ``current`` is the night being recorded, whose status.json is written after this.
    """
    nights = [n for n in read_nights(results_dir) if current is None or n.night != current.night]
    if current is not None:
        nights.append(current)
    return [prune_campaign(night.path, when) for night in nights_to_prune(nights, keep)]


def has_pruned_files(root: Path) -> bool:
    """The campaign at ``root`` had raw files pruned (it can no longer be resumed)."""
    from kvmnetlab.errors import StoreError
    from kvmnetlab.store import Store

    try:
        manifest = Store(root).load()
    except StoreError:
        return False
    return any(is_pruned(entry) for entry in (manifest.get("files") or {}).values())
