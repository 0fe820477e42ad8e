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
to ``fetch_to``. A failed step still has its tar fetched (what was captured before the
failure comes back with it); a fetch that fails, or a tar whose sha256 differs, fails
the task with the path named. Over a become connection (which transfers files as the
login user, who cannot enter the private run folder) the tar comes back base64-encoded
in the steps' own result instead, and is checked the same way.

Every call runs in a private run folder on the host: one made by an earlier call of the
repetition (``run_dir``, from that call's result, checked again) or, without it, a fresh
one made with ``tempfile.mkdtemp`` in the host's base folder (``base_dir``: root-owned,
mode 0700, checked on every call; a base another user made, a link or a folder others
may write is refused with its path, owner and mode). Once the tar is on the controller
with its sha256 checked, the run folder is removed on the host (``removed``).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from ansible.plugins.action import ActionBase
from ansible_collections.kvmnetlab.lab.plugins.module_utils import raw_capture

AGENT = Path(raw_capture.__file__).read_text(encoding="utf-8")


DEFAULT_BASE_DIR = "/var/tmp/kvmnetlab"


def agent_script(request: dict) -> str:
    """The program piped to the host's python3: the capture code and one call of it."""
    return f"{AGENT}\n\nagent_main({json.dumps(json.dumps(request))})\n"


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
        base_dir = args.get("base_dir") or DEFAULT_BASE_DIR
        if args.get("reap"):
            return {**result, **self._reap(base_dir, task_vars)}
        problem = raw_capture.check_steps(steps)
        if problem:
            return {**result, "failed": True, "msg": problem}
        if self._task.check_mode:
            return {**result, "changed": True, "files": [], "missing": [], "pids": {},
                    "members": {}}
        self._python = interpreter(task_vars, self._task.delegate_to)
        # a become connection transfers files as the login user, who cannot read the
        # private run folder: the tar then comes back in the result itself
        inline = bool(fetch_to) and bool(getattr(self._connection, "become", None))
        answer = self._agent({"steps": steps, "base_dir": base_dir,
                              "run_dir": args.get("run_dir"), "label": args.get("label", ""),
                              "inline_tar": inline})
        inline_tar = answer.pop("tar_base64", None)  # kept out of the registered result
        result.update(answer)
        if fetch_to and result.get("tar") and self._fetch(result["tar"], fetch_to, result,
                                                          inline_tar):
            self._remove(base_dir, result)
        return result

    def _reap(self, base_dir: str, task_vars: dict) -> dict:
        """Stop the background tools a killed run left in the host's run folders."""
        if self._task.check_mode:
            return {"changed": False, "reaped": [], "skipped": True,
                    "msg": "check mode: nothing is stopped"}
        self._python = interpreter(task_vars, self._task.delegate_to)
        return self._agent({"reap": True, "base_dir": base_dir})

    def _agent(self, request: dict) -> dict:
        """Run one request of the capture code on the host (become applies). Isolated
        (-I): no module from the current folder or the user's site, no PYTHON* setting."""
        done = self._low_level_execute_command(f"{self._python} -I -",
                                               in_data=agent_script(request).encode(),
                                               sudoable=True)
        lines = (done.get("stdout") or "").strip().splitlines()
        try:
            return json.loads(lines[-1])
        except (IndexError, ValueError):
            what = ("removal of the run folder" if "remove" in request else
                    "search for a killed run's tools" if "reap" in request else "capture steps")
            return {"failed": True, "rc": done.get("rc"),
                    "msg": f"the {what} gave no result on {self._host_name()} "
                    f"(rc {done.get('rc')}): {(done.get('stderr') or '').strip()[-800:]}"}

    def _host_name(self) -> str:
        return self._task.delegate_to or self._play_context.remote_addr

    def _fetch(self, tar: str, dest: str, result: dict, inline: str | None = None) -> bool:
        """Bring the tar to ``dest`` and check its sha256; True when it is safe there."""
        part = f"{dest}.part"
        try:
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            if inline is not None:
                Path(part).write_bytes(base64.b64decode(inline))
            else:
                self._connection.fetch_file(tar, part)
            got = raw_capture.sha256_file(part)
        except Exception as exc:  # any transfer error fails the task, with the path named
            result.update(failed=True, msg=self._join(
                result, f"fetching {tar} from {self._host_name()} to {dest} failed: {exc}"))
            return False
        if got != result.get("tar_sha256"):
            os.unlink(part)
            result.update(failed=True, msg=self._join(
                result, f"{tar} from {self._host_name()}: sha256 {got} on the controller, "
                f"{result.get('tar_sha256')} on the host"))
            return False
        os.replace(part, dest)
        result["fetched"] = dest
        return True

    def _remove(self, base_dir: str, result: dict) -> None:
        """The tar is safe on the controller: remove the host's run folder."""
        done = self._agent({"remove": result["run_dir"], "base_dir": base_dir})
        if done.get("failed"):
            result.update(failed=True, msg=self._join(
                result, f"{result['run_dir']} on {self._host_name()} was fetched but not "
                f"removed: {done.get('msg')}"))
            return
        result["removed"] = done["removed"]

    @staticmethod
    def _join(result: dict, message: str) -> str:
        """Keep the steps' own failure first when there was one."""
        return f"{result['msg']}; {message}" if result.get("failed") and result.get("msg") \
            else message
