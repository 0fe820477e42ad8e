"""Several guests or containers at once: the scenario field, the resolver, the plan of N
concurrent flows, the preflight's capacity check and the flows of a run."""

import copy
import re

import pytest

from collectors import base
from collectors.builtin import derive_costs
from kvmnetlab import campaign, capacity, resolve
from kvmnetlab.errors import ConfigError
from tests.collectors.test_collectors import ALL, ENDPOINT, PARAMS

FLOWS = {**ALL, "fping": ["sender"], "throughput": ["sender", "receiver"],
         "container_cpu": ["hypervisor"]}


def write_scenarios(tmp_path, body):
    path = tmp_path / "s.yml"
    path.write_text("format_version: 1\nknob_defaults: {poll_us: 50, halt_poll_ns: 1, "
                    "io_thread_core: null, queues: null}\nscenarios:\n" + body)
    return path


def one(virtualization="kvm", io_path="virtio", extra=""):
    return (f"  s:\n    number: 1\n    title: S\n    virtualization: {virtualization}\n"
            f"    io_path: {io_path}\n    capture: pf_ring\n    policy: substitute\n{extra}")


# --------------------------------------------------------------------------- scenario model


@pytest.mark.parametrize("extra, field, message", [
    ("    guests: 0\n", "scenarios.s.guests", "between 1 and 8"),
    ("    guests: 9\n", "scenarios.s.guests", "between 1 and 8"),
    ("    guests: many\n", "scenarios.s.guests", "must be an integer"),
    ("    guests: true\n", "scenarios.s.guests", "must be an integer"),
])
def test_guests_field_is_checked_naming_file_and_field(tmp_path, extra, field, message):
    path = write_scenarios(tmp_path, one(extra=extra))
    with pytest.raises(ConfigError) as err:
        campaign.load_scenarios(path)
    assert str(path) in str(err.value) and field in str(err.value)
    assert message in str(err.value)


def test_guests_field_refused_on_bare_metal(tmp_path):
    path = write_scenarios(tmp_path, one("none", "none", "    guests: 2\n"))
    with pytest.raises(ConfigError, match=r"scenarios\.s\.guests.*virtualized"):
        campaign.load_scenarios(path)


def test_future_work_file_and_what_the_lab_must_start():
    future = campaign.load_scenarios("scenarios/future-work.yml")
    kinds = {name: (d["virtualization"], campaign.instances(d)) for name, d in future.items()}
    assert kinds == {"baseline": ("none", 1), "virtio_x1": ("kvm", 1), "virtio_x2": ("kvm", 2),
                     "virtio_x4": ("kvm", 4), "container_x1": ("container", 1),
                     "container_x2": ("container", 2), "container_x4": ("container", 4)}
    assert campaign.needs(future) == {"guests": 4, "containers": 4}
    # the seed's five: one guest, no container, as before
    assert campaign.needs(campaign.load_scenarios("scenarios/seed.yml")) == {
        "guests": 1, "containers": 0}
    only = {k: v for k, v in future.items() if k in ("baseline", "container_x2")}
    assert campaign.needs(only) == {"guests": 1, "containers": 2}


# --------------------------------------------------------------------------- resolver

HOSTS = {"lab": {"reachable": True, "accel": "tcg", "accel_reason": "probe",
                 "vhost_net": False, "pf_ring": False, "pf_ring_reason": "not loaded"},
         "h1": {"reachable": True}, "h2": {"reachable": True}}
ENDPOINTS = {"bare_metal": {"sender": "h1", "receiver": "h2"}, "guest": {"sender": "h1"}}
NETDEV = {"vhost": False, "queues": 1, "poll_us": None}


def lab(guests=0, containers=0, reason=None):
    return {"endpoints": ENDPOINTS, "hypervisor": "lab", "declared": {},
            "guests": [{"name": f"g{i}", "hypervisor": "lab", "netdev": NETDEV}
                       for i in range(1, guests + 1)],
            "containers": [{"name": f"c{i}", "hypervisor": "lab", "runtime": "lxc 5.0.2"}
                           for i in range(1, containers + 1)],
            "containers_reason": reason}


