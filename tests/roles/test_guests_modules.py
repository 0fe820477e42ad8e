"""The guest_* modules of the kvmnetlab.lab collection, run through Ansible as a user would.

Fast: no guest boots here. The mirror reader works on apt configurations written to a temporary
folder (both formats). The SSH wait and the QEMU lifecycle module are given a pidfile naming a
process that is not QEMU, so they must report a guest that is down (with its console log) and
never signal that process. Taps are made in throwaway namespaces only; with an empty netns (a
real KVM host) the role's taps join a bridge of a namespace the test makes and reaches through
the kvmnetlab.lab.netns connection, so the machine's own network namespace never changes.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, adhoc, lab_guest, playbook, recap

MODULES = REPO / "collections/ansible_collections/kvmnetlab/lab/plugins/modules"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"kvmnl_{name}", MODULES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def module(name: str, args: dict, *extra: str) -> tuple[int, dict]:
    """Run kvmnetlab.lab.<name> on localhost; return rc and the module's result."""
    rc, result, _ = adhoc("localhost", f"kvmnetlab.lab.{name}", args, *extra, timeout=120)
    return rc, result


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
        "user": "kvmnl",
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


def test_an_empty_netns_means_the_hosts_own_namespace():
    tap, qemu = load("guest_tap"), load("guest_qemu")
    assert tap.ip_argv("", "link", "show") == ["ip", "link", "show"]
    assert tap.ip_argv("kvmnl-hv", "link", "show") == ["ip", "-n", "kvmnl-hv", "link", "show"]
    assert tap.is_multi_queue({"type": "tap", "multi_queue": True})  # iproute2 6.x
    assert tap.is_multi_queue({"type": "tap", "flags": ["MULTI_QUEUE"]})
    assert not tap.is_multi_queue({"type": "tap", "multi_queue": False})
    assert qemu.command_prefix("", []) == []
    assert qemu.command_prefix("", [2, 3]) == ["taskset", "-c", "2,3"]
    assert qemu.command_prefix("kvmnl-hv", [4]) == ["ip", "netns", "exec", "kvmnl-hv",
                                                     "taskset", "-c", "4"]


def test_tap_on_a_missing_bridge_names_the_bridge_and_the_host_and_makes_nothing():
    # read-only in the machine's own namespace: the bridge is looked up before anything is made
    rc, res = module("guest_tap", {"name": "kvtap-98d", "bridge": "kvnl-nobr", "host": "kvm-test"})
    assert rc != 0
    assert "bridge 'kvnl-nobr' does not exist on host kvm-test (its own network namespace)" \
        in res["msg"], res
    done = subprocess.run(["ip", "link", "show", "dev", "kvtap-98d"], capture_output=True)
    assert done.returncode != 0


TAPS_PLAY = """\
- name: guest_vm's {what} on a KVM host that has no namespace knob
  hosts: kvm-test
  gather_facts: false
  tasks:
    - name: The role's {what}
      ansible.builtin.include_role:
        name: guest_vm
        tasks_from: {what}
"""


@pytest.mark.lab
def test_role_taps_join_named_bridges_in_the_hosts_own_namespace(root_only, tmp_path):
    """guest_vm_netns "" on a "KVM host" that is a namespace holding the lab's bridges."""
    ns = "kvmnl-gtest-br"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for bridge in ("br-test-data", "br-test-mgmt"):
            subprocess.run(["ip", "-n", ns, "link", "add", bridge, "type", "bridge"], check=True)
        guests = [lab_guest("kvmnl-g7", 7), lab_guest("kvmnl-g8", 8, netdev={"queues": 2})]
        inventory = tmp_path / "hosts.json"
        inventory.write_text(json.dumps({"all": {"hosts": {"kvm-test": {
            "ansible_connection": "kvmnetlab.lab.netns", "kvmnetlab_netns": ns,
            "ansible_python_interpreter": sys.executable,
            "guest_vm_data_bridge": "br-test-data", "guest_vm_mgmt_bridge": "br-test-mgmt",
            "guest_vm_state_dir": str(tmp_path / "state"), "guest_vm_guests": guests}}}}))
        plays = {}
        for what in ("taps", "teardown"):
            plays[what] = tmp_path / f"{what}.yml"
            plays[what].write_text(TAPS_PLAY.format(what=what))

        def links() -> dict[str, dict]:
            out = subprocess.run(["ip", "-n", ns, "-j", "-d", "link", "show"], capture_output=True,
                                 text=True, check=True).stdout
            return {link["ifname"]: link for link in json.loads(out)}

        done = playbook("-i", str(inventory), str(plays["taps"]), check=True)
        assert recap(done.stdout)["kvm-test"]["changed"] == 1, done.stdout[-3000:]
        found = links()
        assert {name: found[name].get("master") for name in found if name.startswith("kvtap-")} \
            == {"kvtap-7d": "br-test-data", "kvtap-7m": "br-test-mgmt",
                "kvtap-8d": "br-test-data", "kvtap-8m": "br-test-mgmt"}
        assert found["kvtap-8d"]["linkinfo"]["info_data"]["multi_queue"] is True
        assert all("UP" in found[f"kvtap-{i}"]["flags"] for i in ("7d", "7m", "8d", "8m"))

        for args in ((), ("--check",)):
            again = playbook("-i", str(inventory), str(plays["taps"]), *args, check=True)
            assert recap(again.stdout)["kvm-test"]["changed"] == 0, again.stdout[-3000:]

        missing = playbook("-i", str(inventory), str(plays["taps"]),
                           "-e", "guest_vm_data_bridge=br-nowhere")
        assert missing.returncode != 0
        assert "bridge 'br-nowhere' does not exist on host kvm-test (its own network namespace)" \
            in missing.stdout, missing.stdout[-3000:]

        done = playbook("-i", str(inventory), str(plays["teardown"]), check=True)
        assert sorted(links()) == ["br-test-data", "br-test-mgmt", "lo"], done.stdout[-3000:]
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
