"""The result store: results/<campaign-id>/ (see docs/result-store.md).

A repetition's raw files are committed once, all at once (staged and fsynced in
.incoming/, one rename into raw/, then recorded with their sha256 in the manifest)
and never rewritten. Every write is atomic. A campaign that was interrupted is
resumed by checking what is recorded, moving leftovers of interrupted commits to
superseded/<n>/, and running what is missing.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kvmnetlab import store_format

if TYPE_CHECKING:
    import pandas as pd
from kvmnetlab.errors import StoreError, StoreFull
from kvmnetlab.store_format import MANIFEST, RUN_STATES

STAGED = ".incoming"  # a commit's files, fsynced here before one rename into raw/
FETCHED = ".staging"  # where a campaign fetches and unpacks a repetition's files
#: where set_aside puts a leftover, by the folder it was found in (not scenario names)
ASIDE = {"raw": "", STAGED: "commit-staged/", FETCHED: "fetched/"}
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def utcnow() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_campaign_id() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and a rename, then fsync
    the folder so that the rename itself survives a power loss."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: str | Path, document: Any) -> None:
    atomic_write_bytes(path, (json.dumps(document, indent=2, sort_keys=False) + "\n").encode())


def git_state(repo: str | Path) -> dict[str, Any]:
    """Commit and dirtiness of the kvmnetlab checkout (null when not a git tree)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                                  text=True, check=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


