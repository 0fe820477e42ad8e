# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capturing on a measured host: run tools and read counters into raw files, verbatim.

Python's standard library only: the kvmnetlab.lab.collect action plugin sends this
file itself to the host's python3 (one command on the task's connection, the steps as
JSON on the last line; see ``run_steps``), so a host under software emulation does not
pay for Ansible's module wrapper. The kvmnetlab.lab.collect module uses the same
functions when it is run as a plain module. Nothing here parses what it captures:
that happens on the controller.

Everything is written inside a private run folder (see "private run folders" below):
a fresh ``tempfile.mkdtemp`` folder in a root-only base folder that is checked on
every call, every file created with O_EXCL|O_NOFOLLOW.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import math
import os
import shutil
import signal
import socket
import stat
import subprocess
import tarfile
import tempfile
import time


class CaptureError(Exception):
    """A capture step failed; the message says which file or tool."""


# --- private run folders ---------------------------------------------------------------
#
# Every file a capture writes lives in a run folder of its own, made with
# tempfile.mkdtemp inside a base folder that only the capturing user may enter. The
# base (and each folder above it) is checked on every use, so that a path another user
# created first (a folder of theirs, a symbolic link, a folder anyone may write to) is
# refused, never written through. Files are created with O_EXCL|O_NOFOLLOW: a name
# that exists already, or a planted link, fails the write instead of being followed.

#: prefix of the run folders inside the base (the controller never predicts the rest)
RUN_PREFIX = "run-"
#: the tar a pack step writes inside the run folder
TAR_NAME = "kvmnetlab-raw.tar"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeFolder(CaptureError):
    """A base or run folder that is not private to the capturing user."""


def _owner(uid):
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _describe(path, info):
    kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else \
        "a folder" if stat.S_ISDIR(info.st_mode) else "not a folder"
    return (f"{kind}, owned by {_owner(info.st_uid)}, mode "
            f"{stat.S_IMODE(info.st_mode):04o}")


def _check_ancestors(folder):
    """Every folder from / down to ``folder`` is owned by root (or this user) and none
    may be written by others unless it is sticky (like /var/tmp): no one else can swap
    the base folder for one of theirs."""
    me = os.geteuid()
    path = "/"
    for part in [""] + [p for p in folder.split("/") if p]:
        path = os.path.join(path, part) if part else path
        info = os.lstat(path)
        open_to_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if info.st_uid not in (0, me) or (open_to_others and not info.st_mode & stat.S_ISVTX):
            raise UnsafeFolder(f"{path}: a folder above the run folders is {_describe(path, info)}"
                               "; another user could replace what lies below it")


def _private(info):
    """An lstat result of a real folder (not a link) of this user's, closed to group and
    others: what a base folder and a run folder must both be."""
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
            and not stat.S_IMODE(info.st_mode) & 0o077)


def check_base(base, create=True):
    """The private base folder of run folders, as an absolute path, created (mode 0700)
    when absent. Refused, naming the path, its owner and mode, unless it is a real
    folder (not a link) owned by this user, with no access for group or others, below
    folders no one else can write to."""
    if not isinstance(base, str) or not os.path.isabs(base):
        raise UnsafeFolder(f"base_dir: an absolute path is expected, got {base!r}")
    base = os.path.normpath(base)
    parent = os.path.realpath(os.path.dirname(base))
    if not os.path.isdir(parent):
        raise UnsafeFolder(f"{base}: its parent {parent} is not a folder")
    _check_ancestors(parent)
    base = os.path.join(parent, os.path.basename(base))
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(base, 0o700)
    try:
        info = os.lstat(base)
    except FileNotFoundError:
        raise UnsafeFolder(f"{base}: no such folder") from None
    me = os.geteuid()
    if not _private(info):
        raise UnsafeFolder(
            f"{base}: refused as the private folder of raw files: it is "
            f"{_describe(base, info)}; it must be a folder owned by {_owner(me)} with mode "
            "0700. Another user may have created it: remove it, or choose another "
            "folder (campaign_remote_dir)")
    return base


def _label(text):
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in str(text or ""))
    return safe[:80]


