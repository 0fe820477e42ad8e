"""kvmnetlab.lab.lab_capabilities_info: the read-only capability probe.

Its pure helpers are tested as Python (address lookup, poll-us in a QMP schema, the module
verdict, version lines, the QEMU probe against stand-in programs). The module itself runs
through Ansible as a campaign runs it, and what it returns is compared with what these tests
read from the machine themselves: on localhost (connection local), and inside a network
namespace the test builds (connection kvmnetlab.lab.netns), where it must describe the
namespace's veth pair, found by address, and nothing of the machine's own interfaces.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, adhoc, collection_module

FIXTURES = REPO / "tests/fixtures/capabilities"
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
# TEST-NET-3 (RFC 5737): checked below to be on no interface of this machine.
ABSENT_ADDRESS = "203.0.113.254"


cap = collection_module("lab_capabilities_info")


def which(tool: str) -> str | None:
    return shutil.which(tool, path=SBIN_PATH)


def defaults(**over) -> dict:
    params = {"data_addresses": [], "data_interfaces": [], "qemu_binary": "qemu-system-x86_64",
              "probe_qemu": True, "elvis_marker_path": "",
              "elvis_state_file": "/nonexistent/elvis.json",
              "kvm_host_state_file": "/nonexistent/kvm_host.json", "timeout": 20}
    params.update(over)
    return params


def run_module(host: str, args: dict, *extra: str) -> tuple[int, dict, str]:
    """Run the module on ``host``: rc, the result, and stderr (the module's warnings)."""
    return adhoc(host, "kvmnetlab.lab.lab_capabilities_info", args, *extra)


def ip_addresses(netns: str | None = None) -> set[str]:
    argv = ["ip", "-j", "addr", "show"]
    if netns:
        argv = ["ip", "-n", netns, *argv[1:]]
    links = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
    return {info["local"] for link in links for info in link.get("addr_info", [])}


def queue_count(sysfs_net: str, ifname: str, kind: str) -> int:
    return len(glob.glob(f"{sysfs_net}/{ifname}/queues/{kind}-*"))


def read_stripped(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


# ----------------------------------------------------------------- pure helpers --
def test_documentation_matches_the_argument_spec_and_the_document():
    docs = yaml.safe_load(cap.DOCUMENTATION)
    yaml.safe_load(cap.EXAMPLES)
    returned = yaml.safe_load(cap.RETURN)
    assert docs["module"] == "lab_capabilities_info"
    options = docs["options"]
    assert set(options) == set(cap.ARGUMENT_SPEC)
    for name, spec in cap.ARGUMENT_SPEC.items():
        for key in ("type", "default", "elements"):
            assert options[name].get(key) == spec.get(key), f"{name}: {key}"
    document, _ = cap.probe(defaults(probe_qemu=False))
    assert set(returned) == {"capabilities"}
    assert set(returned["capabilities"]["contains"]) == set(document)


IP_JSON = [
    {"ifindex": 1, "ifname": "lo", "addr_info": [
        {"family": "inet", "local": "127.0.0.1", "prefixlen": 8},
        {"family": "inet6", "local": "::1", "prefixlen": 128}]},
    {"ifindex": 2, "ifname": "data0", "addr_info": [
        {"family": "inet", "local": "198.18.0.1", "prefixlen": 24},
        {"family": "inet", "local": "198.18.5.1", "prefixlen": 24}]},
    {"ifindex": 3, "ifname": "data1", "addr_info": [
        {"family": "inet", "local": "198.18.1.1", "prefixlen": 24}]},
    {"ifindex": 4, "ifname": "down0", "addr_info": []},
    {"ifindex": 5, "ifname": "odd0"},
]


def test_interfaces_for_addresses_picks_holders_and_lists_the_missing():
    found, missing = cap.interfaces_for_addresses(
        IP_JSON, ["198.18.1.1", "198.18.0.1/24", "198.18.5.1", "198.18.9.9", "::1"])
    # data0 is chosen by its first address as given; its second address adds nothing.
    assert found == {"data1": "198.18.1.1", "data0": "198.18.0.1/24", "lo": "::1"}
    assert missing == ["198.18.9.9"]
    assert cap.interfaces_for_addresses([], ["198.18.0.1"]) == ({}, ["198.18.0.1"])
    assert cap.interfaces_for_addresses(IP_JSON, []) == ({}, [])


def test_interfaces_for_addresses_on_this_machines_ip_json():
    links = json.loads(subprocess.run(["ip", "-j", "addr", "show"], check=True,
                                      capture_output=True, text=True).stdout)
    assert ABSENT_ADDRESS not in ip_addresses()
    found, missing = cap.interfaces_for_addresses(links, ["127.0.0.1", ABSENT_ADDRESS])
    assert found == {"lo": "127.0.0.1"}
    assert missing == [ABSENT_ADDRESS]


def schema_object(name: str, members: list[str]) -> dict:
    return {"name": name, "meta-type": "object",
            "members": [{"name": m, "type": "str"} for m in members]}


TAP = ["ifname", "fd", "script", "downscript", "vnet_hdr", "vhost", "vhostforce", "queues"]
VHOST_USER = ["chardev", "vhostforce", "queues"]


def test_poll_us_in_schema():
    with_poll = [schema_object("1", VHOST_USER), schema_object("350", [*TAP, "poll-us"])]
    assert cap.poll_us_in_schema(with_poll)[0] is True
    poll_us, evidence = cap.poll_us_in_schema([schema_object("350", TAP)])
    assert poll_us is False and "no member poll-us" in evidence
    # poll-us on something that is not the tap options does not count, nor do vhost-user's.
    poll_us, evidence = cap.poll_us_in_schema(
        [schema_object("1", VHOST_USER), schema_object("2", ["poll-us", "x"]),
         {"name": "3", "meta-type": "enum", "values": ["poll-us"]}])
    assert poll_us is None and "no tap netdev options" in evidence
    assert cap.poll_us_in_schema([])[0] is None
    assert cap.poll_us_in_schema(None)[0] is None


def test_kernel_modules_verdict(tmp_path):
    root = tmp_path
    (root / "proc/sys/kernel").mkdir(parents=True)
    assert cap.kernel_modules(str(root)) == (
        False, "kernel built without module support: /proc/modules absent")
    (root / "proc/modules").write_text("virtio_net 61440 0 - Live 0x0\n")
    assert cap.kernel_modules(str(root)) == (True, "")
    (root / "proc/sys/kernel/modules_disabled").write_text("0\n")
    assert cap.kernel_modules(str(root)) == (True, "")
    (root / "proc/sys/kernel/modules_disabled").write_text("1\n")
    assert cap.kernel_modules(str(root)) == (False, "modules_disabled=1")


def test_version_line():
    assert cap.version_line("", "fping: Version 5.1\n") == "fping: Version 5.1"
    assert cap.version_line("\nping from iputils 20221126\nlibcap: yes\n", "") == \
        "ping from iputils 20221126"
    banner = "sockperf: == banner ==\nsockperf, version 3.7-no.git\n   compiled 2021-08-23\n"
    assert cap.version_line(banner, "", "sockperf") == "sockperf, version 3.7-no.git"
    assert cap.version_line(banner, "") == "sockperf: == banner =="
    assert cap.version_line("", "  \n") is None


def test_validate_refuses_malformed_options():
    errors = cap.validate(defaults(data_addresses=["198.18.0.1", "198.18.0.300", "eth0"],
                                   data_interfaces=["eth0", "../x", "", "a" * 16], timeout=0))
    assert errors == [
        "data_addresses: '198.18.0.300' is not an IP address",
        "data_addresses: 'eth0' is not an IP address",
        "data_interfaces: '../x' is not an interface name",
        "data_interfaces: '' is not an interface name",
        f"data_interfaces: '{'a' * 16}' is not an interface name",
        "timeout: 0 must be at least 1 s",
    ]
    assert cap.validate(defaults(data_addresses=["198.18.0.1/24"], data_interfaces=["eth0"])) == []


def stand_in(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_qemu_probe_is_bounded_and_kills_only_its_process(tmp_path):
    fake = stand_in(tmp_path, "qemu-hangs", "exec sleep 60\n")
    started = time.monotonic()
    poll_us, evidence = cap.probe_poll_us(fake, 1)
    assert time.monotonic() - started < 5
    assert poll_us is None
    assert "timed out after 1 s" in evidence
    pid = int(evidence.rsplit("pid ", 1)[1].rstrip(")"))
    assert not Path(f"/proc/{pid}").exists() or \
        Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_qemu_probe_without_schema_introspection_says_why(tmp_path):
    old = stand_in(tmp_path, "qemu-old", (
        "echo '{\"QMP\": {\"version\": {\"qemu\": {\"major\": 2, \"minor\": 4}}}}'\n"
        "echo '{\"return\": {}, \"id\": \"caps\"}'\n"
        "echo '{\"id\": \"schema\", \"error\": {\"class\": \"CommandNotFound\", "
        "\"desc\": \"The command query-qmp-schema has not been found\"}}'\n"))
    poll_us, evidence = cap.probe_poll_us(old, 5)
    assert poll_us is None
    assert "query-qmp-schema refused" in evidence and "has not been found" in evidence
    broken = stand_in(tmp_path, "qemu-broken", "echo 'qemu: unsupported machine' >&2; exit 1\n")
    poll_us, evidence = cap.probe_poll_us(broken, 5)
    assert poll_us is None
    assert "rc=1" in evidence and "unsupported machine" in evidence


def test_describe_qemu_when_absent_or_not_probed(tmp_path):
    absent = cap.describe_qemu(str(tmp_path / "no-such-qemu"), True, 5)
    assert absent == {"binary": None, "version": None, "poll_us": None,
                      "poll_us_evidence": f"{tmp_path / 'no-such-qemu'} not found"}
    fake = stand_in(tmp_path, "qemu-version", "echo 'QEMU emulator version 9.9.9'\n")
    quiet = cap.describe_qemu(fake, False, 5)
    assert quiet == {"binary": fake, "version": "QEMU emulator version 9.9.9",
                     "poll_us": None, "poll_us_evidence": "not probed (probe_qemu is false)"}


@pytest.mark.skipif(which("qemu-system-x86_64") is None,
                    reason="qemu-system-x86_64 is not installed (the guests playbook installs it)")
def test_qemu_probe_reads_poll_us_from_the_real_schema():
    qemu = which("qemu-system-x86_64")
    poll_us, evidence = cap.probe_poll_us(qemu, 20)
    assert poll_us is True, evidence  # tap poll-us exists since QEMU 2.9; Debian 12 has 7.2
    assert "member poll-us" in evidence


def test_probe_without_qemu_finds_the_loopback_address():
    document, _ = cap.probe(defaults(probe_qemu=False, data_addresses=["127.0.0.1"]))
    assert document["qemu"]["poll_us"] is None
    assert document["nics"]["lo"]["address"] == "127.0.0.1"


def test_fixtures_have_the_layout_the_module_returns_now():
    """The captures must be re-made when the document's layout changes."""
    document, _ = cap.probe(defaults(probe_qemu=False))
    captures = sorted(FIXTURES.glob("*.json"))
    assert len(captures) >= 3
    for path in captures:
        captured = json.loads(path.read_text())
        assert captured["format_version"] == cap.FORMAT_VERSION, path.name
        assert set(captured) == set(document), path.name
        for key, value in document.items():
            if isinstance(value, dict) and key != "nics":
                assert set(captured[key]) == set(value), f"{path.name}: {key}"
        for name, nic in captured["nics"].items():
            assert set(nic) == {"address", "driver", "rx_queues", "tx_queues", "ethtool_i",
                                "ethtool_k"}, f"{path.name}: {name}"


# ------------------------------------------------------ through Ansible, localhost --
def expected_system() -> dict:
    """What this test reads from the machine itself."""
    halt = "/sys/module/kvm/parameters/halt_poll_ns"
    governors = sorted({read_stripped(p) for p in
                        glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor")}
                       - {""})
    disabled = read_stripped("/proc/sys/kernel/modules_disabled")
    return {
        "hostname": os.uname().nodename,
        "release": os.uname().release,
        "cmdline": read_stripped("/proc/cmdline"),
        "modules": os.path.exists("/proc/modules") and disabled in ("", "0"),
        "kvm": os.path.exists("/dev/kvm"),
        "vhost_net": os.path.exists("/dev/vhost-net"),
        "vhost_net_module": os.path.isdir("/sys/module/vhost_net"),
        "pf_ring": os.path.exists("/proc/net/pf_ring/info"),
        "halt_present": os.path.exists(halt),
        "halt_value": int(read_stripped(halt)) if os.path.exists(halt) else None,
        "isolated": read_stripped("/sys/devices/system/cpu/isolated"),
        "nohz_full": read_stripped("/sys/devices/system/cpu/nohz_full"),
        "governors": governors,
    }


def test_localhost_document_matches_the_machine(tmp_path):
    marker = tmp_path / "marker"
    marker.write_text("kvmnetlab-elvis-marker 1\n")
    elvis = tmp_path / "elvis.json"
    elvis.write_text(json.dumps({"mode": "upstream", "knobs": {"poll_us": 50}}))
    kvm_host = tmp_path / "kvm_host.json"
    kvm_host.write_text(json.dumps({"settings": {"vhost_net": False}}))
    rc, res, _ = run_module("localhost", {
        "data_addresses": ["127.0.0.1", ABSENT_ADDRESS],
        "data_interfaces": ["lo", "kvcapmissing0"],
        "probe_qemu": False,
        "elvis_marker_path": str(marker),
        "elvis_state_file": str(elvis),
        "kvm_host_state_file": str(kvm_host),
    })
    assert rc == 0, res
    assert res["changed"] is False
    assert set(res) - {"changed", "warnings", "deprecations", "_ansible_no_log"} == \
        {"capabilities"}
    doc = res["capabilities"]
    sysinfo = expected_system()
    assert doc["format_version"] == 1
    assert doc["hostname"] == sysinfo["hostname"]
    assert doc["kernel"]["release"] == sysinfo["release"]
    assert doc["kernel"]["cmdline"] == sysinfo["cmdline"]
    assert doc["kernel"]["modules"] is sysinfo["modules"]
    assert (doc["kernel"]["modules_reason"] == "") is sysinfo["modules"]
    assert doc["kvm"]["device"] is sysinfo["kvm"]
    if not sysinfo["kvm"]:
        assert doc["kvm"]["openable"] is False
    assert doc["vhost_net"] == {"device": sysinfo["vhost_net"],
                                "module_loaded": sysinfo["vhost_net_module"]}
    assert doc["pf_ring"]["loaded"] is sysinfo["pf_ring"]
    assert (doc["pf_ring"]["info"] != "") is sysinfo["pf_ring"]
    assert doc["halt_poll_ns"]["present"] is sysinfo["halt_present"]
    assert doc["halt_poll_ns"]["value"] == sysinfo["halt_value"]
    assert doc["cpus"]["online"] == os.sysconf("SC_NPROCESSORS_ONLN")
    assert doc["cpus"]["isolated"] == sysinfo["isolated"]
    assert doc["cpus"]["nohz_full"] == sysinfo["nohz_full"]
    assert doc["cpus"]["governors"] == sysinfo["governors"]
    assert doc["elvis"] == {"marker": "kvmnetlab-elvis-marker 1",
                            "state": {"mode": "upstream", "knobs": {"poll_us": 50}}}
    assert doc["kvm_host"] == {"state": {"settings": {"vhost_net": False}}}
    # lo was both found by address and named: one entry, with the address that selected it.
    assert set(doc["nics"]) == {"lo"}
    lo = doc["nics"]["lo"]
    assert lo["address"] == "127.0.0.1"
    assert lo["driver"] is None
    assert lo["rx_queues"] == queue_count("/sys/class/net", "lo", "rx")
    assert lo["tx_queues"] == queue_count("/sys/class/net", "lo", "tx")
    assert doc["missing_addresses"] == [ABSENT_ADDRESS]
    assert doc["missing_interfaces"] == ["kvcapmissing0"]
    for tool in ("ping", "ip", "ethtool", "fping", "sockperf", "trafgen", "tcpdump"):
        assert (doc["tools"][tool] is None) is (which(tool) is None), tool
    for tool in ("pfcount", "pfsend"):
        assert doc["tools"][tool] == which(tool)
    if which("ethtool"):
        assert lo["ethtool_k"].startswith("Features for lo:")
    else:
        assert lo["ethtool_i"] is None and lo["ethtool_k"] is None
    assert doc["qemu"]["poll_us"] is None
    assert doc["qemu"]["binary"] == which("qemu-system-x86_64")
    assert doc["tools"]["qemu"] == doc["qemu"]["version"]


def test_localhost_check_mode_changes_nothing(tmp_path):
    rc, res, _ = run_module("localhost", {"probe_qemu": False}, "--check")
    assert rc == 0, res
    assert res["changed"] is False
    assert res["capabilities"]["kernel"]["release"] == os.uname().release


def test_broken_state_file_is_null_with_a_warning(tmp_path):
    broken = tmp_path / "elvis.json"
    broken.write_text("{not json")
    rc, res, stderr = run_module("localhost", {"probe_qemu": False, "elvis_state_file": str(broken),
                                       "elvis_marker_path": str(tmp_path / "absent")})
    assert rc == 0, res
    assert res["capabilities"]["elvis"] == {"marker": None, "state": None}
    assert f"[WARNING]: {broken}: not JSON" in stderr


def test_malformed_options_fail_naming_them():
    rc, res, _ = run_module("localhost", {"data_addresses": ["198.18.0.999"]})
    assert rc != 0
    assert "data_addresses: '198.18.0.999' is not an IP address" in res["msg"]


@pytest.mark.skipif(which("qemu-system-x86_64") is None,
                    reason="qemu-system-x86_64 is not installed (the guests playbook installs it)")
def test_localhost_qemu_probe_through_ansible():
    qemu = which("qemu-system-x86_64")
    first = subprocess.run([qemu, "--version"], capture_output=True, text=True,
                           check=True).stdout.splitlines()[0].strip()
    rc, res, _ = run_module("localhost", {"timeout": 20})
    assert rc == 0, res
    found = res["capabilities"]["qemu"]
    assert found["binary"] == qemu
    assert found["version"] == first
    assert found["poll_us"] is True, found["poll_us_evidence"]
    assert res["capabilities"]["tools"]["qemu"] == first


# ------------------------------------------ through Ansible, in a network namespace --
# Run inside the namespace: {interface: [rx queues, tx queues]} of its /sys/class/net.
LIST_QUEUES = (
    "import glob, json, os; print(json.dumps({os.path.basename(i): "
    "[len(glob.glob(i + '/queues/rx-*')), len(glob.glob(i + '/queues/tx-*'))] "
    "for i in glob.glob('/sys/class/net/*')}))"
)


@pytest.fixture
def captest_netns(root_only):
    """A namespace with a veth pair (3 rx / 2 tx queues on one end) from 198.18.250.0/24.

    Both ends stay inside the namespace: nothing of the machine's own namespace changes.
    """
    name = f"kvmnl-captest-{os.getpid()}"
    ends = ("kcapa", "kcapb")
    commands = [
        ["ip", "netns", "add", name],
        ["ip", "-n", name, "link", "add", ends[0], "numrxqueues", "3", "numtxqueues", "2",
         "type", "veth", "peer", "name", ends[1]],
        ["ip", "-n", name, "addr", "add", "198.18.250.1/24", "dev", ends[0]],
        ["ip", "-n", name, "addr", "add", "198.18.250.2/24", "dev", ends[1]],
        ["ip", "-n", name, "link", "set", ends[0], "up"],
        ["ip", "-n", name, "link", "set", ends[1], "up"],
        ["ip", "-n", name, "link", "set", "lo", "up"],
    ]
    try:
        for argv in commands:
            subprocess.run(argv, check=True, capture_output=True, text=True)
        yield name, ends
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


@pytest.mark.lab
def test_namespace_host_describes_its_veth_pair(captest_netns, tmp_path):
    name, (end_a, end_b) = captest_netns
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"captest": {
        "ansible_connection": "kvmnetlab.lab.netns",
        "kvmnetlab_netns": name,
        "ansible_python_interpreter": sys.executable,
    }}}}))
    # What the namespace holds, read by the test itself (ip netns exec remounts /sys).
    seen = json.loads(subprocess.run(
        ["ip", "netns", "exec", name, sys.executable, "-c", LIST_QUEUES],
        check=True, capture_output=True, text=True).stdout)
    assert seen[end_a] == [3, 2]
    # One of the machine's own interfaces, absent from the namespace.
    outside = sorted({p.name for p in Path("/sys/class/net").iterdir()} - set(seen))[:1]
    assert ip_addresses(name) >= {"198.18.250.1", "198.18.250.2"}

    rc, res, _ = run_module("captest", {
        "data_addresses": ["198.18.250.1", "198.18.250.2/24", "198.18.251.1"],
        "data_interfaces": ["lo", *outside],
        "probe_qemu": False,
    }, "-i", str(inventory))
    assert rc == 0, res
    assert res["changed"] is False
    doc = res["capabilities"]
    assert set(doc["nics"]) == {end_a, end_b, "lo"}
    assert doc["nics"][end_a]["address"] == "198.18.250.1"
    assert doc["nics"][end_b]["address"] == "198.18.250.2/24"
    assert doc["nics"]["lo"]["address"] is None
    for end in (end_a, end_b):
        nic = doc["nics"][end]
        assert nic["driver"] is None  # veth has no device/driver link
        assert [nic["rx_queues"], nic["tx_queues"]] == seen[end]
        if which("ethtool"):
            assert nic["ethtool_i"].splitlines()[0] == "driver: veth"
            assert nic["ethtool_k"].startswith(f"Features for {end}:")
    assert doc["missing_addresses"] == ["198.18.251.1"]
    # The machine's own interfaces do not exist in the namespace.
    assert doc["missing_interfaces"] == outside
    # The kernel is the machine's.
    assert doc["kernel"]["release"] == os.uname().release
    assert doc["kernel"]["cmdline"] == read_stripped("/proc/cmdline")