class Store:
    """One campaign folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def table_path(self, table: str) -> Path:
        """The file of the tidy table ``table`` (``data/<table>.parquet``)."""
        return self.root / store_format.table_rel(table)

    def write_table(self, table: str, frame: pd.DataFrame) -> bool:
        """Write ``frame`` as the tidy table ``table`` unless the file holds those bytes
        already; return whether it was written. The manifest records it through
        :meth:`record_derived` (the caller's :meth:`update`)."""
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        data = buffer.getvalue()
        path = self.table_path(table)
        if path.is_file() and path.read_bytes() == data:
            return False
        atomic_write_bytes(path, data)
        return True

    def analysis_inputs(self) -> list[Path]:
        """What a report is made from: the manifest and every data table there is."""
        return [self.manifest_path, *sorted((self.root / "data").glob("*.parquet"))]

    def load(self) -> dict[str, Any]:
        """The manifest, upgraded to the current format and checked (store_format)."""
        return store_format.read_manifest(self.manifest_path, campaign=True)

    def save(self, manifest: dict[str, Any]) -> None:
        """Write the whole manifest: atomic and fsynced. Only this package writes it;
        a module that changes a campaign's manifest calls :meth:`update`."""
        store_format.check_manifest(manifest, self.manifest_path, campaign=True)
        with writing(self.manifest_path, "the manifest"):
            atomic_write_bytes(self.manifest_path, store_format.dump_manifest(manifest))

    def update(self, change: Callable[[dict[str, Any]], Any], *,
               dry_run: bool = False) -> tuple[dict[str, Any], bool]:
        """The manifest's one load-modify-save: load it, let ``change`` modify it in place,
        and save it only when it differs from what was loaded.

        Returns the manifest and whether it changed (with ``dry_run``, whether it would
        have: nothing is written), so a module reports ``changed`` truthfully.
        """
        manifest = self.load()
        before = store_format.dump_manifest(manifest)
        change(manifest)
        changed = store_format.dump_manifest(manifest) != before
        if changed and not dry_run:
            self.save(manifest)
        return manifest, changed

    # -- creation and resumption -------------------------------------------------

    def create(self, campaign_id: str, parameters: dict, scenarios: dict, order: list,
               lab: dict, git: dict) -> dict[str, Any]:
        manifest = {
            "format_version": store_format.FORMAT_VERSION,
            "campaign_id": campaign_id,
            "started_at": utcnow(),
            "finished_at": None,
            "git": git,
            "tool_versions": {},
            "lab": lab,
            "parameters": parameters,
            "scenarios": scenarios,
            "order": order,
            "runs": [{**run, "status": "pending", "reason": None, "started_at": None,
                      "finished_at": None} for run in order],
            "host_states": {},
            "files": {},
            "resumed_at": [],
            "superseded": [],
        }
        (self.root / "raw").mkdir(parents=True, exist_ok=True)
        self.save(manifest)
        return manifest

    def check(self, manifest: dict[str, Any] | None = None) -> StoreCheck:
        """Everything a store check reports; reads only, changes nothing.

        Derived files (data/, report/) are rebuilt from raw/ and are not checked here.
        """
        manifest = manifest or self.load()
        check = StoreCheck(runs={state: [] for state in RUN_STATES})
        for rel, entry in sorted(manifest["files"].items()):
            if not rel.startswith(("raw/", "superseded/")):
                continue
            path = self.root / rel
            check.recorded += 1
            if entry.get("pruned"):
                check.pruned.append(
                    f"{path}: pruned by nightly retention at "
                    f"{entry.get('pruned_at') or 'an unrecorded time'} (its sha256 stays in "
                    "the manifest; the raw file is gone)")
            elif not path.is_file():
                check.missing.append(f"{path}: recorded in the manifest but missing")
            elif sha256_file(path) != entry["sha256"]:
                check.altered.append(f"{path}: sha256 differs from the manifest (file was "
                                     "changed after it was collected)")
        check.leftovers = [f"{self.root / rel}: {leftover_reason(rel)}"
                           for rel in self.leftovers(manifest)]
        for run in manifest["runs"]:
            check.runs.setdefault(run["status"], []).append(
                f"{run['scenario']}/{run['repetition']}")
        return check

    def verify(self, manifest: dict[str, Any] | None = None) -> list[str]:
        """The problems found: raw files missing, changed, pruned, or present but not recorded."""
        return self.check(manifest).problems

    def leftovers(self, manifest: dict[str, Any]) -> list[str]:
        """Files of interrupted commits, relative to the campaign folder: anything staged
        or fetched but not committed, and files in raw/ or superseded/ the manifest does
        not record."""
        found = []
        for top in ("raw", "superseded", STAGED, FETCHED):
            folder = self.root / top
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.is_dir() and not path.is_symlink():
                    continue
                rel = path.relative_to(self.root).as_posix()
                if rel not in manifest["files"]:
                    found.append(rel)
        found += sorted(p.name for p in self.root.glob(f".{MANIFEST}.*") if p.is_file())
        return found

    def resume(self, parameters: dict) -> dict[str, Any]:
        """Re-open an interrupted campaign: check it, move leftovers of interrupted commits
        aside, and reset unfinished runs to pending.

        Refuses (changing nothing) only when a recorded file is missing or altered, or when
        the parameters differ from the campaign's.
        """
        manifest = self.load()
        check = self.check(manifest)
        refused = check.pruned + check.missing + check.altered
        if refused:
            raise StoreError("refusing to resume campaign " + manifest["campaign_id"] + ": "
                             + "; ".join(refused))
        old = {k: v for k, v in manifest["parameters"].items() if k != "seed"}
        new = {k: v for k, v in parameters.items() if k != "seed"}
        # a parameter added after the campaign was created (e.g. control) is absent, i.e. null
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            raise StoreError(f"{self.manifest_path}: parameters: campaign "
                             f"{manifest['campaign_id']} ran with different values for "
                             f"{', '.join('kvmnetlab_' + k for k in changed)}; resume with the "
                             "same parameters or start a new campaign")
        self.set_aside(manifest, self.leftovers(manifest),
                       "leftovers of an interrupted commit, found on resume")
        for run in manifest["runs"]:
            if run["status"] != "done":
                self._supersede(manifest, run)
                run.update(status="pending", reason=None, started_at=None, finished_at=None)
        manifest["finished_at"] = None
        manifest["resumed_at"].append(utcnow())
        self.save(manifest)
        return manifest

    def repair(self) -> tuple[dict[str, Any], list[str]]:
        """What resume does to leftovers, and nothing else: move them aside, recorded."""
        manifest = self.load()
        moved = self.set_aside(manifest, self.leftovers(manifest),
                               "leftovers of an interrupted commit, moved by the store check")
        if moved:
            self.save(manifest)
        return manifest, moved

    def set_aside(self, manifest: dict, rels: list[str], reason: str) -> list[str]:
        """Move unrecorded files, unchanged, to a new superseded/<n>/ and record them there
        (sha256 as found) with a line in the manifest's ``superseded`` list.

        Files already under superseded/ stay where they are and are only recorded. The
        manifest is not saved here. Returns the new relative paths.
        """
        rels = [rel for rel in rels if rel not in manifest["files"]]
        if not rels:
            return []
        number = self._free_number()
        moved = []
        for rel in rels:
            new_rel = aside_path(number, rel)
            if new_rel != rel:
                self._move(rel, new_rel)
            path = self.root / new_rel
            manifest["files"][new_rel] = {"sha256": sha256_file(path),
                                          "bytes": path.stat().st_size, "leftover": True}
            moved.append(new_rel)
        for top in ("raw", STAGED, FETCHED):
            remove_empty_dirs(self.root / top, keep_top=top == "raw")
        manifest.setdefault("superseded", []).append(
            {"at": utcnow(), "dir": f"superseded/{number}", "files": len(moved),
             "from": sorted({rel.split("/", 1)[0] for rel in rels}), "reason": reason})
        return moved

    def _free_number(self) -> int:
        """The lowest n for which superseded/<n>/ does not exist yet."""
        number = 1
        while (self.root / "superseded" / str(number)).exists():
            number += 1
        return number

    def _move(self, rel: str, new_rel: str) -> None:
        source, target = self.root / rel, self.root / new_rel
        if target.exists() or target.is_symlink():
            raise StoreError(f"{target}: already there; {source} is not moved over it")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, target)

    def _supersede(self, manifest: dict, run: dict) -> None:
        """Move what an unfinished run recorded in raw/ to superseded/<n>/, content unchanged
        (n: its attempt, or the next number free for this run)."""
        prefix = run_dir(run["scenario"], run["repetition"]) + "/"
        mine = [rel for rel in manifest["files"] if rel.startswith(prefix)]
        if not mine:
            return
        attempt = run.get("attempt", 1)
        tail = prefix[len("raw/"):]
        while (self.root / f"superseded/{attempt}/{tail}").exists():
            attempt += 1
        for rel in mine:
            new_rel = f"superseded/{attempt}/" + rel[len("raw/"):]
            self._move(rel, new_rel)
            manifest["files"][new_rel] = manifest["files"].pop(rel)
        remove_empty_dirs(self.root / prefix, keep_top=False)
        run["attempt"] = attempt + 1
        run.setdefault("superseded", []).append(f"superseded/{attempt}")
        manifest.setdefault("superseded", []).append(
            {"at": utcnow(), "dir": f"superseded/{attempt}", "files": len(mine),
             "from": [prefix.rstrip("/")],
             "reason": f"run {run['scenario']}/{run['repetition']} was {run['status']}"
                       + (f": {run['reason']}" if run.get("reason") else "")})

    # -- runs and files ------------------------------------------------------------

    @staticmethod
    def find_run(manifest: dict, scenario: str, repetition: int) -> dict[str, Any]:
        for run in manifest["runs"]:
            if run["scenario"] == scenario and run["repetition"] == int(repetition):
                return run
        raise StoreError(f"no run {scenario}/{repetition} in campaign {manifest['campaign_id']}")

    def commit_raw(self, manifest: dict, staging: str | Path | None, dest_rel: str,
                   outcome: tuple[dict, dict] | None = None) -> list[str]:
        """Commit every file under ``staging`` as ``dest_rel`` (a run's folder under raw/).

        The protocol: the files are staged in .incoming/ beside raw/ (moved there when on
        the same file system, else copied), every file and folder is fsynced, the staged
        folder is renamed to ``dest_rel`` in one step, and only then are the files (and
        ``outcome``: a run and the fields to set on it) recorded and the manifest saved.
        A crash leaves either nothing in ``dest_rel``, or all of it, recorded or not
        (unrecorded files are leftovers that resume moves aside).

        A run whose files are recorded is never committed again. Unrecorded files already
        at ``dest_rel`` or staged for it are moved aside first. Returns the relative paths
        committed.
        """
        dest_rel = dest_rel.rstrip("/")
        if not dest_rel.startswith("raw/"):
            raise StoreError(f"{dest_rel}: raw files are committed under raw/ only")
        recorded = sorted(rel for rel in manifest["files"] if rel.startswith(dest_rel + "/"))
        if recorded:
            raise StoreError(f"{self.root / recorded[0]}: already collected; raw files are "
                             "never rewritten")
        staged = self.root / STAGED / dest_rel[len("raw/"):]
        stale = [rel for rel in self.leftovers(manifest)
                 if rel.startswith((dest_rel + "/", staged.relative_to(self.root).as_posix()
                                    + "/"))]
        self.set_aside(manifest, stale, f"unrecorded files of {dest_rel}, found when "
                       "committing it again")
        remove_empty_dirs(self.root / dest_rel, keep_top=False)
        remove_empty_dirs(staged, keep_top=False)
        staging = Path(staging) if staging else None
        sources = (sorted(p for p in staging.rglob("*") if p.is_file())
                   if staging is not None and staging.is_dir() else [])
        committed = {}
        if sources:
            target = self.root / dest_rel
            with writing(self.root, f"the raw files of {dest_rel}"):
                make_dirs(self.root, staged.parent.relative_to(self.root))
                stage_tree(staging, staged)
                for path in sorted(p for p in staged.rglob("*") if p.is_file()):
                    rel = f"{dest_rel}/{path.relative_to(staged).as_posix()}"
                    committed[rel] = {"sha256": sha256_file(path),
                                      "bytes": path.stat().st_size}
                make_dirs(self.root, target.parent.relative_to(self.root))
                os.rename(staged, target)
                fsync_dir(target.parent)
            remove_empty_dirs(self.root / STAGED, keep_top=False)
        manifest["files"].update(committed)
        if outcome is not None:
            run, fields = outcome
            run.update(fields)
        self.save(manifest)
        return sorted(committed)

    def record_derived(self, manifest: dict, rel: str) -> None:
        """Record (or update) a derived file's checksum: data/ and report/ may be rebuilt."""
        path = self.root / rel
        manifest["files"][rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def run_dir(scenario: str, repetition: int) -> str:
    return f"raw/{scenario}/{int(repetition)}"


@dataclass
class StoreCheck:
    """What a store check found (messages name the file)."""

    runs: dict[str, list[str]]  # status -> "scenario/repetition"
    recorded: int = 0  # raw and superseded files the manifest records
    missing: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return self.altered + self.missing + self.pruned + self.leftovers


def leftover_reason(rel: str) -> str:
    top = rel.split("/", 1)[0]
    if top == STAGED:
        return "staged by a commit that did not finish"
    if top == FETCHED:
        return "fetched for a repetition that was not committed"
    if top.startswith(f".{MANIFEST}."):
        return "temporary copy of the manifest left by an interrupted write"
    return f"in {top}/ but not recorded in the manifest"


def aside_path(number: int, rel: str) -> str:
    """Where set_aside puts the leftover ``rel`` in superseded/<number>/."""
    top, _, rest = rel.partition("/")
    if top == "superseded":
        return rel
    if top in ASIDE:
        return f"superseded/{number}/{ASIDE[top]}{rest}"
    return f"superseded/{number}/other/{rel}"


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(root: Path, rel: str | Path) -> None:
    """mkdir -p ``root/rel``, fsyncing each parent that gained an entry."""
    current = root
    for part in Path(rel).parts:
        child = current / part
        if not child.is_dir():
            child.mkdir()
            fsync_dir(current)
        current = child


def stage_tree(source: Path, staged: Path) -> None:
    """Put ``source``'s files at ``staged`` (absent; its parent exists): by one rename on
    the same file system, else by copying; then fsync every file and folder under it."""
    if os.stat(source).st_dev == os.stat(staged.parent).st_dev:
        os.rename(source, staged)
    else:
        for path in sorted(source.rglob("*")):
            target = staged / path.relative_to(source)
            if path.is_dir() and not path.is_symlink():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target, follow_symlinks=False)
    for path in sorted(staged.rglob("*"), reverse=True):
        if path.is_symlink():
            continue
        if path.is_dir():
            fsync_dir(path)
        else:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(staged)
    fsync_dir(staged.parent)


def remove_empty_dirs(top: Path, keep_top: bool) -> None:
    """Remove the empty folders under ``top`` (and ``top`` itself unless ``keep_top``)."""
    if not top.is_dir() or top.is_symlink():
        return
    for path in sorted((p for p in top.rglob("*") if p.is_dir() and not p.is_symlink()),
                       key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            path.rmdir()
    if not keep_top:
        with contextlib.suppress(OSError):
            top.rmdir()


def existing_ancestor(path: str | Path) -> Path:
    """``path`` itself when it exists, else its nearest existing parent."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: str | Path) -> int:
    """Bytes an unprivileged writer can still use on the file system holding ``path``."""
    stat = os.statvfs(existing_ancestor(path))
    return stat.f_bavail * stat.f_frsize


def mount_point(path: str | Path) -> Path:
    path = existing_ancestor(path)
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


@contextlib.contextmanager
def writing(path: str | Path, what: str):
    """Turn a full file system (ENOSPC, EDQUOT) met while writing ``what`` into StoreFull,
    naming the path, the free space left and what was being written."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in FULL_ERRNOS:
            raise
        where = exc.filename2 or exc.filename or path  # a copy's target is filename2
        raise StoreFull(where, free_bytes(where), what, mount_point(where)) from exc
