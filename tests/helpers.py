"""Shared helpers of the tests: paths of the checkout, the project's playbooks, modules
and plugins run exactly as a user would, the embedded lab's names, opt-in marks.

Test files import what they use from here (``from tests.helpers import ...``);
tests/conftest.py holds only pytest fixtures."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"  # fixtures/, analysis_data/, kernel_patches/ are shared by the folders
BIN = Path(sys.executable).parent
# Module files loaded by path import the collection's module_utils by FQCN, as Ansible does.
if str(REPO / "collections") not in sys.path:
    sys.path.insert(0, str(REPO / "collections"))


PLUGINS = REPO / "collections/ansible_collections/kvmnetlab/lab/plugins"
MODULES = PLUGINS / "modules"


def collection_plugin(kind: str, name: str):
    """Import one of the collection's plugin files (``plugins/<kind>s/<name>.py``, or
    ``plugins/<kind>/`` for filter) by path, as its own Python module."""
    folder = PLUGINS / (kind if kind == "filter" else f"{kind}s")
    spec = importlib.util.spec_from_file_location(f"kvmnetlab_{kind}_{name}",
                                                  folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def collection_module(name: str):
    """Import one of the collection's module files by path, as its own Python module."""
    return collection_plugin("module", name)


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    return env


def playbook(*args: str, extra: dict | None = None, timeout: int = 1800,
             check: bool = False) -> subprocess.CompletedProcess:
    """Run ansible-playbook from the checkout; ``extra`` becomes -e key=value pairs."""
    cmd = [str(BIN / "ansible-playbook"), *args]
    for key, value in (extra or {}).items():
        cmd += ["-e", f"{key}={value}"]
    done = subprocess.run(cmd, cwd=REPO, env=ansible_env(), capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n"
                             f"{done.stdout[-6000:]}\n{done.stderr[-3000:]}")
    return done


def adhoc(host: str, module: str, args: dict, *extra: str,
          timeout: int = 180) -> tuple[int, dict, str]:
    """Run one module ad hoc on ``host`` from the checkout (ansible.cfg applies).

    Returns rc, the module's result, and stderr (where Ansible prints its warnings).
    """
    done = subprocess.run(
        [str(BIN / "ansible"), host, "-m", module, "-a", json.dumps(args), *extra],
        cwd=REPO, env={**ansible_env(), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                       "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
                       "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
        capture_output=True, text=True, timeout=timeout,
    )
    out = done.stdout
    assert "=> {" in out, f"no result from ansible ({done.returncode}):\n{out}\n{done.stderr}"
    return done.returncode, json.loads(out[out.index("=> {") + 3:]), done.stderr


def recap(output: str) -> dict[str, dict[str, int]]:
    """Per-host counters of the PLAY RECAP (the last one in ``output``)."""
    hosts: dict[str, dict[str, int]] = {}
    lines = output.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("PLAY RECAP"))
    for line in lines[start + 1:]:
        if not re.match(r"^\S+\s*:\s*ok=\d", line):
            continue  # other callbacks' lines (e.g. kvmnetlab.lab.phase_times) may follow
        host, _, counters = line.partition(":")
        pairs = [item.split("=") for item in counters.split()]
        hosts[host.strip()] = {key: int(value) for key, value in pairs}
    return hosts


def process_running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its (new) parent to reap it
    (PID 1 here may reap an orphan late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def lab_guest(name: str, index: int, **over) -> dict:
    """One entry of guest_vm_guests on the embedded lab's addresses (198.18.1.<10+index>)."""
    return {"name": name, "index": index, "memory_mb": 768, "vcpus": 1,
            "data_ip": f"198.18.1.{10 + index}", "mgmt_ip": f"198.19.0.{10 + index}",
            "netdev": {"vhost": False, "queues": 1, "poll_us": None},
            "pin": {"vcpus": None, "io_thread": None}, **over}


def lab_namespaces() -> list[str]:
    """The embedded lab's network namespaces (kvm*), not the rehearsal lab's (kvmnl-rh),
    which may be up beside it (tests/lab/test_rehearsal_lab.py checks that one)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = (line.split()[0] for line in out.splitlines() if line.startswith("kvm"))
    return sorted(name for name in names if name != "kvmnl-rh")


# --- the opt-in kernel tests (marker `slow`) share their inputs and their cache ---------
KERNEL_PATCHES = TESTS / "kernel_patches"
KERNEL_CACHE = Path(os.environ.get("KVMNETLAB_KERNEL_CACHE", REPO / ".cache" / "kernel"))
KERNEL_MARKER = "kvmnetlab-elvis-marker 1"  # what 0001-proc-kvmnetlab-marker.patch shows


def slow_kernel_marks(what: str) -> list:
    """Marks of a test that builds a kernel: opt-in with KVMNETLAB_SLOW=1, root only."""
    return [
        pytest.mark.slow,
        pytest.mark.skipif(os.environ.get("KVMNETLAB_SLOW") != "1",
                           reason=f"slow: set KVMNETLAB_SLOW=1 ({what})"),
        pytest.mark.skipif(os.geteuid() != 0, reason="needs root (apt, network namespaces)"),
    ]


def extended_marks(what: str) -> list:
    """Marks of a lab test beyond the default run (which keeps the end-to-end campaign):
    opt-in with KVMNETLAB_EXTENDED=1, root only. The README's Tests section lists them."""
    return [
        pytest.mark.extended,
        pytest.mark.skipif(os.environ.get("KVMNETLAB_EXTENDED") != "1",
                           reason=f"extended: set KVMNETLAB_EXTENDED=1 ({what})"),
        pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    ]


def extended(what: str):
    """Decorator form of ``extended_marks``, for one test of a module."""
    def mark(test):
        for each in extended_marks(what):
            test = each(test)
        return test
    return mark


def role_spec(role: Path) -> dict:
    """The ``main`` entry point of a role's meta/argument_specs.yml."""
    import yaml

    return yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())[
        "argument_specs"]["main"]


