#!/usr/bin/env python3
"""A throughput search (NDR and PDR) between two hosts, one call on each.

This file is shipped verbatim to both ends of a measurement by the ``throughput``
collector (collectors/builtin.py) and runs there with the host's own python3 (the
standard library only). It is also imported on the controller, where
:class:`Search` replays a search from its raw trials to check it.

- ``serve`` (the receiver, started in the background): listens on a TCP control port
  on the receiver's data address. For each trial the sender asks it to *arm*: it
  starts the flow counter (tcpdump, or PF_RING's pfcount), waits until the counter
  says it is capturing (tcpdump: ``listening on``; pfcount: ``Dumping statistics
  on``) and only then answers *ready*. On *stop* it stops the counter with SIGINT,
  waits for its closing statistics and answers with the count.
- ``search`` (the sender, in the foreground): runs the trials. Each trial sends
  ``rate x duration`` frames at a set rate (trafgen or pfsend) once the receiver is
  proven ready, and asks the receiver for its count afterwards.

Both print one JSON line per trial on stdout with every tool's output verbatim
(argv, rc, stdout, stderr, times): those are the raw files. The few numbers a
search must read on the host to choose its next rate (frames sent and the sender's
time, frames counted) are read here with the minimum of pattern matching; the
controller parses every tool output again with its own parsers and refuses a
search whose numbers differ (collectors/builtin.py, ``ThroughputCollector``).

Terms (as in RFC 2544 and CSIT's MLRsearch):

- a trial *passes* NDR when no frame of the flow was lost, and PDR when its loss
  ratio (lost / sent) is at most the PDR ratio;
- a trial is *invalid* when the generator fell short of the offered rate by more than
  the tolerance (its achieved rate is sent / the sender's own time), or when the
  counter saw more frames than were sent; an invalid trial never counts as loss;
- NDR (PDR) is the highest offered rate that passed, below the lowest that failed,
  with the two within the relative granularity, confirmed by validation trials.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time

PROTOCOL = 1


# --- the search: pure, no I/O ------------------------------------------------------

class Search:
    """Binary search for NDR and PDR at once, every trial informing both.

    ``min_pps``/``max_pps``: the offered rates searched (frames/s); ``granularity``:
    the relative width (hi / lo - 1) at which a bound is resolved; ``pdr_ratio``: the
    loss ratio PDR allows (0.005 is 0.5 %); ``validations``: trials at each found
    rate before it is accepted; ``max_trials``: the budget.

    :meth:`next_trial` says what to run next (``(rate, phase)``, or None when done);
    :meth:`record` takes each trial's outcome. The next rate is the geometric middle
    of the bounds, or, after a failed trial, the rate the receiver kept up with when
    that lies inside them (MLRsearch's hint), so an overloaded end is found quickly.
    """

    KINDS = ("ndr", "pdr")
    #: invalid trials at one rate (the sender paced, not flat out) before it counts as
    #: beyond what the generator can hold
    RETRIES = 2

    def __init__(self, min_pps: float, max_pps: float, granularity: float = 0.05,
                 pdr_ratio: float = 0.005, validations: int = 1, max_trials: int = 30,
                 tolerance: float = 0.05):
        if not 0 < min_pps < max_pps:
            raise ValueError(f"need 0 < min_pps < max_pps, got {min_pps}, {max_pps}")
        if not 0 < granularity < 1:
            raise ValueError(f"granularity must be in (0, 1), got {granularity}")
        if not 0 <= pdr_ratio < 1:
            raise ValueError(f"pdr_ratio must be in [0, 1), got {pdr_ratio}")
        self.min_pps = float(min_pps)
        self.max_pps = float(max_pps)
        self.requested_max_pps = float(max_pps)
        self.granularity = float(granularity)
        self.pdr_ratio = float(pdr_ratio)
        self.validations = int(validations)
        self.max_trials = int(max_trials)
        self.lo: dict[str, float | None] = dict.fromkeys(self.KINDS)
        self.hi: dict[str, float | None] = dict.fromkeys(self.KINDS)
        self.validated: dict[str, int] = dict.fromkeys(self.KINDS, 0)
        self.generator_max: float | None = None
        self.hint: float | None = None
        self.step: float | None = None  # relative step of an upward expansion, or None
        self.trials = 0
        self.outcomes: list[tuple[float, float]] = []  # valid trials: (rate, loss ratio)
        self.invalid: dict[float, list[float]] = {}  # rate -> achieved rates of invalid trials
        self.tolerance = float(tolerance)

    def _cap(self, top: float) -> None:
        """The searchable maximum, lowered to ``top`` (never below the minimum); a rate
        that passed above it can no longer be offered, so it is no bound any more."""
        self.max_pps = round(max(self.min_pps, min(self.max_pps, top)), 3)
        for kind in self.KINDS:
            if self.lo[kind] is not None and self.lo[kind] > self.max_pps:
                passed = [r for r, loss in self.outcomes if self.passes(kind, loss)
                          and r <= self.max_pps]
                self.lo[kind] = max(passed) if passed else None
                self.validated[kind] = 0

    def passes(self, kind: str, loss_ratio: float) -> bool:
        return loss_ratio == 0 if kind == "ndr" else loss_ratio <= self.pdr_ratio

    def record(self, rate: float, phase: str, valid: bool, loss_ratio: float | None = None,
               achieved_pps: float | None = None, received_pps: float | None = None,
               at_limit: bool = False) -> None:
        """One trial's outcome. An invalid trial is never loss. One whose generator fell
        short while sending as fast as it can (``at_limit``) lowers the searchable
        maximum to what it achieved; any other invalid trial is run again."""
        self.trials += 1
        if not valid:
            if achieved_pps is None:
                return
            self.invalid.setdefault(rate, []).append(achieved_pps)
            if at_limit and achieved_pps < rate:
                # flat out: the best the generator achieved, less twice the tolerance so
                # that it can still be paced below its limit (near it, a sleep's latency
                # makes all small gaps alike)
                self.generator_max = max(self.min_pps, achieved_pps, self.generator_max or 0.0)
                self._cap(self.generator_max * (1 - 2 * self.tolerance))
            elif len(self.invalid[rate]) >= self.RETRIES:
                # paced, and still not at the rate: the generator cannot hold it (near
                # its limit, a sleep's latency makes small gaps all alike). The search
                # goes on twice the tolerance below it, and below what it typically
                # achieved there when that fell short
                # (one miss above the rate and one below: the rate lies where no gap
                # paces it, e.g. between the cost of a frame with a sleep too short to
                # sleep and one that really sleeps: the lower one is what it can hold)
                short = [a for a in self.invalid[rate] if a < rate]
                top = rate * (1 - 2 * self.tolerance)
                if short:
                    top = min(top, min(short) * (1 - self.tolerance))
                self.generator_max = max(self.generator_max or 0.0, top)
                self._cap(top)
            return
        self.outcomes.append((rate, loss_ratio))
        for kind in self.KINDS:
            before = self.lo[kind]
            failed = [r for r, loss in self.outcomes if not self.passes(kind, loss)]
            self.hi[kind] = min(failed) if failed else None
            # the highest rate that passed below the lowest that failed (a rate that
            # passed once and lost later, e.g. in validation, is a failure)
            passed = [r for r, loss in self.outcomes if self.passes(kind, loss)
                      and (self.hi[kind] is None or r < self.hi[kind])]
            self.lo[kind] = max(passed) if passed else None
            if self.lo[kind] != before:
                self.validated[kind] = 0
            if phase == "validation" and rate == self.lo[kind] and self.passes(kind, loss_ratio):
                self.validated[kind] += 1
        # After a failure, the rate the receiver kept up with is the next guess. After a
        # pass at such a guess the capacity is just above it: step up from there, the
        # step doubling while trials pass (MLRsearch's interval expansion).
        hinted = self.hint is not None and rate == round(self.hint, 3)
        if loss_ratio:
            self.step = None
        elif hinted:
            self.step = self.granularity
        elif self.step is not None:
            self.step *= 2
        self.hint = received_pps if loss_ratio and received_pps else None

    def _reachable_hi(self, kind: str) -> float | None:
        """The lowest failing rate, when the search can still offer it (a failure above
        a maximum lowered since by the generator's limit bounds nothing reachable)."""
        hi = self.hi[kind]
        return hi if hi is not None and hi <= self.max_pps else None

    def _resolved(self, kind: str) -> bool:
        lo, hi = self.lo[kind], self._reachable_hi(kind)
        if self.hi[kind] is not None and self.hi[kind] <= self.min_pps:
            return True  # fails even at the minimum
        if hi is None:  # nothing failed within reach: resolved when one near the max passed
            return lo is not None and lo * (1 + self.granularity) >= self.max_pps
        return lo is not None and hi / lo - 1 <= self.granularity

    def _failed_in_row(self) -> int:
        """The valid trials at the end that lost frames (invalid ones are not counted)."""
        count = 0
        for _rate, loss in reversed(self.outcomes):
            if not loss:
                break
            count += 1
        return count

    def _candidate(self, kind: str) -> float:
        lo, hi = self.lo[kind], self._reachable_hi(kind)
        if hi is None:
            return self.max_pps
        low = lo if lo is not None else self.min_pps
        if lo is None and hi / self.min_pps - 1 <= self.granularity:
            return self.min_pps
        step = 1 + self.granularity
        if self.hint is not None and low * step < self.hint < hi / step:
            return self.hint
        if (self.hint is not None and self._failed_in_row() == 1 and self.hint >= hi / step
                and low * step < hi / step):
            # the receiver kept up with nearly the rate that lost: the capacity is just
            # below it, one granularity down resolves it when that passes. Only after a
            # first failure: a link that loses a little at every rate would otherwise
            # be walked down a granularity at a time. Rounded up to the 0.001 frames/s
            # that rates are kept in, so that the bounds end within the granularity.
            return math.ceil(hi / step * 1000) / 1000
        if self.hint is not None and lo is None and self.hint <= low * step:
            return self.min_pps  # the receiver kept up with less than the minimum
        if self.step is not None and lo is not None and lo * (1 + self.step) < hi / step:
            return lo * (1 + self.step)
        return math.sqrt(low * hi)

    def next_trial(self) -> tuple[float, str] | None:
        if self.trials >= self.max_trials:
            return None
        for kind in self.KINDS:
            if not self._resolved(kind):
                return round(self._candidate(kind), 3), "search"
        for kind in self.KINDS:
            if self.lo[kind] is not None and self.validated[kind] < self.validations:
                return self.lo[kind], "validation"
        return None

    def result(self) -> dict:
        """NDR and PDR (frames/s, None when even the minimum failed), their upper
        bounds, and why the search ended."""
        out = {"trials": self.trials, "generator_max_pps": self.generator_max}
        for kind in self.KINDS:
            lo, hi = self.lo[kind], self.hi[kind]
            if self.trials >= self.max_trials and not self._done(kind):
                status = "budget"
            elif hi is not None and hi <= self.min_pps and lo is None:
                status = "below_min"
            elif self._reachable_hi(kind) is None and self.generator_max is not None:
                status = "generator_limited"
            elif self._reachable_hi(kind) is None:
                status = "at_max"
            else:
                status = "found"
            out[kind] = {"pps": lo, "upper_pps": hi, "status": status,
                         "validated": self.validated[kind]}
        return out

    def _done(self, kind: str) -> bool:
        return self._resolved(kind) and (self.lo[kind] is None
                                         or self.validated[kind] >= self.validations)


class LinearSweep(Search):
    """The naive alternative, for comparison (bench/bench_search.py): offered rates from
    the minimum upwards in steps of the granularity until a trial fails PDR, then the
    same validations. Same interface and result as :class:`Search`."""

    def _candidate(self, kind: str) -> float:
        tried = [rate for rate, _loss in self.outcomes]
        return min(self.max_pps, max(tried) * (1 + self.granularity)) if tried \
            else self.min_pps

    def _resolved(self, kind: str) -> bool:
        top = max((rate for rate, _loss in self.outcomes), default=0.0)
        return self.hi["pdr"] is not None or top >= self.max_pps


METHODS = {"binary": Search, "linear": LinearSweep}


# --- reading the tools' closing lines (the controller re-parses them) ---------------

COUNTERS = {
    # name: (ready line, count pattern over the whole output: the last match counts)
    "tcpdump": (re.compile(r"^tcpdump: listening on "),
                re.compile(r"^(\d+) packets? received by filter$", re.M)),
    "pfcount": (re.compile(r"^Dumping statistics on "),
                re.compile(r"^\[([\d']+) pkts rcvd\]", re.M)),
}
_TRAFGEN_TX = re.compile(r"^\r?\s*(\d+) packets outgoing$", re.M)
_TRAFGEN_CPU = re.compile(r"^\r?\s*(\d+) sec, (\d+) usec on CPU\d+ \(\d+ packets\)$", re.M)
_PFSEND_SENT = re.compile(r"^Sent (\d+) packets", re.M)
_PFSEND_AVG = re.compile(r"\[average ([\d',.]+) pps/")


def sent_and_time(tool: str, stdout: str) -> tuple[int | None, float | None]:
    """Frames sent and the sender's own time (s) from its closing lines."""
    if tool == "trafgen":
        tx = _TRAFGEN_TX.findall(stdout)
        cpus = _TRAFGEN_CPU.findall(stdout)
        if not tx or not cpus:
            return None, None
        return int(tx[-1]), max(int(s) + int(us) / 1e6 for s, us in cpus)
    sent = _PFSEND_SENT.findall(stdout)
    avg = _PFSEND_AVG.findall(stdout)
    if not sent:
        return None, None
    frames = int(sent[-1])
    rate = float(avg[-1].replace("'", "").replace(",", "")) if avg else 0.0
    return frames, (frames / rate if rate > 0 else None)


def count(tool: str, stderr: str) -> int | None:
    found = COUNTERS[tool][1].findall(stderr)
    return int(found[-1].replace("'", "")) if found else None


# --- the receiver -------------------------------------------------------------------

def _emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


def trial_number(value) -> int:
    """A trial number from the network: a non-negative int (it names the counter's
    files), never a string or anything else."""
    if type(value) is not int or value < 0:
        raise ValueError(f"trial must be a non-negative integer, got {value!r}")
    return value


def _create(path: str):
    """A new file in the agent's private run folder: never one that exists, never
    through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, 0o600), "wb")


class Counter:
    """One trial's flow counter, started and stopped by its PID."""

    def __init__(self, tool: str, argv: list[str], workdir: str, trial: int):
        self.tool, self.argv = tool, argv
        trial = trial_number(trial)
        self.out = os.path.join(workdir, f".trial-{trial}.out")
        self.err = os.path.join(workdir, f".trial-{trial}.err")
        with _create(self.out) as out, _create(self.err) as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout_s: float) -> str | None:
        """None once the counter says it captures, else why not."""
        ready = COUNTERS[self.tool][0]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(ready.match(line) for line in _read(self.err).splitlines()):
                return None
            if self.proc.poll() is not None:
                return f"{self.argv[0]} exited {self.proc.returncode} before it was ready"
            time.sleep(0.02)
        return f"{self.argv[0]} not ready after {timeout_s} s"

    def stop(self, timeout_s: float = 10.0) -> dict:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        record = {"argv": self.argv, "rc": self.proc.returncode}
        for key, path in (("stdout", self.out), ("stderr", self.err)):
            record[key] = _read(path)
            os.unlink(path)
        return record


def _read(path: str) -> str:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(path, flags), "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


class Stopped(Exception):
    """SIGINT or SIGTERM: the collector stops the agent by its PID."""


def _stop(signum, _frame):
    raise Stopped(signal.Signals(signum).name)


def accept_sender(listener: socket.socket, sender: str, timeout_s: float):
    """The control connection of the configured sender's address: a connection from any
    other address is closed at once (recorded as ``refused``), and the wait goes on until
    the idle timeout, counted from the start."""
    deadline = time.monotonic() + timeout_s
    while True:
        listener.settimeout(max(deadline - time.monotonic(), 0.001))
        conn, peer = listener.accept()
        if peer[0] == sender:
            return conn, peer
        conn.close()
        _emit({"event": "refused", "peer": peer[0], "at": time.time(),
               "reason": f"not the sender ({sender})"})


def _answer(request: dict, tool: str, argv: list[str], workdir: str, config: dict,
            state: dict) -> dict:
    """One arm or stop request; ``state['counter']`` is the running counter."""
    trial = trial_number(request.get("trial"))
    if request.get("cmd") == "arm":
        if state["counter"] is not None:
            return {"error": f"trial {trial}: a counter is already armed"}
        armed = time.time()
        counter = Counter(tool, argv, workdir, trial)
        problem = counter.wait_ready(config.get("ready_timeout_s", 30))
        if problem:
            _emit({"event": "trial", "trial": trial, "armed_at": armed, "ready_at": None,
                   **counter.stop()})
        else:
            counter.armed_at, counter.ready_at = armed, time.time()
            state["counter"] = counter
        return {"trial": trial, "ready": problem is None, "problem": problem}
    counter = state["counter"]
    if counter is None:
        return {"error": f"trial {trial}: stop without an armed counter"}
    stopped = time.time()
    state["counter"] = None
    record = counter.stop()
    received = count(tool, record["stderr"])
    _emit({"event": "trial", "trial": trial, "armed_at": counter.armed_at,
           "ready_at": counter.ready_at, "stop_at": stopped, "received": received, **record})
    return {"trial": trial, "received": received}


def serve(config: dict) -> int:
    """Answer one sender's arm/stop requests until it quits, goes idle, or the agent is
    stopped (SIGINT/SIGTERM: a running counter is stopped and recorded first).

    Only the configured sender's address (``sender_address``) may connect; a request whose
    ``trial`` is not a non-negative integer is answered with an error and changes
    nothing."""
    tool, argv = config["counter"], config["counter_argv"]
    sender = config["sender_address"]  # required: no control connection from anyone else
    workdir = os.path.dirname(os.path.abspath(config["_path"]))
    idle = config.get("idle_timeout_s", 600)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    listener = socket.create_server((config["bind"], config["port"]))
    _emit({"event": "listening", "protocol": PROTOCOL, "at": time.time(),
           "bind": config["bind"], "port": config["port"],
           "sender": sender})
    conn = None
    state = {"counter": None}
    reason, status = "sender quit", 0
    try:
        conn, peer = accept_sender(listener, sender, idle)
        conn.settimeout(idle)
        reader = conn.makefile("r", encoding="utf-8")
        _emit({"event": "connected", "peer": peer[0], "at": time.time()})
        for line in reader:
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a JSON object is expected")
                if request.get("cmd") == "quit":
                    break
                if request.get("cmd") not in ("arm", "stop"):
                    raise ValueError(f"unknown command {request.get('cmd')!r}")
                reply = _answer(request, tool, argv, workdir, config, state)
            except ValueError as exc:
                reply = {"error": str(exc)}
            conn.sendall((json.dumps(reply) + "\n").encode())
        else:
            reason, status = "the sender closed the connection", 1
    except Stopped as exc:
        reason = f"stopped by {exc}"
    except TimeoutError:
        reason, status = "idle: no request within the idle timeout", 1
    except (OSError, ValueError, KeyError) as exc:
        reason, status = f"{type(exc).__name__}: {exc}", 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if state["counter"] is not None:
            _emit({"event": "trial", "trial": None, "abandoned": True,
                   **state["counter"].stop()})
        if conn is not None:
            conn.close()
        listener.close()
    _emit({"event": "end", "reason": reason, "at": time.time()})
    return status


# --- the sender ---------------------------------------------------------------------

class Control:
    """The sender's end of the control connection."""

    def __init__(self, address: str, port: int, timeout_s: float,
                 source: str | None = None):
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                # from the sender's own address: the receiver takes no other
                self.sock = socket.create_connection(
                    (address, port), timeout=5,
                    source_address=(source, 0) if source else None)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.settimeout(120)
        self.reader = self.sock.makefile("r", encoding="utf-8")

    def ask(self, request: dict) -> dict:
        self.sock.sendall((json.dumps(request) + "\n").encode())
        line = self.reader.readline()
        if not line:
            raise ConnectionError("the receiver closed the control connection")
        return json.loads(line)

    def quit(self) -> None:
        try:
            self.sock.sendall(b'{"cmd": "quit"}\n')
        finally:
            self.sock.close()


class Pacer:
    """trafgen's inter-frame gap for a target rate.

    trafgen 0.6.8's ``-b <n>pps`` sends each second's n frames as one burst (measured:
    4000 frames at 2000 pps arrive as two bursts of 2000, one second apart), which is
    not a rate. ``-t <gap>`` sleeps that long after each frame (sendto(2) mode), so
    frames are evenly spaced, but each frame then takes the gap plus the send and the
    sleep's own latency, and that cost depends on the gap. So every trial adds a
    measured point (gap -> time per frame), and the gap for a new rate is
    interpolated between the two points whose times per frame bracket the target
    (1 / rate); outside them, from the nearest point at a measured slope; before any,
    flat out (the first trial is at the search's maximum). Never 0,
    which would mean no pacing at all: a rate the sender cannot pace falls short.

    A retry at the rate of the trial just run (the search retries a rate the sender
    missed) corrects that trial's gap by half its own error instead: the cost per frame
    on a busy host drifts with the load beside it, so the freshest point is the best
    one, and interpolating between the same points again would repeat the same gap
    (seen: gap 8,395 ns gave 42.9 then 42.6 µs per frame for a 47.2 µs target). Half,
    because near a miss the cost per frame moved about twice as much as the gap
    (measured: +5.4 µs of gap cost +12.8 µs a frame at 30 kframes/s; -16.8 µs of gap
    saved 36 µs at 4.5 kframes/s): a full correction overshot to the other side.
    """

    #: ns per frame gained per ns of gap, for rates below every measured point: a
    #: longer sleep overshoots by a share of itself (measured on a busy 2-core host:
    #: 1.06 between gaps of 29 and 278 µs, 1.16 between 512 and 550 µs). With a slope
    #: of 1, load points at 10 % of the PDR fell 6-10 % short in TCG-guest campaigns;
    #: with 1.1 they overshot 7-8 % on the shaped link (gaps of about 2.4 ms)
    SLOWER_SLOPE = 1.05

    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []  # (gap ns, ns per frame)
        #: the last trial: (target ns per frame, its gap ns, measured ns per frame)
        self.last: tuple[float, float, float] | None = None

    def gap_ns(self, rate: float) -> int:
        target = 1e9 / rate
        if self.last is not None and abs(self.last[0] / target - 1) < 1e-6:
            _, gap, measured = self.last
            return max(1, round(gap + (target - measured) / 2))
        below = [p for p in self.points if p[1] <= target]
        above = [p for p in self.points if p[1] > target]
        if below and above:
            (g0, t0), (g1, t1) = max(below, key=lambda p: p[1]), min(above, key=lambda p: p[1])
            gap = g0 + (g1 - g0) * (target - t0) / (t1 - t0)
        elif self.points:  # from the nearest point, at the measured slope
            g, t = min(self.points, key=lambda p: abs(p[1] - target))
            gap = g + (target - t) / (self.SLOWER_SLOPE if target > t else 1.0)
        else:
            # nothing measured yet (the search's first trial, at its maximum): flat out,
            # which both measures the sender's limit and is the first point
            gap = 1
        return max(1, round(gap))

    def learn(self, gap_ns: int, sent: int | None, elapsed_s: float | None,
              rate: float | None = None) -> None:
        """One trial's measured time per frame at its gap (``rate``: its target)."""
        self.last = None
        if sent and elapsed_s:
            self.points.append((float(gap_ns), elapsed_s * 1e9 / sent))
            if rate:
                self.last = (1e9 / rate, float(gap_ns), elapsed_s * 1e9 / sent)


def at_limit(sender: str, argv: list[str]) -> bool:
    """Whether a trial's sender ran as fast as it can: pfsend paces itself; trafgen is at
    its limit when the gap left after its measured per-frame cost is the minimum."""
    return sender == "pfsend" or "1ns" in argv


def sender_argv(config: dict, rate: float, frames: int, gap_ns: int = 0) -> list[str]:
    """The sender's argv for one trial: ``{pps}``, ``{frames}`` and ``{gap_ns}``."""
    return [part.replace("{pps}", str(round(rate))).replace("{frames}", str(frames))
            .replace("{gap_ns}", str(gap_ns)) for part in config["sender_argv"]]


def trial_outcome(config: dict, rate: float, frames: int, sent: int | None,
                  elapsed_s: float | None, received: int | None) -> dict:
    """Achieved rate, loss and validity of one trial (the controller uses this too)."""
    out = {"sent": sent, "sender_time_s": elapsed_s, "received": received,
           "achieved_pps": None, "loss_ratio": None, "valid": False, "reason": None}
    if sent is None or elapsed_s is None:
        out["reason"] = "the sender's closing lines (frames sent, time) are missing"
        return out
    if received is None:
        out["reason"] = "the counter's closing statistics are missing"
        return out
    achieved = sent / elapsed_s if elapsed_s > 0 else float("inf")
    out["achieved_pps"] = achieved
    tolerance = config["tolerance"]
    if sent < frames or achieved < rate * (1 - tolerance):
        out["reason"] = (f"generator fell short: {sent} of {frames} frames, "
                         f"{achieved:.0f} of {rate:.0f} frames/s offered "
                         f"(tolerance {tolerance:.0%})")
        return out
    if achieved > rate * (1 + tolerance):
        out["reason"] = (f"generator overshot: {achieved:.0f} frames/s sent for "
                         f"{rate:.0f} offered (tolerance {tolerance:.0%})")
        return out
    if received > sent:
        out["reason"] = (f"received above sent: {received - sent} frames more than sent; "
                         "likely foreign or duplicated frames matching the flow filter")
        return out
    out["loss_ratio"] = (sent - received) / sent if sent else 0.0
    out["valid"] = True
    return out


def run_trial(control: Control, pacer: Pacer, config: dict, trial: int, rate: float,
              seconds: float, probe: list[str] | None = None) -> dict:
    """One trial: the receiver armed and proven ready, ``rate x seconds`` frames sent,
    the count asked for. With ``probe`` (an RTT probe's argv), the probe runs while the
    load is on: the load starts first and lasts ``probe_lead_s`` longer on each side."""
    lead = config.get("probe_lead_s", 0.2) if probe else 0.0
    frames = max(1, round(rate * (seconds + 2 * lead)))
    record = {"trial": trial, "offered_pps": rate, "frames": frames, "duration_s": seconds}
    ready = control.ask({"cmd": "arm", "trial": trial})
    if not ready.get("ready"):
        return {**record, "valid": False, "reason": "receiver not ready: "
                f"{ready.get('problem') or ready.get('error')}",
                "aborted": True}
    gap = pacer.gap_ns(rate)
    argv = sender_argv(config, rate, frames, gap)
    started = time.time()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace") as proc:
        if probe:
            time.sleep(lead)
            probed = subprocess.run(probe, capture_output=True, text=True, errors="replace",
                                    timeout=seconds * 10 + 60, check=False)
            record.update(probe_argv=probe, probe_rc=probed.returncode,
                          probe_stdout=probed.stdout, probe_stderr=probed.stderr)
        try:
            # a sender still busy at three times the trial's length is far short of the
            # rate: it is interrupted (both tools print their totals on SIGINT)
            stdout, stderr = proc.communicate(timeout=(seconds + 2 * lead) * 3 + 5)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                stdout, stderr = proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
            record["interrupted"] = True
    ended = time.time()
    time.sleep(config.get("settle_s", 0.2))  # frames still in flight
    stopped = control.ask({"cmd": "stop", "trial": trial})
    sent, elapsed = sent_and_time(config["sender"], stdout)
    pacer.learn(gap, sent, elapsed, rate)
    outcome = trial_outcome(config, rate, frames, sent, elapsed, stopped.get("received"))
    if proc.returncode != 0 and not (record.get("interrupted") and outcome["reason"]):
        outcome.update(valid=False, reason=f"{argv[0]} exited {proc.returncode}")
    received_pps = (outcome["received"] / (ended - started)
                    if outcome["received"] is not None and ended > started else None)
    return {**record, "argv": argv, "rc": proc.returncode, "started_at": started,
            "ended_at": ended, "stdout": stdout, "stderr": stderr,
            "received_pps": received_pps, **outcome}


def search(config: dict) -> int:
    """The search, then the RTT probes under load at fractions of the PDR found."""
    s = METHODS[config.get("method", "binary")](
        config["min_pps"], config["max_pps"], config["granularity"], config["pdr_ratio"],
        config["validations"], config["max_trials"], config["tolerance"])
    control = Control(config["connect"], config["port"], config.get("connect_timeout_s", 60),
                      config.get("source"))
    _emit({"event": "start", "protocol": PROTOCOL, "at": time.time(),
           "config": {k: v for k, v in config.items() if not k.startswith("_")}})
    trial, status, result, pacer = 0, 0, None, Pacer()
    try:
        while (step := s.next_trial()) is not None:
            rate, phase = step
            trial += 1
            seconds = config["validation_s" if phase == "validation" else "trial_s"]
            record = run_trial(control, pacer, config, trial, rate, seconds)
            _emit({"event": "trial", "phase": phase, **record})
            if record.get("aborted"):
                status = 1
                break
            s.record(rate, phase, record["valid"], record["loss_ratio"],
                     record["achieved_pps"], record["received_pps"],
                     at_limit(config["sender"], record["argv"]))
        result = s.result()
        _emit({"event": "result", "at": time.time(), **result})
        base = result["pdr"]["pps"]
        for fraction in config.get("load_fractions", []) if base and not status else []:
            trial += 1
            probe = [part.replace("{count}", str(config["probe_count"]))
                     for part in config["probe_argv"]]
            record = run_trial(control, pacer, config, trial, round(base * fraction, 3),
                               config["load_s"], probe)
            _emit({"event": "load", "phase": "load", "fraction": fraction, **record})
            if record.get("aborted"):
                status = 1
                break
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        _emit({"event": "error", "error": f"{type(exc).__name__}: {exc}", "at": time.time()})
        status = 1
        if result is None:  # the search itself was cut: say how far it got
            _emit({"event": "result", "at": time.time(), **s.result()})
    finally:
        control.quit()
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("serve", "search"))
    parser.add_argument("config", help="JSON file with this end's settings")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    config["_path"] = args.config
    # {run_dir}: the folder of this end's files (the config's own)
    run_dir = os.path.dirname(os.path.abspath(args.config))
    for key in ("sender_argv", "counter_argv", "probe_argv"):
        if key in config:
            config[key] = [part.replace("{run_dir}", run_dir) for part in config[key]]
    return serve(config) if args.mode == "serve" else search(config)


if __name__ == "__main__":
    sys.exit(main())
