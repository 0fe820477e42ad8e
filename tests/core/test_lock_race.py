"""Of runs that find the same stale lab lock at the same moment, exactly one takes it over."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

from kvmnetlab import lock

RACERS = 6
ROUNDS = 15


def stale_lock(path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path.write_text(f'{{"pid": {dead.pid}, "start_time": "1", "campaign_id": "killed"}}\n')
    assert lock.holder(path) is None


def racer(path: str, barrier, results) -> None:
    barrier.wait()
    try:
        lock.acquire(path, os.getpid(), {"campaign_id": f"racer-{os.getpid()}"})
        results.put(("took", os.getpid()))
    except lock.LabBusy as exc:
        results.put(("busy", str(exc)))
    barrier.wait()  # stay alive (the holder) until every racer has tried


def test_exactly_one_of_several_racers_takes_over_a_stale_lock(tmp_path):
    ctx = multiprocessing.get_context("fork")
    path = tmp_path / "lab.lock"
    for _ in range(ROUNDS):
        stale_lock(path)
        barrier, results = ctx.Barrier(RACERS), ctx.Queue()
        procs = [ctx.Process(target=racer, args=(str(path), barrier, results))
                 for _ in range(RACERS)]
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        took = [who for what, who in outcomes if what == "took"]
        assert len(took) == 1, outcomes
        busy = [text for what, text in outcomes if what == "busy"]
        assert all(f"held by pid {took[0]}" in text for text in busy), busy
        path.unlink()