def make_run_dir(base, label=""):
    """A fresh run folder (mode 0700) inside the checked base folder; its path."""
    base = check_base(base)
    prefix = RUN_PREFIX + (_label(label) + "." if label else "")
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def check_run_dir(base, run_dir):
    """``run_dir``, a run folder an earlier call made in ``base``: checked again (the
    base, then the folder itself: a direct child, not a link, ours, mode 0700)."""
    base = check_base(base, create=False)
    if not isinstance(run_dir, str) or not os.path.isabs(run_dir):
        raise UnsafeFolder(f"run_dir: an absolute path is expected, got {run_dir!r}")
    run_dir = os.path.normpath(run_dir)
    name = os.path.basename(run_dir)
    if os.path.dirname(run_dir) != base or not name.startswith(RUN_PREFIX):
        raise UnsafeFolder(f"{run_dir}: not a run folder of {base}")
    try:
        info = os.lstat(run_dir)
    except FileNotFoundError:
        raise UnsafeFolder(f"{run_dir}: no such run folder") from None
    if not _private(info):
        raise UnsafeFolder(f"{run_dir}: refused as a run folder: it is "
                           f"{_describe(run_dir, info)}")
    return run_dir


def remove_run_dir(base, run_dir):
    """Remove a run folder once its tar is safe on the controller (links inside are
    removed, never followed)."""
    run_dir = check_run_dir(base, run_dir)
    shutil.rmtree(run_dir)
    return run_dir


def free_space(path):
    """Room for raw files at ``path`` (absent: its nearest existing parent):
    ``{path, checked, free_bytes, mount, base_problem}``, free_bytes as an unprivileged
    writer sees it; ``base_problem`` says why an existing ``path`` would be refused as the
    private base ("" when it would not, or does not exist). Changes nothing."""
    path = os.path.normpath(os.path.abspath(path))
    checked = path
    while not os.path.isdir(checked) and checked != "/":
        checked = os.path.dirname(checked)
    fs = os.statvfs(checked)
    mount = checked
    while not os.path.ismount(mount) and mount != "/":
        mount = os.path.dirname(mount)
    problem = ""
    if os.path.lexists(path):
        try:
            check_base(path, create=False)
        except (CaptureError, OSError) as exc:
            problem = str(exc)
    return {"path": path, "checked": checked, "free_bytes": fs.f_bavail * fs.f_frsize,
            "mount": mount, "base_problem": problem}


def _name(name, what="file"):
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise CaptureError(f"{what}: {name!r}: a plain file name is expected")
    return name


def create(path, mode=0o600):
    """A new file opened for writing: never one that exists, never through a link."""
    try:
        return os.fdopen(os.open(path, _CREATE, mode), "wb")
    except FileExistsError:
        raise CaptureError(f"{path}: exists already; a run folder's files are written "
                           "once") from None
    except OSError as exc:
        raise CaptureError(f"{path}: cannot be created: {exc.strerror or exc}") from None


def read_bytes(path):
    """A file's bytes, refusing a link."""
    with os.fdopen(os.open(path, _READ), "rb") as handle:
        return handle.read()


def replace(path, data):
    """Write ``data`` to ``path`` by a new file renamed over it (a meta file rewritten
    when its tool stops): the new file is created exclusively, a link at ``path`` is
    replaced, never followed."""
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_inputs(run_dir, inputs):
    """Write input files (name -> content) into ``run_dir``; return their paths."""
    paths = []
    for name, content in (inputs or {}).items():
        path = os.path.join(run_dir, _name(name, "inputs"))
        with create(path) as handle:
            handle.write(content.encode("utf-8"))
        paths.append(path)
    return paths


def _write_meta(dest, meta):
    replace(dest + ".meta.json", (json.dumps(meta, indent=1) + "\n").encode())


def _tail(path):
    try:
        return read_bytes(path)[-400:].decode(errors="replace").strip()
    except OSError:
        return ""


def run_tool(argv, dest, timeout_s, ok_rc):
    """Run ``argv`` with stdout in ``dest`` and stderr in ``dest``.stderr; record .meta.json."""
    return run_tools([{"argv": argv, "dest": dest, "timeout_s": timeout_s, "ok_rc": ok_rc}])[0]


