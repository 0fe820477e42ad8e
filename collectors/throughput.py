"""The throughput search collector: NDR and PDR per scenario and repetition.

The search itself runs on the two ends (collectors/agents/throughput.py): the
receiver's agent is started once the counter window has closed (phase
``probe_start``), the sender runs the whole search in one call in the ``probe``
phase, and the agent is stopped before the raw files are packed. So the search
never overlaps the fixed-rate load whose per-packet costs the counters measure.

Raw files: ``search.jsonl`` on the sender and ``search_rx.jsonl`` on the receiver,
one JSON line per trial with every tool's output verbatim. Here, on the controller,
each trial's trafgen/pfsend and tcpdump/pfcount output is parsed again with the
project's own parsers; a search whose on-host numbers differ from them, or whose
trials do not replay (the same rates chosen from the same outcomes), is refused
with the file and line.

Units: rates in frames/s (``_pps``), durations in s, ratios as fractions (0.005 is
0.5 %), frames as counts.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from collectors.agents import throughput as agent
from collectors.base import Availability, Capture, Collector, RunContext, register
from collectors.builtin import FLOW_FILTER, RateCollector, _key, trafgen_config
from collectors.parsers import pfcount as pfcount_parser
from collectors.parsers import pfsend as pfsend_parser
from collectors.parsers import ping, tcpdump, trafgen
from kvmnetlab import store_format
from kvmnetlab.errors import ParseError

#: the control connection's TCP port on the receiver's data address
CONTROL_PORT = 3001
AGENT_SOURCE = Path(agent.__file__)



def searches(parameters: dict[str, Any], repetition: int) -> bool:
    """Whether this repetition runs the search: it is on, and the repetition is among
    the first ``search_repetitions`` (0, or absent in campaigns stored before it
    existed: every one)."""
    first = parameters.get("search_repetitions") or 0
    return bool(parameters.get("search", False)) and (first == 0 or repetition <= first)


def settings(parameters: dict[str, Any]) -> dict[str, Any]:
    """The search's settings from the campaign parameters (``search_*``)."""
    return {"min_pps": parameters["search_min_pps"], "max_pps": parameters["search_max_pps"],
            "granularity": parameters["search_granularity"],
            "pdr_ratio": parameters["search_pdr_ratio"],
            "validations": parameters["search_validations"],
            "max_trials": parameters["search_max_trials"],
            "trial_s": parameters["search_trial_s"],
            "validation_s": parameters["search_validation_s"],
            "tolerance": parameters["search_tolerance"], "settle_s": 0.1,
            "load_fractions": list(parameters["search_load_fractions"]),
            "load_s": parameters["search_load_s"], "probe_lead_s": 0.1,
            "probe_count": max(1, round(parameters["search_load_s"]
                                        / parameters["ping_interval_s"]))}