def scenario(virtualization="kvm", guests=None, capture="pf_ring", policy="substitute"):
    d = {"name": "s", "virtualization": virtualization, "io_path": "virtio",
         "capture": capture, "policy": policy,
         "knobs": {"poll_us": 50, "halt_poll_ns": 1, "io_thread_core": None, "queues": None}}
    if guests is not None:
        d["guests"] = guests
    return d


def test_resolver_gives_n_guests_and_one_guest_as_before():
    out = resolve.resolve_lab({"s": scenario(guests=3)}, HOSTS, lab(guests=4))["s"]
    assert out["status"] == "run"
    assert out["resolved"]["guests"] == ["g1", "g2", "g3"] and out["resolved"]["guest"] == "g1"
    knobs = [s["knob"] for s in out["substitutions"]]
    assert len(knobs) == len(set(knobs))  # each guest's same substitution recorded once
    single = resolve.resolve_lab({"s": scenario()}, HOSTS, lab(guests=4))["s"]
    assert single["resolved"]["guest"] == "g1" and "guests" not in single["resolved"]


def test_resolver_refuses_more_guests_than_run_with_the_numbers():
    out = resolve.resolve_lab({"s": scenario(guests=4)}, HOSTS, lab(guests=2))["s"]
    assert out["status"] == "not_run"
    assert out["reason"] == "asks for 4 guests at once; 2 are running (g1, g2)"
    # a lab that honours everything else: policy fail stops on the count alone
    kvm = {**HOSTS, "lab": {**HOSTS["lab"], "accel": "kvm", "vhost_net": True}}
    vhost = lab(guests=2)
    for guest in vhost["guests"]:
        guest["netdev"] = {**NETDEV, "vhost": True}
    strict = scenario(guests=4, capture="af_packet", policy="fail")
    assert resolve.resolve_lab({"s": {**strict, "guests": 2}}, kvm, vhost)["s"][
        "substitutions"] == []
    with pytest.raises(resolve.ScenarioFailed, match="4 guests at once; 2 are running"):
        resolve.resolve_lab({"s": strict}, kvm, vhost)


def test_resolver_records_what_a_container_cannot_honour():
    out = resolve.resolve_lab({"s": scenario("container", 2, capture="vpf_ring")}, HOSTS,
                              lab(containers=2))["s"]
    assert out["status"] == "run"
    assert out["resolved"]["virtualization"] == "container"
    assert out["resolved"]["containers"] == ["c1", "c2"]
    assert out["resolved"]["container_runtime"] == "lxc 5.0.2"
    subs = {s["knob"]: s for s in out["substitutions"]}
    assert (subs["io_path"]["requested"], subs["io_path"]["effective"]) == ("virtio", "veth")
    assert (subs["capture"]["requested"], subs["capture"]["effective"]) == (
        "vpf_ring", "af_packet")
    assert "lab: not loaded" in subs["capture"]["reason"]
    assert "virtualization" not in subs and "vhost" not in subs  # no QEMU, nothing to emulate


def test_resolver_with_no_container_running_says_why():
    out = resolve.resolve_lab({"s": scenario("container")}, HOSTS,
                              lab(reason="lxc-start failed: no cgroup"))["s"]
    assert out["status"] == "not_run"
    assert out["reason"] == "lab: lxc-start failed: no cgroup"


# --------------------------------------------------------------------------- the plan


def flow_ctx(number, total, receiver, address, **endpoint):
    return base.RunContext("virtio_x2", 1, {"virtualization": "tcg", "capture": "af_packet"},
                           {**PARAMS, "search": False},
                           {"sender": "h1", "receiver": receiver, "hypervisor": "lab"},
                           {**ENDPOINT, "target_address": address, **endpoint},
                           flow=number, flows=total)


def two_flow_plan():
    first = flow_ctx(1, 2, "g1", "198.18.1.11", qemu_pid=101)
    second = flow_ctx(2, 2, "g2", "198.18.1.12", qemu_pid=102,
                      receiver_mac="52:54:00:00:00:12")
    return base.plan(first, FLOWS, [second])


