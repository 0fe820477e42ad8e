"""The manifest has one writer (kvmnetlab.store), and what writes it reports ``changed``.

Fast, no lab. A module outside kvmnetlab/ that changes a campaign's manifest calls
``Store.update`` (load, modify, save only when different, atomic and fsynced), never a
file write of its own; the controller actions that go through it report ``changed``
exactly when something was written, and the lab lock reports taking and releasing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from collectors.ingest import ingest
from tests.collectors.test_ingest import store_with
from tests.helpers import REPO
from tests.roles.test_action_plugins import action

# Where modules that are not the store live (tests fabricate damaged folders on purpose).
SCANNED = ("nightly", "collectors", "analysis", "bench", "bin", "collections")
# Calls that write a file, whatever the file.
WRITES = {"write_text", "write_bytes", "dump", "replace", "rename", "atomic_write_json",
          "atomic_write_bytes", "_write_json", "copyfile", "copy", "move", "save"}


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def manifest_writes(source: str) -> list[int]:
    """Lines of ``source`` where a call writes a file and names the manifest (a path, a
    variable, the MANIFEST constant), or opens it for writing."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        text = (ast.get_source_segment(source, node) or "").lower()
        if "manifest" not in text:
            continue
        name = _called(node)
        opened_for_writing = name == "open" and any(
            isinstance(a, ast.Constant) and isinstance(a.value, str) and set(a.value) & set("wax+")
            for a in [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "mode")])
        if name in WRITES or opened_for_writing:
            found.append(node.lineno)
    return found


def test_the_check_finds_a_manifest_write():
    assert manifest_writes('(root / "manifest.json").write_text(json.dumps(m))\n') == [1]
    assert manifest_writes('with open(manifest_path, "w") as f:\n    json.dump(m, f)\n') == [1]
    assert manifest_writes("atomic_write_json(root / MANIFEST, m)\n") == [1]
    assert manifest_writes("store.save(manifest)\n") == [1]
    assert manifest_writes("Store(root).save(manifest)\n") == [1]
    assert manifest_writes("store.update(record)\nplots.save(fig, where)\n") == []
    assert manifest_writes('json.loads((root / "manifest.json").read_text())\n') == []


def test_only_kvmnetlab_writes_the_manifest():
    offenders = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            offenders += [f"{path.relative_to(REPO)}:{line}" for line in manifest_writes(source)]
    assert offenders == [], "write manifest.json through kvmnetlab.store (Store.update): " \
        + ", ".join(offenders)


# --------------------------------------------------------------------------- changed


def test_update_writes_only_a_change(tmp_path):
    store = store_with(tmp_path, {})
    before = store.manifest_path.stat().st_mtime_ns, store.manifest_path.read_bytes()
    _, changed = store.update(lambda m: m["tool_versions"].update({}))
    assert changed is False
    assert (store.manifest_path.stat().st_mtime_ns, store.manifest_path.read_bytes()) == before
    _, changed = store.update(lambda m: m["tool_versions"].update(ping="1"), dry_run=True)
    assert changed is True and store.load()["tool_versions"] == {}
    _, changed = store.update(lambda m: m["tool_versions"].update(ping="1"))
    assert changed is True and store.load()["tool_versions"] == {"ping": "1"}


def test_a_second_ingest_writes_nothing(tmp_path):
    store = store_with(tmp_path, {1: "clean.txt", 2: "unanswered.txt"})
    assert ingest(store.root)["changed"] is True
    files = {p: p.stat().st_mtime_ns for p in store.root.rglob("*") if p.is_file()}
    assert ingest(store.root)["changed"] is False
    assert {p: p.stat().st_mtime_ns for p in store.root.rglob("*") if p.is_file()} == files


def test_manifest_update_reports_a_change_only_when_there_is_one(tmp_path):
    store = store_with(tmp_path, {})
    args = {"campaign_dir": str(store.root), "merge": {"tool_versions": {"ping": {"h1": "1"}}}}
    run = action("manifest_update", args).run(task_vars={})
    assert run["changed"] is True
    assert action("manifest_update", args).run(task_vars={})["changed"] is False
    checked = action("manifest_update", {**args, "merge": {"tool_versions": {"ping": {"h1": "2"}}}},
                     check_mode=True).run(task_vars={})
    assert checked["changed"] is True
    assert store.load()["tool_versions"] == {"ping": {"h1": "1"}}


def test_the_lab_lock_reports_taking_and_releasing_it(tmp_path):
    path = tmp_path / "lab.lock"
    take = {"path": str(path), "state": "present", "purpose": "c1"}
    drop = {"path": str(path), "state": "absent"}
    assert action("lab_lock", take, check_mode=True).run(task_vars={})["changed"] is True
    assert not path.exists()
    assert action("lab_lock", take).run(task_vars={})["changed"] is True
    assert path.exists()
    assert action("lab_lock", take).run(task_vars={})["changed"] is False  # held already
    assert action("lab_lock", drop, check_mode=True).run(task_vars={})["changed"] is True
    assert action("lab_lock", drop).run(task_vars={})["changed"] is True
    assert not path.exists()
    assert action("lab_lock", drop).run(task_vars={})["changed"] is False


@pytest.mark.parametrize("playbook", ["playbooks/preflight.yml", "playbooks/finish.yml"])
def test_a_check_mode_run_neither_takes_nor_releases_the_lock(playbook):
    text = Path(REPO / playbook).read_text()
    task = text[text.index("kvmnetlab.lab.lab_lock:"):]
    assert "when: not ansible_check_mode" in task.split("\n    - name:")[0]
