# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capturing on a measured host: run tools and read counters into raw files, verbatim.

Python's standard library only: the kvmnetlab.lab.collect action plugin sends this
file itself to the host's python3 (one command on the task's connection, the steps as
JSON on the last line; see ``run_steps``), so a host under software emulation does not
pay for Ansible's module wrapper. The kvmnetlab.lab.collect module uses the same
functions when it is run as a plain module. Nothing here parses what it captures:
that happens on the controller.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import signal
import socket
import subprocess
import tarfile
import time


class CaptureError(Exception):
    """A capture step failed; the message says which file or tool."""


def write_inputs(run_dir, inputs):
    """Write input files (name -> content) into ``run_dir``; return their paths."""
    paths = []
    for name, content in (inputs or {}).items():
        if "/" in name or name in (".", ".."):
            raise CaptureError(f"inputs: {name!r}: a plain file name is expected")
        path = os.path.join(run_dir, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)
        paths.append(path)
    return paths


def _write_meta(dest, meta):
    with open(dest + ".meta.json", "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=1)
        handle.write("\n")


def _tail(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()[-400:].decode(errors="replace").strip()
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
                os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
                if first is not None:
                    pause = first + float(tool.get("offset_s") or 0.0) - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                out = files.enter_context(open(dest, "wb"))
                err = files.enter_context(open(dest + ".stderr", "wb"))
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
            with open(path, "rb") as handle:
                if text.encode() in handle.read():
                    return True
        except OSError:
            pass
    return False


def start_tool(argv, dest, settle_s=0.5, ready=None, ready_timeout_s=30.0):
    """Start ``argv`` in its own session, output to files; return its PID.

    With ``ready``, wait until the tool writes that text to its stderr or stdout (it
    proves the capture is open; the time is kept as ``ready_at``), else pause
    ``settle_s``. A tool that exits first, or stays silent past ``ready_timeout_s``,
    fails the start.
    """
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    meta = {"argv": argv, "started_at": time.time(), "host": socket.gethostname()}
    with open(dest, "wb") as out, open(dest + ".stderr", "wb") as err:
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        except OSError as exc:
            raise CaptureError(f"cannot run {argv[0]}: {exc}") from None
    meta["pid"] = proc.pid
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
        with open(dest + ".meta.json", encoding="utf-8") as handle:
            meta = json.load(handle)
        pid = int(meta["pid"])
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError) as exc:
        raise CaptureError(f"{dest}.meta.json: no background capture recorded ({exc})") \
            from None
    if "finished_at" in meta:
        return True  # stopped already (a salvage stops whatever may still run)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            same = handle.read().split(b"\0")[0].decode(errors="replace") == meta["argv"][0]
    except OSError:
        same = False
    killed = False
    if same and _alive(pid):
        os.kill(pid, getattr(signal, "SIG" + signame))
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
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
    """Read files or run short commands into raw files; return (files, missing)."""
    os.makedirs(folder, exist_ok=True)
    files, missing = [], []
    for item in items:
        name = item.get("file")
        if not name or "/" in name:
            raise CaptureError(f"items: file must be a plain file name, got {name!r}")
        path = os.path.join(folder, name)
        if item.get("read"):
            data, matched = _read(item["read"], item.get("read_format", "concat"))
            if not matched:
                missing.append(name)
            with open(path, "wb") as handle:
                handle.write(data)
            files.append(path)
        elif item.get("argv"):
            with open(path, "wb") as out, open(path + ".stderr", "wb") as err:
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


def pack(folder, names, dest):
    """Pack the named files of ``folder`` into an uncompressed tar; return (sha256s, missing)."""
    members, missing = {}, []
    tmp = dest + ".part"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            if "/" in name or name in (".", ".."):
                raise CaptureError(f"files: {name!r}: plain file names only")
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                missing.append(name)
                continue
            with open(path, "rb") as handle:
                members[name] = hashlib.sha256(handle.read()).hexdigest()
            tar.add(path, arcname=name, recursive=False)
    os.replace(tmp, dest)
    return members, missing


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


def _inputs(step, result):
    if step.get("inputs"):
        folder = os.path.dirname(step["dest"])
        os.makedirs(folder, exist_ok=True)
        result["files"] += write_inputs(folder, step["inputs"])


def run_steps(steps):
    """Run the steps in order; the result the module (or the action plugin) returns.

    After a failed step only ``stop`` and ``pack`` steps run; the result then has
    ``failed`` and ``msg`` naming the first failed step.
    """
    result = {"changed": True, "files": [], "missing": [], "pids": {}, "members": {}}
    error = None
    for index, step in enumerate(steps):
        if error is not None and step["do"] not in ALWAYS:
            continue
        try:
            if step["do"] == "snapshot":
                files, missing = snapshot(step["dir"], step["items"])
                result["files"] += files
                result["missing"] += missing
            elif step["do"] == "start":
                _inputs(step, result)
                result["pids"][step["dest"]] = start_tool(step["argv"], step["dest"],
                                                          ready=step.get("ready"))
            elif step["do"] == "run":
                tools = [step, *step.get("together", [])]
                for tool in tools:  # each tool's own inputs (one flow's load each)
                    _inputs(tool, result)
                    result["files"] += [tool["dest"], tool["dest"] + ".stderr",
                                        tool["dest"] + ".meta.json"]
                metas = run_tools([
                    {"argv": [arg.replace("{run_dir}", os.path.dirname(tool["dest"]))
                              for arg in tool["argv"]],
                     "dest": tool["dest"], "timeout_s": float(tool.get("timeout_s", 600)),
                     "ok_rc": tool.get("ok_rc", [0]), "offset_s": tool.get("offset_s")}
                    for tool in tools])
                result["rc"] = metas[0]["rc"]
            elif step["do"] == "stop":
                stop_tool(step["dest"], step.get("signal", "INT"))
            else:
                result["members"], missing = pack(step["dir"], step["files"], step["dest"])
                result["tar"] = step["dest"]
                result["tar_sha256"] = sha256_file(step["dest"])
                result["missing"] += missing
        except (CaptureError, OSError) as exc:
            error = error or f"steps[{index}] ({step['do']}): {exc}"
    if error:
        result.update(failed=True, msg=error)
    return result


def agent_main(steps_json):
    """Run the steps (a JSON text), print the result as one JSON line on stdout.

    The action plugin appends ``agent_main(<the steps' JSON as a string literal>)`` to
    this file and pipes it to ``python3 -`` on the host.
    """
    steps = json.loads(steps_json)
    problem = check_steps(steps)
    result = {"failed": True, "msg": problem} if problem else run_steps(steps)
    print(json.dumps(result))
