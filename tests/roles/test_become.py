"""Privileges: Ansible logs in as an admin user and becomes root with sudo, never by root logins.

Fast and static, over the playbooks and roles as YAML:

- every play on lab hosts has ``become: true``; plays on the controller (localhost) never
  become;
- every task of a role that runs on the controller (``delegate_to: localhost``) says
  ``become: false``, so a play's become never asks for sudo on the controller;
- every task the campaign (a controller play) delegates to a lab host says
  ``become: true`` itself;
- no inventory sets ``ansible_become`` (it would override a task's ``become: false``),
  and the real-lab example logs in as an admin user, not root.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO

PLAYBOOKS = sorted((REPO / "playbooks").glob("*.yml"))
CONTROLLER = "localhost"


def plays() -> list[tuple[str, dict]]:
    found = []
    for path in [REPO / "site.yml", *PLAYBOOKS]:
        for play in yaml.safe_load(path.read_text()) or []:
            if "hosts" in play:
                found.append((f"{path.relative_to(REPO)}: {play.get('name')}", play))
    return found


def tasks(node, where: str):
    """Every task dict under a list of tasks (blocks, rescue and always included)."""
    for item in node or []:
        if not isinstance(item, dict):
            continue
        yield where, item
        for key in ("block", "rescue", "always"):
            if key in item:
                yield from tasks(item[key], where)


def role_tasks():
    for path in sorted((REPO / "roles").glob("*/tasks/*.yml")):
        yield from tasks(yaml.safe_load(path.read_text()), str(path.relative_to(REPO)))


@pytest.mark.parametrize(("where", "play"), plays(), ids=[w for w, _ in plays()])
def test_plays_on_lab_hosts_become_and_plays_on_the_controller_do_not(where, play):
    if play["hosts"] == CONTROLLER:
        assert "become" not in play, f"{where}: the controller never becomes"
    else:
        assert play.get("become") is True, f"{where} (hosts {play['hosts']}): become: true"


def test_tasks_on_the_controller_never_become():
    local = [(where, task.get("name")) for where, task in role_tasks()
             if task.get("delegate_to") == CONTROLLER and task.get("become") is not False]
    assert local == [], "tasks delegated to localhost need become: false"


def test_the_campaign_becomes_on_every_lab_host_it_delegates_to():
    delegated = [(where, task) for where, task in role_tasks()
                 if where.startswith("roles/campaign/") and "delegate_to" in task
                 and "name" in task]
    assert len(delegated) >= 7
    for where, task in delegated:
        if where == "roles/campaign/tasks/space.yml":
            # runs in plays on the lab hosts themselves (become: true, checked above); a
            # namespace host is read on the machine whose file system it shares
            assert "become" not in task, (where, task["name"])
            continue
        assert task["delegate_to"] == "{{ item.host }}", (where, task["name"])
        assert task.get("become") is True, (where, task["name"])


def test_no_inventory_sets_become_and_the_example_logs_in_as_an_admin_user():
    for path in sorted((REPO / "inventory").rglob("*.yml")):
        text = path.read_text()
        assert "ansible_become" not in text, path
    example = yaml.safe_load((REPO / "inventory/lab.example/hosts.yml").read_text())
    user = example["all"]["vars"]["ansible_user"]
    assert user and user != "root"


def test_the_real_lab_page_starts_with_its_prerequisites():
    text = (REPO / "docs/real-lab.md").read_text()
    head = text[:text.index("\n## ")]
    box = "\n".join(line for line in head.splitlines() if line.startswith(">"))
    for needed in ("Debian", "python3", "admin user", "sudo", "NOPASSWD", "--ask-become-pass",
                   "SSH keys", "ports"):
        assert needed in box, needed


def test_embedded_namespace_and_container_hosts_log_in_as_the_controller_user():
    """They run on the controller machine: their connection is the local one's (no
    remote_user of their own), so become on them, as root, needs no sudo."""
    plugins = Path(REPO / "collections/ansible_collections/kvmnetlab/lab/plugins/connection")
    for name in ("netns.py", "container.py"):
        text = (plugins / name).read_text()
        assert "from ansible.plugins.connection.local import Connection as LocalConnection" in text
        assert "remote_user" not in text
