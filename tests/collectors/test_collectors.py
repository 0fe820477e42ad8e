"""The collector interface: plans per phase and role, availability, parsers, derived costs."""

import json
import math
import sys

import pyarrow.parquet as pq
import pytest

from collectors import base
from collectors.builtin import RateCollector, derive_costs, trafgen_config
from collectors.ingest import frame
from collectors.parsers import tcpdump
from kvmnetlab import links
from kvmnetlab.errors import ParseError, UnreadableError
from tests.helpers import REPO, TESTS

FIXTURES = TESTS / "fixtures"
PARAMS = {"ping_count": 10, "ping_interval_s": 0.01, "ping_payload_bytes": 56,
          "rate_pps": 1000, "rate_frames": 2000, "rate_frame_bytes": 60}
ENDPOINT = {"source_address": "198.18.1.1", "target_address": "198.18.1.11",
            "sender_if": "data1", "receiver_if": "eth1", "receiver_mac": "52:54:00:00:00:11",
            "qemu_pid": 4242}
ALL = {"state": ["sender", "receiver", "hypervisor"], "netdev": ["sender", "receiver"],
       "cpu": ["hypervisor", "receiver"], "qemu_threads": ["hypervisor"],
       "kvm": ["hypervisor"], "rate": ["sender", "receiver"], "ping": ["sender"]}


def ctx(virtualization="tcg", capture="af_packet", **endpoint):
    return base.RunContext("virtio", 1, {"virtualization": virtualization, "capture": capture},
                           PARAMS, {"sender": "h1", "receiver": "g1", "hypervisor": "lab"},
                           {**ENDPOINT, **endpoint})


def by_host(groups):
    return {g["host"]: g["steps"] for g in groups}


def files_of(steps, do="snapshot"):
    return [i["file"] for s in steps if s["do"] == do for i in s["items"]]


def test_plan_orders_phases_and_keeps_rtt_out_of_the_counter_window():
    plan = base.plan(ctx(), ALL)
    pre, load, post = by_host(plan["pre"]), by_host(plan["load"]), by_host(plan["post"])
    finish = by_host(plan["finish"])
    # receiver: counters before, then its packet counter started; stopped before the
    # counters after; packed at once (it sends no RTT probes)
    assert [s["do"] for s in pre["g1"]] == ["snapshot", "start"]
    assert pre["g1"][1]["argv"][0] == "tcpdump"
    assert [s["do"] for s in post["g1"]] == ["stop", "snapshot", "pack"]
    assert post["g1"][0]["dest"] == pre["g1"][1]["dest"]
    assert "cpu_before.proc_stat.txt" in files_of(pre["g1"])  # a guest has its own kernel
    assert "qemu_threads_before.txt" in files_of(pre["lab"])
    # the sender is not in pre or post: one call has its counters around the load
    assert "h1" not in pre and "h1" not in post
    assert [s["do"] for s in load["h1"]] == ["snapshot", "run", "snapshot"]
    assert load["h1"][1]["argv"][0] == "trafgen"
    assert "cpu_before.proc_stat.txt" not in files_of(load["h1"])  # h1 shares lab's kernel
    assert [s["argv"][0] for s in plan["traffic"]] == ["trafgen"]
    assert plan["traffic"][0]["inputs"]["trafgen.cfg"].startswith("{ eth(da=52:54:00:00:00:11)")
    assert load["h1"][1]["inputs"] == plan["traffic"][0]["inputs"]
    # the sender probes RTT after the window, so it is packed after the probe
    assert [s["argv"][0] for s in plan["probe"]] == ["ping"]
    assert list(finish) == ["h1"]
    assert [s["do"] for s in finish["h1"]] == ["run", "pack"]
    packed = set(finish["h1"][-1]["files"])
    assert {"trafgen.cfg", "ping.txt", "ping.txt.meta.json", "trafgen.txt.stderr"} <= packed
    # named in the host's run folder, which the host makes (the plan never predicts it)
    assert "dest" not in finish["h1"][-1]
    assert all("/" not in s.get("dest", "") for c in plan["pre"] + plan["load"] + plan["post"]
               + plan["finish"] for s in c["steps"])
    assert {"tcpdump.txt.stderr", "tcpdump.txt.meta.json"} <= set(post["g1"][-1]["files"])
    # exactly one call per host packs, as its last step; the task timeout covers its tools
    calls = plan["pre"] + plan["load"] + plan["post"] + plan["finish"]
    packing = [c for c in calls if any(s["do"] == "pack" for s in c["steps"])]
    assert sorted(c["host"] for c in packing) == ["g1", "h1", "lab"]
    assert all(c["steps"][-1]["do"] == "pack" for c in packing)
    assert load["h1"] and by_call(plan["load"], "h1")["timeout_s"] >= 60 + float(
        plan["traffic"][0]["timeout_s"])
    # a failed repetition's salvage stops every background tool and packs every host
    salvage = by_host(plan["salvage"])
    assert sorted(salvage) == ["g1", "h1", "lab"]
    assert [s["do"] for s in salvage["g1"]] == ["stop", "pack"]
    assert plan["unavailable"] == {"kvm": "guests run under QEMU's TCG (software emulation): "
                                          "KVM has no VM and no exit counters to read"}