def test_two_flows_are_sent_together_inside_one_counter_window():
    plan = two_flow_plan()
    load = {c["host"]: c["steps"] for c in plan["load"]}
    runs = [s for s in load["h1"] if s["do"] == "run"]
    assert len(runs) == 1  # one step starts both loads
    lead, riders = runs[0], runs[0]["together"]
    assert [lead["dest"]] + [r["dest"] for r in riders] \
        == ["trafgen.txt", "flow2.trafgen.txt"]
    assert [r["offset_s"] for r in riders] == [0.0]
    # each flow's own packet configuration, to its own guest's MAC
    assert lead["argv"][-1] == "{run_dir}/trafgen.cfg"
    assert riders[0]["argv"][-1] == "{run_dir}/flow2.trafgen.cfg"
    assert "52:54:00:00:00:12" in riders[0]["inputs"]["flow2.trafgen.cfg"]
    assert "52:54:00:00:00:12" not in lead["inputs"]["trafgen.cfg"]
    # both receivers start their counters before the load (pre) and stop them after (post),
    # each counting only its own flow (the bridge floods frames of an unlearned MAC)
    pre = {c["host"]: c["steps"] for c in plan["pre"]}
    assert pre["g2"][1]["argv"][-1] == "udp and dst port 3000 and dst host 198.18.1.12"
    post = {c["host"]: c["steps"] for c in plan["post"]}
    for guest in ("g1", "g2"):
        assert [s["do"] for s in pre[guest]] == ["snapshot", "start"]
        assert post[guest][0]["do"] == "stop"


def test_two_flows_share_host_captures_once_and_keep_their_own():
    plan = two_flow_plan()
    steps = [s for c in plan["pre"] + plan["load"] + plan["post"] for s in c["steps"]]
    files = [(c["host"], i["file"]) for c in plan["pre"] + plan["post"] + plan["load"]
             for s in c["steps"] if s["do"] == "snapshot" for i in s["items"]]
    assert files.count(("lab", "cpu_before.proc_stat.txt")) == 1  # the host's, once
    assert ("lab", "flow2.cpu_before.proc_stat.txt") not in files
    assert ("h1", "flow2.netdev_before.sysfs.txt") not in files  # the sender's NIC, once
    # each guest's QEMU threads, each guest's own CPU
    assert ("lab", "qemu_threads_before.txt") in files
    assert ("lab", "flow2.qemu_threads_before.txt") in files
    assert ("g2", "cpu_before.proc_stat.txt") in files
    reads = {i["file"]: i for c in plan["pre"] for s in c["steps"] if s["do"] == "snapshot"
             for i in s["items"]}
    assert reads["flow2.qemu_threads_before.txt"]["read"] == ["/proc/102/task/*/stat"]
    assert steps  # the plan is not empty
    # one search needs one flow: unavailable, with the reason
    assert "2 flows run at once" in plan["unavailable"]["throughput"]


def test_two_flows_probe_at_the_same_time():
    plan = two_flow_plan()
    finish = {c["host"]: c["steps"] for c in plan["finish"]}
    runs = [s for s in finish["h1"] if s["do"] == "run"]
    assert len(runs) == 1
    lead = runs[0]
    together = {r["dest"]: r["offset_s"] for r in lead["together"]}
    assert lead["dest"] == "ping.txt"
    half = PARAMS["ping_interval_s"] / 2
    assert together == {"fping.txt": half, "flow2.ping.txt": 0.0, "flow2.fping.txt": half}
    assert lead["argv"][-1] == "198.18.1.11"
    assert [r["argv"][-1] for r in lead["together"]] == [
        "198.18.1.11", "198.18.1.12", "198.18.1.12"]


def test_one_flow_plan_is_unchanged_by_the_flows_machinery():
    single = flow_ctx(1, 1, "g1", "198.18.1.11", qemu_pid=101)
    plan = base.plan(single, FLOWS)
    assert not any("flow" in f for fs in plan_files(plan).values() for f in fs)
    load = {c["host"]: c["steps"] for c in plan["load"]}
    assert all("together" not in s for s in load["h1"])
    pre = {c["host"]: c["steps"] for c in plan["pre"]}
    assert pre["g1"][1]["argv"][-1] == "udp and dst port 3000"  # as before flows existed
    assert "throughput" not in plan["unavailable"]


