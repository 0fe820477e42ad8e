"""The preflight refuses, before any host changes, a campaign its results folder cannot hold.

A results file system with less free space than the campaign's estimated size plus a
margin, a results folder that cannot be created or written, and a scenario named
twice are each refused with a message naming the variable. The playbook-level checks
stop in the preflight play, before the lab lock: they need no lab and leave it alone.
"""

from __future__ import annotations

import json
import re

import pytest

from kvmnetlab import campaign, space
from kvmnetlab.errors import ConfigError
from tests.helpers import playbook, recap, tmpfs

SCENARIOS = ["baseline", "virtio"]
RAW = {"repetitions": 4, "ping_count": 200, "ping_interval_s": 0.01, "ping_payload_bytes": 56,
       "rate_pps": 1000, "rate_frames": 2000, "rate_frame_bytes": 60, "seed": 1,
       "scenarios": ["baseline"], "search": False}


def parameters(**over):
    return campaign.validate_parameters({**RAW, **over}, SCENARIOS)


def test_the_estimate_grows_with_repetitions_probes_and_the_search():
    small = space.estimate_bytes(parameters(), 4)
    assert space.estimate_bytes(parameters(), 8) > small
    assert space.estimate_bytes(parameters(ping_count=20_000), 4) > small
    assert space.estimate_bytes(parameters(search=True), 4) > small
    # a stored baseline repetition of the embedded lab took 256 KiB of blocks for 100 probes
    assert space.run_bytes(parameters(ping_count=100)) >= 256 << 10
    assert space.margin_bytes(small) == 16 << 20
    assert space.margin_bytes(10 << 30) == 1 << 30


def test_a_scenario_named_twice_is_refused_naming_the_variable():
    with pytest.raises(ConfigError, match=r"kvmnetlab_scenarios: names 'baseline' more than "
                                          "once") as err:
        parameters(scenarios="baseline,virtio,baseline")
    assert err.value.field == "kvmnetlab_scenarios"


def test_a_results_folder_that_cannot_be_created_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"kvmnetlab_results_dir: /proc/kvmnetlab: cannot "
                                          r"be created: /proc: "):
        space.check_results_dir("/proc/kvmnetlab")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"file/results: cannot be created: .*file is not a "
                                          "folder"):
        space.check_results_dir(tmp_path / "file" / "results")
    assert space.check_results_dir(tmp_path / "new" / "results") == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the probe left nothing


def test_too_little_free_space_is_refused_with_both_numbers(tmp_path):
    with tmpfs(tmp_path / "fs", "8m") as fs:
        estimate = space.estimate_bytes(parameters(), 4)
        with pytest.raises(ConfigError) as err:
            space.check_free_space(fs / "results", estimate, 4)
        message = str(err.value)
        assert err.value.field == "kvmnetlab_results_dir"
        assert re.search(r": 8\.0 MiB \(8388608 bytes\) free on its file system \(mounted on "
                         rf"{re.escape(str(fs))}\)", message), message
        assert f"needs about {space.human_bytes(estimate)} plus a margin of 16.0 MiB" in message
    space.check_free_space(tmp_path / "results", estimate, 4)  # fits on the test's disk


def refused(extra: dict) -> str:
    """Run site.yml with ``extra``; it must fail in the preflight play, before the lab."""
    done = playbook("site.yml", "-e", json.dumps(extra, default=str), timeout=300)
    out = done.stdout
    assert done.returncode != 0, out[-3000:]
    plays = re.findall(r"^PLAY \[(.*?)\]", out, flags=re.M)
    assert plays == ["Preflight - validate the campaign and lock the lab"], plays
    assert set(recap(out)) == {"localhost"}
    assert "Take the lab lock" not in out  # refused before the lock, no host contacted
    return " ".join(out.split())  # Ansible folds long messages over lines


@pytest.mark.usefixtures("root_only")
def test_site_refuses_a_campaign_larger_than_the_free_space(tmp_path):
    with tmpfs(tmp_path / "fs", "8m") as fs:
        out = refused({"kvmnetlab_scenarios": "baseline", "kvmnetlab_repetitions": 3,
                       "kvmnetlab_results_dir": fs / "results"})
        assert "invalid campaign: campaign parameters: kvmnetlab_results_dir:" in out
        assert "8.0 MiB (8388608 bytes) free" in out
        assert re.search(r"needs about [\d.]+ MiB \(\d+ bytes\) plus a margin", out), out
        assert list(fs.iterdir()) == []


def test_site_refuses_a_results_folder_it_cannot_create():
    out = refused({"kvmnetlab_results_dir": "/proc/kvmnetlab"})
    assert "kvmnetlab_results_dir: /proc/kvmnetlab: cannot be created" in out


def test_site_refuses_a_scenario_named_twice(tmp_path):
    out = refused({"kvmnetlab_scenarios": ["baseline", "baseline"],
                   "kvmnetlab_results_dir": tmp_path})
    assert "kvmnetlab_scenarios: names 'baseline' more than once" in out
    assert list(tmp_path.iterdir()) == []