def by_call(groups, host):
    return next(g for g in groups if g["host"] == host)


def test_pf_ring_backend_and_kvm_where_they_exist():
    plan = base.plan(ctx(virtualization="kvm", capture="pf_ring"), ALL)
    assert by_host(plan["pre"])["g1"][1]["argv"][0] == "pfcount"
    assert [s["argv"][0] for s in plan["traffic"]] == ["pfsend"]
    assert "kvm" not in plan["unavailable"]
    kvm = [i for s in by_host(plan["pre"])["lab"] if s["do"] == "snapshot"
           for i in s["items"] if i["file"] == "kvm_before.txt"]
    assert kvm[0]["read"] == ["/sys/kernel/debug/kvm/4242-*/*"]
    # pfsend addresses the receiver's MAC with -m (its -M rewrites the source MAC)
    argv = plan["traffic"][0]["argv"]
    assert argv[argv.index("-m") + 1] == "52:54:00:00:00:11"
    assert "-M" not in argv


@pytest.mark.parametrize(("sender_pf_ring", "receiver_pf_ring", "tools", "backend"), [
    (True, True, ("pfsend", "pfcount"), "pf_ring"),
    (False, True, ("trafgen", "pfcount"), "trafgen_pfcount"),
    (True, False, ("pfsend", "tcpdump"), "pfsend_tcpdump"),
    (False, False, ("trafgen", "tcpdump"), "trafgen_tcpdump"),
])
def test_each_end_uses_pf_ring_only_where_it_is_loaded(sender_pf_ring, receiver_pf_ring,
                                                       tools, backend):
    from collectors.builtin import RateCollector

    run = ctx(capture="pf_ring", sender_pf_ring=sender_pf_ring,
              receiver_pf_ring=receiver_pf_ring)
    plan = base.plan(run, {"rate": ["sender", "receiver"]})
    counter = [s for s in by_host(plan["pre"])["g1"] if s["do"] == "start"]
    assert (plan["traffic"][0]["argv"][0], counter[0]["argv"][0]) == tools
    assert RateCollector.backend(run) == backend
    if tools[0] == "trafgen":  # trafgen needs its packet description beside it
        assert "trafgen.cfg" in plan["traffic"][0]["inputs"]


def test_a_resolved_af_packet_path_never_uses_pf_ring_tools():
    plan = base.plan(ctx(capture="af_packet", sender_pf_ring=True, receiver_pf_ring=True),
                     {"rate": ["sender", "receiver"]})
    assert plan["traffic"][0]["argv"][0] == "trafgen"


def test_roles_limit_collectors_and_shared_kernels_are_read_once():
    plan = base.plan(ctx(receiver_shares_kernel=True), {"cpu": ["hypervisor", "receiver"]})
    assert [g["host"] for g in plan["pre"]] == ["lab"]
    only_sender = base.plan(ctx(), {"netdev": ["sender"]})
    assert [g["host"] for g in only_sender["pre"]] == ["h1"] and only_sender["load"] == []
    # no load: the sender snapshots before and after like any other host
    assert [g["host"] for g in only_sender["post"]] == ["h1"]


def test_unknown_collector():
    with pytest.raises(KeyError, match="telepathy"):
        base.plan(ctx(), {"telepathy": ["sender"]})


