# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a host's capture steps in one command, then bring the packed tar back in the same task.

The steps run in the host's own python3 as a single command on the task's connection
(SSH, ip netns exec or local): the source of module_utils/raw_capture.py (standard
library only), with a call of its ``agent_main`` on the steps appended, goes to
``python3 -`` on stdin, and the result comes back as one JSON line. This skips
Ansible's module wrapper, whose imports cost about 3 s a call in a guest under
software emulation; what runs on the host is the same code the kvmnetlab.lab.collect
module runs.

With ``fetch_to``, the tar the pack step wrote is fetched over the same connection into
``fetch_to``.part, checked against the sha256 the host computed, and only then renamed
to ``fetch_to``. With become (a lab host reached as an admin user that becomes root), the
tar belongs to the user the steps ran as, which the login user may not read: it is then
read through the same become, base64-encoded on stdout, as ``ansible.builtin.fetch``
falls back to slurp. A failed step still has its tar fetched (what was captured before the
failure comes back with it); a fetch that fails, or a tar whose sha256 differs, fails
the task with the path named.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible_collections.kvmnetlab.lab.plugins.module_utils import raw_capture

AGENT = Path(raw_capture.__file__).read_text(encoding="utf-8")
# Prints a file base64-encoded, on one line: the tar read as the become user.
READ_B64 = ("import base64, sys\n"
            "with open({path!r}, 'rb') as handle:\n"
            "    sys.stdout.write(base64.b64encode(handle.read()).decode() + '\\n')\n")


def agent_script(steps: list) -> str:
    """The program piped to the host's python3: the capture code and one call of it."""
    return f"{AGENT}\n\nagent_main({json.dumps(json.dumps(steps))})\n"


def interpreter(task_vars: dict, delegate_to: str | None) -> str:
    """The host's python3: its ansible_python_interpreter when set to a path, else python3."""
    host_vars = task_vars
    if delegate_to:
        host_vars = (task_vars.get("ansible_delegated_vars") or {}).get(delegate_to) or {}
    given = host_vars.get("ansible_python_interpreter")
    return given if isinstance(given, str) and given.startswith("/") else "python3"


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        fetch_to = args.get("fetch_to")
        steps = args.get("steps")
        problem = raw_capture.check_steps(steps)
        if problem:
            return {**result, "failed": True, "msg": problem}
        if self._task.check_mode:
            return {**result, "changed": True, "files": [], "missing": [], "pids": {},
                    "members": {}}
        python = interpreter(task_vars, self._task.delegate_to)
        done = self._low_level_execute_command(f"{python} -", in_data=agent_script(steps).encode(),
                                               sudoable=True)
        lines = (done.get("stdout") or "").strip().splitlines()
        try:
            result.update(json.loads(lines[-1]))
        except (IndexError, ValueError):
            return {**result, "failed": True, "rc": done.get("rc"),
                    "msg": f"the capture steps gave no result on {self._host_name()} "
                    f"(rc {done.get('rc')}): {(done.get('stderr') or '').strip()[-800:]}"}
        if fetch_to and result.get("tar"):
            self._fetch(result["tar"], fetch_to, result, python)
        return result

    def _host_name(self) -> str:
        return self._task.delegate_to or self._play_context.remote_addr

    def _fetch(self, tar: str, dest: str, result: dict, python: str) -> None:
        part = f"{dest}.part"
        try:
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            if not self._becomes():
                self._connection.fetch_file(tar, part)
            else:
                self._fetch_as_become_user(tar, part, python)
            got = raw_capture.sha256_file(part)
        except Exception as exc:  # any transfer error fails the task, with the path named
            result.update(failed=True, msg=self._join(
                result, f"fetching {tar} from {self._host_name()} to {dest} failed: {exc}"))
            return
        if got != result.get("tar_sha256"):
            os.unlink(part)
            result.update(failed=True, msg=self._join(
                result, f"{tar} from {self._host_name()}: sha256 {got} on the controller, "
                f"{result.get('tar_sha256')} on the host"))
            return
        os.replace(part, dest)
        result["fetched"] = dest

    def _becomes(self) -> bool:
        """Whether commands on this connection run as another user (Ansible's own test)."""
        if self._connection.become is None:
            return False
        ruser = self._get_remote_user()
        buser = self.get_become_option("become_user")
        return bool(C.BECOME_ALLOW_SAME_USER or buser != ruser or not any((ruser, buser)))

    def _fetch_as_become_user(self, tar: str, part: str, python: str) -> None:
        """Read the tar through become (base64 on stdout) into ``part`` on the controller.

        The program goes to python3 on stdin, as the capture steps do: a command without
        stdin would get a terminal from Ansible's SSH connection under become, which mixes
        stderr (sudo's own warnings) into stdout. The base64 text is the last line.
        """
        done = self._low_level_execute_command(
            f"{python} -", in_data=READ_B64.format(path=tar).encode(), sudoable=True)
        lines = (done.get("stdout") or "").strip().splitlines()
        if done.get("rc") != 0 or not lines:
            raise OSError(f"reading it as the become user failed (rc {done.get('rc')}): "
                          f"{(done.get('stderr') or '').strip()[-400:]}")
        data = base64.b64decode(lines[-1].strip(), validate=True)
        with open(part, "wb") as handle:
            handle.write(data)

    @staticmethod
    def _join(result: dict, message: str) -> str:
        """Keep the steps' own failure first when there was one."""
        return f"{result['msg']}; {message}" if result.get("failed") and result.get("msg") \
            else message
