# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Commit one run's fetched raw files into the result store and record its outcome."""

from __future__ import annotations

DOCUMENTATION = r"""
module: store_commit
short_description: Move a run's staged raw files into raw/ atomically and record the run
description:
  - Runs on the controller. Every file under I(staging) is moved into
    raw/<scenario>/<repetition>/ with its sha256 recorded; already collected files are
    never rewritten. The run's status, reason and times are recorded in the manifest,
    and the staging folder is removed.
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
        from collectors.errors import StoreError
        from collectors.store import Store, run_dir, unpack_bundle, utcnow

        campaign_dir, scenario, repetition, status = self.need(
            args, "campaign_dir", "scenario", "repetition", "status")
        if status not in ("done", "failed"):
            raise AnsibleActionFail(f"status: must be done or failed, got {status!r}")
        if self._task.check_mode:
            return {"changed": True}
        store = Store(campaign_dir)
        manifest = store.load()
        run = store.find_run(manifest, scenario, int(repetition))
        staging = args.get("staging")
        committed = []
        try:
            for bundle in args.get("bundles") or []:
                unpack_bundle(bundle["tar"], f"{staging}/{bundle['host']}", bundle["members"])
            if staging:
                committed = store.commit_raw(manifest, staging, run_dir(scenario, repetition))
        except StoreError as exc:
            raise AnsibleActionFail(str(exc)) from None
        finally:
            store.save(manifest)
        if args.get("context"):
            run["context"] = args["context"]
        run.update(status=status, reason=args.get("reason"),
                   started_at=args.get("started_at") or run.get("started_at"),
                   finished_at=utcnow())
        store.save(manifest)
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
            for bundle in args.get("bundles") or []:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(bundle["tar"])
        return {"changed": True, "committed": committed}