def test_trafgen_config_pads_to_the_frame_size():
    config = trafgen_config(ctx())
    assert "udp(sp=2012, dp=3000)" in config
    assert "fill(0x00, 18)" in config  # 60 - 14 (Ethernet) - 20 (IPv4) - 8 (UDP)


def test_derived_costs_per_packet():
    key = {"scenario": "s", "repetition": 1}
    counters = [
        {**key, "host": "lab", "source": "clk_tck", "counter": "clk_tck", "before": 100,
         "after": 100, "delta": 0},
        {**key, "host": "lab", "source": "proc_stat", "counter": "busy_ticks", "delta": 50},
        {**key, "host": "lab", "source": "proc_stat", "counter": "interrupts", "delta": 3000},
        {**key, "host": "lab", "source": "qemu_task", "counter": "utime_ticks", "delta": 20},
        {**key, "host": "lab", "source": "qemu_task", "counter": "stime_ticks", "delta": 5},
    ]
    rate = [{**key, "sent": 1000}]
    costs = {c["metric"]: c for c in derive_costs(counters, rate)}
    assert costs["cpu_us_per_packet"]["value"] == pytest.approx(50 / 100 * 1e6 / 1000)
    assert costs["interrupts_per_packet"]["value"] == pytest.approx(3.0)
    assert costs["qemu_cpu_us_per_packet"]["value"] == pytest.approx(25 / 100 * 1e6 / 1000)
    assert "exits_per_packet" not in costs  # no KVM counters: absent, never 0
    assert all(c["unit"] for c in costs.values())
    assert derive_costs(counters, []) == []


def test_links_find_the_interface_holding_an_address():
    ip_json = json.dumps([
        {"ifname": "lo", "address": "00:00:00:00:00:00",
         "addr_info": [{"family": "inet", "local": "127.0.0.1"}]},
        {"ifname": "data0", "address": "1a:15:67:ff:de:de",
         "addr_info": [{"family": "inet", "local": "198.18.0.1"}]}])
    assert links.owner(ip_json, "198.18.0.1") == {"ifname": "data0", "mac": "1a:15:67:ff:de:de"}
    with pytest.raises(links.LinkError, match=r"198\.18\.9\.9"):
        links.owner(ip_json, "198.18.9.9")
    with pytest.raises(links.LinkError, match="not JSON"):
        links.owner("{", "198.18.0.1")


def test_tcpdump_counts_from_the_real_capture():
    text = (FIXTURES / "tcpdump" / "stats.stderr").read_text().splitlines()
    result = tcpdump.parse(FIXTURES / "tcpdump" / "stats.stderr")
    assert result["interface"] == "vb"
    assert result["captured_packets"] == int(text[1].split()[0])
    assert result["received_by_filter_packets"] == int(text[2].split()[0])
    assert result["dropped_by_kernel_packets"] == int(text[3].split()[0])


def test_tcpdump_truncated_and_malformed(tmp_path):
    lines = (FIXTURES / "tcpdump" / "stats.stderr").read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.stderr"
    cut.write_text("".join(lines[:3]))
    with pytest.raises(ParseError, match=r"cut\.stderr:3: truncated: no 'packets dropped"):
        tcpdump.parse(cut)
    bad = tmp_path / "bad.stderr"
    bad.write_text(lines[0] + "lots of packets captured\n" + "".join(lines[2:]))
    with pytest.raises(ParseError, match=r"bad\.stderr:2: unexpected line"):
        tcpdump.parse(bad)


def _rate_run(tmp_path, tcpdump_stderr: str):
    """A trafgen -> tcpdump run folder from real captures: trafgen/rate.stdout (10000
    frames sent), the given tcpdump stderr, and procfs/sys_statistics.txt as the
    receiver's counters before, with rx_packets raised by 10005 after (the rise
    tests/fixtures/trafgen/CAPTURE.md records for that send)."""
    sender, receiver = tmp_path / "raw" / "h1", tmp_path / "raw" / "g1"
    sender.mkdir(parents=True)
    receiver.mkdir()
    (sender / "trafgen.txt").write_bytes((FIXTURES / "trafgen" / "rate.stdout").read_bytes())
    (receiver / "tcpdump.txt.stderr").write_text(tcpdump_stderr)
    stats = (FIXTURES / "procfs" / "sys_statistics.txt").read_text()
    line = next(x for x in stats.splitlines() if x.endswith("/rx_packets:502"))
    (receiver / "rate_rx_before.txt").write_text(stats)
    (receiver / "rate_rx_after.txt").write_text(
        stats.replace(line, line.replace(":502", f":{502 + 10005}")))
    run = ctx()
    return base.RunFiles(tmp_path, "raw", run.hosts), run