def run_tools(tools):
    """Run tools at the same time, each to its own files; return their metas in order.

    Each tool is ``{argv, dest, timeout_s, ok_rc, offset_s}``: it starts ``offset_s``
    seconds after the first one started (0 if absent; the first tool's own offset is
    ignored) and is killed at ``timeout_s`` after its own start. The real start times
    are kept in each ``.meta.json`` (``started_at``), so the offset actually achieved
    is on record. Every tool is waited for; the first failure is raised after that.
    """
    procs, metas = [], []
    with contextlib.ExitStack() as files:
        try:
            first = None
            for tool in tools:
                argv, dest = tool["argv"], tool["dest"]
                if first is not None:
                    pause = first + float(tool.get("offset_s") or 0.0) - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                out = files.enter_context(create(dest))
                err = files.enter_context(create(dest + ".stderr"))
                began = time.monotonic()
                meta = {"argv": argv, "started_at": time.time(), "host": socket.gethostname()}
                try:
                    proc = subprocess.Popen(argv, stdout=out, stderr=err,
                                            stdin=subprocess.DEVNULL)
                except OSError as exc:
                    raise CaptureError(f"cannot run {argv[0]}: {exc}") from None
                first = began if first is None else first
                procs.append((proc, began + float(tool["timeout_s"]), out, meta))
                metas.append(meta)
        finally:  # what was started is always waited for, and its end recorded
            for proc, deadline, out, meta in procs:
                timed_out = False
                try:
                    rc = proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    rc, timed_out = -9, True
                meta.update(rc=rc, timed_out=timed_out, finished_at=time.time())
                out.flush()
                os.fsync(out.fileno())
            for index, meta in enumerate(metas):
                _write_meta(tools[index]["dest"], meta)
    for index, meta in enumerate(metas):
        tool = tools[index]
        if meta["timed_out"]:
            raise CaptureError(f"{meta['argv'][0]} did not finish within {tool['timeout_s']} "
                               f"s; partial output kept in {tool['dest']}")
        if meta["rc"] not in tool.get("ok_rc", [0]):
            raise CaptureError(f"{meta['argv'][0]} exited {meta['rc']}: "
                               f"{_tail(tool['dest'] + '.stderr')}; output kept in "
                               f"{tool['dest']}")
    return metas


def _said(dest, text):
    for path in (dest + ".stderr", dest):
        try:
            if text.encode() in read_bytes(path):
                return True
        except OSError:
            pass
    return False


#: seconds between the lifetime's SIGTERM and SIGKILL (``timeout -k``)
LIFETIME_KILL_AFTER_S = 10
#: coreutils' timeout, by absolute path in a root-owned folder (never looked up on PATH)
TIMEOUT_BINS = ("/usr/bin/timeout", "/bin/timeout")


def start_time(pid):
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), or None: with the PID it
    names one process, even after the PID is reused."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def lifetime_launcher(lifetime_s):
    """``timeout -k 10 <lifetime>s``: a background tool outlives a killed run by at most
    its lifetime. Raises CaptureError when coreutils' timeout is absent."""
    for path in TIMEOUT_BINS:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return [path, "-k", f"{LIFETIME_KILL_AFTER_S}s", f"{math.ceil(lifetime_s)}s"]
    raise CaptureError(f"coreutils' timeout not found at {' or '.join(TIMEOUT_BINS)}: a "
                       "background tool cannot be given a lifetime")


