"""Private run folders on lab hosts (module_utils/raw_capture.py) and the search agent's
control port (collectors/agents/throughput.py).

A capture writes only inside a fresh folder made with tempfile.mkdtemp in a base folder
that only root may enter, checked on every call; every file is created with
O_EXCL|O_NOFOLLOW; the folder is removed once its tar is on the controller. A base made
by another user, a symbolic link or a base others may enter is refused, naming the path,
its owner and its mode. The receiver's agent talks to the sender's address only, and
takes only integer trial numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

sys.path.insert(0, str(REPO / "collections"))
from ansible_collections.kvmnetlab.lab.plugins.module_utils import (
    raw_capture as rc,
)

NOBODY = 65534
AGENT = REPO / "collectors" / "agents" / "throughput.py"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user: root only")


@pytest.fixture()
def base(tmp_path):
    """A base folder path under a private test folder (not yet created)."""
    tmp_path.chmod(0o755)
    return str(tmp_path / "kvmnetlab")


def test_the_base_is_created_private_and_each_run_gets_a_fresh_folder(base):
    first = rc.make_run_dir(base, "c1.baseline.1.kvmnl-h1")
    second = rc.make_run_dir(base, "c1.baseline.1.kvmnl-h1")
    info = os.lstat(base)
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == os.geteuid()
    assert first != second and os.path.dirname(first) == base == os.path.dirname(second)
    assert os.path.basename(first).startswith("run-c1.baseline.1.kvmnl-h1.")
    assert stat.S_IMODE(os.lstat(first).st_mode) == 0o700
    assert rc.check_run_dir(base, first) == first
    # a label from the controller never leaves the base
    odd = rc.make_run_dir(base, "../../etc/x y")
    assert os.path.dirname(odd) == base and "/" not in os.path.basename(odd)


@needs_root
def test_a_base_owned_by_another_user_is_refused_with_its_owner(base):
    os.mkdir(base, 0o700)
    os.chown(base, NOBODY, NOBODY)
    with pytest.raises(rc.UnsafeFolder) as refused:
        rc.make_run_dir(base)
    message = str(refused.value)
    assert base in message and "nobody (uid 65534)" in message and "mode 0700" in message
    assert os.listdir(base) == []  # nothing made inside it


@pytest.mark.parametrize("mode", [0o777, 0o750, 0o705])
def test_a_base_open_to_group_or_others_is_refused_with_its_mode(base, mode):
    os.mkdir(base)
    os.chmod(base, mode)
    with pytest.raises(rc.UnsafeFolder, match=f"{base}: refused .* mode {mode:04o}"):
        rc.make_run_dir(base)
    assert os.listdir(base) == []


def test_a_base_that_is_a_symbolic_link_is_refused_not_followed(base, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    os.symlink(target, base)
    with pytest.raises(rc.UnsafeFolder, match=f"{base}: refused .* a symbolic link"):
        rc.make_run_dir(base)
    assert list(target.iterdir()) == []


def test_a_base_below_a_folder_others_may_write_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # not sticky: anyone could swap the base below it
    with pytest.raises(rc.UnsafeFolder, match=f"{shared}: a folder above the run folders"):
        rc.make_run_dir(str(shared / "kvmnetlab"))
    shared.chmod(0o1777)  # sticky, like /var/tmp: fine
    assert rc.make_run_dir(str(shared / "kvmnetlab"))


def test_a_run_folder_not_made_in_the_base_is_refused(base, tmp_path):
    rc.check_base(base)
    outside = tmp_path / "run-outside"
    outside.mkdir(mode=0o700)
    for path in (str(outside), base + "/../run-outside", base + "/run-absent"):
        with pytest.raises(rc.UnsafeFolder):
            rc.check_run_dir(base, path)
    inside = Path(base) / "run-link"
    inside.symlink_to(outside)
    with pytest.raises(rc.UnsafeFolder, match="a symbolic link"):
        rc.check_run_dir(base, str(inside))


def test_a_planted_link_is_never_written_through(base, tmp_path):
    """Inputs, tool outputs, snapshots and meta files are created exclusively: a link
    planted at their name fails the step, and its target is unchanged."""
    run_dir = rc.make_run_dir(base)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    for name in ("trafgen.cfg", "ping.txt", "ping.txt.stderr", "net_dev"):
        os.symlink(victim, os.path.join(run_dir, name))
    with pytest.raises(rc.CaptureError, match=r"trafgen\.cfg: exists already"):
        rc.write_inputs(run_dir, {"trafgen.cfg": "{ eth() }\n"})
    result = rc.run_steps([
        {"do": "snapshot", "items": [{"file": "net_dev", "read": ["/proc/net/dev"]}]},
        {"do": "run", "argv": ["echo", "hi"], "dest": "ping.txt", "timeout_s": 5},
        {"do": "pack", "files": ["ping.txt", "net_dev"]}], run_dir)
    assert result["failed"] and "net_dev: exists already" in result["msg"]
    assert victim.read_text() == "precious\n"
    # the links are reported missing, never packed
    assert set(result["missing"]) == {"ping.txt", "net_dev"} and result["members"] == {}


def test_a_name_outside_the_run_folder_is_refused(base):
    run_dir = rc.make_run_dir(base)
    for name in ("../x", "/etc/x", "..", ""):
        result = rc.run_steps([{"do": "run", "argv": ["true"], "dest": name}], run_dir)
        assert result["failed"] and "a plain file name is expected" in result["msg"], name
    with pytest.raises(rc.CaptureError):
        rc.write_inputs(run_dir, {"../throughput.py": "x"})


def test_a_meta_file_rewritten_at_stop_replaces_a_link_never_follows_it(base, tmp_path):
    run_dir = rc.make_run_dir(base)
    dest = os.path.join(run_dir, "tcpdump.txt")
    rc.start_tool(["sleep", "30"], dest, settle_s=0.05)
    victim = tmp_path / "victim.json"
    victim.write_text("{}")
    meta = json.loads(Path(dest + ".meta.json").read_text())
    os.unlink(dest + ".meta.json")
    os.symlink(victim, dest + ".meta.json")
    with pytest.raises(rc.CaptureError, match="no background capture recorded"):
        rc.stop_tool(dest, "TERM")  # a link is not read as the tool's record
    os.kill(meta["pid"], 9)
    os.waitpid(meta["pid"], 0)
    rc.replace(dest + ".meta.json", b"{}\n")
    assert victim.read_text() == "{}" and not os.path.islink(dest + ".meta.json")


def test_capture_then_removal_leaves_nothing(base):
    first = rc.capture([{"do": "snapshot", "items": [{"file": "a", "argv": ["echo", "a"]}]}],
                       base, label="c.s.1.h")
    run_dir = first["run_dir"]
    second = rc.capture([{"do": "pack", "files": ["a", "a.stderr"]}], base, run_dir,
                        inline_tar=True)
    assert second["run_dir"] == run_dir and "failed" not in second
    assert second["tar"] == os.path.join(run_dir, rc.TAR_NAME)
    with tarfile.open(second["tar"]) as tar:
        assert tar.extractfile("a").read() == b"a\n"
    assert second["tar_base64"]
    assert rc.remove_run_dir(base, run_dir) == run_dir
    assert os.listdir(base) == []


@needs_root
def test_the_agent_refuses_a_base_planted_by_another_user(base):
    """What a host runs: the action plugin's program piped to python3 (-I, no site)."""
    os.mkdir(base, 0o755)
    os.chown(base, NOBODY, NOBODY)
    planted = Path(base) / "throughput.py"
    planted.write_text("print('owned')\n")
    os.chown(planted, NOBODY, NOBODY)
    source = Path(rc.__file__).read_text()
    request = {"steps": [{"do": "snapshot", "items": [{"file": "a", "argv": ["true"]}]}],
               "base_dir": base}
    done = subprocess.run([sys.executable, "-I", "-"], capture_output=True, text=True,
                          input=f"{source}\nagent_main({json.dumps(json.dumps(request))})\n")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failed"] and "owned by nobody (uid 65534), mode 0755" in result["msg"]
    assert sorted(os.listdir(base)) == ["throughput.py"]