def plan_files(plan):
    out = {}
    for calls in (plan["pre"], plan["load"], plan["post"], plan["finish"]):
        for call in calls:
            for step in call["steps"]:
                if step["do"] == "pack":
                    out.setdefault(call["host"], []).extend(step["files"])
    return out


def test_run_files_of_a_later_flow_are_prefixed_on_shared_hosts_only(tmp_path):
    files = base.RunFiles(tmp_path, "raw/s/1", {"sender": "h1", "receiver": "g2",
                                                "hypervisor": "lab"}, flow=2)
    assert files.path("sender", "ping.txt").name == "flow2.ping.txt"
    assert files.path("hypervisor", "kvm_before.txt").name == "flow2.kvm_before.txt"
    assert files.path("receiver", "tcpdump.txt").parent.name == "g2"
    assert files.path("receiver", "tcpdump.txt").name == "tcpdump.txt"


def test_costs_of_several_flows_are_per_frame_sent_over_all_flows():
    rate = [{"scenario": "s", "repetition": 1, "sent": 1000},
            {"scenario": "s", "repetition": 1, "sent": 3000}]
    counters = [
        {"host": "lab", "source": "clk_tck", "counter": "clk_tck", "before": 100, "delta": 0},
        {"host": "lab", "source": "proc_stat", "counter": "busy_ticks", "delta": 40},
        {"host": "lab", "source": "qemu_task", "counter": "utime_ticks", "delta": 10},
        {"host": "lab", "source": "qemu_task", "counter": "utime_ticks", "delta": 30},
        {"host": "lab", "source": "cgroup_cpuacct", "counter": "usage_ns", "delta": 2_000_000},
        {"host": "lab", "source": "cgroup_cpuacct", "counter": "usage_ns", "delta": 6_000_000},
    ]
    costs = {c["metric"]: c["value"] for c in derive_costs(counters, rate)}
    assert costs["cpu_us_per_packet"] == pytest.approx(40 / 100 * 1e6 / 4000)  # 100 µs
    assert costs["qemu_cpu_us_per_packet"] == pytest.approx(40 / 100 * 1e6 / 4000)
    assert costs["container_cpu_us_per_packet"] == pytest.approx(8_000_000 / 1000 / 4000)


# --------------------------------------------------------------------------- flows of a run


class HostVars(dict):
    """The shape of Ansible's hostvars that kvmnetlab.campaign.run_flows reads."""


def test_run_flows_of_guests_containers_and_bare_metal():
    hv = HostVars({
        "g1": {"kvmnetlab_guest_data_ip": "198.18.1.11", "kvmnetlab_guest_qemu_pid": 11},
        "g2": {"kvmnetlab_guest_data_ip": "198.18.1.12", "kvmnetlab_guest_qemu_pid": 12},
        "c1": {"kvmnetlab_guest_data_ip": "198.18.1.21", "kvmnetlab_shares_kernel": True,
               "kvmnetlab_container_cgroup_cpuacct": "/sys/fs/cgroup/cpuacct/lxc.payload.c1"},
        "h2": {"kvmnetlab_shares_kernel": True}})
    endpoints = {"bare_metal": {"receiver": "h2", "target_address": "198.18.0.2"},
                 "guest": {"sender": "h1"}}
    guests = campaign.run_flows({"virtualization": "tcg", "guest": "g1",
                                 "guests": ["g1", "g2"]}, endpoints, hv)
    assert [(f["receiver"], f["target_address"], f["qemu_pid"]) for f in guests] == [
        ("g1", "198.18.1.11", 11), ("g2", "198.18.1.12", 12)]
    one_guest = campaign.run_flows({"virtualization": "tcg", "guest": "g1"}, endpoints, hv)
    assert [f["receiver"] for f in one_guest] == ["g1"]
    boxes = campaign.run_flows({"virtualization": "container", "container": "c1",
                                "containers": ["c1"]}, endpoints, hv)
    assert boxes[0]["container_cgroup"].endswith("lxc.payload.c1")
    assert boxes[0]["qemu_pid"] is None and boxes[0]["receiver_shares_kernel"] is True
    bare = campaign.run_flows({"virtualization": "none"}, endpoints, hv)
    assert [(f["host"], f["address"]) for f in bare] == [("h2", "198.18.0.2")]
    missing = campaign.run_flows({"virtualization": "tcg", "guests": ["g1", "g9"]},
                                 endpoints, hv)
    assert missing[1]["target_address"] == ""  # not running: the campaign's check says so
    more = campaign.more_flows(guests, {"g2|198.18.1.12": "[links]"}, {"g2": True})
    assert more == [{"receiver": "g2", "target_address": "198.18.1.12",
                     "receiver_links": "[links]", "receiver_pf_ring": True,
                     "receiver_shares_kernel": False, "qemu_pid": 12,
                     "container_cgroup": None}]


