"""A real link of known capacity, for the throughput search's test and benchmark.

Three network namespaces, sender 198.18.252.1 -- .2 router 198.18.253.2 -- .1
receiver, joined by veth pairs; the router forwards, and its egress to the receiver
can be shaped with ``tbf`` (the host kernel has it; it has no netem). Root only.
:func:`run_search` runs the whole search the way the campaign does, one call on
each end (``serve`` in the receiver's namespace, ``search`` in the sender's).
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import REPO, sh

AGENT = REPO / "collectors/agents/throughput.py"
NS = {"sender": "kvts-a", "router": "kvts-r", "receiver": "kvts-b"}


def in_ns(ns: str, *argv: str) -> str:
    return sh("ip", "netns", "exec", ns, *argv).stdout


@contextmanager
def shaped_link():
    """The three namespaces, removed on exit; yields ``shape(bits_per_s, frame_bytes)``
    that shapes the router's egress to the receiver."""
    existing = sh("ip", "netns", "list").stdout
    if any(ns in existing for ns in NS.values()):
        raise RuntimeError(f"namespaces {', '.join(NS.values())} exist already: {existing}")
    try:
        for ns in NS.values():
            sh("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", "kvts-a0", "netns", NS["sender"], "type", "veth",
           "peer", "kvts-r0", "netns", NS["router"])
        sh("ip", "link", "add", "kvts-r1", "netns", NS["router"], "type", "veth",
           "peer", "kvts-b0", "netns", NS["receiver"])
        for ns, dev, addr in ((NS["sender"], "kvts-a0", "198.18.252.1/24"),
                              (NS["router"], "kvts-r0", "198.18.252.2/24"),
                              (NS["router"], "kvts-r1", "198.18.253.2/24"),
                              (NS["receiver"], "kvts-b0", "198.18.253.1/24")):
            in_ns(ns, "ip", "address", "add", addr, "dev", dev)
            in_ns(ns, "ip", "link", "set", dev, "up")
        in_ns(NS["sender"], "ip", "route", "add", "198.18.253.0/24", "via", "198.18.252.2")
        in_ns(NS["receiver"], "ip", "route", "add", "198.18.252.0/24", "via", "198.18.253.2")
        in_ns(NS["router"], "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        # every frame is the flow's or the control connection's: no IPv6 chatter
        for ns in NS.values():
            in_ns(ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")

        def shape(bits_per_s: int, frame_bytes: int) -> None:
            # a small bucket (one 1514-byte frame and a little) and a queue of 16 frames,
            # so that a trial above the rate loses (a queue of q frames lets a 1 s trial
            # pass q frames above the rate: under 1 % here) while the sender's jitter
            # does not
            in_ns(NS["router"], "tc", "qdisc", "replace", "dev", "kvts-r1", "root", "tbf",
                  "rate", f"{bits_per_s}bit", "burst", "1600",
                  "limit", str(max(1600, 16 * frame_bytes)))
        yield shape
    finally:
        for ns in NS.values():
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)


def router_mac() -> str:
    return json.loads(in_ns(NS["router"], "ip", "-j", "link", "show", "kvts-r0"))[0]["address"]


def run_search(workdir: Path, frame_bytes: int, save_as: Path | None = None, **over
               ) -> tuple[dict, list[dict], list[dict]]:
    """The whole search over the link; returns the result record, the trials (and load
    points) and the receiver's records. ``over`` overrides the sender's settings; with
    ``save_as``, both ends' raw output is copied to ``<save_as>_{tx,rx}.jsonl``."""
    payload = frame_bytes - 14 - 20 - 8
    cfg = workdir / "trafgen.cfg"
    cfg.write_text(f"{{ eth(da={router_mac()}), ipv4(sa=198.18.252.1, da=198.18.253.1, "
                   f"ttl=64), udp(sp=2012, dp=3000), fill(0x00, {payload}) }}\n")
    rx_config = {"bind": "198.18.253.1", "port": 3001, "counter": "tcpdump",
                 "sender_address": "198.18.252.1",
                 "counter_argv": ["tcpdump", "-i", "kvts-b0", "-n", "-q", "-w", "/dev/null",
                                  "udp and dst port 3000"], "idle_timeout_s": 300}
    tx_config = {"connect": "198.18.253.1", "source": "198.18.252.1", "port": 3001,
                 "sender": "trafgen",
                 "sender_argv": ["chrt", "-f", "50", "trafgen", "-o", "kvts-a0", "-n",
                                 "{frames}", "-t", "{gap_ns}ns", "-c", str(cfg)],
                 "min_pps": 200, "max_pps": 40_000, "granularity": 0.02,
                 "pdr_ratio": 0.005, "validations": 1, "max_trials": 30, "trial_s": 1.0,
                 "validation_s": 2.0, "tolerance": 0.05, "settle_s": 0.1,
                 "load_fractions": [0.1, 0.5, 0.9], "load_s": 0.5, "probe_lead_s": 0.1,
                 "probe_count": 50,
                 "probe_argv": ["ping", "-D", "-O", "-n", "-c", "{count}", "-i", "0.01",
                                "-s", "56", "198.18.253.1"], **over}
    (workdir / "rx.json").write_text(json.dumps(rx_config))
    (workdir / "tx.json").write_text(json.dumps(tx_config))
    with (workdir / "rx.jsonl").open("w") as rx_out:
        receiver = subprocess.Popen(["ip", "netns", "exec", NS["receiver"], sys.executable,
                                     str(AGENT), "serve", str(workdir / "rx.json")],
                                    stdout=rx_out, stderr=subprocess.PIPE, text=True)
        try:
            sender = subprocess.run(["ip", "netns", "exec", NS["sender"], sys.executable,
                                     str(AGENT), "search", str(workdir / "tx.json")],
                                    capture_output=True, text=True, timeout=900, check=False)
        finally:
            receiver.wait(timeout=30)
    if sender.returncode != 0:
        raise RuntimeError(f"search exited {sender.returncode}: {sender.stderr}")
    (workdir / "tx.jsonl").write_text(sender.stdout)
    if save_as is not None:
        for side in ("tx", "rx"):
            Path(f"{save_as}_{side}.jsonl").write_bytes((workdir / f"{side}.jsonl").read_bytes())
    tx = [json.loads(line) for line in sender.stdout.splitlines()]
    rx = [json.loads(line) for line in (workdir / "rx.jsonl").read_text().splitlines()]
    result = next(r for r in tx if r["event"] == "result")
    return result, [r for r in tx if r["event"] in ("trial", "load")], rx

