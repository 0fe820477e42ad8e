"""Competing guests and containers on the embedded lab.

site.yml runs scenarios/future-work.yml's two-guest and two-container scenarios for real:
two TCG guests and two containers on the lab bridge, each receiving its own flow from
kvmnl-h1 at the same time. While the campaign runs, testinfra checks that the containers
exist with their own network namespace and cgroup; afterwards the raw files show that
the flows overlapped inside one counter window, and teardown leaves nothing behind.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import testinfra

from tests.container_checks import check_container
from tests.helpers import REPO, collection_plugin, lab_namespaces, playbook

# about 2 minutes: in the default run
pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("root_only")]

SCENARIOS = ["virtio_x2", "container_x2"]
PARAMS = {"kvmnetlab_scenario_file": "scenarios/future-work.yml",
          "kvmnetlab_scenarios": SCENARIOS, "kvmnetlab_repetitions": 1,
          "kvmnetlab_seed": 5, "kvmnetlab_ping_count": 40, "kvmnetlab_ping_interval_s": 0.005,
          "kvmnetlab_rate_frames": 5000, "kvmnetlab_search": False}
SENDER = "kvmnl-h1"
LXC = collection_plugin("module_util", "container_lxc")


STATE = Path("/var/lib/kvmnetlab/local")  # the embedded lab's kvmnetlab_state_dir
LXCPATH = STATE / "containers" / "lxc"  # roles/container_lab's container_lab_lxcpath
NETNS = "kvmnl-hv"  # where the embedded lab's containers' runtime and bridge live
DATA_IPS = {f"kvmnl-c{i}": f"198.18.1.{20 + i}" for i in range(1, 9)}


def running_containers(host) -> dict[str, dict]:
    """The lab's running containers as the container role describes them in the
    campaign's inventory (tests/container_checks.py), read back from LXC and /proc."""
    enter = ["nsenter", f"--net=/run/netns/{NETNS}"]
    listed = host.run(" ".join([*enter, "lxc-ls", "-P", str(LXCPATH), "--running", "-1"]))
    out = {}
    for name in listed.stdout.split():
        pid = int(host.check_output(" ".join(
            [*enter, "lxc-info", "-P", str(LXCPATH), "-n", name, "-pH"])))
        folder = LXC.cgroup_dirs(host.file(f"/proc/{pid}/cgroup").content_string,
                                 host.file("/proc/self/mountinfo").content_string)
        out[name] = {"kvmnetlab_container_name": name, "kvmnetlab_container_pid": pid,
                     "kvmnetlab_container_lxcpath": str(LXCPATH),
                     "kvmnetlab_container_netns": NETNS,
                     "kvmnetlab_container_cgroup_cpuacct": folder["cpuacct"],
                     "kvmnetlab_container_cgroup_memory": folder["memory"],
                     "kvmnetlab_guest_data_ip": DATA_IPS[name]}
    return out


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    playbook("site.yml", "--tags", "teardown", check=True)
    extra = {**PARAMS, "kvmnetlab_results_dir": str(results), "kvmnetlab_campaign_id": "fw"}
    log = results / "site.log"
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [str(REPO / ".venv/bin/ansible-playbook"), "site.yml", "-e", json.dumps(extra)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    seen: dict[str, object] = {}
    try:
        # during the run: once a container scenario is being measured, look at the
        # containers from the hypervisor with testinfra
        deadline = time.monotonic() + 1800
        while proc.poll() is None and time.monotonic() < deadline:
            if "(item=container_x2 #1)" in log.read_text(errors="replace") and not seen:
                host = testinfra.get_host("local://")
                seen = {name: check_container(host, hostvars, memory_mb=256)
                        for name, hostvars in running_containers(host).items()}
            time.sleep(2)
        rc = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, log.read_text()[-4000:]
    yield results / "fw", seen
    playbook("site.yml", "--tags", "teardown", check=True)


def meta(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_scenario_ran_with_its_guests_or_containers(campaign):
    root, _ = campaign
    manifest = json.loads((root / "manifest.json").read_text())
    assert [(r["scenario"], r["status"]) for r in sorted(manifest["runs"],
                                                          key=lambda r: r["scenario"])] == [
        ("container_x2", "done"), ("virtio_x2", "done")]
    guests = manifest["scenarios"]["virtio_x2"]["resolved"]
    assert guests["guests"] == ["kvmnl-g1", "kvmnl-g2"]
    boxes = manifest["scenarios"]["container_x2"]
    assert boxes["resolved"]["virtualization"] == "container"
    assert boxes["resolved"]["containers"] == ["kvmnl-c1", "kvmnl-c2"]
    assert boxes["resolved"]["container_runtime"]
    subs = {s["knob"]: s["effective"] for s in boxes["substitutions"]}
    assert subs["io_path"] == "veth"  # a container has no virtio device: recorded
    # one search offers one flow: recorded as unavailable, never silently absent
    for name in SCENARIOS:
        assert "flows run at once" in \
            manifest["scenarios"][name]["collectors_unavailable"]["throughput"]


def test_the_flows_overlap_inside_one_counter_window(campaign):
    """Each flow's start and end, read from the raw files (the agent's .meta.json of each
    trafgen, on the sender's clock), fall inside one shared window: every flow starts
    before any flow ends, the starts within a tenth of a flow's length. The containers
    share the sender's clock (one kernel), so there the window is also checked against
    the receivers' counters: every flow runs while both counters capture. A TCG guest
    keeps its own clock (it was found 0.8 s off), so its counter's .meta.json times
    cannot be compared with the sender's; the plan's order (counters started in one
    task, the load in the next, counters stopped after it) is what holds there."""
    root, _ = campaign
    for scenario, receivers in (("virtio_x2", ["kvmnl-g1", "kvmnl-g2"]),
                                ("container_x2", ["kvmnl-c1", "kvmnl-c2"])):
        run = root / "raw" / scenario / "1"
        flows = [meta(run / SENDER / name) for name in
                 ("trafgen.txt.meta.json", "flow2.trafgen.txt.meta.json")]
        shared = (max(f["started_at"] for f in flows), min(f["finished_at"] for f in flows))
        length = min(f["finished_at"] - f["started_at"] for f in flows)
        assert shared[0] < shared[1], (scenario, flows)
        assert shared[0] - min(f["started_at"] for f in flows) < length / 10, (scenario, flows)
        assert all(f["rc"] == 0 for f in flows)
        counters = [meta(run / host / "tcpdump.txt.meta.json") for host in receivers]
        assert all("ready_at" in c and c["stopped_by"] == "INT" for c in counters)
        if scenario.startswith("container"):
            opened = max(c["ready_at"] for c in counters)
            closed = min(c["finished_at"] for c in counters)
            for flow in flows:
                assert opened <= flow["started_at"] < flow["finished_at"] <= closed, (
                    scenario, flow, opened, closed)


def test_results_per_flow_and_in_total(campaign):
    root, _ = campaign
    rate = pd.read_parquet(root / "data" / "rate.parquet")
    for scenario, receivers in (("virtio_x2", {1: "kvmnl-g1", 2: "kvmnl-g2"}),
                                ("container_x2", {1: "kvmnl-c1", 2: "kvmnl-c2"})):
        rows = rate[rate.scenario == scenario].set_index("flow")
        assert rows["receiver_host"].to_dict() == receivers
        assert (rows["sent"] == PARAMS["kvmnetlab_rate_frames"]).all()
    rtt = pd.read_parquet(root / "data" / "rtt.parquet")
    per_flow = rtt.groupby(["scenario", "flow"]).size().to_dict()
    assert per_flow == {(s, f): PARAMS["kvmnetlab_ping_count"]
                        for s in SCENARIOS for f in (1, 2)}
    costs = pd.read_parquet(root / "data" / "costs.parquet")
    metrics = set(costs[costs.scenario == "container_x2"].metric)
    assert "container_cpu_us_per_packet" in metrics and "qemu_cpu_us_per_packet" not in metrics
    assert "qemu_cpu_us_per_packet" in set(costs[costs.scenario == "virtio_x2"].metric)


def test_containers_were_isolated_during_the_run(campaign):
    """check_container asserted, while container_x2 was measured, that each container ran
    under LXC in its own network namespace and cgroups with its memory limit; here: that
    it did so for both, with distinct namespaces."""
    _, seen = campaign
    assert sorted(seen) == ["kvmnl-c1", "kvmnl-c2"]
    assert len({facts["net_ns"] for facts in seen.values()}) == 2
    assert all(facts["memory_limit"] == 256 * 1024 * 1024 for facts in seen.values())


def test_teardown_leaves_no_container_guest_or_namespace(campaign):
    playbook("site.yml", "--tags", "teardown", check=True)
    assert not lab_namespaces()
    assert not sorted(Path("/sys/fs/cgroup").glob("*/lxc.*.kvmnl-c*"))
    assert not LXCPATH.exists() or not any(LXCPATH.iterdir())
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "kvveth-" not in links and "kvtap-" not in links
    for proc in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        assert "kvmnl-g" not in cmdline or "qemu" not in cmdline, cmdline
        assert "lxc" not in cmdline or "kvmnl-c" not in cmdline, cmdline
