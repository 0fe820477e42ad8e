"""Where a campaign's time goes, from the task_times callback's JSON lines and raw/.

Pure functions used by bench_campaign.py (and its tests):

- ``measuring_s``: seconds the measuring tools ran, from their .meta.json records;
- ``measuring_wall_s``: the wall time during which at least one of them ran (tools that
  run at once, such as the loads of competing flows, counted once);
- ``repetitions``: the campaign play's records cut into one list per repetition;
- ``summary``: per repetition, its wall time, measuring time, overhead and round trips;
- ``by_task`` / ``by_target``: the mean seconds per repetition each task and each host took.

A *module run* is one result of a task that ran a module on a lab host (not a
controller-only action such as set_fact, and not skipped); a *round trip* is a module
run on a host other than the controller (ip netns exec or SSH: a process start on
that host, and for SSH a network exchange).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

MEASURING = ("ping", "trafgen", "pfsend")
CAMPAIGN_PLAY = "Measurement campaign"
REPETITION_START = "Note the start time"
# Actions that never leave the controller, whatever host they are "for".
CONTROLLER_ACTIONS = frozenset({
    "set_fact", "debug", "assert", "fail", "meta", "include_tasks", "import_tasks",
    "include_role", "include_vars", "add_host", "group_by", "pause", "set_stats",
    "kvmnetlab.lab.collector_plan", "kvmnetlab.lab.store_commit",
    "kvmnetlab.lab.campaign_validate", "kvmnetlab.lab.campaign_start",
    "kvmnetlab.lab.manifest_update",
    "kvmnetlab.lab.scenario_resolve", "kvmnetlab.lab.store_ingest",
    "kvmnetlab.lab.lab_lock", "kvmnetlab.lab.lab_inventory_check",
})


def is_measuring(record: dict) -> bool:
    """A tool's .meta.json record that is measurement: a prober or sender, or the search."""
    argv = record.get("argv") or [""]
    search = argv[0] == "python3" and "search" in argv
    return (argv[0] in MEASURING or search) and bool(record.get("finished_at"))


def measuring_s(raw: Path) -> float:
    """Seconds the measuring tools ran under ``raw`` (a campaign's or a repetition's)."""
    total = 0.0
    for meta in raw.rglob("*.meta.json"):
        record = json.loads(meta.read_text())
        if is_measuring(record):
            total += record["finished_at"] - record["started_at"]
    return total


def union_s(intervals: Iterable[tuple[float, float]]) -> float:
    """Seconds covered by the union of ``(start, end)`` intervals."""
    total, reach = 0.0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def measuring_wall_s(raw: Path) -> float:
    """Wall seconds under ``raw`` during which a measuring tool ran, per host (each host's
    records are on its own clock), summed over hosts."""
    by_host: dict[Path, list[tuple[float, float]]] = defaultdict(list)
    for meta in raw.rglob("*.meta.json"):
        record = json.loads(meta.read_text())
        if is_measuring(record):
            by_host[meta.parent].append((record["started_at"], record["finished_at"]))
    return sum(union_s(spans) for spans in by_host.values())


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def repetitions(records: Iterable[dict]) -> list[list[dict]]:
    """The campaign play's records, one list per repetition, in the order they ran.

    A repetition starts with its first task (``Note the start time``) and ends where
    the next one starts; the last ends with the last record before the ingest.
    """
    reps: list[list[dict]] = []
    for rec in records:
        if rec["play"] != CAMPAIGN_PLAY:
            continue
        if rec["task"] == REPETITION_START:
            reps.append([])
        elif rec["task"].startswith("Parse raw output"):
            break
        if reps:
            reps[-1].append(rec)
    return reps


def module_run(rec: dict) -> bool:
    return rec["status"] != "skipped" and rec["action"] not in CONTROLLER_ACTIONS


def round_trip(rec: dict, controller: str = "localhost") -> bool:
    return module_run(rec) and rec["target"] != controller


def wall(rep: list[dict]) -> float:
    return max(r["end"] for r in rep) - min(r["start"] for r in rep) if rep else 0.0


def summary(reps: list[list[dict]], measuring: list[float],
            controller: str = "localhost") -> dict:
    """Mean wall, measuring and overhead seconds per repetition, and round trips.

    ``measuring[i]`` is repetition i's measuring time (s), in the same order.
    """
    if len(reps) != len(measuring):
        raise ValueError(f"{len(reps)} repetitions timed but {len(measuring)} measured")
    walls = [wall(rep) for rep in reps]
    trips = [sum(round_trip(r, controller) for r in rep) for rep in reps]
    runs = [sum(module_run(r) for r in rep) for rep in reps]
    n = len(reps) or 1
    return {
        "repetitions": len(reps),
        "wall_s": sum(walls) / n,
        "measuring_s": sum(measuring) / n,
        "overhead_s": (sum(walls) - sum(measuring)) / n,
        "round_trips": sum(trips) / n,
        "module_runs": sum(runs) / n,
        "round_trips_median": statistics.median(trips) if trips else 0,
    }


def by_task(reps: list[list[dict]]) -> list[tuple[str, float, float]]:
    """(task, mean seconds per repetition, mean results per repetition), slowest first."""
    seconds: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for rep in reps:
        for rec in rep:
            seconds[rec["task"]] += rec["end"] - rec["start"]
            count[rec["task"]] += rec["status"] != "skipped"
    n = len(reps) or 1
    return sorted(((t, s / n, count[t] / n) for t, s in seconds.items()),
                  key=lambda row: -row[1])


def by_target(reps: list[list[dict]]) -> list[tuple[str, float, float]]:
    """(host the work ran on, mean seconds per repetition, mean module runs), slowest first.

    Only module runs count; controller-only actions are summed under "(controller)".
    """
    seconds: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for rep in reps:
        for rec in rep:
            key = rec["target"] if module_run(rec) else "(controller)"
            seconds[key] += rec["end"] - rec["start"]
            count[key] += module_run(rec)
    n = len(reps) or 1
    return sorted(((t, s / n, count[t] / n) for t, s in seconds.items()),
                  key=lambda row: -row[1])


def by_play(records: Iterable[dict]) -> list[tuple[str, float]]:
    """(play, wall seconds from its first record's start to its last's end), in order."""
    spans: dict[str, list[float]] = {}
    for rec in records:
        span = spans.setdefault(rec["play"], [rec["start"], rec["end"]])
        span[0], span[1] = min(span[0], rec["start"]), max(span[1], rec["end"])
    return [(play, end - start) for play, (start, end) in spans.items()]
