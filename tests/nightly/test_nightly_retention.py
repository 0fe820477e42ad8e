"""Retention of the nights' raw files (nightly/retention.py), on real campaign folders."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from analysis.load import load_campaign
from nightly import retention
from nightly.retention import Night
from tests.analysis_data import store as fake

WHEN = "2026-01-20T02:00:00Z"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_night(results: Path, night: str, outcome: str | None, *, day: int,
               raw_files: int = 3) -> Path:
    """A campaign folder as a night leaves it: manifest, data/, report/, raw files recorded
    with their sha256, and nightly/status.json (``outcome`` None: a campaign made by hand)."""
    root = results / night
    manifest = fake.manifest(night)
    files = {}
    for i in range(raw_files):
        rel = f"raw/base/{i % 2 + 1}/h1/ping-{i}.txt"
        data = f"{night} probe output {i}\n".encode() * (i + 1)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        files[rel] = {"sha256": sha(data), "bytes": len(data)}
    superseded = "superseded/1/base/1/h1/ping-partial.txt"
    (root / superseded).parent.mkdir(parents=True, exist_ok=True)
    (root / superseded).write_bytes(b"partial\n")
    files[superseded] = {"sha256": sha(b"partial\n"), "bytes": 8}
    manifest["files"] = files
    fake.write_campaign(root, manifest_data=manifest)
    (root / "report").mkdir()
    (root / "report" / "index.html").write_text("<html>report</html>\n")
    if outcome is not None:
        (root / "nightly").mkdir()
        (root / "nightly" / "status.json").write_text(json.dumps({
            "format_version": 1, "night": night, "outcome": outcome,
            "started_at": f"2026-01-{day:02d}T01:30:00Z"}))
    return root


def manifest_of(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


@pytest.fixture
def results(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    # ids sort in another order than time on purpose: started_at decides
    make_night(results, "n-a", "done", day=1)
    make_night(results, "n-c", "done", day=2)
    make_night(results, "n-b", "failed", day=3)
    make_night(results, "n-d", "done", day=4)
    make_night(results, "n-e", "skipped", day=5, raw_files=0)
    make_night(results, "n-f", "done", day=6)
    make_night(results, "by-hand", None, day=1)
    (results / "history").mkdir()
    (results / "history" / "status.json").write_text(json.dumps({"outcome": "done"}))
    return results


def test_nights_to_prune_keeps_the_newest_done_nights():
    nights = [Night(f"n{i}", Path(f"/r/n{i}"), outcome, f"2026-01-0{i}T00:00:00Z")
              for i, outcome in enumerate(["done", "failed", "done", "refused", "done", "done"])]
    assert [n.night for n in retention.nights_to_prune(nights, 2)] == ["n0", "n2"]
    assert [n.night for n in retention.nights_to_prune(nights, 0)] == ["n0", "n2", "n4", "n5"]
    assert retention.nights_to_prune(nights, 4) == []
    assert retention.nights_to_prune(list(reversed(nights)), 3) == [nights[0]]


def test_mark_pruned_keeps_checksums_and_leaves_the_input_alone():
    manifest = {"files": {"raw/a": {"sha256": "aa", "bytes": 1},
                          "data/rtt.parquet": {"sha256": "dd", "bytes": 2}}}
    marked = retention.mark_pruned(manifest, ["raw/a"], WHEN)
    assert marked["files"]["raw/a"] == {"sha256": "aa", "bytes": 1, "pruned": True,
                                        "pruned_at": WHEN}
    assert marked["files"]["data/rtt.parquet"] == {"sha256": "dd", "bytes": 2}
    assert "pruned" not in manifest["files"]["raw/a"]
    again = retention.mark_pruned(marked, ["raw/a"], "later")
    assert again["files"]["raw/a"]["pruned_at"] == WHEN


def test_apply_prunes_old_done_nights_only(results: Path):
    before = {night: manifest_of(results / night) for night in ("n-a", "n-c", "n-b", "n-d")}
    pruned = retention.apply(results, 2, WHEN)
    assert [p.night for p in pruned] == ["n-a", "n-c"]
    assert all(p.files == 4 and not p.missing for p in pruned)
    assert pruned[0].bytes == sum(e["bytes"] for rel, e in before["n-a"]["files"].items()
                                  if rel.startswith(("raw/", "superseded/")))
    for night in ("n-a", "n-c"):
        root = results / night
        assert not [p for p in (root / "raw").rglob("*") if p.is_file()]
        assert not [p for p in (root / "superseded").rglob("*") if p.is_file()]
        files = manifest_of(root)["files"]
        for rel, entry in before[night]["files"].items():
            if rel.startswith(("raw/", "superseded/")):
                assert entry["sha256"] == files[rel]["sha256"]
                assert entry["bytes"] == files[rel]["bytes"]
                assert files[rel]["pruned"] is True and files[rel]["pruned_at"] == WHEN
            else:  # data tables: untouched
                assert files[rel] == entry
                assert (root / rel).is_file()
        assert (root / "report" / "index.html").is_file()
        assert (root / "nightly" / "status.json").is_file()
        assert not list(root.glob(".manifest.json.*")), "temporary manifest left behind"
        # everything but the pruned flags is the manifest as it was
        stripped = manifest_of(root)
        for entry in stripped["files"].values():
            entry.pop("pruned", None)
            entry.pop("pruned_at", None)
        assert stripped == before[night]
    # the newest two done nights, the failed one (kept for resume) and the hand-made campaign
    for night in ("n-d", "n-f", "n-b", "by-hand"):
        root = results / night
        assert len([p for p in (root / "raw").rglob("*") if p.is_file()]) == 3
        assert not any(e.get("pruned") for e in manifest_of(root)["files"].values())


def test_apply_is_idempotent(results: Path):
    retention.apply(results, 2, WHEN)
    snapshot = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}
    again = retention.apply(results, 2, "2026-01-21T02:00:00Z")
    assert [(p.night, p.files, p.bytes, p.missing) for p in again] == [
        ("n-a", 0, 0, []), ("n-c", 0, 0, [])]
    assert {p: p.read_bytes() for p in results.rglob("*") if p.is_file()} == snapshot


def test_a_pruned_campaign_still_loads(results: Path):
    retention.apply(results, 0, WHEN)
    campaign = load_campaign(results / "n-a", verify=True)
    assert campaign.campaign_id == "n-a"
    assert len(campaign.rtt) == len(fake.RTT_ROWS)
    assert campaign.manifest["files"]["raw/base/1/h1/ping-0.txt"]["pruned"] is True


def test_an_interrupted_prune_is_finished_next_time(results: Path):
    """Marked pruned in the manifest but still on disk (the run stopped between the two)."""
    root = results / "n-a"
    manifest = manifest_of(root)
    rels = retention.raw_entries(manifest)
    (root / "manifest.json").write_text(json.dumps(retention.mark_pruned(manifest, rels, WHEN)))
    assert (root / rels[0]).is_file()
    pruned = retention.prune_campaign(root, "2026-01-21T02:00:00Z")
    assert pruned.files == len(rels)
    assert not any((root / rel).exists() for rel in rels)
    assert {manifest_of(root)["files"][rel]["pruned_at"] for rel in rels} == {WHEN}


def test_a_raw_file_missing_before_pruning_is_reported_not_marked(results: Path):
    root = results / "n-a"
    lost = "raw/base/2/h1/ping-1.txt"
    (root / lost).unlink()
    pruned = retention.prune_campaign(root, WHEN)
    assert pruned.missing == [lost]
    assert pruned.files == 3
    assert "pruned" not in manifest_of(root)["files"][lost]


def test_nights_are_the_folders_with_a_status(results: Path):
    nights = {n.night: n.outcome for n in retention.read_nights(results)}
    assert nights == {"n-a": "done", "n-b": "failed", "n-c": "done", "n-d": "done",
                      "n-e": "skipped", "n-f": "done"}
    assert "history" not in nights and "by-hand" not in nights
    assert retention.apply(results / "nothing-here", 2, WHEN) == []


def test_has_pruned_files(results: Path):
    assert not retention.has_pruned_files(results / "n-a")
    retention.prune_campaign(results / "n-a", WHEN)
    assert retention.has_pruned_files(results / "n-a")
    assert not retention.has_pruned_files(results / "no-such-night")


def test_the_night_being_recorded_counts_before_its_status_is_written(results: Path):
    """kvmnetlab-nightly prunes before it writes the night's status.json: the night is
    passed in, and it (not an older one) is among the newest kept."""
    tonight = make_night(results, "n-g", None, day=7)
    current = Night("n-g", tonight, "done", "2026-01-07T01:30:00Z")
    pruned = retention.apply(results, 2, WHEN, current)
    assert [p.night for p in pruned] == ["n-a", "n-c", "n-d"]
    assert not any(e.get("pruned") for e in manifest_of(tonight)["files"].values())
    # a status on disk for the same night is replaced by the one passed in
    (tonight / "nightly").mkdir()
    (tonight / "nightly" / "status.json").write_text(json.dumps({"outcome": "failed"}))
    assert [p.night for p in retention.apply(results, 1, WHEN, current)] == [
        "n-a", "n-c", "n-d", "n-f"]
