"""The rehearsal lab: QEMU machines standing in for inventory/lab.example's, over plain SSH.

Two tests, root only:

- ``test_the_rehearsal_lab_comes_up_answers_and_leaves_nothing_behind`` (in the default
  run, a few minutes): ``bin/rehearse up`` builds namespace kvmnl-rh, the apt proxy and the
  three machines and writes the rehearsed inventory; each machine answers SSH at its own
  address from inside the lab's management network, reaches the Debian archive only
  through the proxy, and sits on its data links; a second ``up`` changes nothing;
  ``bin/rehearse down`` leaves no machine, tap, bridge, namespace or proxy process.
- ``test_lab_example_runs_end_to_end_on_the_rehearsal_lab`` (opt-in: KVMNETLAB_REHEARSAL=1;
  over 90 min on 2 cores, see docs/real-lab.md for the measured phase times): the same, then
  ``bin/rehearse campaign`` (site.yml with the rehearsed inventory: packages, kvm_host,
  PF_RING from KVMNETLAB_PFRING_SRC when given, the inner guest on vhost-net, the
  campaign, the report), checks the per-host profile and the substitutions, applies the
  inventory a second time (changed=0 on every rehearsal host), and tears it all down.

Neither may run at the same time as another rehearsal on this machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, ansible_env, extended, process_running, recap

NETNS = "kvmnl-rh"
STATE = Path("/var/lib/kvmnetlab/rehearsal")
INVENTORY = STATE / "inventory"
MACHINES = {"rehearsal-bm1": "198.19.8.11", "rehearsal-bm2": "198.19.8.12",
            "rehearsal-kvm": "198.19.8.13"}
PROXY = "198.19.8.1:3142"
# inventory/lab.example's ansible_user, which the rehearsal machines make (guest_vm_admin_user)
ADMIN = "labadmin"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds QEMU machines: root only")


def rehearse(*args: str, timeout: int = 1800, log: Path | None = None
             ) -> subprocess.CompletedProcess:
    """bin/rehearse with ``args``. With ``log``, its output (phase times included) is written
    there as it comes, so a run that times out still shows how far each phase got."""
    cmd = [str(REPO / "bin/rehearse"), *args]
    if log is None:
        return subprocess.run(cmd, cwd=REPO, env=ansible_env(), capture_output=True, text=True,
                              timeout=timeout)
    with log.open("a") as out:
        out.write(f"$ bin/rehearse {' '.join(args)}\n")
        out.flush()
        start = out.tell()
        proc = subprocess.Popen(cmd, cwd=REPO, env=ansible_env(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # the group bin/rehearse leads, by its PID
            proc.wait(timeout=120)
            pytest.fail(f"bin/rehearse {' '.join(args)}: over {timeout} s; "
                        f"its output so far: {log}")
    with log.open() as back:
        back.seek(start)
        output = back.read()
    return subprocess.CompletedProcess(cmd, proc.returncode, output, "")


def must(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{done.args} failed ({done.returncode}):\n" \
        f"{done.stdout[-8000:]}\n{done.stderr[-3000:]}"
    return done


def on(machine: str, command: str, timeout: int = 300) -> str:
    """Run a command on a rehearsal machine by plain SSH, from the lab's management network."""
    done = subprocess.run(
        ["ip", "netns", "exec", NETNS, "ssh", "-F", str(STATE / "ssh_config"),
         "-o", "BatchMode=yes", MACHINES[machine], command],
        capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{machine}: {command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def running_pids() -> dict[str, int]:
    """PIDs of the lab's processes, from their PID files: QEMU per machine, the proxy's."""
    pids = {}
    for pidfile in list(STATE.glob("guests/*/qemu.pid")):
        pids[f"qemu:{pidfile.parent.name}"] = int(pidfile.read_text().split()[0])
    for pidfile in Path("/var/cache/kvmnetlab/rehearsal-apt-proxy").rglob("*.pid"):
        text = pidfile.read_text().strip()
        if text.isdigit():
            pids[f"proxy:{pidfile.name}"] = int(text)
    return pids


def assert_nothing_left(pids: dict[str, int]) -> None:
    assert NETNS not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                       text=True).stdout.split()
    deadline = time.monotonic() + 15
    while any(process_running(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = {name: pid for name, pid in pids.items() if process_running(pid)}
    assert not left, f"still running after teardown: {left}"
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not re.search(r"\b(kvtap-4[123]|rhbr-)", links), links
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    assert PROXY not in listening


@pytest.fixture
def lab(tmp_path):
    """Builds the rehearsal lab; always tears it down, then checks nothing is left.

    Every bin/rehearse output of the test lands in <tmp_path>/rehearse.log."""
    up = rehearse("up", log=tmp_path / "rehearse.log")
    pids = running_pids()
    try:
        yield must(up)
    finally:
        pids.update(running_pids())
        down = rehearse("down", timeout=600, log=tmp_path / "rehearse.log")
        must(down)
        assert_nothing_left(pids)


@extended("builds the rehearsal lab's three machines, checks them, tears them down; "
          "about 6 min")
def test_the_rehearsal_lab_comes_up_answers_and_leaves_nothing_behind(lab):
    for machine, address in MACHINES.items():
        # plain SSH at its own address; its hostname says which machine answered
        assert on(machine, "hostname").strip() == machine, address
        # as lab.example's admin user, who becomes root with sudo; root has no SSH login
        assert on(machine, "id -un; sudo -n id -u").split() == [ADMIN, "0"], address
        refused = subprocess.run(
            ["ip", "netns", "exec", NETNS, "ssh", "-F", str(STATE / "ssh_config"),
             "-o", "BatchMode=yes", "-l", "root", address, "true"],
            capture_output=True, text=True, timeout=120)
        assert refused.returncode == 255 and "Permission denied" in refused.stderr, address
    # apt reaches Debian only through the proxy on the hypervisor's management address
    sources = on("rehearsal-bm2", "cat /etc/apt/sources.list")
    assert f"deb http://{PROXY}/deb.debian.org/debian bookworm" in sources
    release = on("rehearsal-bm2", "python3 -c \"import urllib.request as u; print(u.urlopen("
                 f"'http://{PROXY}/deb.debian.org/debian/dists/bookworm/Release',"
                 " timeout=120).read(400).decode())\"")
    assert "Codename: bookworm" in release
    # the direct link (bm1 data0 - bm2 data0), and bm1's second link to the KVM host
    assert " 0% packet loss" in on("rehearsal-bm1", "ping -c 3 -i 0.2 -W 5 198.18.0.2")
    assert "198.18.1.1/24" in on("rehearsal-bm1", "ip -brief address show dev data1")
    # the KVM host's admin bridged data0 into its guests' bridge, with its management address
    assert "master br-data" in on("rehearsal-kvm", "ip -o link show dev data0")
    assert "198.19.0.1/24" in on("rehearsal-kvm", "ip -brief address show dev br-mgmt")
    # the rehearsed inventory: lab.example's hosts at the machines' addresses
    hosts = (INVENTORY / "hosts.yml").read_text()
    for address in MACHINES.values():
        assert f"ansible_host: {address}" in hosts
    assert "192.0.2." not in hosts
    assert (INVENTORY / "group_vars/lab_hypervisor/kvm_host.yml").read_text() == \
        (REPO / "inventory/lab.example/group_vars/lab_hypervisor/kvm_host.yml").read_text()
    # building it again changes nothing
    again = must(rehearse("up"))
    assert {host: counts["changed"] for host, counts in recap(again.stdout).items()} == {
        "localhost": 0, **dict.fromkeys(MACHINES, 0)}, changed_tasks(again.stdout)


def changed_tasks(output: str) -> list[str]:
    """``TASK name -> host`` for every task that reported a change, in order."""
    task, found = "", []
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line[6:line.rfind("]")]
        elif line.startswith("changed: ["):
            found.append(f"{task} -> {line[10:line.index(']')]}")
    return found


def newest_manifest(results: Path) -> dict:
    manifests = sorted(results.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    assert manifests, f"no campaign in {results}"
    return json.loads(manifests[-1].read_text())


@pytest.mark.skipif(os.environ.get("KVMNETLAB_REHEARSAL") != "1",
                    reason="over 90 min: set KVMNETLAB_REHEARSAL=1 (and KVMNETLAB_PFRING_SRC)")
def test_lab_example_runs_end_to_end_on_the_rehearsal_lab(lab, tmp_path):
    pf_ring = bool(os.environ.get("KVMNETLAB_PFRING_SRC"))
    results = tmp_path / "results"
    log = tmp_path / "rehearse.log"
    run = rehearse("campaign", "-e", f"kvmnetlab_results_dir={results}", timeout=10800, log=log)
    must(run)
    manifest = newest_manifest(results)
    hosts = manifest["lab"]["profile"]["hosts"]
    assert {"bm-sender", "bm-receiver", "kvm-host", "kvmnl-g1"} <= set(hosts)
    for host in ("bm-sender", "bm-receiver"):
        assert hosts[host]["pf_ring"] is pf_ring, hosts[host]["pf_ring_reason"]
    assert hosts["kvm-host"]["vhost_net"] is True
    # The three machines run under TCG on this machine. Inside rehearsal-kvm (emulated
    # AMD-V) the probe guest decides: KVM when it boots there, else TCG, and the manifest
    # says which and why; the virtualization substitution follows from it.
    accel = hosts["kvm-host"]["accel"]
    assert accel in ("kvm", "tcg"), hosts["kvm-host"]
    # the probe tried KVM first and says what it saw (not a forced mode)
    assert hosts["kvm-host"]["accel_reason"].startswith("kvm: "), hosts["kvm-host"]
    scenarios = manifest["scenarios"]
    # one inner guest (kvmnl-g1, vhost-net): of two booted together under KVM there, one hung
    assert set(scenarios) == {"baseline", "virtio"}
    for name, guest, poll_us in (("virtio", "kvmnl-g1", None),):
        scenario = scenarios[name]
        assert scenario["status"] == "run", scenario
        resolved = scenario["resolved"]
        assert resolved["guest"] == guest and resolved["hosts"]["hypervisor"] == "kvm-host"
        assert resolved["netdev"]["vhost"] is True and resolved["netdev"]["poll_us"] == poll_us
        knobs = {s["knob"] for s in scenario["substitutions"]}
        assert not knobs & {"vhost", "io_path", "guest"}, scenario["substitutions"]
        assert ("virtualization" in knobs) is (accel == "tcg"), scenario["substitutions"]
        assert "kvm" not in scenario["collectors_unavailable"] or accel == "tcg"
    capture = [s for s in scenarios["baseline"]["substitutions"] if s["knob"] == "capture"]
    assert bool(capture) is not pf_ring
    report = (results / manifest["campaign_id"] / "report/report.md").read_text()
    assert "kvm-host" in report and "bm-sender" in report
    # the same inventory applied a second time changes nothing on any rehearsal host
    again = must(rehearse("campaign", "--tags", "lab,tune,pf_ring,guests",
                          "-e", f"kvmnetlab_results_dir={results}", timeout=3600, log=log))
    changed = {host: c["changed"] for host, c in recap(again.stdout).items() if host != "localhost"}
    assert changed and not any(changed.values()), (changed, changed_tasks(again.stdout))