@register
class ThroughputCollector(Collector):
    """NDR and PDR by a binary search (MLRsearch-like), one call per host per search.

    Same tools and flow as the ``rate`` collector (pfsend/pfcount where PF_RING runs,
    else trafgen/tcpdump; BPF ``udp and dst port 3000``). On with
    ``kvmnetlab_search: true`` (the default), in the first
    ``kvmnetlab_search_repetitions`` repetitions of each scenario (0: all).
    """

    name = "throughput"
    tables: ClassVar[dict[str, dict[str, str]]] = {
        name: store_format.dtypes(name) for name in ("search_trials", "throughput", "rtt_load")}

    def availability(self, ctx: RunContext) -> Availability:
        if ctx.flows > 1:
            return Availability(False, f"{ctx.flows} flows run at once here; the search "
                                "offers one flow, so competing flows are measured by their "
                                "loss at the fixed rate (rate collector)")
        return Availability(True)

    def captures(self, ctx: RunContext) -> list[Capture]:
        p, e = ctx.parameters, ctx.endpoint
        if not searches(p, ctx.repetition):
            return []
        sender, receiver = RateCollector.tools(ctx)
        size = p["rate_frame_bytes"]
        if receiver == "pfcount":
            counter = ["pfcount", "-i", e["receiver_if"], "-f", FLOW_FILTER]
        else:
            counter = ["tcpdump", "-i", e["receiver_if"], "-n", "-q", "-w", "/dev/null",
                       FLOW_FILTER]
        if sender == "pfsend":
            send = ["pfsend", "-i", e["sender_if"], "-n", "{frames}", "-p", "{pps}",
                    "-l", str(size), "-S", e["source_address"], "-D", e["target_address"],
                    "-m", e["receiver_mac"]]
            extra = ()
        else:
            # evenly spaced frames (-t, a gap after each): -b sends bursts (see Pacer).
            # Real-time priority (chrt, util-linux) wakes it on time after each gap on a
            # busy host: measured on a 2-core machine with TCG guests beside it, the
            # gap (-t 20000ns) gave 17,100-18,100 frames/s at normal priority and
            # 20,800-21,900 with SCHED_FIFO 50, which leaves the scheduler's
            # real-time throttling (5 % of each second) to everything else.
            send = ["chrt", "-f", "50", "trafgen", "-o", e["sender_if"], "-n", "{frames}",
                    "-t", "{gap_ns}ns", "-c", "{run_dir}/search_trafgen.cfg"]
            extra = (("search_trafgen.cfg", trafgen_config(ctx)),)
        # the receiver's agent takes its control connection from the sender's address only
        rx = {"bind": e["target_address"], "port": CONTROL_PORT, "counter": receiver,
              "sender_address": e["source_address"],
              "counter_argv": counter, "idle_timeout_s": 900, "ready_timeout_s": 30}
        probe = ["ping", "-D", "-O", "-n", "-c", "{count}", "-i", str(p["ping_interval_s"]),
                 "-s", str(p["ping_payload_bytes"]), e["target_address"]]
        tx = {"connect": e["target_address"], "source": e["source_address"],
              "port": CONTROL_PORT, "sender": sender,
              "sender_argv": send, "probe_argv": probe, "connect_timeout_s": 60,
              **settings(p)}
        source = AGENT_SOURCE.read_text()
        budget = p["search_max_trials"] * (max(p["search_trial_s"], p["search_validation_s"])
                                           * 10 + 60)
        return [
            Capture(self.name, "receiver", "probe_start", "search_rx.jsonl",
                    argv=("python3", "{run_dir}/throughput.py", "serve",
                          "{run_dir}/search_rx.json"),
                    inputs=(("throughput.py", source), ("search_rx.json", json.dumps(rx))),
                    stop_signal="INT"),
            Capture(self.name, "sender", "probe", "search.jsonl",
                    argv=("python3", "{run_dir}/throughput.py", "search",
                          "{run_dir}/search_tx.json"),
                    inputs=(("throughput.py", source), ("search_tx.json", json.dumps(tx)),
                            *extra),
                    timeout_s=budget),
        ]

    def parse(self, files, ctx):
        p = ctx.parameters
        if not searches(p, ctx.repetition):
            return {}
        sender, receiver = RateCollector.tools(ctx)
        tx_path = files.path("sender", "search.jsonl")
        rx_path = files.path("receiver", "search_rx.jsonl")
        tx = _records(tx_path)
        rx = {r["trial"]: (line, r) for line, r in _records(rx_path)
              if r.get("event") == "trial" and r.get("trial") is not None}
        config = settings(p)
        starts = [(line, r) for line, r in tx if r.get("event") == "start"]
        if not starts:
            raise ParseError(tx_path, 1, "no start record: not a search's output")
        line, start = starts[0]
        ran = {k: start.get("config", {}).get(k) for k in config}
        if ran != config:
            differs = sorted(k for k in config if ran[k] != config[k])
            raise ParseError(tx_path, line, "the search ran with other settings than the "
                             f"campaign's: {', '.join(differs)}")
        module = _agent(files)
        search = module.Search(config["min_pps"], config["max_pps"], config["granularity"],
                               config["pdr_ratio"], config["validations"],
                               config["max_trials"], config["tolerance"])
        key = {**_key(ctx, "sender"), "backend": RateCollector.backend(ctx),
               "frame_bytes": p["rate_frame_bytes"]}
        rows, probes, result, window = [], [], None, []
        for line, record in tx:
            event = record.get("event")
            if event == "result":
                result = (line, record)
            if event not in ("trial", "load"):
                continue
            if event == "trial":
                expected = search.next_trial()
                if expected != (record["offered_pps"], record["phase"]):
                    raise ParseError(tx_path, line, f"trial {record['trial']} does not replay: "
                                     f"the search would run {expected}, the file has "
                                     f"{(record['offered_pps'], record['phase'])}")
            else:
                _check_load(record, result, tx_path, line)
            outcome, row, counted = _trial(module, config, sender, receiver, record, rx,
                                           (tx_path, line), rx_path)
            if event == "trial":
                search.record(record["offered_pps"], record["phase"], outcome["valid"],
                              outcome["loss_ratio"], outcome["achieved_pps"],
                              record.get("received_pps"),
                              module.at_limit(sender, record["argv"]))
            else:
                probes += _probes(record, tx_path, line,
                                  {**_key(ctx, "sender"), "fraction": record["fraction"],
                                   "offered_pps": record["offered_pps"],
                                   "load_valid": outcome["valid"]})
            window += [counted["armed_at"], counted.get("stop_at") or counted["armed_at"]]
            rows.append({**key, **row, "fraction": record.get("fraction", float("nan"))})
        if result is None:
            raise ParseError(tx_path, len(tx), "no result line: the search was cut short")
        if search.next_trial() is not None:
            raise ParseError(tx_path, result[0], "the search ended before it was done "
                             f"(it would run {search.next_trial()} next)")
        found = search.result()
        for kind in module.Search.KINDS:
            if found[kind]["pps"] != result[1][kind]["pps"]:
                raise ParseError(tx_path, result[0], f"{kind} {result[1][kind]['pps']} "
                                 f"does not follow from the trials ({found[kind]['pps']})")
        searched = [r for r in rows if r["phase"] != "load"]
        achieved = [r["achieved_pps"] for r in rows if r["achieved_pps"] is not None]
        summary = {**key, "ndr_pps": found["ndr"]["pps"],
                   "ndr_upper_pps": found["ndr"]["upper_pps"],
                   "ndr_status": found["ndr"]["status"], "pdr_pps": found["pdr"]["pps"],
                   "pdr_upper_pps": found["pdr"]["upper_pps"],
                   "pdr_status": found["pdr"]["status"], "pdr_loss_ratio": config["pdr_ratio"],
                   "granularity": config["granularity"], "min_pps": config["min_pps"],
                   "max_pps": config["max_pps"], "trials": len(searched),
                   "invalid_trials": sum(not r["valid"] for r in searched),
                   "generator_max_pps": found["generator_max_pps"],
                   "achieved_max_pps": max(achieved) if achieved else None,
                   "search_s": (max(window) - min(window)) if window else None}
        return {"search_trials": rows, "throughput": [summary], "rtt_load": probes}


