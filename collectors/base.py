"""The collector plugin interface: one lifecycle, a registry, and the run plan.

A collector says what to capture (commands to run or files to read, on which
host role, in which phase of a run) and how to parse the raw files it gets
back. Capturing happens on the hosts through Ansible; parsing happens here, on
the controller, and nowhere else.

Lifecycle of one (scenario, repetition)::

    prepare  -> what the collector needs on a host (packages: data, installed by roles)
    before   -> snapshots (counters, state) on every host role the collector covers
    start    -> background captures (e.g. a packet counter on the receiver)
    traffic  -> the load whose cost the counters measure (a sender at a set rate)
    stop     -> background captures are stopped (SIGINT) and their output kept
    after    -> snapshots again; before..after is the counter window
    probe_start -> background helpers of the probes, started after the counter window
                (the throughput search's receiver agent) and stopped before the fetch
    probe    -> measurements kept out of the counter window (ping's per-packet RTT with
                fping beside it, sockperf where enabled, the throughput search)
    fetch    -> every raw file is pulled back to the controller, verbatim (one tar per
                host, each member's sha256 checked against the host's)
    parse    -> controller only: raw files -> tidy rows (tables under data/)
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

PHASES = ("before", "start", "traffic", "stop", "after", "probe_start", "probe")
ROLES = ("sender", "receiver", "hypervisor")
#: roles every flow of a repetition shares (one sender feeds N guests or containers on one
#: hypervisor): their files of flow k > 1 are named ``flow<k>.<file>``; each flow's receiver
#: is a host of its own, whose files keep their names
SHARED_HOST_ROLES = ("sender", "hypervisor")


def flow_prefix(flow: int) -> str:
    """The prefix of flow ``flow``'s files on the shared hosts ("" for the first flow)."""
    return "" if flow == 1 else f"flow{flow}."


@dataclass(frozen=True)
class Capture:
    """One thing to capture on one host role in one phase.

    Exactly one of ``argv`` (run it, keep stdout in ``file``, stderr beside it) and
    ``read`` (files or globs to read; ``grep`` format prefixes each line with its
    path, ``concat`` keeps contents back to back) is set.
    """

    collector: str
    role: str
    phase: str
    file: str
    argv: tuple[str, ...] | None = None
    read: tuple[str, ...] | None = None
    read_format: str = "concat"
    ok_rc: tuple[int, ...] = (0,)
    timeout_s: float = 60.0
    stop_signal: str = "INT"
    #: a background tool's line that proves it captures (e.g. tcpdump's "listening on"):
    #: its start waits for that text in its stderr or stdout, instead of a fixed pause
    ready: str | None = None
    #: files written into the run folder on the host before ``argv`` runs (name, content);
    #: ``{run_dir}`` in ``argv`` is replaced by that folder. They are fetched with the rest.
    inputs: tuple[tuple[str, str], ...] | None = None
    #: a probe run at the same time as another probe of the same host (that probe's
    #: ``file``), in the same call, started ``offset_s`` seconds after it; where that probe
    #: is not planned, it runs on its own
    alongside: str | None = None
    offset_s: float | None = None

    def to_step(self, host: str) -> dict[str, Any]:
        step = {k: v for k, v in asdict(self).items() if v is not None}
        step["host"] = host
        for key in ("argv", "read", "ok_rc"):
            if key in step:
                step[key] = list(step[key])
        if "inputs" in step:
            step["inputs"] = dict(step["inputs"])
        return step


@dataclass
class RunContext:
    """Everything a collector may need to know about one run."""

    scenario: str
    repetition: int
    resolved: dict[str, Any]
    parameters: dict[str, Any]
    hosts: dict[str, str]  # role -> inventory host
    endpoint: dict[str, Any] = field(default_factory=dict)
    # sender_if, receiver_if, receiver_mac, source_address, target_address, qemu_pid, accel,
    # container_cgroup (a container's cpuacct cgroup on the hypervisor)
    #: this flow's number (1-based) and how many flows run at once in the repetition
    flow: int = 1
    flows: int = 1

    @property
    def virtualized(self) -> bool:
        return self.resolved.get("virtualization") not in (None, "none")


