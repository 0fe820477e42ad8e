"""Before a campaign: can its results folder be written, and does the campaign fit?

The size of a campaign is estimated from its parameters (the preflight refuses
one that does not fit, with both numbers, before any host is changed); the
figures below come from stored campaigns of the embedded lab, rounded up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kvmnetlab.campaign import Parameters
from kvmnetlab.errors import ConfigError, human_bytes
from kvmnetlab.store import existing_ancestor, free_bytes, mount_point

BLOCK_BYTES = 4096  # a small file still takes a block
RAW_FILES_PER_RUN = 128  # files a repetition stores (76 bare metal, 83 with a guest)
PING_LINE_BYTES = 100  # one probe's line of ping -D output (about 81 bytes)
FPING_PROBE_BYTES = 90  # one probe of fping beside ping: its -D line and summary sample
SEARCH_TRIAL_BYTES = 16 << 10  # raw output of one throughput trial
PROBE_ROW_BYTES = 64  # one probe in data/*.parquet
DATA_FIXED_BYTES = 256 << 10
REPORT_BYTES = 2 << 20  # report/: figures and tables
MANIFEST_FIXED_BYTES = 64 << 10
MANIFEST_RUN_BYTES = 8 << 10  # a run's entry and its files' sha256
MARGIN_FIXED_BYTES = 16 << 20  # kept free beyond the estimate
MARGIN_FRACTION = 0.1  # ... or this fraction of the estimate, when larger
SOURCE = "campaign parameters"


def run_bytes(parameters: Parameters) -> int:
    """Raw bytes one repetition stores (bytes)."""
    size = (RAW_FILES_PER_RUN * BLOCK_BYTES
            + parameters.ping_count * (PING_LINE_BYTES + FPING_PROBE_BYTES))
    search = parameters.search
    if search is not None:
        trials = search.max_trials + 2 * search.validations + len(search.load_fractions)
        probes = sum(search.load_s / parameters.ping_interval_s for _ in search.load_fractions)
        size += trials * SEARCH_TRIAL_BYTES + int(probes) * PING_LINE_BYTES
    return size


def estimate_bytes(parameters: Parameters, runs: int) -> int:
    """Bytes a campaign of ``runs`` repetitions writes under its results folder: raw files,
    one repetition's tars while it is committed, tables, report and manifest (twice while
    it is rewritten)."""
    raw = run_bytes(parameters)
    data = DATA_FIXED_BYTES + runs * parameters.ping_count * 2 * PROBE_ROW_BYTES  # ping, fping
    manifest = MANIFEST_FIXED_BYTES + runs * MANIFEST_RUN_BYTES
    return runs * raw + raw + data + REPORT_BYTES + 2 * manifest


def margin_bytes(estimate: int) -> int:
    return max(MARGIN_FIXED_BYTES, int(estimate * MARGIN_FRACTION))


def runs_left(campaign_dir: str | Path, planned: int) -> int:
    """Repetitions a resumed campaign still has to run (``planned`` when unreadable: the
    resume itself then names what is wrong)."""
    from kvmnetlab.errors import StoreError
    from kvmnetlab.store import Store

    try:
        manifest = Store(campaign_dir).load()
    except StoreError:
        return planned
    return sum(1 for run in manifest["runs"] if run.get("status") != "done")


def check_results_dir(path: str | Path) -> Path:
    """Refuse a results folder that cannot be created or written; leave nothing behind.

    Returns the folder that exists: ``path`` or its nearest existing parent.
    """
    path = Path(os.path.abspath(path))
    there = existing_ancestor(path)
    field = "kvmnetlab_results_dir"
    if not there.is_dir():
        raise ConfigError(SOURCE, field, f"{path}: cannot be created: {there} is not a folder")
    try:
        if there == path:
            fd, probe = tempfile.mkstemp(prefix=".kvmnetlab-probe-", dir=there)
            os.close(fd)
            os.unlink(probe)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".kvmnetlab-probe-", dir=there))
    except OSError as exc:
        verb = "written" if there == path else "created"
        raise ConfigError(SOURCE, field, f"{path}: cannot be {verb}: {there}: "
                          f"{exc.strerror or exc}") from None
    return there


def check_free_space(path: str | Path, estimate: int, runs: int) -> None:
    """Refuse a campaign whose estimate plus the margin exceeds the free space at ``path``."""
    free = free_bytes(path)
    margin = margin_bytes(estimate)
    if free < estimate + margin:
        raise ConfigError(
            SOURCE, "kvmnetlab_results_dir",
            f"{os.path.abspath(path)}: {human_bytes(free)} free on its file system (mounted "
            f"on {mount_point(path)}), but the campaign ({runs} repetition(s)) needs about "
            f"{human_bytes(estimate)} plus a margin of {human_bytes(margin)}: "
            f"{human_bytes(estimate + margin)}. Free space there, choose another "
            "kvmnetlab_results_dir, or run fewer repetitions or probes")