def _tcpdump_counting(frames: int) -> str:
    """The real tcpdump stderr with its captured and received-by-filter counts set to
    ``frames`` (as if the filter had matched that many)."""
    text = (FIXTURES / "tcpdump" / "stats.stderr").read_text()
    assert text.count("5000 packets") == 2
    return text.replace("5000 packets", f"{frames} packets")


def test_rate_loss_from_real_trafgen_and_tcpdump(tmp_path):
    files, run = _rate_run(tmp_path, (FIXTURES / "tcpdump" / "stats.stderr").read_text())
    [row] = RateCollector().parse(files, run)["rate"]
    # 10000 sent by trafgen; the real tcpdump capture counted 5000 of the flow
    assert (row["sent"], row["received"], row["lost"]) == (10000, 5000, 5000)
    assert row["loss_pct"] == 50.0
    assert (row["excess_frames"], row["flag"]) == (0, "")
    assert row["receiver_if_rx_packets"] == 10005
    assert row["backend"] == "trafgen_tcpdump"


def test_rate_received_above_sent_is_flagged_never_a_negative_loss(tmp_path):
    # derived: tcpdump counted 10003 frames of the flow where trafgen sent 10000
    files, run = _rate_run(tmp_path, _tcpdump_counting(10003))
    [row] = RateCollector().parse(files, run)["rate"]
    assert (row["sent"], row["received"]) == (10000, 10003)
    assert row["lost"] is None and math.isnan(row["loss_pct"])
    assert row["excess_frames"] == 3
    assert row["flag"] == ("received_above_sent: 3 frames more than sent; likely foreign or "
                           "duplicated frames matching the flow filter")
    # as ingest stores it: lost is a nullable integer, NA here; a measured row stays whole
    table = frame([row, {**row, "received": 9990, "lost": 10, "loss_pct": 0.1,
                         "excess_frames": 0, "flag": ""}], RateCollector.tables["rate"])
    assert str(table["lost"].dtype) == "Int64"
    assert table["lost"].isna().tolist() == [True, False]
    assert table["lost"].iloc[1] == 10
    path = tmp_path / "rate.parquet"
    table.to_parquet(path, index=False)
    assert str(pq.read_schema(path).field("lost").type) == "int64"
    assert pq.read_table(path).column("lost").null_count == 1


def test_rate_received_equal_to_sent_is_no_loss_and_no_flag(tmp_path):
    files, run = _rate_run(tmp_path, _tcpdump_counting(10000))
    [row] = RateCollector().parse(files, run)["rate"]
    assert (row["lost"], row["loss_pct"], row["excess_frames"], row["flag"]) == (0, 0.0, 0, "")


