"""The pf_ring role without PF_RING: input validation, early stops, README and lint.

Everything here runs the role for real against localhost through ansible-playbook
(a temporary playbook in tmp_path). On a host whose kernel cannot load modules,
which is the development machine and CI, the role must stop before changing
anything and say why. A stand-in source tree (a trivial kernel module named
pf_ring and two stand-in example programs, no PF_RING code) exercises the build,
install, check-mode and idempotence paths into a staging root.

Regenerate the role README's option table with:
    .venv/bin/python -m tests.roles.test_pf_ring_role --write-readme
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import BIN, generated_section, local_play, option_table, recap, role_spec
from tests.helpers import REPO as ROOT

ROLE = ROOT / "roles" / "pf_ring"
README = ROLE / "README.md"
BEGIN = "<!-- BEGIN generated from meta/argument_specs.yml by tests/roles/test_pf_ring_role.py -->"
END = "<!-- END generated -->"
HAS_MODULES = Path("/proc/modules").exists()


# --- README generated from the argument spec -----------------------------------------


def load_spec() -> dict:
    return role_spec(ROLE)


def render_section(spec: dict) -> str:
    description = "\n".join(f"- {' '.join(line.split())}" for line in spec["description"])
    return (
        f"{BEGIN}\n## {spec['short_description']}\n\n{description}\n\n"
        f"## Variables\n\n{option_table(spec['options'], 'description')}\n{END}"
    )


def regenerate(text: str, spec: dict) -> str:
    return text.replace(generated_section(text, BEGIN, END), render_section(spec))


def test_readme_is_generated_from_the_argument_spec():
    text = README.read_text()
    assert BEGIN in text and END in text, f"{README} lacks the generated-section markers"
    assert regenerate(text, load_spec()) == text, (
        f"{README} is out of date with meta/argument_specs.yml; run "
        "`.venv/bin/python -m tests.roles.test_pf_ring_role --write-readme`"
    )


def test_every_option_is_in_readme_and_defaults():
    spec = load_spec()
    text = README.read_text()
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert set(spec["options"]) == set(defaults), (
        "roles/pf_ring/defaults/main.yml and meta/argument_specs.yml name different variables: "
        f"{sorted(set(spec['options']) ^ set(defaults))}"
    )
    for name, option in spec["options"].items():
        assert f"`{name}`" in text, f"{README}: option {name} is missing"
        assert name.startswith("pf_ring_"), f"{name} lacks the role prefix"
        if "default" in option:
            assert option["default"] == defaults[name], (
                f"default of {name} differs: argument spec {option['default']!r}, "
                f"defaults/main.yml {defaults[name]!r}"
            )


def test_vpf_ring_and_passthrough_are_documented():
    for path in (README, ROOT / "docs" / "pf_ring.md"):
        text = path.read_text().lower()
        assert "end-of-life" in text and "vpf_ring" in text, path
        assert "passthrough" in text and "af_xdp" in text and "vhost-user" in text, path


# --- running the role on localhost ----------------------------------------------------

PLAYBOOK = """\
- name: pf_ring test
  hosts: localhost
  gather_facts: true
  gather_subset: [min]
  roles:
    - role: pf_ring
  post_tasks:
    - name: Show the facts the role set
      ansible.builtin.debug:
        msg: "{{ {'available': pf_ring_available | default(none),
                  'reason': pf_ring_unavailable_reason | default(none)} | to_json }}"
