"""Every night accounted for: a night killed mid-way is failed ("interrupted") at the next
start and notified; nights skipped in a row stop exiting 0.

The killed night's driver is a real process (``python -c``) that runs the driver's own
``cli.main`` with ``ansible_runner.run`` replaced, at that one boundary, by a function that
never returns: it is killed with SIGKILL by its PID, as a reboot or an OOM kill would stop it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nightly import status as night_state
from tests.helpers import REPO, night_status

NIGHTLY = Path(sys.executable).parent / "kvmnetlab-nightly"

HANGING_DRIVER = """
import sys, time
import ansible_runner
from nightly import cli

def hang(**kwargs):
    while True:
        time.sleep(1)

ansible_runner.run = hang
sys.exit(cli.main(sys.argv[1:]))
"""


def start_hanging_night(results: Path, night: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HANGING_DRIVER, "--results-dir", str(results),
         "--night-id", night, "--min-free-gib", "0", "--lock-file", str(results / "free.lock")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_running(results: Path, night: str, proc: subprocess.Popen, timeout_s: float = 120):
    latest = results / "history" / "status.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc = night_state.read(latest)
        if doc and doc.get("night") == night:
            return doc
        if proc.poll() is not None:
            pytest.fail(f"the driver exited {proc.returncode}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"{latest} never said night {night} is running")


def notify_script(tmp: Path) -> tuple[Path, Path]:
    record = tmp / "notified"
    script = tmp / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    script.chmod(0o755)
    return script, record


def test_a_night_killed_mid_way_is_failed_as_interrupted_at_the_next_start(tmp_path: Path):
    results = tmp_path / "results"
    proc = start_hanging_night(results, "n1")
    try:
        running = wait_running(results, "n1", proc)
        assert running["outcome"] == "running"
        assert running["driver"]["pid"] == proc.pid
        assert running["driver"]["boot_id"] == night_state.boot_id()
        assert night_status(results, "n1")["outcome"] == "running"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert night_state.driver_gone(running["driver"]) == (
        f"its driver (PID {proc.pid}) no longer runs")

    script, record = notify_script(tmp_path)
    done = subprocess.run(
        [str(NIGHTLY), "--results-dir", str(results), "--night-id", "n2", "--min-free-gib",
         str(2**20), "--notify", str(script)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 4, done.stderr  # n2 itself is refused: too little disk
    first = night_status(results, "n1")
    assert first["outcome"] == "failed"
    assert first["reason"].startswith("interrupted: the night stopped before it finished")
    assert f"PID {proc.pid}" in first["reason"] and first["finished_at"]
    assert "night n1 was interrupted" in done.stderr
    # notified for n1 (its own status), then for n2
    assert record.read_text().split() == [str(results / "n1" / "nightly" / "status.json"),
                                          str(results / "n2" / "nightly" / "status.json")]
    catalog = pd.read_parquet(results / "history" / "nights.parquet")
    rows = catalog.drop_duplicates("night").set_index("night")
    assert rows.loc["n1", "outcome"] == "failed"
    assert rows.loc["n1", "reason"].startswith("interrupted")
    assert rows.loc["n2", "outcome"] == "refused"
    # told once: the next start finds n2 finished and leaves n1 as it is
    again = subprocess.run(
        [str(NIGHTLY), "--results-dir", str(results), "--night-id", "n3", "--min-free-gib",
         str(2**20), "--notify", str(script)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 4 and "interrupted" not in again.stderr
    assert len(record.read_text().split()) == 3


def test_a_running_night_whose_driver_lives_is_left_alone():
    me = night_state.this_driver()
    assert night_state.driver_gone(me) is None
    assert night_state.driver_gone({**me, "boot_id": "another-boot"}) == (
        "the machine was restarted since")
    assert night_state.driver_gone({**me, "pid_start": "0"}) is not None
    assert night_state.driver_gone(None) == "no driver is recorded"


def test_the_third_night_skipped_in_a_row_exits_5_naming_the_holder(tmp_path: Path):
    from tests.nightly.test_nightly_cli import lock_path, make_inventory, write_lock

    holder = subprocess.Popen(["sleep", "600"])
    try:
        inventory = make_inventory(tmp_path)
        write_lock(lock_path(tmp_path), holder, "stuck-campaign")
        results = tmp_path / "results"
        codes, reasons = [], []
        for night in ("n1", "n2", "n3", "n4"):
            done = subprocess.run(
                [str(NIGHTLY), "-i", str(inventory), "--results-dir", str(results),
                 "--night-id", night, "--min-free-gib", "0", *(
                     ["--max-skipped", "2"] if night == "n4" else [])],
                cwd=tmp_path, capture_output=True, text=True, timeout=300)
            codes.append(done.returncode)
            reasons.append(night_status(results, night)["reason"])
    finally:
        holder.kill()
        holder.wait()
    assert codes == [0, 0, 5, 5]
    assert reasons[2].startswith("3 nights in a row skipped (max_skipped 3); the lab lock "
                                 "may be stuck: ")
    assert f"live pid {holder.pid}" in reasons[2] and "'stuck-campaign'" in reasons[2]
    assert reasons[3].startswith("4 nights in a row skipped (max_skipped 2)")
    assert json.loads((results / "history" / "status.json").read_text())["night"] == "n4"


def test_a_night_past_its_timeout_is_stopped_and_failed(tmp_path: Path):
    """Real site.yml through ansible-runner, bounded to 2 s, against a lab host whose SSH
    connection hangs (its ProxyCommand sleeps: no packet leaves the machine): the night
    fails naming the bound, not the host."""
    from tests.nightly.test_nightly_cli import make_inventory

    inventory = make_inventory(tmp_path,
                               ansible_ssh_common_args="-o ProxyCommand='sleep 120'")
    results = tmp_path / "results"
    started = time.monotonic()
    done = subprocess.run(
        [str(NIGHTLY), "-i", str(inventory), "--results-dir", str(results), "--night-id", "n1",
         "--min-free-gib", "0", "--timeout-h", str(2 / 3600)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-3000:]
    status = night_status(results, "n1")
    assert status["outcome"] == "failed"
    assert status["reason"] == ("site.yml did not finish within 2 s (timeout_h); it was stopped")
    assert time.monotonic() - started < 120
