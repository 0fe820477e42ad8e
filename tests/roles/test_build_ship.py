"""The build_ship role on localhost (a local connection), with a stand-in build: a shell
loop writing a log. The target, kvtarget, is this machine under another inventory name and
the build is delegated to localhost, as a build host would be.

Checks what a user sees while a long build runs (progress lines, never a
``FAILED - RETRYING`` line), that a failed build fails with its log's tail, that a second
run and check mode change nothing, and that the outputs are shipped through the controller.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, playbook, recap

PLAY = """\
- name: build_ship on a stand-in build
  hosts: kvtarget
  gather_facts: false
  tasks:
    - name: Build the stand-in
      ansible.builtin.include_role:
        name: build_ship
        tasks_from: build
      vars:
        build_ship_name: stand-in
        build_ship_host: localhost
        build_ship_script: |
          mkdir -p out
          for i in $(seq 1 {{ steps }}); do echo "  CC      step$i.o"; sleep 1; done
          {{ 'echo "error: the stand-in fails"; exit 3' if fail | bool else '' }}
          echo built > out/result.bin
        build_ship_chdir: "{{ work }}"
        build_ship_log: "{{ work }}/log/build.log"
        build_ship_creates: "{{ work }}/out/result.bin"
        build_ship_progress_interval: 1
        build_ship_steps: "^  CC "

    - name: Ship it to the target
      ansible.builtin.include_role:
        name: build_ship
        tasks_from: ship
      vars:
        build_ship_host: localhost
        build_ship_files: ["{{ work }}/out/result.bin"]
        build_ship_controller_dir: "{{ work }}/controller"
        build_ship_dest: "{{ work }}/target"

    - name: Save where the target installs from
      ansible.builtin.copy:
        content: "{{ build_ship_shipped | to_json }}"
        dest: "{{ work }}/shipped.json"
        mode: "0644"
      check_mode: false
      changed_when: false  # the harness's own file; only the role's changes are counted
"""


def run(tmp_path: Path, work: Path, *, check: bool = False, fail: bool = False,
        steps: int = 3) -> tuple[int, str, dict | None]:
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    extra = {"work": str(work), "fail": fail, "steps": steps,
             "ansible_python_interpreter": sys.executable}
    args = ["-i", "kvtarget,", "-c", "local", "-e", json.dumps(extra), str(play)]
    done = playbook(*args, *(["--check"] if check else []), timeout=300)
    out = done.stdout + done.stderr
    return done.returncode, out, recap(out).get("kvtarget") if "PLAY RECAP" in out else None


WHERE = "build stand-in on localhost (for kvtarget)"


def test_a_build_shows_progress_ships_its_output_and_is_not_redone(tmp_path):
    work = tmp_path / "work"
    work.mkdir()

    rc, out, counts = run(tmp_path, work, check=True)
    assert rc == 0, out
    assert "check mode: would build stand-in" in out, out
    assert not (work / "out").exists() and not (work / "target").exists()

    rc, out, counts = run(tmp_path, work, steps=4)
    assert rc == 0, out
    assert "FAILED - RETRYING" not in out and "FAILED" not in out, out
    # the progress lines follow the task that started the build, and name what is built where
    started = out.index("TASK [build_ship : Build | Start in the background - stand-in]")
    assert "changed: [kvtarget -> localhost]" in out[started:started + 200], out
    progress = re.findall(rf"^{re.escape(WHERE)}: (\d+) s, (\d+) steps, last line: (.*)$",
                          out, re.MULTILINE)
    assert len(progress) >= 2, out
    assert progress[-1][2].startswith("CC      step"), progress
    assert [int(s) for s, _, _ in progress] == sorted(int(s) for s, _, _ in progress)
    assert f"{WHERE}: waiting, log {work}/log/build.log (a progress line every 1 s)" in out
    assert out.index(f"{WHERE}: waiting") > started
    assert (work / "target" / "result.bin").read_text() == "built\n"
    assert (work / "controller" / "result.bin").exists()
    assert json.loads((work / "shipped.json").read_text()) == [f"{work}/target/result.bin"]
    log = (work / "log" / "build.log").read_text()
    assert log.splitlines() == [f"  CC      step{n}.o" for n in range(1, 5)]

    rc, out, counts = run(tmp_path, work)
    assert rc == 0, out
    assert counts["changed"] == 0, out
    assert WHERE not in out, "a finished build was waited for again"

    rc, out, counts = run(tmp_path, work, check=True)
    assert rc == 0, out
    assert counts["changed"] == 0, out


def test_a_failed_build_fails_with_the_log_tail(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    rc, out, counts = run(tmp_path, work, fail=True, steps=1)
    assert rc != 0
    assert counts["failed"] == 1, out
    assert "FAILED - RETRYING" not in out, out
    failed = re.search(rf"{re.escape(WHERE)} failed after \d+ s \(rc 3\): non-zero return code\n"
                       r"\s*the last 2 lines of (\S+):\n\s*CC      step1\.o\n"
                       r"\s*error: the stand-in fails", out)
    assert failed, out
    assert failed[1] == f"{work}/log/build.log"
    assert not (work / "target").exists(), "a failed build was shipped"


@pytest.mark.parametrize("entry", ["build", "ship"])
def test_each_entry_point_has_an_argument_spec_and_documented_defaults(entry):
    import yaml

    role = REPO / "roles" / "build_ship"
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    assert set(specs) == {"build", "ship"}
    assert (role / "tasks" / f"{entry}.yml").exists()
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    options = specs[entry]["options"]
    for name, option in options.items():
        assert name.startswith("build_ship_"), name
        assert option.get("description"), name
        if option.get("required"):
            assert name not in defaults, name
        else:
            assert defaults[name] == option["default"], name
    readme = (role / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in options)