def test_the_throughput_search_runs_after_the_counter_window_one_call_per_host():
    from kvmnetlab.campaign import Search

    params = {**PARAMS, "search": True, **Search.default().as_dict()}
    run = base.RunContext("virtio", 1, {"virtualization": "tcg", "capture": "af_packet"},
                          params, {"sender": "h1", "receiver": "g1", "hypervisor": "lab"},
                          ENDPOINT)
    plan = base.plan(run, {**ALL, "throughput": ["sender", "receiver"]})
    post, finish = by_host(plan["post"]), by_host(plan["finish"])
    # the receiver's agent starts once its counter window is closed, with its inputs
    assert [s["do"] for s in post["g1"]] == ["stop", "snapshot", "start"]
    agent = post["g1"][-1]
    assert agent["argv"] == ["python3", "{run_dir}/throughput.py", "serve",
                             "{run_dir}/search_rx.json"]
    rx = json.loads(agent["inputs"]["search_rx.json"])
    # it listens on the guest's address and takes the control connection from h1's only
    assert rx["bind"] == "198.18.1.11" and rx["sender_address"] == ENDPOINT["source_address"]
    assert "class Search" in agent["inputs"]["throughput.py"]
    # the sender runs the whole search in one call, after the RTT probes' ping
    assert [s["argv"][:3] for s in plan["probe"]][1] == ["python3", "{run_dir}/throughput.py",
                                                         "search"]
    tx = json.loads(plan["probe"][1]["inputs"]["search_tx.json"])
    assert tx["source"] == ENDPOINT["source_address"]
    assert tx["sender_argv"][:4] == ["chrt", "-f", "50", "trafgen"]
    assert tx["granularity"] == 0.1
    # the sender's call (ping, then the search) comes before the agent is stopped, and
    # the agent is stopped before the receiver's files are packed
    assert [c["host"] for c in plan["finish"]] == ["h1", "g1"]
    assert [s["do"] for s in finish["h1"]] == ["run", "run", "pack"]
    assert [s["do"] for s in finish["g1"]] == ["stop", "pack"]
    assert {"search_rx.jsonl", "search_rx.jsonl.meta.json"} <= set(finish["g1"][-1]["files"])
    assert {"search.jsonl", "search_tx.json", "search_trafgen.cfg"} <= set(
        finish["h1"][-1]["files"])
    # off: nothing is planned
    off = base.RunContext("virtio", 1, run.resolved, {**params, "search": False}, run.hosts,
                          ENDPOINT)
    assert base.plan(off, {"throughput": ["sender", "receiver"]})["probe"] == []


def test_every_parser_names_a_raw_file_it_cannot_read(tmp_path):
    import importlib
    import pkgutil

    from collectors import parsers

    names = [m.name for m in pkgutil.iter_modules(parsers.__path__) if not m.name.startswith("_")]
    assert "ping" in names and "pfcount" in names
    folder = tmp_path / "raw.txt"
    folder.mkdir()  # a directory where the raw file should be
    for name in names:
        module = importlib.import_module(f"collectors.parsers.{name}")
        with pytest.raises(UnreadableError, match="not a regular file but a directory") as err:
            module.parse(folder)
        assert err.value.path == str(folder), name


def test_cpu_collector_names_an_unreadable_clk_tck(tmp_path):
    from collectors.builtin import CpuCollector

    lab = tmp_path / "raw" / "lab"
    lab.mkdir(parents=True)
    (lab / "cpu_before.proc_stat.txt").write_bytes((FIXTURES / "procfs" / "stat.txt").read_bytes())
    (lab / "cpu_before.clk_tck.txt").mkdir()  # not "CLK_TCK is not an integer"
    run = ctx(receiver_shares_kernel=True)
    with pytest.raises(UnreadableError, match=r"cpu_before\.clk_tck\.txt: cannot read"):
        CpuCollector().parse(base.RunFiles(tmp_path, "raw", run.hosts), run)


def test_a_background_start_waits_for_the_tools_ready_line(tmp_path):
    sys.path.insert(0, str(REPO / "collections"))
    from ansible_collections.kvmnetlab.lab.plugins.module_utils.raw_capture import (
        CaptureError,
        start_tool,
        stop_tool,
    )

    late = tmp_path / "late.txt"
    pid = start_tool(["sh", "-c", "sleep 0.4; echo 'listening on data0' >&2; sleep 30"],
                     str(late), ready="listening on")
    meta = json.loads((tmp_path / "late.txt.meta.json").read_text())
    assert meta["pid"] == pid and meta["ready_at"] - meta["started_at"] >= 0.4
    stop_tool(str(late), "TERM")
    with pytest.raises(CaptureError, match=r"did not say 'listening on' within 0\.5 s"):
        start_tool(["sleep", "30"], str(tmp_path / "silent.txt"), ready="listening on",
                   ready_timeout_s=0.5)
    stop_tool(str(tmp_path / "silent.txt"), "TERM")
    with pytest.raises(CaptureError, match="exited at once"):
        start_tool(["sh", "-c", "echo no such interface >&2; exit 1"],
                   str(tmp_path / "gone.txt"), ready="listening on")
    # tcpdump, the receiver's counter, is started that way
    plan = base.plan(ctx(), ALL)
    counter = [s for s in by_host(plan["pre"])["g1"] if s["do"] == "start"]
    assert counter[0]["argv"][0] == "tcpdump" and counter[0]["ready"] == "listening on"
