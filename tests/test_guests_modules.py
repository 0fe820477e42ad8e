"""The guest_* modules of the kvmnetlab.lab collection, run through Ansible as a user would.

Fast: no guest boots here. The mirror reader works on apt configurations written to a temporary
folder (both formats). The SSH wait and the QEMU lifecycle module are given a pidfile naming a
process that is not QEMU, so they must report a guest that is down (with its console log) and
never signal that process.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, REPO, ansible_env


def module(name: str, args: dict, *extra: str) -> tuple[int, dict]:
    """Run kvmnetlab.lab.<name> on localhost; return rc and the module's result."""
    done = subprocess.run(
        [str(BIN / "ansible"), "localhost", "-m", f"kvmnetlab.lab.{name}",
         "-a", json.dumps(args), *extra],
        cwd=REPO, env={**ansible_env(), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                       "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
                       "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
        capture_output=True, text=True, timeout=120,
    )
    out = done.stdout
    return done.returncode, json.loads(out[out.index("=> {") + 3:])


def test_mirror_from_deb822_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "# a comment inside the stanza\n"
        "URIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main contrib\n"
        "\n"
        "Types: deb\n"
        "URIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
    )
    rc, res = module("guest_image_mirror_info", {"suite": "bookworm", "sources_dir": str(tmp_path)})
    assert rc == 0, res
    assert res["mirror"] == "http://mirror.example/debian"
    assert res["source_file"].endswith("debian.sources")
    assert res["changed"] is False


def test_mirror_from_one_line_sources_skips_disabled_and_deb_src(tmp_path):
    (tmp_path / "sources.list").write_text(
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main # trailing\n"
    )
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "off.sources").write_text(
        "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n"
        "Components: main\n"
    )
    rc, res = module("guest_image_mirror_info", {"suite": "bookworm", "sources_dir": str(tmp_path)})
    assert rc == 0, res
    assert res["mirror"] == "http://one.example/debian"


def test_mirror_missing_names_the_folder(tmp_path):
    (tmp_path / "sources.list").write_text("deb http://one.example/debian trixie main\n")
    rc, res = module("guest_image_mirror_info", {"suite": "bookworm", "sources_dir": str(tmp_path)})
    assert rc != 0
    assert str(tmp_path) in res["msg"] and "bookworm" in res["msg"]


@pytest.fixture
def not_qemu(tmp_path):
    """A live process that is not QEMU, named by a pidfile."""
    proc = subprocess.Popen(["sleep", "60"])
    guest_dir = tmp_path / "guests" / "kvmnl-g9"
    guest_dir.mkdir(parents=True)
    (guest_dir / "qemu.pid").write_text(f"{proc.pid}\n")
    (guest_dir / "console.log").write_text("")
    yield tmp_path, proc
    proc.kill()
    proc.wait()


def test_ssh_wait_reports_a_guest_without_qemu_as_down(not_qemu):
    tmp_path, proc = not_qemu
    (tmp_path / "id").write_text("")
    (tmp_path / "known_hosts").write_text("")
    rc, res = module("guest_ssh_wait", {
        "guests": [{"name": "kvmnl-g9", "mgmt_ip": "198.19.0.99"}],
        "guests_dir": str(tmp_path / "guests"),
        "identity_file": str(tmp_path / "id"),
        "known_hosts": str(tmp_path / "known_hosts"),
        "timeout": 5,
    })
    assert rc == 0, res
    status = res["status"]["kvmnl-g9"]
    assert status["ok"] is False
    assert status["console_log"] == str(tmp_path / "guests" / "kvmnl-g9" / "console.log")
    assert status["console_log"] in status["reason"]
    assert proc.poll() is None


def test_qemu_stop_never_signals_a_process_that_is_not_qemu(not_qemu):
    tmp_path, proc = not_qemu
    pidfile = tmp_path / "guests" / "kvmnl-g9" / "qemu.pid"
    rc, res = module("guest_qemu", {"name": "kvmnl-g9", "pidfile": str(pidfile),
                                    "state": "stopped"})
    assert rc == 0, res
    assert res["changed"] is False and res["action"] == "none"
    assert proc.poll() is None


def test_tap_absent_in_a_missing_namespace_is_a_no_op():
    if os.geteuid() != 0:
        pytest.skip("ip netns needs root")
    rc, res = module("guest_tap", {"name": "kvtap-99d", "netns": "kvmnl-no-such-ns",
                                   "state": "absent"})
    assert rc == 0, res
    assert res["changed"] is False


def test_tap_present_in_a_missing_namespace_fails_clearly():
    if os.geteuid() != 0:
        pytest.skip("ip netns needs root")
    rc, res = module("guest_tap", {"name": "kvtap-99d", "netns": "kvmnl-no-such-ns",
                                   "bridge": "kvbr-data"})
    assert rc != 0
    assert "kvmnl-no-such-ns" in res["msg"]


def test_accel_probe_reports_missing_kernel(tmp_path):
    rc, res = module("guest_accel_probe", {"kernel": str(tmp_path / "vmlinuz"),
                                           "initrd": str(tmp_path / "initrd.img"),
                                           "log_dir": str(tmp_path)})
    assert rc != 0
    assert str(tmp_path / "vmlinuz") in res["msg"]


def test_module_docs_are_valid_yaml():
    import yaml

    for path in sorted(Path(REPO, "collections/ansible_collections/kvmnetlab/lab/plugins/modules")
                       .glob("guest_*.py")):
        ns = {
            node.targets[0].id: ast.literal_eval(node.value)
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")
        }
        for key in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
            assert yaml.safe_load(ns[key]) is not None, f"{path.name}: {key}"
        assert yaml.safe_load(ns["DOCUMENTATION"])["module"] == path.stem


def test_tap_lifecycle_in_a_throwaway_namespace():
    if os.geteuid() != 0:
        pytest.skip("ip netns needs root")
    ns = "kvmnl-gtest-tap"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "kvbr-data", "type", "bridge"], check=True)
        args = {"name": "kvtap-7d", "netns": ns, "bridge": "kvbr-data"}
        rc, res = module("guest_tap", args)
        assert rc == 0 and res["changed"] is True, res
        assert res["link"]["master"] == "kvbr-data" and "UP" in res["link"]["flags"]
        rc, res = module("guest_tap", args)
        assert rc == 0 and res["changed"] is False, res
        rc, res = module("guest_tap", {**args, "name": "kvtap-8d", "multi_queue": True})
        assert rc == 0 and res["changed"] is True, res
        rc, res = module("guest_tap", {"name": "kvtap-*", "netns": ns, "state": "absent"},
                         "--check")
        assert rc == 0 and sorted(res["removed"]) == ["kvtap-7d", "kvtap-8d"], res
        rc, res = module("guest_tap", {"name": "kvtap-*", "netns": ns, "state": "absent"})
        assert rc == 0 and sorted(res["removed"]) == ["kvtap-7d", "kvtap-8d"], res
        links = subprocess.run(["ip", "-n", ns, "-br", "link"], capture_output=True,
                               text=True, check=True).stdout
        assert "kvtap" not in links and "kvbr-data" in links
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
