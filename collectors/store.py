"""The result store: results/<campaign-id>/ (see docs/result-store.md).

Raw files are committed once (staged copy -> atomic rename) with their sha256
in the manifest and never rewritten. Every write is atomic. A campaign that was
interrupted is resumed by verifying what is there and running what is missing.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from collectors.errors import StoreError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RUN_STATES = ("pending", "done", "failed", "not_run", "skipped")


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
    """Write ``data`` to ``path`` through a temporary file and a rename."""
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

    def load(self) -> dict[str, Any]:
        try:
            with open(self.manifest_path, encoding="utf-8") as handle:
                manifest = json.load(handle)
        except FileNotFoundError:
            raise StoreError(f"{self.manifest_path}: no manifest (not a results folder)") from None
        except json.JSONDecodeError as exc:
            raise StoreError(f"{self.manifest_path}: not valid JSON: line {exc.lineno}: "
                             f"{exc.msg}") from None
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        if version != FORMAT_VERSION:
            raise StoreError(f"{self.manifest_path}: format_version: expected {FORMAT_VERSION}, "
                             f"got {version!r}")
        for key in ("campaign_id", "runs", "files", "scenarios", "parameters"):
            if key not in manifest:
                raise StoreError(f"{self.manifest_path}: {key}: missing")
        return manifest

    def save(self, manifest: dict[str, Any]) -> None:
        atomic_write_json(self.manifest_path, manifest)

    # -- creation and resumption -------------------------------------------------

    def create(self, campaign_id: str, parameters: dict, scenarios: dict, order: list,
               lab: dict, git: dict) -> dict[str, Any]:
        manifest = {
            "format_version": FORMAT_VERSION,
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
        }
        (self.root / "raw").mkdir(parents=True, exist_ok=True)
        self.save(manifest)
        return manifest

    def verify(self, manifest: dict[str, Any] | None = None) -> list[str]:
        """Return the problems found: raw files missing, changed, or present but not recorded.

        Derived files (data/, report/) are rebuilt from raw/ and are not checked here.
        """
        manifest = manifest or self.load()
        problems = []
        for rel, entry in sorted(manifest["files"].items()):
            if not rel.startswith(("raw/", "superseded/")):
                continue
            path = self.root / rel
            if entry.get("pruned"):
                problems.append(f"{path}: pruned by nightly retention at "
                                f"{entry.get('pruned_at') or 'an unrecorded time'} (its sha256 "
                                f"stays in the manifest; the raw file is gone)")
            elif not path.exists():
                problems.append(f"{path}: recorded in the manifest but missing")
            elif sha256_file(path) != entry["sha256"]:
                problems.append(f"{path}: sha256 differs from the manifest (file was changed "
                                f"after it was collected)")
        raw = self.root / "raw"
        if raw.exists():
            for path in sorted(p for p in raw.rglob("*") if p.is_file()
                               and not p.name.startswith(".")):
                rel = path.relative_to(self.root).as_posix()
                if rel not in manifest["files"]:
                    problems.append(f"{path}: in raw/ but not recorded in the manifest")
        return problems

    def resume(self, parameters: dict) -> dict[str, Any]:
        """Re-open an interrupted campaign: verify it and reset unfinished runs to pending."""
        manifest = self.load()
        problems = self.verify(manifest)
        if problems:
            raise StoreError("refusing to resume campaign " + manifest["campaign_id"] + ": "
                             + "; ".join(problems))
        old = {k: v for k, v in manifest["parameters"].items() if k != "seed"}
        new = {k: v for k, v in parameters.items() if k != "seed"}
        # a parameter added after the campaign was created (e.g. control) is absent, i.e. null
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            raise StoreError(f"{self.manifest_path}: parameters: campaign "
                             f"{manifest['campaign_id']} ran with different values for "
                             f"{', '.join('kvmnetlab_' + k for k in changed)}; resume with the "
                             "same parameters or start a new campaign")
        for run in manifest["runs"]:
            if run["status"] != "done":
                self._supersede(manifest, run)
                run.update(status="pending", reason=None, started_at=None, finished_at=None)
        manifest["finished_at"] = None
        manifest["resumed_at"].append(utcnow())
        self.save(manifest)
        return manifest

    def _supersede(self, manifest: dict, run: dict) -> None:
        """Move what an unfinished run left in raw/ to superseded/<n>/, content unchanged."""
        prefix = run_dir(run["scenario"], run["repetition"]) + "/"
        mine = [rel for rel in manifest["files"] if rel.startswith(prefix)]
        if not mine:
            return
        attempt = run.get("attempt", 1)
        for rel in mine:
            new_rel = f"superseded/{attempt}/" + rel[len("raw/"):]
            target = self.root / new_rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.root / rel, target)
            manifest["files"][new_rel] = manifest["files"].pop(rel)
        run["attempt"] = attempt + 1
        run.setdefault("superseded", []).append(f"superseded/{attempt}")

    # -- runs and files ------------------------------------------------------------

    @staticmethod
    def find_run(manifest: dict, scenario: str, repetition: int) -> dict[str, Any]:
        for run in manifest["runs"]:
            if run["scenario"] == scenario and run["repetition"] == int(repetition):
                return run
        raise StoreError(f"no run {scenario}/{repetition} in campaign {manifest['campaign_id']}")

    def commit_raw(self, manifest: dict, staging: str | Path, dest_rel: str) -> list[str]:
        """Move every file under ``staging`` into ``dest_rel`` (under raw/), atomically.

        A file already recorded is never rewritten: committing it again is an error.
        Returns the relative paths committed.
        """
        staging = Path(staging)
        committed = []
        for source in sorted(p for p in staging.rglob("*") if p.is_file()):
            rel = (Path(dest_rel) / source.relative_to(staging)).as_posix()
            if rel in manifest["files"]:
                raise StoreError(f"{self.root / rel}: already collected; raw files are never "
                                 "rewritten")
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = sha256_file(source)
            size = source.stat().st_size
            tmp = target.with_name(f".{target.name}.incoming")
            shutil.copyfile(source, tmp)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
            manifest["files"][rel] = {"sha256": digest, "bytes": size}
            committed.append(rel)
        return committed

    def record_derived(self, manifest: dict, rel: str) -> None:
        """Record (or update) a derived file's checksum: data/ and report/ may be rebuilt."""
        path = self.root / rel
        manifest["files"][rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def unpack_bundle(tar_path: str | Path, into: str | Path, members: dict[str, str]) -> list[str]:
    """Unpack a host's tar of raw files into ``into``, checking each member's sha256.

    ``members`` is name -> sha256 as computed on the host before the transfer.
    """
    import tarfile

    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path) as tar:
        names = tar.getnames()
        if sorted(names) != sorted(members):
            raise StoreError(f"{tar_path}: holds {sorted(names)}, the host packed "
                             f"{sorted(members)}")
        tar.extractall(into, filter="data")
    for name, digest in members.items():
        if sha256_file(into / name) != digest:
            raise StoreError(f"{tar_path}: {name}: sha256 differs from the host's; the "
                             "transfer corrupted it")
    return sorted(names)


def run_dir(scenario: str, repetition: int) -> str:
    return f"raw/{scenario}/{int(repetition)}"
