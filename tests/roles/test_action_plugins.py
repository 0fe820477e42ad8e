"""The controller-side action plugins of kvmnetlab.lab: their documentation and their arguments.

Fast, no lab. Each action plugin has a module stub of the same name holding its DOCUMENTATION,
EXAMPLES and RETURN; ansible-doc must print every plugin of the collection without a warning,
and the options an action reads must be documented there. The documented options are the
argument spec the action validates its task arguments against with Ansible's own validator,
so a missing, empty, unknown or wrong-typed option is refused, naming the option, before the
action does anything.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from types import SimpleNamespace

import pytest
import yaml

from tests.helpers import BIN, REPO, adhoc, ansible_env

COLLECTION = REPO / "collections/ansible_collections/kvmnetlab/lab"
ALL_ACTIONS = sorted(path.stem for path in (COLLECTION / "plugins/action").glob("*.py"))
# Documented actions (plugin_utils.documented.DocumentedAction): the options documented
# in their module stub are their argument spec. Most are controller-side
# (plugin_utils.controller.ControllerAction); build_wait works on the host. The others
# (collect) run their module of the same name on the host and validate through it.
ACTIONS = [name for name in ALL_ACTIONS
           if re.search(r"class ActionModule\((ControllerAction|DocumentedAction)\)",
                        (COLLECTION / "plugins/action" / f"{name}.py").read_text())]
MODULES = sorted(path.stem for path in (COLLECTION / "plugins/modules").glob("*.py"))

# A value of each option type the validator accepts, and one it must refuse.
GOOD = {"path": "/nonexistent/kvmnetlab", "str": "x", "int": 1, "bool": False, "dict": {},
        "list": []}
BAD = {"int": "many", "bool": "perhaps", "dict": "not a mapping", "list": {"not": "a list"}}


@pytest.fixture(scope="module")
def docs():
    """ansible-doc's JSON for every plugin of plugins/modules (the action stubs included)."""
    done = subprocess.run(
        [str(BIN / "ansible-doc"), "-j", "-t", "module",
         *(f"kvmnetlab.lab.{name}" for name in MODULES)],
        cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", f"ansible-doc warned:\n{done.stderr}"
    return json.loads(done.stdout)


def action_module(name):
    return importlib.import_module(f"ansible_collections.kvmnetlab.lab.plugins.action.{name}")


def action(name, args, check_mode=False):
    """The action plugin ``name`` set up for one task with ``args`` (no play, no host)."""
    task = SimpleNamespace(args=args, action=name, resolved_action=f"kvmnetlab.lab.{name}",
                           check_mode=check_mode, async_val=0)
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir=None))
    return action_module(name).ActionModule(task, connection, None, None, None)


def spec(name):
    return action_module(name).ActionModule.ARGUMENT_SPEC


def minimal(name):
    """The required options of ``name``, each with an acceptable value."""
    return {option: (s.get("choices") or [GOOD[s["type"]]])[0]
            for option, s in spec(name).items() if s.get("required")}


def refusal(name, args):
    from ansible.errors import AnsibleActionFail

    with pytest.raises(AnsibleActionFail) as failed:
        action(name, args).validated_args()
    return failed.value.message


def pairs(keep):
    return [(name, option) for name in ACTIONS for option, s in spec(name).items() if keep(s)]


def test_every_action_plugin_has_a_documented_module_stub():
    assert ACTIONS, "no action plugin found"
    assert set(ALL_ACTIONS) <= set(MODULES)
    assert set(ALL_ACTIONS) - set(ACTIONS) == {"collect"}


def test_ansible_doc_prints_every_plugin_of_the_collection(docs):
    assert set(docs) == {f"kvmnetlab.lab.{name}" for name in MODULES}
    for name, entry in docs.items():
        assert entry["doc"]["short_description"], name
        assert entry["doc"]["description"], name


@pytest.mark.parametrize("name", ACTIONS)
def test_ansible_doc_prints_the_options_an_action_reads(docs, name):
    entry = docs[f"kvmnetlab.lab.{name}"]
    options = entry["doc"]["options"]
    for option, doc in options.items():
        assert doc.get("description") and doc.get("type"), f"{name}: {option}"
    source = (COLLECTION / "plugins/action" / f"{name}.py").read_text()
    read = set(re.findall(r"\bargs(?:\[|\.get\()\"(\w+)\"", source))
    assert read, f"{name} reads no argument?"
    assert read <= set(options), f"{name} reads undocumented options {read - set(options)}"
    # what ansible-doc prints is what the action validates against
    assert set(spec(name)) == set(options)
    for option, doc in options.items():
        assert spec(name)[option]["type"] == doc["type"], f"{name}: {option}"
        assert bool(spec(name)[option].get("required")) == bool(doc.get("required"))
    assert entry["return"], f"{name}: no RETURN"
    # an example may show the task before it (build_wait's starts the job it waits for)
    examples = [task for task in yaml.safe_load(entry["examples"]) or []
                if f"kvmnetlab.lab.{name}" in task]
    assert examples, f"{name}: no EXAMPLES"
    for task in examples:
        given = task[f"kvmnetlab.lab.{name}"]
        assert set(given) <= set(options), task["name"]
        assert set(minimal(name)) <= set(given), task["name"]