def _trial(module, config: dict, sender: str, receiver: str, record: dict, rx: dict,
           where: tuple[Path, int], rx_path: Path) -> tuple[dict, dict, dict]:
    """One trial (or load point) read again: its outcome from the tools' own output,
    checked against the numbers the search used; returns (outcome, row, receiver record)."""
    tx_path, line = where
    trial = record["trial"]
    if trial not in rx:
        raise ParseError(rx_path, None, f"no record of trial {trial} (the sender's line {line})")
    rx_line, counted = rx[trial]
    sent, seconds = _sent(sender, record, tx_path, line)
    received = _received(receiver, counted, rx_path, rx_line)
    for name, here, there in (("sent", sent, record.get("sent")),
                              ("received", received, record.get("received"))):
        if here != there:
            raise ParseError(tx_path, line, f"trial {trial}: the search used {name} = {there}, "
                             f"its raw output says {here}")
    outcome = module.trial_outcome(config, record["offered_pps"], record["frames"], sent,
                                   seconds, received)
    if record.get("rc") != 0 and not (record.get("interrupted") and outcome["reason"]):
        outcome.update(valid=False, reason=f"{record['argv'][0]} exited {record['rc']}")
    row = {"trial": trial, "phase": record["phase"], "offered_pps": record["offered_pps"],
           "duration_s": record["duration_s"], "frames": record["frames"], "sent": sent,
           "sender_time_s": seconds, "achieved_pps": outcome["achieved_pps"],
           "received": received, "loss_ratio": outcome["loss_ratio"],
           "valid": outcome["valid"], "invalid_reason": outcome["reason"] or "",
           "receiver_ready_s": counted["ready_at"] - counted["armed_at"]}
    return outcome, row, counted


