# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Commit one run's fetched raw files into the result store and record its outcome."""

from __future__ import annotations

import contextlib
import os
import shutil

from ansible.errors import AnsibleActionFail
from ansible_collections.kvmnetlab.lab.plugins.modules.store_commit import DOCUMENTATION
from ansible_collections.kvmnetlab.lab.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    DOCUMENTATION = DOCUMENTATION  # its options are the argument spec

    def act(self, args, task_vars):
        from kvmnetlab.bundle import unpack_bundle
        from kvmnetlab.errors import StoreError, StoreFull, human_bytes
        from kvmnetlab.store import (
            Store,
            free_bytes,
            mount_point,
            run_dir,
            utcnow,
            writing,
        )

        campaign_dir, scenario = args["campaign_dir"], args["scenario"]
        repetition, status = args["repetition"], args["status"]  # status: done or failed
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