def start_tool(argv, dest, settle_s=0.5, ready=None, ready_timeout_s=30.0, lifetime_s=None):
    """Start ``argv`` in its own session, output to files; return its PID.

    With ``lifetime_s``, it runs under ``timeout`` (:func:`lifetime_launcher`), which
    passes a stop's signal on to it and ends it when the lifetime is over.

    With ``ready``, wait until the tool writes that text to its stderr or stdout (it
    proves the capture is open; the time is kept as ``ready_at``), else pause
    ``settle_s``. A tool that exits first, or stays silent past ``ready_timeout_s``,
    fails the start.
    """
    meta = {"argv": argv, "started_at": time.time(), "host": socket.gethostname()}
    launcher = lifetime_launcher(lifetime_s) if lifetime_s else []
    if launcher:
        meta.update(launcher=launcher, lifetime_s=lifetime_s)
    with create(dest) as out, create(dest + ".stderr") as err:
        try:
            proc = subprocess.Popen([*launcher, *argv], stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=_default_stop_signals)
        except OSError as exc:
            raise CaptureError(f"cannot run {argv[0]}: {exc}") from None
    meta["pid"] = proc.pid
    meta["pid_start"] = start_time(proc.pid)
    _write_meta(dest, meta)
    if ready:
        deadline = time.monotonic() + ready_timeout_s
        while not _said(dest, ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        else:
            meta["ready_at"] = time.time()
            _write_meta(dest, meta)
            return proc.pid
        if proc.poll() is None:
            raise CaptureError(f"{argv[0]} did not say {ready!r} within {ready_timeout_s} s: "
                               f"{_tail(dest + '.stderr')}")
    else:
        time.sleep(settle_s)  # a capture tool needs a moment to open its socket
    if proc.poll() is not None:
        raise CaptureError(f"{argv[0]} exited at once ({proc.returncode}): "
                           f"{_tail(dest + '.stderr')}")
    return proc.pid


def _default_stop_signals():
    """In the child before exec: SIGINT and SIGTERM back to their defaults. A process
    started in the background by a shell, or under nohup, inherits them ignored, and a
    tool that ignores its stop signal could only be killed, without its last output."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _same_process(pid, meta):
    """Whether ``pid`` is still the process ``meta`` recorded: its start time when recorded
    (older records: the program name it was started as)."""
    if meta.get("pid_start") is not None:
        return start_time(pid) == meta["pid_start"]
    first = (meta.get("launcher") or meta["argv"])[0]
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().split(b"\0")[0].decode(errors="replace") == first
    except OSError:
        return False


def reap(base):
    """Stop what a killed run left running: every background tool recorded in a run folder
    of ``base`` (its ``.meta.json`` has a PID and no end) that still runs as the process
    recorded (PID and start time, never its name). Returns one entry per such record:
    ``{run_dir, dest, pid, tool, stopped}``, ``stopped`` false when it had ended already.
    """
    base = check_base(base, create=False) if os.path.isdir(base) else None
    found = []
    if base is None:
        return found
    for name in sorted(os.listdir(base)):
        run_dir = os.path.join(base, name)
        try:
            run_dir = check_run_dir(base, run_dir)
        except UnsafeFolder:
            continue
        for meta_path in sorted(glob.glob(os.path.join(glob.escape(run_dir), "*.meta.json"))):
            try:
                meta = json.loads(read_bytes(meta_path))
                pid = int(meta["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if "finished_at" in meta:
                continue
            dest = meta_path[:-len(".meta.json")]
            running = _alive(pid) and _same_process(pid, meta)
            problem = None
            if running:
                try:
                    stop_tool(dest, "INT")
                except CaptureError as exc:  # killed after ignoring SIGINT: still stopped
                    problem = str(exc)
            else:
                meta.update(finished_at=time.time(), stopped_by=None, killed=False)
                _write_meta(dest, meta)
            meta = json.loads(read_bytes(meta_path))
            meta["reaped"] = True
            _write_meta(dest, meta)
            found.append({"run_dir": run_dir, "dest": os.path.basename(dest), "pid": pid,
                          "tool": meta["argv"][0], "stopped": running, "problem": problem})
    return found


def _kill_group(pid):
    """SIGKILL to the tool's process group: it was started as a session leader, so the
    group is the launcher and the tool under it, nothing else."""
    try:
        same_group = os.getpgid(pid) == pid
    except OSError:
        same_group = False
    if same_group:
        os.killpg(pid, signal.SIGKILL)
    else:
        os.kill(pid, signal.SIGKILL)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_tool(dest, signame="INT", timeout_s=10.0):
    """Stop the tool started for ``dest`` by its recorded PID; record its end.

    Returns False when nothing was started for ``dest`` (its start failed).
    """
    try:
        meta = json.loads(read_bytes(dest + ".meta.json"))
        pid = int(meta["pid"])
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError) as exc:
        raise CaptureError(f"{dest}.meta.json: no background capture recorded ({exc})") \
            from None
    if "finished_at" in meta:
        return True  # stopped already (a salvage stops whatever may still run)
    same = _same_process(pid, meta)
    killed = False
    if same and _alive(pid):
        os.kill(pid, getattr(signal, "SIG" + signame))
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            _kill_group(pid)
            killed = True
    meta.update(finished_at=time.time(), stopped_by=signame, killed=killed)
    _write_meta(dest, meta)
    if killed:
        raise CaptureError(f"{meta['argv'][0]} (pid {pid}) ignored SIG{signame} for "
                           f"{timeout_s} s and was killed")
    return True


def _read(patterns, read_format):
    chunks, matched = [], False
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            if os.path.isdir(path):
                continue
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue  # e.g. write-only debugfs entries
            matched = True
            if read_format == "grep":
                chunks += [f"{path}:{line}\n".encode()
                           for line in data.decode(errors="replace").splitlines()]
            else:
                chunks.append(data)
    return b"".join(chunks), matched


def snapshot(folder, items):
    """Read files or run short commands into raw files of ``folder`` (the run folder);
    return (files, missing)."""
    files, missing = [], []
    for item in items:
        path = os.path.join(folder, _name(item.get("file"), "items"))
        name = item["file"]
        if item.get("read"):
            data, matched = _read(item["read"], item.get("read_format", "concat"))
            if not matched:
                missing.append(name)
            with create(path) as handle:
                handle.write(data)
            files.append(path)
        elif item.get("argv"):
            with create(path) as out, create(path + ".stderr") as err:
                try:
                    rc = subprocess.run(item["argv"], stdout=out, stderr=err, timeout=60,
                                        stdin=subprocess.DEVNULL, check=False).returncode
                except (OSError, subprocess.TimeoutExpired) as exc:
                    raise CaptureError(f"{name}: {item['argv'][0]}: {exc}") from None
            if rc not in item.get("ok_rc", [0]):
                raise CaptureError(f"{name}: {' '.join(item['argv'])} exited {rc}")
            files += [path, path + ".stderr"]
        else:
            raise CaptureError(f"items: {name}: needs read or argv")
    return files, missing


def pack(folder, names, dest=None):
    """Pack the named files of ``folder`` (the run folder) into an uncompressed tar in it
    (``dest``, by default TAR_NAME); return (sha256s, missing, the tar's path).

    Each member is read through a descriptor opened without following links (a link is
    reported missing, never packed), and hashed from the bytes packed."""
    dest = os.path.join(folder, _name(dest or TAR_NAME, "dest"))
    members, missing = {}, []
    tmp = dest + ".part"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # a pack cut short earlier (this folder is private)
    with create(tmp) as raw, tarfile.open(fileobj=raw, mode="w",
                                          format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            path = os.path.join(folder, _name(name, "files"))
            if path in (dest, tmp):
                raise CaptureError(f"files: {name!r} is the tar itself")
            try:
                fd = os.open(path, _READ)
            except OSError:  # absent, or a link
                missing.append(name)
                continue
            with os.fdopen(fd, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode):
                    missing.append(name)
                    continue
                data = handle.read()
            members[name] = hashlib.sha256(data).hexdigest()
            entry = tarfile.TarInfo(name)
            entry.size, entry.mtime, entry.mode = len(data), int(info.st_mtime), 0o644
            tar.addfile(entry, io.BytesIO(data))
    os.replace(tmp, dest)
    return members, missing, dest


ACTIONS = ("snapshot", "start", "run", "stop", "pack")
# Steps attempted even after an earlier step failed: background tools are always
# stopped, and what was captured is always packed.
ALWAYS = ("stop", "pack")


def check_steps(steps):
    """The first malformed step, named, or None."""
    if not isinstance(steps, list):
        return "steps: a list is expected"
    for index, step in enumerate(steps):
        if not isinstance(step, dict) or step.get("do") not in ACTIONS:
            got = step.get("do") if isinstance(step, dict) else step
            return f"steps[{index}].do: must be one of {ACTIONS}, got {got!r}"
    return None


def sha256_file(path):
    """sha256 of a file, read in chunks (the host's tar; the controller checks its copy)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _inputs(run_dir, step, result):
    if step.get("inputs"):
        result["files"] += write_inputs(run_dir, step["inputs"])


def _argv(argv, run_dir):
    """``{run_dir}`` in a tool's arguments is this run folder (its input files' home)."""
    return [str(arg).replace("{run_dir}", run_dir) for arg in argv]


def run_steps(steps, run_dir):
    """Run the steps in order in the run folder ``run_dir``; the result the module (or
    the action plugin) returns. Every ``dest``, ``file`` and ``files`` of a step is a
    plain file name in that folder.

    After a failed step only ``stop`` and ``pack`` steps run; the result then has
    ``failed`` and ``msg`` naming the first failed step.
    """
    result = {"changed": True, "run_dir": run_dir, "files": [], "missing": [], "pids": {},
              "members": {}}
    error = None

    def path(name, what="dest"):
        return os.path.join(run_dir, _name(name, what))

    for index, step in enumerate(steps):
        if error is not None and step["do"] not in ALWAYS:
            continue
        try:
            if step["do"] == "snapshot":
                files, missing = snapshot(run_dir, step["items"])
                result["files"] += files
                result["missing"] += missing
            elif step["do"] == "start":
                _inputs(run_dir, step, result)
                result["pids"][step["dest"]] = start_tool(_argv(step["argv"], run_dir),
                                                          path(step["dest"]),
                                                          ready=step.get("ready"),
                                                          lifetime_s=step.get("lifetime_s"))
            elif step["do"] == "run":
                tools = [step, *step.get("together", [])]
                for tool in tools:  # each tool's own inputs (one flow's load each)
                    _inputs(run_dir, tool, result)
                    dest = path(tool["dest"])
                    result["files"] += [dest, dest + ".stderr", dest + ".meta.json"]
                metas = run_tools([
                    {"argv": _argv(tool["argv"], run_dir), "dest": path(tool["dest"]),
                     "timeout_s": float(tool.get("timeout_s", 600)),
                     "ok_rc": tool.get("ok_rc", [0]), "offset_s": tool.get("offset_s")}
                    for tool in tools])
                result["rc"] = metas[0]["rc"]
            elif step["do"] == "stop":
                stop_tool(path(step["dest"]), step.get("signal", "INT"))
            else:
                result["members"], missing, tar = pack(run_dir, step["files"],
                                                       step.get("dest"))
                result["tar"] = tar
                result["tar_sha256"] = sha256_file(tar)
                result["missing"] += missing
        except (CaptureError, OSError) as exc:
            error = error or f"steps[{index}] ({step['do']}): {exc}"
    if error:
        result.update(failed=True, msg=error)
    return result


def capture(steps, base_dir, run_dir=None, label="", inline_tar=False):
    """One call's steps in its run folder: ``run_dir`` (made by an earlier call of this
    repetition, checked again) or, without it, a fresh one made in ``base_dir``. With
    ``inline_tar``, the packed tar comes back in the result (base64), for connections
    whose file transfer runs as another user than the capture (become)."""
    try:
        run_dir = check_run_dir(base_dir, run_dir) if run_dir else \
            make_run_dir(base_dir, label)
    except (CaptureError, OSError) as exc:
        return {"failed": True, "changed": False, "msg": str(exc), "files": [], "missing": [],
                "pids": {}, "members": {}}
    result = run_steps(steps, run_dir)
    if inline_tar and result.get("tar"):
        import base64

        result["tar_base64"] = base64.b64encode(read_bytes(result["tar"])).decode()
    return result


def agent_main(request_json):
    """Serve one request (a JSON text), print the result as one JSON line on stdout.

    The request is ``{steps, base_dir, run_dir, label, inline_tar}`` (see
    :func:`capture`) or ``{remove, base_dir}`` (a run folder whose tar the controller
    has verified). The action plugin appends ``agent_main(<the request's JSON as a
    string literal>)`` to this file and pipes it to ``python3 -`` on the host.
    """
    request = json.loads(request_json)
    if "reap" in request:
        try:
            result = {"reaped": reap(request["base_dir"])}
            result["changed"] = any(r["stopped"] for r in result["reaped"])
        except (CaptureError, OSError) as exc:
            result = {"failed": True, "changed": False, "msg": str(exc)}
    elif "remove" in request:
        try:
            result = {"changed": True,
                      "removed": remove_run_dir(request["base_dir"], request["remove"])}
        except (CaptureError, OSError) as exc:
            result = {"failed": True, "changed": False, "msg": str(exc)}
    else:
        problem = check_steps(request.get("steps"))
        result = {"failed": True, "msg": problem} if problem else capture(
            request["steps"], request.get("base_dir"), request.get("run_dir"),
            request.get("label", ""), bool(request.get("inline_tar")))
    print(json.dumps(result))