"""


def run_role(tmp_path: Path, extra: dict, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the role on localhost; return the process and its report.

    The report holds ``failures`` (each failed result, parsed from the callback's
    one-line JSON), ``stats`` (the PLAY RECAP counters) and ``facts`` (what the post
    task showed, or None when it did not run).
    """
    done, _ = local_play(tmp_path, PLAYBOOK, extra, *args, timeout=1800, env={
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_CALLBACK_FORMAT_PRETTY": "false"})
    lines = done.stdout.splitlines()
    stats = recap(done.stdout) if "PLAY RECAP" in done.stdout else {}
    report: dict = {"failures": [], "stats": stats, "facts": None}
    for number, line in enumerate(lines):
        if line.startswith("fatal: [") and " => " in line:
            report["failures"].append(json.loads(line.split(" => ", 1)[1]))
        if line.startswith("TASK [Show the facts the role set]"):
            shown = next(x for x in lines[number + 1 :] if x.startswith("ok: ["))
            report["facts"] = json.loads(json.loads(shown.split(" => ", 1)[1])["msg"])
    if "localhost" not in report["stats"]:
        raise AssertionError(f"no PLAY RECAP:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done, report


def failures(report: dict) -> list[str]:
    """Messages of the failed tasks, in order."""
    return [str(result.get("msg", "")) for result in report["failures"]]


def changed(report: dict) -> int:
    return report["stats"]["localhost"]["changed"]


def role_facts(report: dict) -> dict:
    assert report["facts"] is not None, "the post task did not run"
    return report["facts"]


def test_rejects_unknown_install_method(tmp_path):
    done, report = run_role(tmp_path, {"pf_ring_install_method": "tarball"})
    assert done.returncode != 0
    (message,) = failures(report)
    assert "pf_ring_install_method" in message and "tarball" in message
    assert changed(report) == 0


def test_rejects_url_without_checksum(tmp_path):
    done, report = run_role(
        tmp_path,
        {
            "pf_ring_install_method": "release",
            "pf_ring_release_url": "https://example.invalid/PF_RING-8.8.0.tar.gz",
        },
    )
    assert done.returncode != 0
    (message,) = failures(report)
    assert "pf_ring_release_sha256" in message
    assert "https://example.invalid/PF_RING-8.8.0.tar.gz" in message
    assert changed(report) == 0


def test_rejects_malformed_checksum(tmp_path):
    done, report = run_role(tmp_path, {"pf_ring_release_sha256": "abc123"})
    assert done.returncode != 0
    (message,) = failures(report)
    assert "pf_ring_release_sha256" in message and "abc123" in message


def test_rejects_unknown_module_params_type(tmp_path):
    done, report = run_role(tmp_path, {"pf_ring_module_params": "min_num_slots=4096 x"})
    assert done.returncode != 0
    (message,) = failures(report)
    assert "pf_ring_module_params" in message
    assert changed(report) == 0


def test_local_source_that_does_not_exist_stops_early(tmp_path):
    missing = tmp_path / "no-such-PF_RING"
    done, report = run_role(
        tmp_path,
        {
            "pf_ring_install_method": "local",
            "pf_ring_local_src": str(missing),
            "pf_ring_load": False,
        },
    )
    assert done.returncode != 0
    (message,) = failures(report)
    assert "pf_ring_local_src" in message and str(missing) in message
    assert "does not exist" in message
    assert changed(report) == 0


def _closed_local_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("mode", [[], ["--check"]], ids=["run", "check-mode"])
def test_unreachable_release_url_stops_early_with_its_message(tmp_path, mode):
    # a closed port on the loopback address: nothing leaves the machine
    url = f"http://127.0.0.1:{_closed_local_port()}/PF_RING-8.8.0.tar.gz"
    done, report = run_role(tmp_path, {"pf_ring_install_method": "release",
                                       "pf_ring_release_url": url,
                                       "pf_ring_release_sha256": "a" * 64,
                                       "pf_ring_load": False, "pf_ring_probe_timeout": 5}, *mode)
    assert done.returncode != 0
    (message,) = failures(report)
    assert f"the PF_RING source {url} cannot be reached from localhost" in message
    assert changed(report) == 0
    assert not Path("/var/cache/kvmnetlab/pf_ring/PF_RING-8.8.0-aaaaaaaaaaaa.tar.gz").exists()


@pytest.mark.skipif(HAS_MODULES, reason="this kernel can load modules")
def test_no_module_support_fails_with_the_reason(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    done, report = run_role(
        tmp_path, {"pf_ring_install_method": "local", "pf_ring_local_src": str(source)}
    )
    assert done.returncode != 0
    (message,) = failures(report)
    assert "cannot load modules" in message and os.uname().release in message
    assert "module support" in message
    assert changed(report) == 0


@pytest.mark.skipif(HAS_MODULES, reason="this kernel can load modules")
@pytest.mark.parametrize("mode", [[], ["--check"]], ids=["run", "check-mode"])
def test_no_module_support_recorded_when_not_fatal(tmp_path, mode):
    source = tmp_path / "src"
    source.mkdir()
    done, report = run_role(
        tmp_path,
        {
            "pf_ring_install_method": "local",
            "pf_ring_local_src": str(source),
            "pf_ring_fail_when_unavailable": False,
        },
        *mode,
    )
    assert done.returncode == 0, failures(report)
    facts = role_facts(report)
    assert facts["available"] is False
    assert "cannot load modules" in facts["reason"]
    assert changed(report) == 0
    assert changed(report) == 0


def test_load_for_another_kernel_is_rejected(tmp_path):
    done, report = run_role(
        tmp_path,
        {
            "pf_ring_install_method": "local",
            "pf_ring_local_src": str(tmp_path),
            "pf_ring_kernel_version": "0.0.0-not-running",
        },
    )
    assert done.returncode != 0
    (message,) = failures(report)
    assert "pf_ring_kernel_version" in message and "0.0.0-not-running" in message
    assert "pf_ring_load" in message


@pytest.mark.parametrize(("extra", "named"), [
    ({"pf_ring_build_host": "localhost"}, "must be another inventory host"),
    ({"pf_ring_build_host": "no-such-host"}, "no-such-host"),
    ({"pf_ring_build_host": "builder", "pf_ring_dkms": True}, "pf_ring_dkms=True"),
    ({"pf_ring_build_host": "builder", "pf_ring_install_method": "apt"},
     "pf_ring_install_method=apt"),
], ids=["itself", "unknown-host", "dkms", "apt"])
def test_build_host_is_checked_before_anything_changes(tmp_path, extra, named):
    done, report = run_role(tmp_path, {"pf_ring_install_method": "local",
                                       "pf_ring_local_src": str(tmp_path),
                                       "pf_ring_load": False, **extra})
    assert done.returncode != 0
    (message,) = failures(report)
    assert "pf_ring_build_host" in message and named in message
    assert changed(report) == 0


def test_ansible_lint_production_profile():
    done = subprocess.run(
        [
            str(BIN / "ansible-lint"),
            "--offline",
            "--profile",
            "production",
            "--nocolor",
            "roles/pf_ring",
            "playbooks/build.yml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-readme"]:
        README.write_text(regenerate(README.read_text(), load_spec()))
    else:
        sys.exit(f"usage: {sys.argv[0]} --write-readme")
