"""No Jinja accumulator in the roles and playbooks: a set_fact that builds a variable from
itself with ``combine`` (``x: "{{ x | combine(...) }}"``) or grows it item by item in a loop.
Such outcomes are module results (kvm_host_record, guest_ssh_wait) or tested filters
(campaign_link_cache) instead. Fast: reads the YAML only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO

# Accumulators not moved yet (file -> variables), each to become a module result in turn; the
# test fails when one is added anywhere else, and when one listed here is gone (so the list
# only shrinks).
NOT_YET = {
    # the process probe: pid file, /proc/<pid>/cmdline and the relay's namespace per process
    "roles/apt_proxy/tasks/probe.yml": ["_apt_proxy_found", "_apt_proxy_found"],
}
SET_FACT = ("ansible.builtin.set_fact", "set_fact", "ansible.legacy.set_fact")
LOOPS = ("loop", "with_items", "with_dict", "with_list", "with_together", "with_subelements")


def task_files() -> list[Path]:
    files = sorted((REPO / "roles").glob("*/tasks/**/*.yml")) + sorted(
        (REPO / "playbooks").glob("*.yml")) + [REPO / "site.yml"]
    return [f for f in files if f.is_file()]


def tasks_of(node):
    """Every task of a task list or playbook, blocks, rescues and plays opened."""
    if isinstance(node, list):
        for item in node:
            yield from tasks_of(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks",
                    "handlers"):
            if key in node:
                yield from tasks_of(node[key])


def accumulators(task: dict) -> list[str]:
    """The variables ``task`` builds from themselves (a Jinja accumulator)."""
    facts = next((task[k] for k in SET_FACT if k in task), None)
    if not isinstance(facts, dict):
        return []
    looped = any(k in task for k in LOOPS)
    found = []
    for name, value in facts.items():
        text = str(value)
        if re.search(rf"\b{re.escape(name)}\s*\|\s*combine\s*\(", text) or (
                looped and re.search(rf"\b{re.escape(name)}\b", text)):
            found.append(name)
    return found


def test_the_detector_finds_accumulators():
    assert accumulators({"ansible.builtin.set_fact": {
        "acc": "{{ acc | combine({item.key: item.value}) }}"}}) == ["acc"]
    assert accumulators({"set_fact": {"acc": "{{ acc + [item] }}"}, "loop": [1, 2]}) == ["acc"]
    assert accumulators({"ansible.builtin.set_fact": {
        "status": "{{ waited.status }}", "plan": "{{ planned.plan }}"}}) == []
    assert accumulators({"ansible.builtin.set_fact": {
        "cache": "{{ results | kvmnetlab.lab.campaign_link_cache(cache) }}"}}) == []


@pytest.mark.parametrize("path", task_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_set_fact_builds_a_variable_from_itself_with_combine_or_a_loop(path):
    relative = str(path.relative_to(REPO))
    found = [name for task in tasks_of(yaml.safe_load(path.read_text()) or [])
             for name in accumulators(task)]
    assert found == NOT_YET.get(relative, []), (
        f"{relative}: Jinja accumulators {found}; expected {NOT_YET.get(relative, [])}")


def test_the_files_kvm_host_guest_vm_and_campaign_keep_no_accumulator():
    """The files whose accumulators became module results are among those checked."""
    checked = {str(p.relative_to(REPO)) for p in task_files()}
    for name in ("roles/kvm_host/tasks/cmdline.yml", "roles/kvm_host/tasks/knobs.yml",
                 "roles/kvm_host/tasks/irqbalance.yml", "roles/kvm_host/tasks/irq_affinity.yml",
                 "roles/kvm_host/tasks/cstates.yml", "roles/kvm_host/tasks/modules.yml",
                 "roles/kvm_host/tasks/validate.yml", "roles/guest_vm/tasks/register.yml",
                 "roles/campaign/tasks/run.yml"):
        assert name in checked and name not in NOT_YET