@pytest.mark.parametrize("name", ACTIONS)
def test_the_required_options_suffice_and_defaults_are_filled_in(name):
    args = action(name, minimal(name)).validated_args()
    assert set(args) == set(spec(name))
    for option, s in spec(name).items():
        if "default" in s:
            assert args[option] == s["default"], option


@pytest.mark.parametrize(("name", "option"), pairs(lambda s: s.get("required")))
def test_a_missing_required_option_is_refused_naming_it(name, option):
    args = minimal(name)
    del args[option]
    assert refusal(name, args) == f"kvmnetlab.lab.{name}: missing required arguments: {option}"


@pytest.mark.parametrize(("name", "option"),
                         pairs(lambda s: s.get("required") and s["type"] in ("str", "path")))
def test_an_empty_required_option_is_refused_naming_it(name, option):
    for empty in ("", None):
        message = refusal(name, {**minimal(name), option: empty})
        assert message.startswith(f"kvmnetlab.lab.{name}: ")
        assert message.endswith(f"required arguments given empty: {option}")


@pytest.mark.parametrize(("name", "option"), pairs(lambda s: s["type"] in BAD))
def test_a_wrong_typed_option_is_refused_naming_it(name, option):
    kind = spec(name)[option]["type"]
    message = refusal(name, {**minimal(name), option: BAD[kind]})
    assert message.startswith(f"kvmnetlab.lab.{name}: ")
    assert f"argument '{option}' is of type" in message
    assert f"unable to convert to {kind}" in message


@pytest.mark.parametrize("name", ACTIONS)
def test_an_unknown_option_is_refused_naming_it(name):
    message = refusal(name, {**minimal(name), "colour": "blue"})
    assert message.startswith(f"kvmnetlab.lab.{name}: unsupported parameters: colour.")


@pytest.mark.parametrize(("name", "option", "given"),
                         [("lab_lock", "state", "taken"), ("store_commit", "status", "ok")])
def test_a_value_outside_the_choices_is_refused_naming_the_option(name, option, given):
    message = refusal(name, {**minimal(name), option: given})
    assert f"value of {option} must be one of: " in message
    assert message.endswith(f"got: {given}")


def test_every_problem_is_reported_at_once():
    message = refusal("store_commit", {"campaign_dir": "", "repetition": "two", "extra": 1})
    assert "missing required arguments: scenario, status" in message
    assert "argument 'repetition' is of type str" in message
    assert "unsupported parameters: extra" in message


def test_values_are_converted_to_the_documented_types():
    args = action("store_commit", {**minimal("store_commit"), "repetition": "2"}).validated_args()
    assert args["repetition"] == 2
    args = action("manifest_update", {**minimal("manifest_update"),
                                      "finish": "yes"}).validated_args()
    assert args["finish"] is True


def test_manifest_sections_are_the_documented_suboptions_of_merge():
    base = minimal("manifest_update")
    message = refusal("manifest_update", {**base, "merge": {"bogus": {}}})
    assert "unsupported parameters: merge.bogus" in message
    message = refusal("manifest_update", {**base, "merge": {"lab": "flat"}})
    assert "argument 'lab' is of type str found in 'merge'" in message
    versions = {"ping": {"kvmnl-h1": "20240302"}}
    merge = action("manifest_update", {**base, "merge": {"tool_versions": versions}}
                   ).validated_args()["merge"]
    assert merge["tool_versions"] == versions


def test_a_refused_call_does_nothing(monkeypatch):
    from ansible.errors import AnsibleActionFail

    plugin = action("store_commit", {**minimal("store_commit"), "repetition": "two"})
    monkeypatch.setattr(type(plugin), "act", lambda *a: pytest.fail("act ran"))
    with pytest.raises(AnsibleActionFail, match="argument 'repetition'"):
        plugin.run(task_vars={})


def test_ansible_refuses_a_wrong_typed_option_naming_it(tmp_path):
    rc, result, _ = adhoc("localhost", "kvmnetlab.lab.store_commit",
                          {"campaign_dir": str(tmp_path), "scenario": "virtio",
                           "repetition": "two", "status": "done"})
    assert rc != 0
    assert result["msg"].startswith(
        "kvmnetlab.lab.store_commit: argument 'repetition' is of type str")
    assert list(tmp_path.iterdir()) == []


def test_ansible_runs_a_valid_call(tmp_path):
    rc, result, _ = adhoc("localhost", "kvmnetlab.lab.lab_lock",
                          {"path": str(tmp_path / "lab.lock"), "state": "absent"})
    assert rc == 0, result
    assert result["released"] is False

