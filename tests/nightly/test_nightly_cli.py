"""kvmnetlab-nightly without a lab: configuration, the disk threshold, the lab lock, and a
night that fails for real in site.yml (through ansible-runner) before any host changes.

site.yml runs here only against a temporary inventory whose lab lock lives in the test's
folder and whose one lab host cannot be reached (ssh to a closed port on 127.0.0.1), so
the preflight passes and the first play that would change a host fails to connect.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kvmnetlab import lock
from tests.analysis_data import store as fake
from tests.helpers import REPO, night_status

NIGHTLY = Path(sys.executable).parent / "kvmnetlab-nightly"
LAB_NAME = "nightly-test"


def nightly(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run([str(NIGHTLY), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def make_inventory(tmp: Path, **host_vars: str) -> Path:
    """An embedded-kind lab named nightly-test: lock in ``tmp``/lock, one lab host that
    refuses connections; the campaign parameters are the embedded lab's."""
    inventory = tmp / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    shutil.copy(REPO / "inventory/local/group_vars/all/campaign.yml",
                inventory / "group_vars/all/campaign.yml")
    (inventory / "group_vars/all/lab.yml").write_text(yaml.safe_dump({
        "kvmnetlab_lab_name": LAB_NAME,
        "kvmnetlab_lab_kind": "embedded",
        "kvmnetlab_lock_dir": str(tmp / "lock"),
        "kvmnetlab_repo": "{{ ansible_config_file | dirname }}",
    }))
    unreachable = {"ansible_host": "127.0.0.1", "ansible_port": 1,
                   "ansible_connection": "ssh", "ansible_user": "nobody", **host_vars}
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
        "lab_hypervisor": {"hosts": {"nightly-unreachable": unreachable}},
        "bare_metal": {"hosts": {}}, "guests": {"hosts": {}}, "pf_ring": {"hosts": {}},
        "kvm_host": {"hosts": {}},
    }}}))
    return inventory


def lock_path(tmp: Path) -> Path:
    return tmp / "lock" / f"{LAB_NAME}.lock"


def write_lock(path: Path, proc: subprocess.Popen, campaign: str) -> None:
    """The lock as kvmnetlab.lock writes it for the live process ``proc``."""
    start_time = lock.process_start_time(proc.pid)
    assert start_time is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": proc.pid, "start_time": start_time,
                                "campaign_id": campaign, "since": "2026-01-01T01:30:00Z"}))