@dataclass
class Availability:
    available: bool
    reason: str | None = None


class Collector(ABC):
    """Base of every collector; subclasses register themselves by ``name``."""

    name: ClassVar[str]
    #: table name -> column -> dtype, of the tidy rows ``parse`` returns
    tables: ClassVar[dict[str, dict[str, str]]] = {}
    #: roles whose captures describe the host, not a flow: with several flows they are
    #: taken once, with the first flow (e.g. the hypervisor's /proc/stat)
    per_host_roles: ClassVar[tuple[str, ...]] = ()

    def availability(self, ctx: RunContext) -> Availability:
        """Whether this lab can provide the collector's data for this run (and why not)."""
        return Availability(True)

    @abstractmethod
    def captures(self, ctx: RunContext) -> list[Capture]:
        """What to capture for this run."""

    @abstractmethod
    def parse(self, files: RunFiles, ctx: RunContext) -> dict[str, list[dict[str, Any]]]:
        """Controller only: raw files of one run -> rows per table."""


class RunFiles:
    """The committed raw files of one run: raw/<scenario>/<rep>/<host>/<file>."""

    def __init__(self, root: Path, run_rel: str, hosts: dict[str, str], flow: int = 1) -> None:
        self.root = Path(root)
        self.run_rel = run_rel
        self.hosts = hosts
        self.prefix = flow_prefix(flow)

    def path(self, role: str, name: str) -> Path:
        """``name`` of ``role`` for this flow (``flow<k>.<name>`` on a shared host)."""
        if role in SHARED_HOST_ROLES:
            name = self.prefix + name
        return self.root / self.run_rel / self.hosts[role] / name

    def has(self, role: str, name: str) -> bool:
        """The role has a raw file of that name: anything there, even a dangling link
        (which its parser then reports as unreadable, never as absent)."""
        return role in self.hosts and os.path.lexists(self.path(role, name))


REGISTRY: dict[str, type[Collector]] = {}


