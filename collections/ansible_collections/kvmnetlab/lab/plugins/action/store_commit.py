# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Commit one run's fetched raw files into the result store and record its outcome."""

from __future__ import annotations

DOCUMENTATION = r"""
module: store_commit
short_description: Move a run's staged raw files into raw/ atomically and record the run
description:
  - Runs on the controller. The files under I(staging) enter raw/<scenario>/<repetition>/
    all at once (staged beside raw/, fsynced, renamed) and only then are recorded, with
    their sha256 and the run's status, reason and times, in one write of the manifest.
    A run already collected is never rewritten. The staging folder is removed.
  - When the results file system has less free space than the commit may need (the
    tars, twice the manifest, 1 MiB), or fills up while it writes, it fails with
    C(store_full) set and a message naming the path, the free space and what was being
    written; the manifest stays as it was.
options:
  campaign_dir: {description: The campaign folder., type: path, required: true}
  scenario: {description: Scenario name., type: str, required: true}
  repetition: {description: Repetition number (1-based)., type: int, required: true}
  staging: {description: Folder the raw files were fetched into., type: path}
  bundles:
    description:
      - Tars fetched from the hosts, each C({host, tar, members}) with C(members) the
        sha256 of every file as computed on the host; unpacked into I(staging)/<host>/ and
        checked before anything is stored.
    type: list
    elements: dict
    default: []
  status: {description: done or failed., type: str, required: true}
  reason: {description: Why the run failed., type: str}
  started_at: {description: ISO time the run started., type: str}
  context: {description: "Hosts, endpoint and collectors the run used (kept for parsing).", type: dict}
author: kvmnetlab developers
"""

import contextlib
import os
import shutil

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    def act(self, args, task_vars):
        from collectors.errors import StoreError, StoreFull
        from collectors.store import (
            Store,
            free_bytes,
            human_bytes,
            mount_point,
            run_dir,
            unpack_bundle,
            utcnow,
            writing,
        )

        campaign_dir, scenario, repetition, status = self.need(
            args, "campaign_dir", "scenario", "repetition", "status")
        if status not in ("done", "failed"):
            raise AnsibleActionFail(f"status: must be done or failed, got {status!r}")
        if self._task.check_mode:
            return {"changed": True}
        store = Store(campaign_dir)
        staging = args.get("staging")
        bundles = args.get("bundles") or []
        try:
            manifest = store.load()
            run = store.find_run(manifest, scenario, int(repetition))
            what = f"the raw files of {scenario} rep {repetition}"
            needed = needed_bytes(bundles, store.manifest_path)
            free = free_bytes(campaign_dir)
            if free < needed:
                raise StoreFull(campaign_dir, free, f"{what} ({human_bytes(needed)} needed with "
                                "the manifest and a reserve)", mount_point(campaign_dir))
            for bundle in bundles:
                with writing(f"{staging}/{bundle['host']}",
                             f"{what} (unpacking {bundle['host']}'s tar)"):
                    unpack_bundle(bundle["tar"], f"{staging}/{bundle['host']}",
                                  bundle["members"])
            fields = {"status": status, "reason": args.get("reason"),
                      "started_at": args.get("started_at") or run.get("started_at"),
                      "finished_at": utcnow()}
            if args.get("context"):
                fields["context"] = args["context"]
            committed = store.commit_raw(manifest, staging, run_dir(scenario, repetition),
                                         outcome=(run, fields))
        except StoreFull as exc:
            # the campaign must stop here (run.yml's rescue checks store_full)
            return {"failed": True, "store_full": True, "msg": str(exc),
                    "free_bytes": exc.free, "path": exc.path}
        except StoreError as exc:
            raise AnsibleActionFail(str(exc)) from None
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
            for bundle in bundles:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(bundle["tar"])
        return {"changed": True, "committed": committed}


#: space kept free beyond what a commit writes (bytes): folders, file system metadata
RESERVE_BYTES = 1 << 20


def needed_bytes(bundles, manifest_path):
    """Bytes a commit may write: the tars unpacked (about their size), the manifest twice
    (the new copy beside the old one until the rename) and a reserve."""
    tars = sum(os.path.getsize(b["tar"]) for b in bundles if os.path.exists(b["tar"]))
    manifest = os.path.getsize(manifest_path) if os.path.exists(manifest_path) else 0
    return tars + 2 * manifest + RESERVE_BYTES