# --------------------------------------------------------------------------- capacity

GUESTS = [{"name": f"g{i}", "memory_mb": 768, "vcpus": 1} for i in range(1, 9)]
BOXES = [{"name": f"c{i}", "memory_mb": 256} for i in range(1, 9)]


def refusals(needs, available_mb=20_000, cores=2, running=()):
    return capacity.problems(needs, GUESTS, BOXES, hypervisor="hv", available_mb=available_mb,
                             cores=cores, vcpus_per_core=4, guest_overhead_mb=256,
                             running=list(running))


def test_capacity_accepts_what_fits_and_refuses_with_numbers():
    assert refusals({"guests": 4, "containers": 4}) == []
    memory = refusals({"guests": 4, "containers": 4}, available_mb=3000)
    assert memory == ["4 guests and 4 containers need 5120 MiB more memory (each guest its "
                      "memory_mb + 256 MiB of QEMU, each container its memory_mb; those "
                      "already running not counted); hv has 3000 MiB available "
                      "(MemAvailable)"]
    # guests already running spent their memory already: 3 new guests + 4 containers fit
    assert refusals({"guests": 4, "containers": 4}, available_mb=4100, running=["g1"]) == []
    cores = refusals({"guests": 8, "containers": 0}, cores=1)
    assert cores == ["8 guests have 8 vCPUs; hv has 1 cores, and at most 4 vCPUs per core "
                     "(4) are allowed (kvmnetlab_vcpus_per_core)"]
    declared = capacity.problems({"guests": 3, "containers": 0}, GUESTS[:1], [],
                                 hypervisor="hv", available_mb=1e6, cores=64,
                                 vcpus_per_core=4, guest_overhead_mb=0)
    assert declared == ["the scenarios ask for 3 guests at once; the inventory declares 1 "
                        "(guest_vm_guests)"]


def test_scenario_copy_is_not_mutated_by_resolution():
    s = scenario(guests=2)
    before = copy.deepcopy(s)
    resolve.resolve_lab({"s": s}, HOSTS, lab(guests=2))
    assert s == before


# --------------------------------------------------------------------------- the preflight


@pytest.mark.usefixtures("root_only")
def test_preflight_refuses_guests_the_hypervisor_cannot_hold_before_anything(tmp_path):
    """Read on the hypervisor (here the machine itself), refused with the numbers, before
    the lab lock is taken or any host changes."""
    import os

    from tests.helpers import playbook

    path = write_scenarios(tmp_path, one(extra="    guests: 8\n"))
    done = playbook("playbooks/preflight.yml", "playbooks/finish.yml",
                    extra={"kvmnetlab_scenario_file": path, "kvmnetlab_vcpus_per_core": 1,
                           "kvmnetlab_guest_overhead_mb": 10_000_000,
                           "kvmnetlab_results_dir": tmp_path / "results"})
    assert done.returncode != 0
    said = " ".join(done.stdout.split())  # the callback folds long lines
    # guests already running (a lab left up) spent their memory: not counted again
    need = re.search(r"8 guests and 0 containers need (\d+) MiB more memory", said)
    assert need and int(need.group(1)) >= 10_000_000, said[-2000:]
    assert "MiB available (MemAvailable)" in said
    cores = os.cpu_count()
    if cores < 8:
        assert (f"8 guests have 8 vCPUs; localhost has {cores} cores, and at most 1 vCPUs "
                f"per core ({cores}) are allowed") in said
    assert "Take the lab lock" not in done.stdout  # refused before the lock play
    assert not (tmp_path / "results").exists()
