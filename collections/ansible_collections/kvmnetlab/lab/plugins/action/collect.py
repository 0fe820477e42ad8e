# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run kvmnetlab.lab.collect on its host, then bring the packed tar back in the same task.

The module runs on the task's (delegated) host as any module does. With ``fetch_to``,
the tar its pack step wrote is fetched over the same connection (SSH, ip netns exec or
local), into ``fetch_to``.part, checked against the sha256 the host computed, and only
then renamed to ``fetch_to``. A failed module still has its tar fetched (what was
captured before the failure comes back with it); a fetch that fails, or a tar whose
sha256 differs, fails the task with the path named.
"""

from __future__ import annotations

import hashlib
import os

from ansible.plugins.action import ActionBase


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars or {})
        args = dict(self._task.args)
        fetch_to = args.pop("fetch_to", None)
        try:
            result.update(self._execute_module(module_name="kvmnetlab.lab.collect",
                                               module_args=args, task_vars=task_vars))
            tar = result.get("tar")
            if fetch_to and tar and not self._task.check_mode:
                self._fetch(tar, fetch_to, result)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _fetch(self, tar: str, dest: str, result: dict) -> None:
        host = self._task.delegate_to or self._play_context.remote_addr
        part = f"{dest}.part"
        try:
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            self._connection.fetch_file(tar, part)
            got = sha256_file(part)
        except Exception as exc:  # any transfer error fails the task, with the path named
            result.update(failed=True, msg=self._join(
                result, f"fetching {tar} from {host} to {dest} failed: {exc}"))
            return
        if got != result.get("tar_sha256"):
            os.unlink(part)
            result.update(failed=True, msg=self._join(
                result, f"{tar} from {host}: sha256 {got} on the controller, "
                f"{result.get('tar_sha256')} on the host"))
            return
        os.replace(part, dest)
        result["fetched"] = dest

    @staticmethod
    def _join(result: dict, message: str) -> str:
        """Keep the module's own failure first when there was one."""
        return f"{result['msg']}; {message}" if result.get("failed") and result.get("msg") \
            else message