# --- the search agent's control port ---------------------------------------------------

@contextlib.contextmanager
def _serve(tmp_path: Path, sender: str):
    """The receiver's agent on 127.0.0.1 with a stand-in counter: (process, port); the
    agent is stopped (by its PID) and its stdout file closed on the way out."""
    counter = ["sh", "-c", "echo 'tcpdump: listening on lo' >&2; trap 'echo \"0 packets "
               "received by filter\" >&2; exit 0' INT; while :; do sleep 0.05; done"]
    config = {"bind": "127.0.0.1", "port": 0, "counter": "tcpdump", "counter_argv": counter,
              "sender_address": sender, "idle_timeout_s": 20}
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        config["port"] = probe.getsockname()[1]
    (tmp_path / "rx.json").write_text(json.dumps(config))
    out = (tmp_path / "rx.jsonl").open("w")
    proc = subprocess.Popen([sys.executable, str(AGENT), "serve", str(tmp_path / "rx.json")],
                            stdout=out, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while "listening" not in (tmp_path / "rx.jsonl").read_text():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    try:
        yield proc, config["port"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()


def _connect(port: int, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5,
                                    source_address=(source, 0))


def _ask(sock: socket.socket, request: dict) -> dict:
    """The agent's answer, or {} when it closed the connection."""
    try:
        sock.sendall((json.dumps(request) + "\n").encode())
        line = sock.makefile("r").readline()
    except (ConnectionResetError, BrokenPipeError):
        return {}
    return json.loads(line) if line else {}


def test_the_agent_drops_a_connection_from_another_address_and_serves_the_sender(tmp_path):
    with _serve(tmp_path, sender="127.0.0.2") as (proc, port):
        with _connect(port, "127.0.0.1") as stranger:
            # closed at once: no answer, and nothing armed
            assert _ask(stranger, {"cmd": "arm", "trial": 1}) == {}
        with _connect(port, "127.0.0.2") as sender:
            assert _ask(sender, {"cmd": "arm", "trial": 1})["ready"] is True
            assert _ask(sender, {"cmd": "stop", "trial": 1}) == {"trial": 1, "received": 0}
            sender.sendall(b'{"cmd": "quit"}\n')
        assert proc.wait(timeout=10) == 0
    records = [json.loads(line) for line in (tmp_path / "rx.jsonl").read_text().splitlines()]
    assert {"event": "refused", "peer": "127.0.0.1"}.items() <= records[1].items()
    assert records[2]["event"] == "connected" and records[2]["peer"] == "127.0.0.2"
    assert [r["trial"] for r in records if r["event"] == "trial"] == [1]


@pytest.mark.parametrize("trial", ["../../etc/cron.d/x", "1", -1, 1.5, True, None])
def test_the_agent_takes_only_a_non_negative_integer_trial(tmp_path, trial):
    with _serve(tmp_path, sender="127.0.0.1") as (proc, port):
        with _connect(port, "127.0.0.1") as sender:
            reply = _ask(sender, {"cmd": "arm", "trial": trial})
            assert "trial must be a non-negative integer" in reply["error"], reply
            # the agent goes on serving, and a good trial still works
            assert _ask(sender, {"cmd": "arm", "trial": 0})["ready"] is True
            assert _ask(sender, {"cmd": "stop", "trial": 0})["received"] == 0
            sender.sendall(b'{"cmd": "quit"}\n')
        assert proc.wait(timeout=10) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rx.json", "rx.jsonl"]


# --- the preflight's reading of each measuring host ------------------------------------

def test_free_space_reads_the_nearest_existing_folder_and_judges_an_existing_base(base):
    absent = rc.free_space(base)
    assert absent["checked"] == os.path.dirname(base) and absent["free_bytes"] > 0
    assert absent["base_problem"] == ""
    os.mkdir(base, 0o777)
    os.chmod(base, 0o777)
    opened = rc.free_space(base)
    assert opened["checked"] == base
    assert f"{base}: refused" in opened["base_problem"] and "mode 0777" in opened["base_problem"]


def test_space_problems_name_the_host_the_path_and_the_free_bytes():
    from tests.helpers import collection_plugin

    problems = collection_plugin("filter", "campaign").run_dir_space_problems
    results = [
        {"item": "kvmnl-h1", "path": "/var/tmp/kvmnetlab", "free_bytes": 100 << 20,
         "mount": "/var", "base_problem": ""},
        {"item": "bm-receiver", "path": "/var/tmp/kvmnetlab", "free_bytes": 10 << 30,
         "mount": "/", "base_problem": "/var/tmp/kvmnetlab: refused ... owned by nobody"},
        {"item": "kvmnl-h2", "path": "/var/tmp/kvmnetlab", "free_bytes": 300 << 20,
         "mount": "/", "base_problem": ""},
        {"item": "gone", "skipped": True}]
    assert problems(results, 256) == [
        "kvmnl-h1: /var/tmp/kvmnetlab: 100.0 MiB (104857600 bytes) free on its file system "
        "(mounted on /var), below campaign_remote_min_free_mb (256.0 MiB (268435456 bytes)); "
        "free space there or lower the setting",
        "bm-receiver: /var/tmp/kvmnetlab: refused ... owned by nobody"]
    assert problems(results, 64) == ["bm-receiver: /var/tmp/kvmnetlab: refused ... owned by nobody"]


def test_run_dirs_follow_each_hosts_calls_until_the_folder_is_removed():
    from tests.helpers import collection_plugin

    run_dirs = collection_plugin("filter", "campaign").run_dirs
    results = [{"item": {"host": "h2"}, "run_dir": "/b/run-x"},
               {"item": {"host": "h1"}, "run_dir": "/b/run-y"},
               {"item": {"host": "h2"}, "run_dir": "/b/run-x", "removed": "/b/run-x"},
               {"item": {"host": "g1"}, "unreachable": True}]
    assert run_dirs(results) == {"h1": "/b/run-y"}


# --- the collect action: run folder learnt from the host, removed after the fetch -------

class _Connection:
    def __init__(self, become):
        self.become = become
        self.fetched = []

    def fetch_file(self, src, dest):
        self.fetched.append(src)
        shutil.copyfile(src, dest)


def _collect_action(monkeypatch, args, become=None):
    """The collect action plugin with a stand-in task and connection: its host commands
    run here, as they would on the host (python3 -I - with the capture code)."""
    import importlib
    from types import SimpleNamespace

    from ansible.plugins.action import ActionBase

    module = importlib.import_module("ansible_collections.kvmnetlab.lab.plugins.action.collect")
    monkeypatch.setattr(ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    action = object.__new__(module.ActionModule)
    action._task = SimpleNamespace(args=args, check_mode=False, delegate_to="kvmnl-h1")
    action._connection = _Connection(become)
    commands = []

    def execute(cmd, in_data=None, sudoable=True):
        commands.append(cmd)
        done = subprocess.run([sys.executable, *cmd.split()[1:]], input=in_data,
                              capture_output=True)
        return {"rc": done.returncode, "stdout": done.stdout.decode(),
                "stderr": done.stderr.decode()}

    action._low_level_execute_command = execute
    return action, commands


@pytest.mark.parametrize("become", [None, "sudo"])
def test_the_action_learns_the_run_folder_then_removes_it_after_a_checked_fetch(
        monkeypatch, base, tmp_path, become):
    steps = [{"do": "snapshot", "items": [{"file": "a", "argv": ["echo", "a"]}]}]
    action, commands = _collect_action(monkeypatch, {"steps": steps, "base_dir": base,
                                                     "label": "c.baseline.1.h1"}, become)
    first = action.run(task_vars={})
    assert "failed" not in first, first
    run_dir = first["run_dir"]
    assert os.path.dirname(run_dir) == base and os.path.isdir(run_dir)
    assert "fetched" not in first and "removed" not in first  # nothing packed yet
    fetch_to = tmp_path / "staging" / "1.h1.tar"
    action._task.args = {"steps": [{"do": "pack", "files": ["a", "a.stderr"]}],
                         "base_dir": base, "run_dir": run_dir, "fetch_to": str(fetch_to)}
    second = action.run(task_vars={})
    assert "failed" not in second, second
    assert second["run_dir"] == run_dir and second["fetched"] == str(fetch_to)
    with tarfile.open(fetch_to) as tar:
        assert tar.extractfile("a").read() == b"a\n"
    # fetched over the connection, or (become: the login user cannot enter the folder)
    # inside the steps' own result, never kept in the registered result
    assert action._connection.fetched == ([] if become else [second["tar"]])
    assert "tar_base64" not in second
    assert second["removed"] == run_dir and os.listdir(base) == []
    assert all(" -I -" in cmd for cmd in commands) and len(commands) == 3


def test_the_action_keeps_the_run_folder_when_the_tar_does_not_match(monkeypatch, base,
                                                                    tmp_path):
    action, _ = _collect_action(monkeypatch, {
        "steps": [{"do": "snapshot", "items": [{"file": "a", "argv": ["echo", "a"]}]},
                  {"do": "pack", "files": ["a"]}],
        "base_dir": base, "fetch_to": str(tmp_path / "h1.tar")})
    action._connection.fetch_file = lambda src, dest: Path(dest).write_bytes(b"not it")
    result = action.run(task_vars={})
    assert result["failed"] and "sha256" in result["msg"]
    assert "removed" not in result and os.path.isdir(result["run_dir"])
    assert not (tmp_path / "h1.tar").exists()