def register(cls: type[Collector]) -> type[Collector]:
    if cls.name in REGISTRY:
        raise ValueError(f"collector {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def get(name: str) -> Collector:
    """A new instance of the registered collector ``name`` (the package ``collectors``
    imports the built-in plugins, which register themselves)."""
    try:
        return REGISTRY[name]()
    except KeyError:
        raise KeyError(f"unknown collector {name!r}; known: {', '.join(sorted(REGISTRY))}")\
            from None


def known() -> list[str]:
    """The names of the registered collectors, sorted."""
    return sorted(REGISTRY)


def for_flow(capture: Capture, flow: int) -> Capture:
    """``capture`` as flow ``flow`` takes it on a shared host: its files (and its input
    files, in ``argv`` too) named ``flow<k>.<file>``; a probe runs beside the first flow's
    same probe, started with it (``lead``), so the flows' probes run at the same time."""
    prefix = flow_prefix(flow)
    if not prefix or capture.role not in SHARED_HOST_ROLES:
        return capture
    argv, inputs = capture.argv, capture.inputs
    if inputs:
        names = [name for name, _ in inputs]
        argv = tuple(_renamed(arg, names, prefix) for arg in argv or ())
        inputs = tuple((prefix + name, content) for name, content in inputs)
    alongside, offset = capture.alongside, capture.offset_s
    if alongside:
        alongside = prefix + alongside
    elif capture.phase == "probe":
        alongside, offset = capture.file, 0.0
    return replace(capture, file=prefix + capture.file, argv=argv, inputs=inputs,
                   alongside=alongside, offset_s=offset)


def _renamed(arg: str, names: list[str], prefix: str) -> str:
    for name in names:
        arg = arg.replace("{run_dir}/" + name, "{run_dir}/" + prefix + name)
    return arg


def plan(ctx: RunContext, enabled: dict[str, list[str]],
         more: list[RunContext] | tuple[RunContext, ...] = ()) -> dict[str, Any]:
    """The run plan: steps per phase, files to fetch per host, and unavailable collectors.

    ``enabled`` maps collector name -> host roles it covers. Every file is named
    relative to the host's private run folder, which the host makes at its first call
    of the repetition (kvmnetlab.lab.collect): the plan never predicts where it is;
    ``{run_dir}`` in an argv stands for it. ``more``
    are the contexts of flows 2..N when N flows run at once (N guests or containers):
    every flow's captures are planned, those of a collector's ``per_host_roles`` once,
    and flow k's files on the shared hosts are named ``flow<k>.<file>`` (:func:`for_flow`).
    """
    steps: dict[str, list[dict[str, Any]]] = {phase: [] for phase in PHASES}
    unavailable: dict[str, str] = {}
    for flow_ctx in (ctx, *more):
        for name, roles in enabled.items():
            collector = get(name)
            state = collector.availability(flow_ctx)
            if not state.available:
                unavailable.setdefault(name, state.reason or "not available on this lab")
                continue
            for capture in collector.captures(flow_ctx):
                if capture.role not in roles or capture.role not in flow_ctx.hosts:
                    continue
                if flow_ctx.flow > 1 and capture.role in collector.per_host_roles:
                    continue
                capture = for_flow(capture, flow_ctx.flow)
                step = capture.to_step(flow_ctx.hosts[capture.role])
                step["dest"] = step["file"]
                if any(s["host"] == step["host"] and s["file"] == step["file"]
                       for phase_steps in steps.values() for s in phase_steps):
                    continue  # two roles on one host (e.g. the embedded hypervisor and a sender)
                steps[capture.phase].append(step)
    files: dict[str, list[str]] = {}
    for phase, phase_steps in steps.items():
        for step in phase_steps:
            names = files.setdefault(step["host"], [])
            names.append(step["file"])
            if "argv" in step:
                names.append(step["file"] + ".stderr")
            if phase in ("start", "traffic", "probe_start", "probe"):
                names.append(step["file"] + ".meta.json")
            names += list(step.get("inputs", {}))
    return {**calls(steps, files), "traffic": steps["traffic"],
            "probe": steps["probe"], "hosts": sorted(files), "unavailable": unavailable}


def calls(steps: dict[str, list[dict[str, Any]]],
          files: dict[str, list[str]]) -> dict[str, list[dict[str, Any]]]:
    """A repetition as kvmnetlab.lab.collect calls, one per host and phase, in order.

    - ``pre``: every host but the sender: snapshots, then background captures started
      (the receiver's counter), so they run before the sender starts;
    - ``load``: the sender, in one call: its snapshots, the load at rate, its snapshots after;
    - ``post``: every host but the sender: background captures stopped, snapshots after
      (the end of the counter window), then the probes' helpers started (the search's
      receiver agent);
    - ``finish``: the probing hosts, the sender first: the RTT probes (a probe planned
      ``alongside`` another, fping beside ping, runs in that one's step, at the same
      time) and the search, then the helpers stopped.

    A host's last call ends with a ``pack`` step (its raw files in one tar), which the
    action plugin brings back to the controller in the same task. Every background start
    has a ``lifetime_s``: the sum of all calls' time limits plus ``LIFETIME_MARGIN_S``, so
    what a killed repetition leaves running ends by itself.
    """
    senders = {step["host"] for step in steps["traffic"]}
    probing = {step["host"] for step in steps["probe"] + steps["probe_start"]}
    out: dict[str, list[dict[str, Any]]] = {"pre": [], "load": [], "post": [], "finish": []}
    last: dict[str, str] = {}
    for host in sorted(files):
        before = [{"do": "snapshot", "items": items}
                  for items in [_items(steps["before"], host)] if items]
        after = [{"do": "snapshot", "items": items}
                 for items in [_items(steps["after"], host)] if items]
        started = [_start(s) for s in steps["start"] if s["host"] == host]
        stopped = [_stop(s) for s in steps["start"] if s["host"] == host]
        helpers = [s for s in steps["probe_start"] if s["host"] == host]
        if host in senders:
            runs = _together([_run(s) for s in steps["traffic"] if s["host"] == host])
            out["load"].append({"host": host,
                                "steps": [*before, *started, *runs, *stopped, *after,
                                          *(_start(s) for s in helpers)]})
            last[host] = "load"
        else:
            if before or started:
                out["pre"].append({"host": host, "steps": [*before, *started]})
            out["post"].append({"host": host,
                                "steps": [*stopped, *after, *(_start(s) for s in helpers)]})
            last[host] = "post"
        if host in probing:
            out["finish"].append({"host": host, "steps": [
                *_probes([s for s in steps["probe"] if s["host"] == host]),
                *(_stop(s) for s in helpers)]})
            last[host] = "finish"
    # the hosts that probe first, then those that only stop a helper
    out["finish"].sort(key=lambda call: not any(s["do"] == "run" for s in call["steps"]))
    for phase, entries in out.items():
        for call in entries:
            if last[call["host"]] == phase:
                call["steps"].append(_pack(files[call["host"]]))
            # the task may take its tools' own limits, plus a minute for the rest
            call["timeout_s"] = int(60 + sum(max(float(t.get("timeout_s", 0))
                                                 for t in [s, *s.get("together", [])])
                                             for s in call["steps"] if s["do"] == "run")
                                    + 15 * sum(s["do"] == "stop" for s in call["steps"]))
    # a background tool may live as long as the whole repetition could take, no longer
    lifetime = LIFETIME_MARGIN_S + sum(call["timeout_s"] for entries in out.values()
                                       for call in entries)
    for entries in out.values():
        for call in entries:
            for step in call["steps"]:
                if step["do"] == "start":
                    step["lifetime_s"] = lifetime
    out["salvage"] = [
        {"host": host, "steps": [
            *(_stop(s) for s in steps["start"] + steps["probe_start"] if s["host"] == host),
            _pack(files[host])]}
        for host in sorted(files)]
    return out


#: seconds a background tool may outlive the sum of a repetition's calls' time limits
LIFETIME_MARGIN_S = 120


def _stop(step: dict[str, Any]) -> dict[str, Any]:
    return {"do": "stop", "dest": step["dest"], "signal": step["stop_signal"]}


def _pack(names: list[str]) -> dict[str, Any]:
    """The host's raw files, one tar in its run folder."""
    return {"do": "pack", "files": sorted(set(names))}


def _run(step: dict[str, Any]) -> dict[str, Any]:
    """A foreground run step of the collect module (a sender, a prober, the search)."""
    out = {"do": "run", "argv": list(step["argv"]), "dest": step["dest"],
           "ok_rc": list(step.get("ok_rc", [0])), "timeout_s": step.get("timeout_s", 600)}
    if step.get("inputs"):
        out["inputs"] = step["inputs"]
    return out


def _together(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Several loads of one sender (one per flow) as one step that starts them together."""
    if len(runs) < 2:
        return runs
    return [{**runs[0], "together": [{**r, "offset_s": 0.0} for r in runs[1:]]}]


def _probes(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A host's probe run steps in order; a probe ``alongside`` another planned one rides in
    that one's step (``together``), started ``offset_s`` after it (a rider of a rider rides
    in the first one's step, the offsets added)."""
    by_file = {s["file"]: s for s in steps}

    def root(step: dict[str, Any]) -> tuple[str, float]:
        offset, seen = 0.0, set()
        while step.get("alongside") in by_file and step["file"] not in seen:
            seen.add(step["file"])
            offset += float(step.get("offset_s") or 0.0)
            step = by_file[step["alongside"]]
        return step["file"], offset

    out = []
    for step in steps:
        lead, _ = root(step)
        if lead != step["file"]:
            continue
        run = _run(step)
        together = []
        for rider in steps:
            if rider is not step and root(rider)[0] == lead:
                together.append({**_run(rider), "offset_s": root(rider)[1]})
        if together:
            run["together"] = together
        out.append(run)
    return out


def _start(step: dict[str, Any]) -> dict[str, Any]:
    """A background start step: ``{run_dir}`` in argv is the host's run folder (filled in
    on the host), and the step's input files are written there first."""
    out = {"do": "start", "argv": list(step["argv"]), "dest": step["dest"]}
    if step.get("inputs"):
        out["inputs"] = step["inputs"]
    if step.get("ready"):
        out["ready"] = step["ready"]
    return out


def _items(steps: list[dict[str, Any]], host: str) -> list[dict[str, Any]]:
    keys = ("file", "argv", "read", "read_format", "ok_rc")
    return [{k: step[k] for k in keys if k in step} for step in steps if step["host"] == host]