def _check_load(record: dict, result: tuple | None, path: Path, line: int) -> None:
    """A load point comes after the search's result, at its fraction of the PDR."""
    if result is None or result[1]["pdr"]["pps"] is None:
        raise ParseError(path, line, f"load point {record['trial']} without a PDR before it")
    wanted = round(result[1]["pdr"]["pps"] * record["fraction"], 3)
    if record["offered_pps"] != wanted:
        raise ParseError(path, line, f"load point {record['trial']} at "
                         f"{record['offered_pps']} frames/s, not {record['fraction']} of the "
                         f"PDR ({wanted})")


def _probes(record: dict, path: Path, line: int, key: dict) -> list[dict]:
    """The RTT probes sent while a load point's load was on (iputils ping's output)."""
    out = _reparse(ping.parse, record.get("probe_stdout", ""), path, line,
                   f"load point {record['trial']}: ping output")
    return [{**key, "seq": p["seq"], "timestamp_s": p["timestamp_s"], "answered": p["answered"],
             "rtt_us": p["rtt_us"] if p["rtt_us"] is not None else float("nan")}
            for p in out.probes]


def _agent(files):
    """The search as it ran: the copy of collectors/agents/throughput.py kept with the
    sender's raw files (a campaign stored by an older version replays with its own)."""
    if not files.has("sender", "throughput.py"):
        return agent
    path = files.path("sender", "throughput.py")
    spec = importlib.util.spec_from_file_location(f"kvmnetlab_search_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (OSError, SyntaxError) as exc:
        raise ParseError(path, None, f"cannot load the search that ran: {exc}") from None
    return module


def _records(path: Path) -> list[tuple[int, dict]]:
    from collectors.parsers._text import read_lines

    out = []
    for lineno, line in enumerate(read_lines(path), start=1):
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ParseError(path, lineno, f"not a JSON record: {exc}") from None
        if not isinstance(record, dict) or "event" not in record:
            raise ParseError(path, lineno, "a record without 'event'")
        out.append((lineno, record))
    return out


def _reparse(parser, text: str, path: Path, line: int, what: str):
    """Parse one tool output kept inside a JSON record with the tool's own parser; an
    error names the raw file, the record's line and the line inside the output."""
    with tempfile.TemporaryDirectory() as tmp:
        inner = Path(tmp) / "output.txt"
        inner.write_text(text)
        try:
            return parser(inner)
        except ParseError as exc:
            where = f" line {exc.line}" if exc.line is not None else ""
            raise ParseError(path, line, f"{what}{where}: {exc.reason}") from None


def _sent(tool: str, record: dict, path: Path, line: int) -> tuple[int | None, float | None]:
    what = f"trial {record['trial']}: {tool} output"
    if tool == "pfsend":
        out = _reparse(pfsend_parser.parse, record.get("stdout", ""), path, line, what)
        rate = out.rates[-1]["average_pps"] if out.rates else None
        return out.sent_packets, (out.sent_packets / rate if rate else None)
    out = _reparse(trafgen.parse, record.get("stdout", ""), path, line, what)
    return out.tx_packets, out.elapsed_us / 1e6


def _received(tool: str, record: dict, path: Path, line: int) -> int:
    what = f"trial {record['trial']}: {tool} output"
    if tool == "pfcount":
        return _reparse(pfcount_parser.parse, record.get("stderr", ""), path, line,
                        what).final["received_packets"]
    return _reparse(tcpdump.parse, record.get("stderr", ""), path, line,
                    what)["received_by_filter_packets"]
