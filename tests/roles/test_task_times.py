"""The task_times callback on a real ansible-playbook run, and bench/timeline.py on its output."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

_SPEC = importlib.util.spec_from_file_location("timeline", REPO / "bench" / "timeline.py")
timeline = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(timeline)


def run_shape(tmp_path: Path) -> list[dict]:
    out = tmp_path / "times.jsonl"
    env = dict(os.environ, ANSIBLE_CALLBACKS_ENABLED="kvmnetlab.lab.task_times",
               KVMNETLAB_TASK_TIMES=str(out))
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
         "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         "tests/roles/task_times/campaign_shape.yml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    return timeline.load(out)


def test_each_loop_item_is_timed_on_its_host_and_repetitions_are_cut(tmp_path):
    records = run_shape(tmp_path)
    sleeps = [r for r in records if r["task"] == "Sleep on each host"]
    # one record per item, not one more for the loop as a whole
    assert [r["item"] for r in sleeps] == ["0.2", "0.4", "0.2", "0.4"]
    # the host each item ran on, as delegate_to was templated for that item
    assert [r["target"] for r in sleeps] == ["localhost", "other"] * 2
    assert all(r["host"] == "localhost" and r["action"] == "command" for r in sleeps)
    durations = [r["end"] - r["start"] for r in sleeps]
    # each item's interval covers its own sleep, and the intervals follow one another
    # without overlap (no upper bound on a duration: this machine may be busy)
    assert durations[0] >= 0.2 and durations[1] >= 0.4
    assert sleeps[1]["start"] == sleeps[0]["end"]
    skipped = [r for r in records if r["task"] == "Never runs"]
    assert [r["status"] for r in skipped] == ["skipped", "skipped"]

    reps = timeline.repetitions(records)
    assert len(reps) == 2
    assert [r["task"] for r in reps[0]] == [
        "Note the start time", "Sleep on each host", "Sleep on each host", "Never runs"]
    per = timeline.summary(reps, [0.6, 0.6])
    # both sleeps are module runs; the one delegated away from the controller a round trip
    assert per["module_runs"] == 2 and per["round_trips"] == 1
    assert per["wall_s"] >= 0.6 and per["overhead_s"] == per["wall_s"] - 0.6
    tasks = {task: (seconds, count) for task, seconds, count in timeline.by_task(reps)}
    assert tasks["Sleep on each host"][0] >= 0.6 and tasks["Sleep on each host"][1] == 2
    assert tasks["Never runs"][1] == 0
    hosts = dict((t, s) for t, s, _ in timeline.by_target(reps))
    assert hosts["localhost"] >= 0.2 and hosts["other"] >= 0.4 and "(controller)" in hosts


def test_round_trips_count_module_runs_off_the_controller():
    rec = {"status": "ok", "action": "kvmnetlab.lab.collect", "target": "kvmnl-g1"}
    assert timeline.round_trip(rec)
    assert not timeline.round_trip({**rec, "target": "localhost"})
    assert not timeline.round_trip({**rec, "status": "skipped"})
    assert not timeline.round_trip({**rec, "action": "set_fact"})
    assert not timeline.round_trip({**rec, "action": "kvmnetlab.lab.store_commit"})


def test_summary_refuses_mismatched_measuring():
    try:
        timeline.summary([[]], [])
    except ValueError as err:
        assert "1 repetitions timed but 0 measured" in str(err)
    else:
        raise AssertionError("no error")


def test_measuring_wall_counts_concurrent_tools_once(tmp_path):
    """Two loads that ran at once (competing flows) and a ping after them: 3 s of wall
    time measured, though the tools ran 5 s in all; another host's records are on its
    own clock and add their own span."""
    sender, other = tmp_path / "h1", tmp_path / "h2"
    sender.mkdir()
    other.mkdir()
    for folder, name, argv, start, end in (
            (sender, "trafgen.txt", ["trafgen"], 100.0, 102.0),
            (sender, "flow2.trafgen.txt", ["trafgen"], 100.5, 102.0),
            (sender, "ping.txt", ["ping"], 102.5, 103.5),
            (sender, "tcpdump.txt", ["tcpdump"], 90.0, 110.0),  # not a measuring tool
            (other, "ping.txt", ["ping"], 5.0, 5.5)):
        (folder / f"{name}.meta.json").write_text(json.dumps(
            {"argv": argv, "started_at": start, "finished_at": end}))
    assert timeline.measuring_s(tmp_path) == pytest.approx(2.0 + 1.5 + 1.0 + 0.5)
    assert timeline.measuring_wall_s(tmp_path) == pytest.approx(2.0 + 1.0 + 0.5)
    assert timeline.union_s([(0, 1), (0.5, 2), (3, 4), (3.5, 3.6)]) == pytest.approx(3.0)
