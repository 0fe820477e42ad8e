"""kvmnetlab's built-in collectors (see collectors/base.py for the lifecycle).

Every number a collector returns carries its unit in its name or in a ``unit``
column. A counter a lab does not have is reported as unavailable, never as 0.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

from collectors.base import Availability, Capture, Collector, RunContext, RunFiles, register
from collectors.parsers import fping as fping_parser
from collectors.parsers import pfcount as pfcount_parser
from collectors.parsers import pfsend as pfsend_parser
from collectors.parsers import (
    ping,
    proc_interrupts,
    proc_stat,
    proc_task_stat,
    sys_net_statistics,
    tcpdump,
    trafgen,
)
from collectors.parsers import sockperf as sockperf_parser
from collectors.parsers._text import INT64_MIN, read_text, to_int
from kvmnetlab import store_format
from kvmnetlab.errors import ParseError

# The generated flow of the rate test, as pfsend generates it (UDP 2012 -> 3000).
FLOW_SPORT, FLOW_DPORT = 2012, 3000
FLOW_FILTER = f"udp and dst port {FLOW_DPORT}"


def flow_filter(ctx: RunContext) -> str:
    """The receiver's BPF filter for its flow. With several flows at once (N guests or
    containers on one bridge) each receiver counts only the frames sent to its own
    address: until the bridge has learned a receiver's MAC it floods that flow's frames
    to every port, and a capture in promiscuous mode would count them at the others."""
    if ctx.flows == 1:
        return FLOW_FILTER
    return f"{FLOW_FILTER} and dst host {ctx.endpoint['target_address']}"


def _key(ctx: RunContext, role: str) -> dict[str, Any]:
    return {"scenario": ctx.scenario, "repetition": ctx.repetition, "host": ctx.hosts[role]}


@register
class PingCollector(Collector):
    """Per-packet RTT and loss from iputils ping (-D -O so unanswered probes are seen)."""

    name = "ping"
    tables: ClassVar[dict[str, dict[str, str]]] = {
        "rtt": store_format.dtypes("rtt"), "ping_summary": store_format.dtypes("ping_summary")}

    def captures(self, ctx):
        p = ctx.parameters
        deadline = int(p["ping_count"] * p["ping_interval_s"] + 10.999)
        argv = ("ping", "-D", "-O", "-n", "-c", str(p["ping_count"]),
                "-i", str(p["ping_interval_s"]), "-s", str(p["ping_payload_bytes"]),
                "-w", str(deadline), ctx.endpoint["target_address"])
        return [Capture(self.name, "sender", "probe", "ping.txt", argv=argv, ok_rc=(0, 1),
                        timeout_s=deadline + 30)]

    def parse(self, files, ctx):
        result = ping.parse(files.path("sender", "ping.txt"))
        key = _key(ctx, "sender")
        rows = [{**key, "seq": p["seq"], "timestamp_s": p["timestamp_s"],
                 "answered": p["answered"],
                 "rtt_us": p["rtt_us"] if p["rtt_us"] is not None else float("nan"),
                 "duplicates": p["duplicates"]} for p in result.probes]
        s = result.summary
        sent = s["transmitted"]
        summary = {**key, "transmitted": sent, "received": s["received"],
                   "duplicates": s.get("duplicates", 0), "errors": s.get("errors", 0),
                   "loss_pct": 100.0 * (sent - s["received"]) / sent if sent else float("nan"),
                   "interval_s": ctx.parameters["ping_interval_s"],
                   "payload_bytes": ctx.parameters["ping_payload_bytes"]}
        return {"rtt": rows, "ping_summary": [summary]}


# --------------------------------------------------------------------------- the
# independent probes: fping beside ping, and (optional) sockperf's UDP request/response


def _started_at(files: RunFiles, role: str, name: str) -> float | None:
    """When the agent started a probe (its .meta.json), or None if not recorded (or not
    a finite time)."""
    if not files.has(role, name + ".meta.json"):
        return None
    try:
        started = float(json.loads(read_text(files.path(role, name + ".meta.json")))["started_at"])
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
    return started if math.isfinite(started) else None


@register
class FpingCollector(Collector):
    """Per-probe ICMP RTT from fping, the independent check of ping's RTT.

    fping probes the same target from the same host as ``ping``, in the same repetition
    and in the same call: the two are started together, each at the campaign's probe
    count and spacing (``ping_count``, ``ping_interval_s``; fping's ``-p``), fping half
    an interval after ping, so their probes alternate on the path and neither tool's
    probe spacing changes. ``-t`` (fping's per-probe timeout) is at least 1 s, so a
    reply later than one interval still counts, as it does for ping. ``-D`` stamps its
    per-reply lines (stdout); the samples are read from the summary it prints on stderr
    (``-C``), in µs. ``start_offset_s`` is fping's start after ping's as the two tools'
    .meta.json recorded it (NaN when ping did not run beside it).
    """

    name = "fping"
    tables: ClassVar[dict[str, dict[str, str]]] = {"fping_rtt": store_format.dtypes("fping_rtt")}
    ALONGSIDE = "ping.txt"

    @staticmethod
    def offset_s(parameters: dict[str, Any]) -> float:
        """fping's start after ping's: half the probe interval (s)."""
        return parameters["ping_interval_s"] / 2

    def captures(self, ctx):
        p = ctx.parameters
        period_ms = p["ping_interval_s"] * 1000
        timeout_ms = max(1000, int(period_ms + 0.999))
        argv = ("fping", "-C", str(p["ping_count"]), "-p", f"{period_ms:g}",
                "-t", str(timeout_ms), "-b", str(p["ping_payload_bytes"]), "-D",
                ctx.endpoint["target_address"])
        duration = p["ping_count"] * p["ping_interval_s"] + timeout_ms / 1000
        return [Capture(self.name, "sender", "probe", "fping.txt", argv=argv, ok_rc=(0, 1),
                        timeout_s=int(duration + 30.999), alongside=self.ALONGSIDE,
                        offset_s=self.offset_s(p))]

    def parse(self, files, ctx):
        result = fping_parser.parse(files.path("sender", "fping.txt.stderr"))
        key = _key(ctx, "sender")
        began = _started_at(files, "sender", "fping.txt")
        ping_began = _started_at(files, "sender", self.ALONGSIDE)
        offset = began - ping_began if began is not None and ping_began is not None \
            else float("nan")
        return {"fping_rtt": [
            {**key, "target": row["host"], "seq": row["probe"], "answered": row["answered"],
             "rtt_us": row["rtt_us"] if row["rtt_us"] is not None else float("nan"),
             "interval_s": ctx.parameters["ping_interval_s"], "start_offset_s": offset}
            for row in result.rows()]}


@register
class SockperfCollector(Collector):
    """UDP request/response RTT from sockperf's ping-pong (optional; off by default).

    ``sockperf server`` runs on the receiver from after the counter window until the
    probes end; the sender runs ``sockperf ping-pong`` against it after ping and fping,
    at one message per probe interval (``--mps``) for long enough to keep about
    ``ping_count`` messages once sockperf drops its first 400 ms and last 50 ms. It runs
    with ``--full-rtt``, so its numbers are round-trip times; ``statistic`` records what
    the output itself says (``rtt``, or ``half_rtt``: sockperf's default one-way
    "latency", RTT/2), never assumed.
    """

    name = "sockperf"
    tables: ClassVar[dict[str, dict[str, str]]] = {"sockperf": store_format.dtypes("sockperf")}
    PORT = 11111

    @staticmethod
    def plan_run(parameters: dict[str, Any]) -> tuple[int, int]:
        """(messages per second, run time in s) for the ping-pong."""
        interval = parameters["ping_interval_s"]
        mps = max(1, round(1 / interval))
        return mps, max(1, math.ceil(parameters["ping_count"] * interval + 0.45))

    def captures(self, ctx):
        target = ctx.endpoint["target_address"]
        mps, duration = self.plan_run(ctx.parameters)
        return [
            Capture(self.name, "receiver", "probe_start", "sockperf_server.txt",
                    argv=("sockperf", "server", "-i", target, "-p", str(self.PORT)),
                    timeout_s=duration + 120),
            Capture(self.name, "sender", "probe", "sockperf.txt",
                    argv=("sockperf", "ping-pong", "-i", target, "-p", str(self.PORT),
                          "-t", str(duration), f"--mps={mps}", "--full-rtt"),
                    timeout_s=duration + 30)]

    def parse(self, files, ctx):
        r = sockperf_parser.parse(files.path("sender", "sockperf.txt"))
        mps, duration = self.plan_run(ctx.parameters)
        at = {p["percentile"]: p["value_us"] for p in r.percentiles}
        for needed in (50.0, 99.0):
            if needed not in at:
                raise ParseError(files.path("sender", "sockperf.txt"), None,
                                 f"no percentile {needed:g} line")
        return {"sockperf": [{
            **_key(ctx, "sender"), "target": ctx.endpoint["target_address"],
            "statistic": r.statistic, "mps": mps, "duration_s": duration,
            "observations": r.observations, "dropped": r.dropped, "p50_us": at[50.0],
            "p99_us": at[99.0], "avg_us": r.avg_us, "min_us": r.min_us, "max_us": r.max_us}]}


def trafgen_config(ctx: RunContext) -> str:
    """trafgen's packet configuration for the generated flow (frame length without CRC)."""
    e = ctx.endpoint
    payload = ctx.parameters["rate_frame_bytes"] - 14 - 20 - 8
    return (f"{{ eth(da={e['receiver_mac']}), ipv4(sa={e['source_address']}, "
            f"da={e['target_address']}, ttl=64), udp(sp={FLOW_SPORT}, dp={FLOW_DPORT}), "
            f"fill(0x00, {payload}) }}\n")


@register
class RateCollector(Collector):
    """Sender -> counter at a set rate and frame size; loss measured the seed's way.

    Backends: ``pf_ring`` (pfsend on the sender, pfcount on the receiver) where
    PF_RING is loaded; otherwise ``trafgen_tcpdump`` (netsniff-ng's trafgen sends,
    tcpdump counts the flow on the receiver). Both count only the generated flow
    (BPF ``udp and dst port 3000``); the receiver's kernel interface counters are
    kept beside as a second count.
    """

    name = "rate"
    #: ``lost`` is null and ``loss_pct`` NaN when the counter saw more frames of the flow
    #: than were sent: that loss is not measurable. ``excess_frames`` then holds
    #: received - sent (else 0) and ``flag`` says why (else "").
    tables: ClassVar[dict[str, dict[str, str]]] = {"rate": store_format.dtypes("rate")}

    @staticmethod
    def tools(ctx: RunContext) -> tuple[str, str]:
        """(sending tool, counting tool): PF_RING's where the capture path resolved to
        PF_RING and that end has pf_ring.ko loaded (``sender_pf_ring`` and
        ``receiver_pf_ring`` in the endpoint; absent means loaded), else trafgen and
        tcpdump. A guest with PF_RING fed by a host without it counts with pfcount
        and is sent to by trafgen."""
        pf_ring = ctx.resolved.get("capture") in ("pf_ring", "vpf_ring")
        e = ctx.endpoint
        sender = "pfsend" if pf_ring and e.get("sender_pf_ring", True) else "trafgen"
        receiver = "pfcount" if pf_ring and e.get("receiver_pf_ring", True) else "tcpdump"
        return sender, receiver

    @classmethod
    def backend(cls, ctx: RunContext) -> str:
        """``pf_ring`` (pfsend -> pfcount), ``trafgen_tcpdump``, or the mixed pair
        (``trafgen_pfcount``, ``pfsend_tcpdump``)."""
        sender, receiver = cls.tools(ctx)
        return "pf_ring" if (sender, receiver) == ("pfsend", "pfcount") \
            else f"{sender}_{receiver}"

    def captures(self, ctx):
        p, e = ctx.parameters, ctx.endpoint
        frames, pps, size = p["rate_frames"], p["rate_pps"], p["rate_frame_bytes"]
        duration = frames / pps
        stats = (f"/sys/class/net/{e['receiver_if']}/statistics/*",)
        sender, receiver = self.tools(ctx)
        caps = [Capture(self.name, "receiver", "before", "rate_rx_before.txt", read=stats,
                        read_format="grep"),
                Capture(self.name, "receiver", "after", "rate_rx_after.txt", read=stats,
                        read_format="grep")]
        if receiver == "pfcount":
            caps.append(Capture(self.name, "receiver", "start", "pfcount.txt",
                                argv=("pfcount", "-i", e["receiver_if"], "-f",
                                      flow_filter(ctx)),
                                timeout_s=duration + 120))
        else:
            caps.append(Capture(self.name, "receiver", "start", "tcpdump.txt",
                                argv=("tcpdump", "-i", e["receiver_if"], "-n", "-q", "-w",
                                      "/dev/null", flow_filter(ctx)), timeout_s=duration + 120,
                                # printed once the capture is open (pcap activated, filter set)
                                ready="listening on"))
        if sender == "pfsend":
            caps.append(Capture(self.name, "sender", "traffic", "pfsend.txt",
                                argv=("pfsend", "-i", e["sender_if"], "-n", str(frames),
                                      "-p", str(pps), "-l", str(size), "-S", e["source_address"],
                                      "-D", e["target_address"], "-m", e["receiver_mac"]),
                                timeout_s=duration + 60))
        else:
            caps.append(Capture(self.name, "sender", "traffic", "trafgen.txt",
                                argv=("trafgen", "-o", e["sender_if"], "-n", str(frames),
                                      "-b", f"{pps}pps", "-c", "{run_dir}/trafgen.cfg"),
                                inputs=(("trafgen.cfg", trafgen_config(ctx)),),
                                timeout_s=duration + 60))
        return caps

    def parse(self, files, ctx):
        backend = self.backend(ctx)
        sender, receiver = self.tools(ctx)
        if sender == "pfsend":
            sent = pfsend_parser.parse(files.path("sender", "pfsend.txt")).sent_packets
        else:
            sent = trafgen.parse(files.path("sender", "trafgen.txt")).tx_packets
        if receiver == "pfcount":
            final = pfcount_parser.parse(files.path("receiver", "pfcount.txt.stderr")).final
            received, drops = final["received_packets"], final.get("dropped_packets", 0)
        else:
            counts = tcpdump.parse(files.path("receiver", "tcpdump.txt.stderr"))
            received = counts["received_by_filter_packets"]
            drops = counts["dropped_by_kernel_packets"]
        before = sys_net_statistics.parse(files.path("receiver", "rate_rx_before.txt"))
        after = sys_net_statistics.parse(files.path("receiver", "rate_rx_after.txt"))
        rx = after.counters["rx_packets"] - before.counters["rx_packets"]
        excess = max(received - sent, 0)
        if excess:  # foreign or duplicated frames counted: the loss cannot be known
            lost, loss_pct = None, float("nan")
            flag = store_format.received_above_sent(excess)
        else:
            lost, flag = sent - received, ""
            loss_pct = 100.0 * lost / sent if sent else float("nan")
        return {"rate": [{**_key(ctx, "sender"), "backend": backend,
                          "frame_bytes": ctx.parameters["rate_frame_bytes"],
                          "rate_pps": float(ctx.parameters["rate_pps"]), "sent": sent,
                          "received": received, "lost": lost, "loss_pct": loss_pct,
                          "excess_frames": excess, "flag": flag,
                          "receiver_host": ctx.hosts["receiver"],
                          "receiver_if_rx_packets": rx, "receiver_drops": drops}]}


def _delta_rows(ctx, role, source, item, before: dict, after: dict, unit: str) -> list[dict]:
    rows = []
    for counter in sorted(set(before) & set(after)):
        b, a = before[counter], after[counter]
        if b is None or a is None:
            continue
        rows.append({**_key(ctx, role), "source": source, "item": item, "counter": counter,
                     "before": b, "after": a, "delta": a - b, "unit": unit})
    return rows


@register
class NetCountersCollector(Collector):
    """NIC and kernel counters of the data interfaces.

    The sysfs statistics are parsed into counter rows; /proc/net/dev, which holds the
    same counters for every interface of the host, is kept raw beside them.
    """

    name = "netdev"
    tables: ClassVar[dict[str, dict[str, str]]] = {"counters": store_format.dtypes("counters")}
    per_host_roles = ("sender",)  # every flow leaves the sender on the same interface

    def captures(self, ctx):
        caps = []
        for role, iface in (("sender", ctx.endpoint["sender_if"]),
                            ("receiver", ctx.endpoint["receiver_if"])):
            for phase in ("before", "after"):
                caps += [
                    Capture(self.name, role, phase, f"netdev_{phase}.sysfs.txt",
                            read=(f"/sys/class/net/{iface}/statistics/*",), read_format="grep"),
                    Capture(self.name, role, phase, f"netdev_{phase}.proc_net_dev.txt",
                            read=("/proc/net/dev",))]
        return caps

    def parse(self, files, ctx):
        rows = []
        for role in ("sender", "receiver"):
            if not files.has(role, "netdev_before.sysfs.txt"):
                continue
            b = sys_net_statistics.parse(files.path(role, "netdev_before.sysfs.txt"))
            a = sys_net_statistics.parse(files.path(role, "netdev_after.sysfs.txt"))
            rows += _delta_rows(ctx, role, "sysfs", b.interface, b.counters, a.counters,
                                "count (packets, bytes or events per counter name)")
        return {"counters": rows}


def _cpu_ticks(stat: proc_stat.ProcStat) -> dict[str, int]:
    total = next(c for c in stat.cpus if c["cpu"] == "all")
    ticks = {k: v for k, v in total.items() if k.endswith("_ticks") and v is not None}
    ticks["busy_ticks"] = sum(v for k, v in ticks.items()
                              if k not in ("idle_ticks", "iowait_ticks", "guest_ticks",
                                           "guest_nice_ticks"))
    return ticks


@register
class CpuCollector(Collector):
    """CPU time per core (/proc/stat) and interrupts (/proc/interrupts) on each host role.

    In the embedded lab the namespace hosts share the machine's /proc/stat, so the
    hypervisor role (the machine itself) and the guests are what carry information.
    """

    name = "cpu"
    tables: ClassVar[dict[str, dict[str, str]]] = {"counters": store_format.dtypes("counters")}
    per_host_roles = ("hypervisor",)

    def captures(self, ctx):
        caps = []
        roles = ["hypervisor"]
        if not ctx.endpoint.get("receiver_shares_kernel"):
            roles.append("receiver")  # a guest, or a bare-metal host of a real lab
        for role in roles:
            for phase in ("before", "after"):
                caps += [Capture(self.name, role, phase, f"cpu_{phase}.proc_stat.txt",
                                 read=("/proc/stat",)),
                         Capture(self.name, role, phase, f"cpu_{phase}.interrupts.txt",
                                 read=("/proc/interrupts",)),
                         Capture(self.name, role, phase, f"cpu_{phase}.clk_tck.txt",
                                 argv=("getconf", "CLK_TCK"))]
        return caps

    def parse(self, files, ctx):
        rows = []
        seen = set()
        for role in ("hypervisor", "receiver"):
            if not files.has(role, "cpu_before.proc_stat.txt") or ctx.hosts[role] in seen:
                continue
            seen.add(ctx.hosts[role])
            hz_path = files.path(role, "cpu_before.clk_tck.txt")
            hz = to_int(hz_path, 1, read_text(hz_path).strip(), "CLK_TCK", lo=1)
            b = proc_stat.parse(files.path(role, "cpu_before.proc_stat.txt"))
            a = proc_stat.parse(files.path(role, "cpu_after.proc_stat.txt"))
            unit = f"ticks (1/{hz} s)"
            rows += _delta_rows(ctx, role, "proc_stat", "all", _cpu_ticks(b), _cpu_ticks(a),
                                unit)
            rows += _delta_rows(ctx, role, "proc_stat", "all",
                                {"interrupts": b.interrupts_total,
                                 "context_switches": b.context_switches},
                                {"interrupts": a.interrupts_total,
                                 "context_switches": a.context_switches}, "count")
            ib = proc_interrupts.parse(files.path(role, "cpu_before.interrupts.txt"))
            ia = proc_interrupts.parse(files.path(role, "cpu_after.interrupts.txt"))
            rows += _delta_rows(ctx, role, "interrupts", "all",
                                {i["irq"]: i["total"] for i in ib.irqs},
                                {i["irq"]: i["total"] for i in ia.irqs}, "count")
            rows.append({**_key(ctx, role), "source": "clk_tck", "item": "all",
                         "counter": "clk_tck", "before": hz, "after": hz, "delta": 0,
                         "unit": "ticks per second"})
        return {"counters": rows}


@register
class QemuThreadsCollector(Collector):
    """CPU time of the QEMU process's threads (vCPU, I/O, vhost-<pid>) on the hypervisor."""

    name = "qemu_threads"
    tables: ClassVar[dict[str, dict[str, str]]] = {"counters": store_format.dtypes("counters")}

    def availability(self, ctx):
        if not ctx.virtualized:
            return Availability(False, "no guest in this scenario")
        if ctx.resolved.get("virtualization") == "container":
            return Availability(False, "a container runs in its host's kernel: no QEMU "
                                "process and no KVM VM")
        if not ctx.endpoint.get("qemu_pid"):
            return Availability(False, "the QEMU process of the guest is not known")
        return Availability(True)

    def captures(self, ctx):
        pid = ctx.endpoint["qemu_pid"]
        return [Capture(self.name, "hypervisor", phase, f"qemu_threads_{phase}.txt",
                        read=(f"/proc/{pid}/task/*/stat",)) for phase in ("before", "after")]

    def parse(self, files, ctx):
        b = {t["tid"]: t for t in proc_task_stat.parse(
            files.path("hypervisor", "qemu_threads_before.txt"))}
        a = {t["tid"]: t for t in proc_task_stat.parse(
            files.path("hypervisor", "qemu_threads_after.txt"))}
        rows = []
        for tid in sorted(set(a) & set(b)):
            for field in ("utime_ticks", "stime_ticks"):
                rows += _delta_rows(ctx, "hypervisor", "qemu_task", f"{tid}:{a[tid]['comm']}",
                                    {field: b[tid][field]}, {field: a[tid][field]},
                                    "ticks (USER_HZ)")
        return {"counters": rows}


@register
class ContainerCpuCollector(Collector):
    """CPU time of a container: its cpuacct cgroup's usage (ns) on the host that runs it.

    A container's processes run in its host's kernel: their CPU time is the container's
    cost, as the QEMU threads' CPU time is a guest's.
    """

    name = "container_cpu"
    tables: ClassVar[dict[str, dict[str, str]]] = {"counters": store_format.dtypes("counters")}

    def availability(self, ctx):
        if ctx.resolved.get("virtualization") != "container":
            return Availability(False, "no container in this scenario")
        if not ctx.endpoint.get("container_cgroup"):
            return Availability(False, "the container's cpuacct cgroup is not known")
        return Availability(True)

    def captures(self, ctx):
        usage = f"{ctx.endpoint['container_cgroup'].rstrip('/')}/cpuacct.usage"
        return [Capture(self.name, "hypervisor", phase, f"container_cpu_{phase}.txt",
                        read=(usage,), read_format="grep") for phase in ("before", "after")]

    def parse(self, files, ctx):
        def read(name):
            path = files.path("hypervisor", name)
            text = read_text(path).strip()
            where, _, value = text.rpartition(":")
            if not where.endswith("cpuacct.usage"):
                raise ParseError(path, 1, f"not '<cgroup>/cpuacct.usage:integer': {text[:80]!r}")
            return to_int(path, 1, value.strip(), "cpuacct.usage (ns)")

        return {"counters": _delta_rows(
            ctx, "hypervisor", "cgroup_cpuacct", ctx.hosts.get("receiver", ""),
            {"usage_ns": read("container_cpu_before.txt")},
            {"usage_ns": read("container_cpu_after.txt")}, "ns")}


@register
class KvmStatsCollector(Collector):
    """KVM exits and related counters of the guest's VM, from debugfs (/sys/kernel/debug/kvm)."""

    name = "kvm"
    tables: ClassVar[dict[str, dict[str, str]]] = {"counters": store_format.dtypes("counters")}

    def availability(self, ctx):
        if not ctx.virtualized:
            return Availability(False, "no guest in this scenario")
        if ctx.resolved.get("virtualization") == "container":
            return Availability(False, "a container runs in its host's kernel: no QEMU "
                                "process and no KVM VM")
        if ctx.resolved.get("virtualization") != "kvm":
            return Availability(False, "guests run under QEMU's TCG (software emulation): "
                                "KVM has no VM and no exit counters to read")
        if not ctx.endpoint.get("qemu_pid"):
            return Availability(False, "the QEMU process of the guest is not known")
        return Availability(True)

    def captures(self, ctx):
        pid = ctx.endpoint["qemu_pid"]
        return [Capture(self.name, "hypervisor", phase, f"kvm_{phase}.txt",
                        read=(f"/sys/kernel/debug/kvm/{pid}-*/*",), read_format="grep")
                for phase in ("before", "after")]

    def parse(self, files, ctx):
        def read(name):
            path = files.path("hypervisor", name)
            values = {}
            for lineno, line in enumerate(read_text(path).splitlines(), start=1):
                where, _, value = line.rpartition(":")
                if not where:
                    raise ParseError(path, lineno, f"not 'path:integer': {line[:80]!r}")
                values[where.rsplit("/", 1)[-1]] = to_int(path, lineno, value.strip(), where,
                                                          lo=INT64_MIN)
            return values

        return {"counters": _delta_rows(ctx, "hypervisor", "kvm_debugfs", "vm",
                                        read("kvm_before.txt"), read("kvm_after.txt"), "count")}


@register
class HostStateCollector(Collector):
    """Host state snapshot: kernel, command line, modules, sysctls, NIC driver and offloads,
    and the measurement hygiene of roles/kvm_host (its record and the knobs it sets).

    Every file is read with ``read=``: a path or glob a host lacks (no cpuidle in a VM, no
    kvm_host record where the role never ran) leaves that raw file empty and is listed as
    missing by the capture, never an error.
    """

    name = "state"
    tables: ClassVar[dict[str, dict[str, str]]] = {}
    per_host_roles = ("sender", "hypervisor")
    #: roles/kvm_host writes its record here (kvm_host_state_file's default)
    KVM_HOST_RECORD = "/var/lib/kvmnetlab/kvm_host.json"
    #: the knobs roles/kvm_host sets, read back as they are during the repetition
    TUNING = ("/sys/kernel/mm/transparent_hugepage/enabled",
              "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
              "/sys/devices/system/cpu/isolated",
              "/sys/devices/system/cpu/nohz_full",
              "/sys/devices/system/cpu/cpu0/cpuidle/state*/name",
              "/sys/devices/system/cpu/cpu0/cpuidle/state*/latency",
              "/sys/devices/system/cpu/cpu*/cpuidle/state*/disable",
              "/proc/irq/*/smp_affinity_list")
    #: irqbalance's state; `true` keeps a host without systemctl or pidof from failing
    IRQBALANCE = ("sh", "-c",
                  "echo \"pid: $(pidof irqbalance)\";"
                  " echo \"active: $(systemctl is-active irqbalance.service 2>&1)\";"
                  " echo \"enabled: $(systemctl is-enabled irqbalance.service 2>&1)\"; true")

    def captures(self, ctx):
        caps = []
        for role, iface in (("sender", ctx.endpoint.get("sender_if")),
                            ("receiver", ctx.endpoint.get("receiver_if")),
                            ("hypervisor", None)):
            caps += [Capture(self.name, role, "before", "state.uname.txt", argv=("uname", "-a")),
                     Capture(self.name, role, "before", "state.cmdline.txt",
                             read=("/proc/cmdline",)),
                     Capture(self.name, role, "before", "state.modules.txt",
                             read=("/proc/modules",)),
                     Capture(self.name, role, "before", "state.cpuinfo.txt",
                             argv=("sh", "-c", "grep -m1 'model name' /proc/cpuinfo; nproc")),
                     Capture(self.name, role, "before", "state.sysctl.txt",
                             read=("/proc/sys/net/core/*", "/proc/sys/net/ipv4/tcp_*mem",
                                   "/sys/module/kvm/parameters/*",
                                   "/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"),
                             read_format="grep"),
                     Capture(self.name, role, "before", "state.kvm_host.json",
                             read=(self.KVM_HOST_RECORD,)),
                     Capture(self.name, role, "before", "state.tuning.txt", read=self.TUNING,
                             read_format="grep"),
                     Capture(self.name, role, "before", "state.irqbalance.txt",
                             argv=self.IRQBALANCE)]
            if iface:
                caps += [Capture(self.name, role, "before", "state.ethtool_i.txt",
                                 argv=("ethtool", "-i", iface), ok_rc=(0, 71, 94)),
                         Capture(self.name, role, "before", "state.ethtool_k.txt",
                                 argv=("ethtool", "-k", iface), ok_rc=(0, 71, 94))]
        if ctx.endpoint.get("qemu_pid"):
            caps.append(Capture(self.name, "hypervisor", "before", "state.qemu_cmdline.txt",
                                argv=("sh", "-c",
                                      f"tr '\\0' ' ' < /proc/{ctx.endpoint['qemu_pid']}/cmdline;"
                                      " echo")))
        return caps

    def parse(self, files, ctx):
        return {}


def derive_costs(counters: list[dict], rate: list[dict]) -> list[dict]:
    """Per-packet costs of one run from its counter deltas and the packets sent at rate.

    cpu_us_per_packet: busy CPU time of a host during the rate phase (all cores,
    /proc/stat, non-idle non-iowait ticks / CLK_TCK) divided by the frames sent;
    interrupts_per_packet: interrupts on that host (/proc/stat intr) per frame sent;
    qemu_cpu_us_per_packet: utime+stime of all QEMU threads per frame sent;
    container_cpu_us_per_packet: CPU time of the containers' cgroups per frame sent;
    exits_per_packet: KVM exits of the VM per frame sent (only where KVM runs).
    With several flows at once (N guests or containers) every cost is the repetition's
    total over all of them, per frame sent over all flows.
    """
    if not rate:
        return []
    r = rate[0]
    sent = sum(row["sent"] for row in rate)
    if not sent:
        return []
    key = {"scenario": r["scenario"], "repetition": r["repetition"]}
    out = []
    by_host: dict[str, dict[str, int]] = {}
    hz: dict[str, int] = {}
    qemu_ticks = 0
    qemu_seen = False
    exits = None
    container_ns = None
    for row in counters:
        if row["source"] == "clk_tck":
            hz[row["host"]] = row["before"]
        elif row["source"] == "proc_stat":
            by_host.setdefault(row["host"], {})[row["counter"]] = row["delta"]
        elif row["source"] == "qemu_task":
            qemu_ticks += row["delta"]
            qemu_seen = True
        elif row["source"] == "kvm_debugfs" and row["counter"] == "exits":
            exits = (exits or 0) + row["delta"]
        elif row["source"] == "cgroup_cpuacct":
            container_ns = (container_ns or 0) + row["delta"]
    for host, deltas in sorted(by_host.items()):
        if host in hz and "busy_ticks" in deltas:
            out.append({**key, "host": host, "metric": "cpu_us_per_packet",
                        "value": deltas["busy_ticks"] / hz[host] * 1e6 / sent,
                        "unit": "µs of CPU per packet"})
        if "interrupts" in deltas:
            out.append({**key, "host": host, "metric": "interrupts_per_packet",
                        "value": deltas["interrupts"] / sent, "unit": "interrupts per packet"})
    if qemu_seen and hz:
        tick = next(iter(hz.values()))
        out.append({**key, "host": "qemu", "metric": "qemu_cpu_us_per_packet",
                    "value": qemu_ticks / tick * 1e6 / sent, "unit": "µs of CPU per packet"})
    if container_ns is not None:
        out.append({**key, "host": "containers", "metric": "container_cpu_us_per_packet",
                    "value": container_ns / 1000 / sent, "unit": "µs of CPU per packet"})
    if exits is not None:
        out.append({**key, "host": "kvm", "metric": "exits_per_packet", "value": exits / sent,
                    "unit": "KVM exits per packet"})
    return out