@pytest.fixture
def sleeper():
    """A live process to hold a lock; stopped (by its PID) at the end."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


def write_stale_lock(path: Path, campaign: str) -> int:
    """A lock whose holder has died since it took it; returns the dead PID."""
    proc = subprocess.Popen(["sleep", "600"])
    try:
        write_lock(path, proc, campaign)
    finally:
        proc.kill()
        proc.wait()
    return proc.pid


# --------------------------------------------------------------------------- help, config


def test_help_names_options_and_exit_status(tmp_path: Path):
    done = nightly("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for text in ("--config", "--extra-vars", "--min-free-gib", "--keep-raw", "--notify",
                 "--night-id", "--lock-file", "exit status:", "4  refused", "examples:"):
        assert text in done.stdout


@pytest.mark.parametrize(("content", "key", "why"), [
    ({"results_dir": "r", "keep_raw": 3}, "keep_raw", "unknown key"),
    ({"keep_raw_nights": "many"}, "keep_raw_nights", "must be an integer"),
    ({"min_free_gib": True}, "min_free_gib", "must be a number"),
    ({"min_free_gib": -1}, "min_free_gib", "must be >= 0"),
    ({"p_value": 1.5}, "p_value", "must be > 0 and < 1"),
    ({"min_segment": 1}, "min_segment", "must be >= 2"),
    ({"extra_vars": ["kvmnetlab_repetitions=3"]}, "extra_vars", "must be a mapping"),
    ({"extra_vars": {"kvmnetlab_campaign_id": "x"}}, "extra_vars.kvmnetlab_campaign_id",
     "set by the driver"),
    ({"notify_command": 3}, "notify_command", "non-empty string"),
    ({"night_id": "x"}, "night_id", "command-line option only"),
])
def test_bad_config_names_file_and_key(tmp_path: Path, content: dict, key: str, why: str):
    cfg = tmp_path / "nightly.yml"
    cfg.write_text(yaml.safe_dump(content))
    results = tmp_path / "results"
    done = nightly("--config", str(cfg), "--results-dir", str(results), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{cfg}: {key}: " in done.stderr and why in done.stderr, done.stderr
    assert not results.exists(), "nothing may run on a bad configuration"


@pytest.mark.parametrize(("args", "flag"), [
    (["--keep-raw", "x"], "--keep-raw"),
    (["--min-free-gib", "lots"], "--min-free-gib"),
    (["-e", "novalue"], "--extra-vars"),
    (["-e", "kvmnetlab_results_dir=/tmp"], "--extra-vars.kvmnetlab_results_dir"),
    (["--night-id", "history"], "--night-id"),
    (["--night-id", "../up"], "--night-id"),
    (["--inventory", "no/such/inventory"], "inventory"),
])
def test_bad_flags_exit_2(tmp_path: Path, args: list[str], flag: str):
    results = tmp_path / "results"
    done = nightly("--results-dir", str(results), *args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"command line: {flag}: " in done.stderr, done.stderr
    assert not results.exists()


def test_unreadable_config_file(tmp_path: Path):
    cfg = tmp_path / "nightly.yml"
    cfg.write_text("results_dir: [unclosed\n")
    done = nightly("--config", str(cfg), cwd=tmp_path)
    assert done.returncode == 2
    assert f"{cfg}: (file): not valid YAML" in done.stderr


# --------------------------------------------------------------------------- refused


def test_too_little_disk_refuses_the_night(tmp_path: Path):
    """Flags override the file: the file allows 0 GiB, the flag asks for 1 PiB."""
    cfg = tmp_path / "etc" / "nightly.yml"
    cfg.parent.mkdir()
    cfg.write_text(yaml.safe_dump({"results_dir": "../results", "min_free_gib": 0,
                                   "lock_file": str(tmp_path / "unused.lock")}))
    results = tmp_path / "results"
    done = nightly("--config", str(cfg), "--min-free-gib", str(2**20), "--night-id", "n1",
                   cwd=tmp_path)
    assert done.returncode == 4, done.stdout + done.stderr
    assert " GiB free at " in done.stderr and "minimum of 1048576.00 GiB" in done.stderr
    status = night_status(results, "n1")
    assert status["outcome"] == "refused" and status["rc"] is None
    assert "GiB free at " + str(results) in status["reason"]
    assert status["format_version"] == 1 and status["night"] == "n1"
    assert status["finished_at"] and status["started_at"]
    assert not (results / "n1" / "nightly" / "runner").exists(), "site.yml must not run"
    assert json.loads((results / "history" / "status.json").read_text()) == status


# --------------------------------------------------------------------------- the lab lock


def test_a_live_lock_skips_the_night(tmp_path: Path, sleeper):
    """The lock path is resolved from the inventory (its kvmnetlab_lock_dir, lab name)."""
    inventory = make_inventory(tmp_path)
    write_lock(lock_path(tmp_path), sleeper, "other-campaign")
    results = tmp_path / "results"
    done = nightly("-i", str(inventory), "--results-dir", str(results), "--night-id", "n1",
                   "--min-free-gib", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    status = night_status(results, "n1")
    assert status["outcome"] == "skipped"
    assert f"live pid {sleeper.pid}" in status["reason"]
    assert "'other-campaign'" in status["reason"] and str(lock_path(tmp_path)) in status["reason"]
    assert not (results / "n1" / "nightly" / "runner").exists(), "no playbook may run"
    assert lock.holder(lock_path(tmp_path))["pid"] == sleeper.pid, "the holder's lock stays"


def test_lock_taken_before_the_preflight_skips_the_night(tmp_path: Path, sleeper):
    """The driver checks a free lock (--lock-file), site.yml's preflight then finds the
    inventory's lock held: the busy message from the runner events makes it skipped."""
    inventory = make_inventory(tmp_path)
    write_lock(lock_path(tmp_path), sleeper, "raced-campaign")
    results = tmp_path / "results"
    done = nightly("-i", str(inventory), "--results-dir", str(results), "--night-id", "n1",
                   "--min-free-gib", "0", "--lock-file", str(tmp_path / "free.lock"),
                   cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    status = night_status(results, "n1")
    assert status["outcome"] == "skipped", status
    assert status["reason"].startswith("lab is busy:")
    assert f"pid {sleeper.pid}" in status["reason"] and "raced-campaign" in status["reason"]
    assert status["rc"] not in (0, None)
    assert Path(status["runner_artifacts"], "rc").is_file()
    assert lock.holder(lock_path(tmp_path))["pid"] == sleeper.pid


# --------------------------------------------------------------------------- failed nights


def test_an_invalid_parameter_fails_the_night_in_preflight(tmp_path: Path):
    inventory = make_inventory(tmp_path)
    results = tmp_path / "results"
    done = nightly("-i", str(inventory), "--results-dir", str(results), "--night-id", "n1",
                   "--min-free-gib", "0", "-e", "kvmnetlab_repetitions=0", cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    status = night_status(results, "n1")
    assert status["outcome"] == "failed" and status["rc"] == 2
    assert status["reason"].startswith(
        "task 'Validate campaign parameters and scenarios' failed on host localhost: "
        "invalid campaign:"), status["reason"]
    assert "kvmnetlab_repetitions" in status["reason"]
    assert "PLAY Preflight - validate the campaign and lock the lab" in done.stdout
    assert not lock_path(tmp_path).exists(), "the preflight failed before the lock"
    assert not (results / "n1" / "manifest.json").exists()


def test_an_unreachable_host_fails_the_night_and_the_stale_lock_is_taken_over(
        tmp_path: Path):
    inventory = make_inventory(tmp_path)
    stale = write_stale_lock(lock_path(tmp_path), "a-night-that-died")
    assert lock.holder(lock_path(tmp_path)) is None
    results = tmp_path / "results"
    args = ("-i", str(inventory), "--results-dir", str(results), "--min-free-gib", "0")
    started = time.monotonic()
    done = nightly(*args, "--night-id", "n1", cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    status = night_status(results, "n1")
    assert status["outcome"] == "failed", status
    assert status["reason"].startswith("host nightly-unreachable unreachable: "), status
    assert "port 1" in status["reason"]
    artifacts = Path(status["runner_artifacts"])
    assert artifacts.parent == results / "n1" / "nightly" / "runner" / "artifacts"
    assert (artifacts / "rc").read_text() == str(status["rc"]) != "0"
    assert (artifacts / "status").read_text() == "failed"
    events = [json.loads(p.read_text()) for p in (artifacts / "job_events").glob("*.json")]
    assert any(e.get("event") == "runner_on_unreachable" for e in events)
    # found by the preflight's read-only look at each lab host, before anything changes
    assert "PLAY Preflight - private base folder and room for raw files" in done.stdout
    assert "UNREACHABLE nightly-unreachable" in done.stdout
    assert "exit 3" in done.stdout and time.monotonic() - started < 600
    # The stale lock was taken over by site.yml's ansible-playbook, which died with the
    # night before finish.yml: the lock it left is stale too, never live.
    info = json.loads(lock_path(tmp_path).read_text())
    assert info["pid"] != stale and info["campaign_id"] == "n1"
    assert lock.holder(lock_path(tmp_path)) is None
    # So the next night is not skipped: it runs (and fails the same way).
    again = nightly(*args, "--night-id", "n2", cwd=tmp_path)
    assert again.returncode == 3, again.stdout + again.stderr
    assert night_status(results, "n2")["outcome"] == "failed"
    assert json.loads(lock_path(tmp_path).read_text())["campaign_id"] == "n2"
    assert json.loads((results / "history" / "status.json").read_text())["night"] == "n2"


def test_notify_runs_with_the_status_path_and_its_failure_is_not_fatal(tmp_path: Path):
    record = tmp_path / "notified"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$@" > {record}\nexit 7\n')
    script.chmod(0o755)
    results = tmp_path / "results"
    done = nightly("--results-dir", str(results), "--night-id", "n1", "--min-free-gib",
                   str(2**20), "--notify", f"{script} --tag nightly", cwd=tmp_path)
    assert done.returncode == 4
    assert record.read_text().split() == ["--tag", "nightly",
                                          str(results / "n1" / "nightly" / "status.json")]
    assert "notify command" in done.stderr and "exited 7" in done.stderr


def test_a_pruned_night_cannot_be_run_again(tmp_path: Path):
    results = tmp_path / "results"
    night = results / "n1"
    night.mkdir(parents=True)
    manifest = {**fake.manifest("n1"), "files": {
        "raw/base/1/h1/ping.txt": {"sha256": "00", "bytes": 1, "pruned": True}}}
    (night / "manifest.json").write_text(json.dumps(manifest))
    done = nightly("--results-dir", str(results), "--night-id", "n1", cwd=tmp_path)
    assert done.returncode == 2
    assert "command line: --night-id: night n1 had its raw files pruned" in done.stderr
    assert not (night / "nightly").exists()


def test_sigterm_stops_site_yml_and_fails_the_night(tmp_path: Path):
    """The lab host's connection hangs (its ssh ProxyCommand sleeps, nothing is contacted);
    SIGTERM to the driver stops ansible-playbook through ansible-runner. (No ssh control
    master here: ansible.cfg's ControlPersist would keep one, detached, on purpose.)"""
    # a sleep of this run's own (GNU sleep takes a fraction): what is left afterwards is
    # found by it, and nothing another run started can match it
    marker = f"1237.{os.getpid()}{time.monotonic_ns() % 10**6:06d}"
    inventory = make_inventory(tmp_path, ansible_ssh_args="-o ControlMaster=no",
                               ansible_ssh_common_args=f"-o ProxyCommand='sleep {marker}'")
    results = tmp_path / "results"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.Popen([str(NIGHTLY), "-i", str(inventory), "--results-dir", str(results),
                             "--night-id", "n1", "--min-free-gib", "0"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            # the first task that connects to the lab host (the preflight's read of its
            # folder for raw files)
            if "TASK Read the free space and base folder" in line:
                break
        assert lines and "TASK Read the free space and base folder" in lines[-1], "".join(lines)
        time.sleep(2)  # let the connection start
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, "".join(lines) + out + err
    status = night_status(results, "n1")
    assert status["outcome"] == "failed"
    assert status["reason"] == "site.yml was stopped (the driver was asked to stop)"
    assert Path(status["runner_artifacts"], "status").read_text() == "canceled"
    assert lock.holder(lock_path(tmp_path)) is None, "the stopped run's lock must be stale"
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    for pid in left.stdout.split():  # stop what this test started, should any be left
        os.kill(int(pid), signal.SIGKILL)
    assert not left.stdout.split(), "site.yml's processes were left running"


# --------------------------------------------------------------------------- done nights
# site.yml is replaced at the one boundary this machine cannot cross without a lab,
# ansible_runner.run: the fake writes the campaign a night on the lab would write
# (tests/analysis_data/store.py) and its runner artifacts. Everything after it is real:
# the report, analysis.history, analysis.changepoints, analysis.dashboard, retention.


class FakeSite:
    """ansible_runner.run for site.yml: night -> RTT scale of the campaign it writes."""

    def __init__(self, scales: dict[str, float], report: bool = True) -> None:
        self.scales = scales
        self.report = report
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        from types import SimpleNamespace

        from tests.analysis_data import store as fake

        self.calls.append(kwargs)
        extra = kwargs["extravars"]
        night = extra["kvmnetlab_campaign_id"]
        root = Path(extra["kvmnetlab_results_dir"]) / night
        manifest = fake.manifest(night, started_at=f"2026-01-{int(night[1:]):02d}T01:30:00Z")
        rel = "raw/base/1/h1/ping.txt"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(night.encode())
        manifest["files"] = {rel: {"sha256": hashlib.sha256(night.encode()).hexdigest(),
                                   "bytes": len(night)}}
        scale = self.scales[night]
        fake.write_campaign(root, manifest_data=manifest, tables={
            "rtt": fake.rtt_frame(scale=scale), "ping_summary": fake.ping_frame()})
        if self.report:  # as site.yml's report phase leaves it
            (root / "report").mkdir(exist_ok=True)
            (root / "report" / "index.html").write_text("<html></html>")
        handler = kwargs["event_handler"]
        handler({"event": "playbook_on_play_start", "event_data": {"play": "Fake site"}})
        handler({"event": "playbook_on_task_start", "event_data": {"task": "Measure"}})
        artifacts = Path(kwargs["private_data_dir"]) / "artifacts" / kwargs["ident"]
        artifacts.mkdir(parents=True)
        (artifacts / "rc").write_text("0")
        return SimpleNamespace(status="successful", rc=0)


def run_nights(monkeypatch, capsys, results: Path, fake_site: FakeSite, nights: list[str],
               *extra: str) -> dict[str, tuple[int, dict]]:
    import ansible_runner

    from nightly import cli

    monkeypatch.setattr(ansible_runner, "run", fake_site)
    out = {}
    for night in nights:
        code = cli.main(["--results-dir", str(results), "--night-id", night,
                         "--min-free-gib", "0", "--lock-file", str(results / "free.lock"),
                         "--p-value", "0.01", "--min-segment", "3", *extra])
        out[night] = (code, night_status(results, night))
        capsys.readouterr()
    return out


def test_done_nights_build_the_history_and_report_a_regression_once(
        tmp_path: Path, monkeypatch, capsys):
    """RTT steps up by 50 % at night n5; with 3 nights needed on either side, night n7 is
    the first to see it (exit 1) and n8 does not report it again."""
    import pandas as pd

    from analysis.load import load_campaign

    jitter = [1.00, 1.01, 1.02, 1.00]
    scales = {f"n{i + 1}": jitter[i % 4] * (1.5 if i >= 4 else 1.0) for i in range(8)}
    site = FakeSite(scales)
    results = tmp_path / "results"
    nights = run_nights(monkeypatch, capsys, results, site, list(scales), "--keep-raw", "2")
    assert {n: code for n, (code, _) in nights.items()} == {
        "n1": 0, "n2": 0, "n3": 0, "n4": 0, "n5": 0, "n6": 0, "n7": 1, "n8": 0}
    status = nights["n7"][1]
    assert status["outcome"] == "done" and status["rc"] == 0 and status["reason"] is None
    found = {(r["scenario"], r["metric"], r["night"]) for r in status["regressions"]}
    assert ("base", "rtt_p50_us", "n5") in found
    p50 = next(r for r in status["regressions"] if r["metric"] == "rtt_p50_us")
    assert 45 < p50["change_pct"] < 55 and p50["ci_low_pct"] <= p50["change_pct"]
    assert p50["p_value"] < 0.01 and isinstance(p50["differs"], str)
    assert set(p50) == {"scenario", "metric", "night", "change_pct", "ci_low_pct",
                        "ci_high_pct", "p_value", "differs"}
    assert status["progressions"] == [] and nights["n8"][1]["regressions"] == []
    reported = json.loads((results / "history" / "reported.json").read_text())["reported"]
    assert {(r["scenario"], r["metric"], r["night"]) for r in reported} == found
    assert {r["reported_by"] for r in reported} == {"n7"}
    # the history: every night done, in the catalog, the dashboard, the latest status
    catalog = pd.read_parquet(results / "history" / "nights.parquet")
    assert sorted(catalog["night"].unique()) == sorted(scales)
    assert set(catalog["outcome"]) == {"done"}
    assert Path(status["dashboard"]) == results / "history" / "dashboard.html"
    assert "rtt_p50_us" in Path(status["dashboard"]).read_text()
    assert json.loads((results / "history" / "status.json").read_text()) == nights["n8"][1]
    assert status["report"] == str(results / "n7" / "report")
    assert status["runner_artifacts"].startswith(str(results / "n7" / "nightly" / "runner"))
    # site.yml was given the results folder and the night as campaign id, from the checkout
    call = site.calls[0]
    assert call["extravars"]["kvmnetlab_results_dir"] == str(results)
    assert call["project_dir"] == str(REPO) and call["playbook"] == "site.yml"
    assert call["envvars"]["ANSIBLE_CONFIG"] == str(REPO / "ansible.cfg")
    assert call["envvars"]["PATH"].startswith(f"{Path(sys.executable).parent}:")
    assert call["inventory"] == str(REPO / "inventory" / "local")
    # retention: raw files of all but the newest two done nights are gone, still loadable
    for night in scales:
        entry = json.loads((results / night / "manifest.json").read_text())["files"][
            "raw/base/1/h1/ping.txt"]
        assert entry.get("pruned", False) is (night not in ("n7", "n8"))
        assert (results / night / "raw/base/1/h1/ping.txt").exists() is (night in ("n7", "n8"))
    assert load_campaign(results / "n1").campaign_id == "n1"
    assert nights["n8"][1]["pruned"] == [{"night": "n6", "files": 1, "bytes": 2}]


def test_a_night_that_did_not_run_is_an_outcome_row(tmp_path: Path, monkeypatch, capsys):
    site = FakeSite({"n1": 1.0, "n2": 1.0})
    results = tmp_path / "results"
    run_nights(monkeypatch, capsys, results, site, ["n1"])
    code = nightly("--results-dir", str(results), "--night-id", "n2", "--min-free-gib",
                   str(2**20), cwd=tmp_path).returncode
    assert code == 4
    import pandas as pd

    catalog = pd.read_parquet(results / "history" / "nights.parquet")
    row = catalog.loc[catalog["night"] == "n2"]
    assert len(row) == 1 and row["outcome"].iloc[0] == "refused"
    assert "GiB free at" in row["reason"].iloc[0]
    assert (catalog.loc[catalog["night"] == "n1", "outcome"] == "done").all()
    assert night_status(results, "n2")["dashboard"] == str(results / "history" / "dashboard.html")
    assert night_status(results, "n2")["warnings"] == []


def test_the_report_is_built_when_site_yml_did_not(tmp_path: Path, monkeypatch, capsys):
    site = FakeSite({"n1": 1.0}, report=False)
    results = tmp_path / "results"
    nights = run_nights(monkeypatch, capsys, results, site, ["n1"])
    assert nights["n1"][0] == 0, nights
    assert (results / "n1" / "report" / "index.html").is_file()
    assert (results / "n1" / "report" / "report.md").is_file()


def test_a_campaign_the_history_cannot_read_fails_the_night(tmp_path: Path, monkeypatch,
                                                           capsys):
    class Corrupt(FakeSite):
        def __call__(self, **kwargs):
            result = super().__call__(**kwargs)
            root = Path(kwargs["extravars"]["kvmnetlab_results_dir"]) / "n1"
            with open(root / "data" / "rtt.parquet", "ab") as handle:
                handle.write(b"changed")
            index = root / "report" / "index.html"  # the report predates the change
            os.utime(index, (time.time() + 10, time.time() + 10))
            return result

    results = tmp_path / "results"
    nights = run_nights(monkeypatch, capsys, results, Corrupt({"n1": 1.0}), ["n1"])
    code, status = nights["n1"]
    assert code == 3 and status["outcome"] == "failed" and status["rc"] == 0
    assert status["reason"].startswith("after the campaign: InputError: ")
    assert "rtt.parquet" in status["reason"] and "sha256" in status["reason"]