def night_status(results: Path, night: str) -> dict:
    """The status.json kvmnetlab-nightly wrote for ``night`` under ``results``."""
    return json.loads((results / night / "nightly" / "status.json").read_text())


def run_night(config: Path, night: str, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    """One real night: kvmnetlab-nightly with ``config``, as a schedule would run it; its exit
    and its status.json (found through the config's results_dir)."""
    import yaml

    done = subprocess.run([str(BIN / "kvmnetlab-nightly"), "--config", str(config),
                           "--night-id", night, *extra], cwd=REPO, capture_output=True,
                          text=True, timeout=3600, check=False)
    print(f"night {night}: exit {done.returncode}\n{done.stdout[-2500:]}\n{done.stderr[-800:]}")
    results = Path(yaml.safe_load(config.read_text())["results_dir"])
    return done, night_status(results, night)


@contextmanager
def tmpfs(where: Path, size: str):
    """A tmpfs of ``size`` (mount's syntax, e.g. 8m) mounted at ``where`` for the block."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                   check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


# --- commands, namespaces, Ansible's output ------------------------------------------------
def sh(*argv: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run ``argv`` (no shell); with ``check``, a non-zero exit fails with its stderr."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {done.stderr}")
    return done


def namespaces() -> set[str]:
    """Every network namespace of the machine (``ip netns list``)."""
    out = sh("ip", "netns", "list").stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def flat(out: str) -> str:
    """Ansible folds long messages over several lines: compare with single spaces."""
    return " ".join(out.split())


# --- a role run from a playbook the test writes ---------------------------------------------
def local_play(tmp_path: Path, play: str, variables: dict, *args: str, name: str = "run",
               host: str = "localhost", env: dict[str, str] | None = None,
               timeout: int = 1800) -> tuple[subprocess.CompletedProcess, dict | None]:
    """Run the playbook text ``play`` on ``host`` over a local connection, from the checkout.

    The play is written to ``<name>-play.yml`` in ``tmp_path``; ``variables`` become extra
    vars (``<name>-vars.json``, with this Python as the interpreter), and ``facts_out``
    names ``<name>-facts.json``, where a post task may save what the role set as JSON.
    ``env`` is added to this process's environment. Returns the process and those facts
    (None when the file was not written).
    """
    play_file = tmp_path / f"{name}-play.yml"
    play_file.write_text(play)
    facts = tmp_path / f"{name}-facts.json"
    extra = tmp_path / f"{name}-vars.json"
    extra.write_text(json.dumps({**variables, "facts_out": str(facts),
                                 "ansible_python_interpreter": sys.executable}))
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", f"{host},", "-c", "local", "-e", f"@{extra}",
         str(play_file), *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
             "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_NOCOLOR": "1", **(env or {})})
    return done, json.loads(facts.read_text()) if facts.exists() else None


# --- role READMEs: the option table generated from meta/argument_specs.yml ------------------
def _cell(text) -> str:
    text = " ".join(text) if isinstance(text, list) else str(text)
    return " ".join(text.split()).replace("|", "\\|")


def _option_type(option: dict) -> str:
    kind = option.get("type", "str")
    if kind == "list":
        kind = f"list of {option.get('elements', 'str')}"
    if "choices" in option:
        kind += " (" + ", ".join(f"`{c}`" for c in option["choices"]) + ")"
    return kind


def _option_default(option: dict, no_default: str) -> str:
    if "default" not in option:
        return "required" if option.get("required") else no_default
    return "`" + _cell(json.dumps(option["default"])) + "`"


def _option_text(option: dict) -> str:
    text = option.get("description", "")
    text = " ".join(text) if isinstance(text, list) else text
    return _cell(re.sub(r"[CI]\(([^)]*)\)", r"`\1`", text))


def option_table(options: dict, last_column: str = "meaning", *, no_default: str = "(none)",
                 suboptions: bool = True) -> str:
    """The Markdown table of a role's options (an argument spec entry point's ``options``):
    type, default (``no_default`` for an optional one without), description; with
    ``suboptions``, each suboption under its parent as ``parent.sub``."""
    rows = [f"| variable | type | default | {last_column} |", "|---|---|---|---|"]
    for name, option in options.items():
        rows.append(f"| `{name}` | {_option_type(option)} | {_option_default(option, no_default)} "
                    f"| {_option_text(option)} |")
        for sub, suboption in option.get("options", {}).items() if suboptions else ():
            rows.append(f"| `{name}.{sub}` | {_option_type(suboption)} "
                        f"| {_option_default(suboption, no_default)} | {_option_text(suboption)} |")
    return "\n".join(rows)


def generated_section(text: str, begin: str, end: str) -> str:
    """The part of ``text`` from the line ``begin`` to the line ``end``, both included."""
    return text[text.index(begin):text.index(end) + len(end)]


def option_section(role: Path, begin: str, end: str, **table) -> str:
    """A role README's generated section: ``begin``, the table of the role's options
    (``table``: option_table's keywords), ``end``."""
    return "\n".join([begin, option_table(role_spec(role)["options"], **table), end])
