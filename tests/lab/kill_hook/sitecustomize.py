"""A test hook for tests/lab/test_store_lab.py, put on PYTHONPATH of ansible-playbook only.

With KVMNETLAB_TEST_KILL_AFTER_RENAME_INTO set to a folder, the first rename whose
target is inside it (the result store's commit of a repetition into raw/) is made,
and then the whole process group gets SIGKILL: a hard kill in the middle of a
commit, after the files entered raw/ and before the manifest records them. The
action runs in one of ansible-playbook's workers, which has a session of its own:
the group killed is its parent's, ansible-playbook's, and then its own. Inert when
the variable is not set.
"""

import os
import signal

_PREFIX = os.environ.get("KVMNETLAB_TEST_KILL_AFTER_RENAME_INTO")

if _PREFIX:
    _rename = os.rename

    def _rename_then_kill(src, dst, *args, **kwargs):
        _rename(src, dst, *args, **kwargs)
        if os.path.abspath(os.fspath(dst)).startswith(_PREFIX.rstrip("/") + "/"):
            os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)
            os.killpg(os.getpgid(0), signal.SIGKILL)

    os.rename = _rename_then_kill
