"""Every kvmnetlab_* variable is declared once (kvmnetlab/parameters.py), and the layers agree.

Fast, no lab. The README's table of campaign parameters, the role options that carry a
parameter, the preflight's validation, the inventories' defaults and the variables the
playbooks and roles read are each checked against the one declaration.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import yaml

from kvmnetlab import campaign
from kvmnetlab import parameters as declared
from kvmnetlab.errors import ConfigError
from tests.helpers import REPO

VARIABLE = re.compile(r"\bkvmnetlab_[a-z0-9_]*[a-z0-9]\b")
SCENARIOS = ["baseline", "virtio"]
# bounded numbers that name rather than measure (no unit)
IDENTIFIERS = {"kvmnetlab_seed"}
# the embedded lab's campaign: every parameter a campaign needs, as a user sets them
LOCAL = yaml.safe_load((REPO / "inventory/local/group_vars/all/campaign.yml").read_text())
# Ansible's own type names in argument specs
ARGSPEC_TYPES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "path": "path",
                 "list": "list", "dict": "dict"}


def yaml_files():
    """The playbooks and roles (tasks, defaults, vars, meta, templates) and site.yml."""
    files = [REPO / "site.yml", *sorted((REPO / "playbooks").glob("*.yml"))]
    files += sorted(p for p in (REPO / "roles").rglob("*") if p.suffix in (".yml", ".j2"))
    return files


def defined_here(node, found):
    """Names a playbook or role defines itself: registered results, facts, play and task
    vars, loop variables (not variables a user or an inventory sets)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "register" and isinstance(value, str):
                found.add(value)
            elif key in ("vars", "ansible.builtin.set_fact", "set_fact") \
                    and isinstance(value, dict):
                found.update(value)
            elif key == "loop_control" and isinstance(value, dict):
                found.update(v for k, v in value.items() if k in ("loop_var", "index_var"))
            defined_here(value, found)
    elif isinstance(node, list):
        for item in node:
            defined_here(item, found)
    return found


def variables_read():
    """Every kvmnetlab_* name the playbooks and roles mention, with a file mentioning it,
    less the names they define themselves."""
    read, defined = {}, set()
    for path in yaml_files():
        text = path.read_text()
        for name in VARIABLE.findall(text):
            read.setdefault(name, path.relative_to(REPO))
        if path.suffix == ".yml":
            defined_here(yaml.safe_load(text), defined)
    return {name: where for name, where in read.items() if name not in defined}


def readme_section():
    text = (REPO / "README.md").read_text()
    start = text.index("## Campaign parameters\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


# --------------------------------------------------------------------------- declaration


def test_the_declaration_is_well_formed():
    names = [p.name for p in declared.PARAMETERS]
    assert len(names) == len(set(names)), "a variable is declared twice"
    for p in declared.PARAMETERS:
        assert p.name.startswith("kvmnetlab_") and p.key == p.name.removeprefix("kvmnetlab_")
        assert p.type in declared.TYPES and p.group in declared.GROUPS, p.name
        assert p.meaning.strip(), p.name
        if p.low is not None:
            assert p.high is not None and p.low < p.high, p.name
            assert p.unit or p.name in IDENTIFIERS, f"{p.name}: a bounded number carries its unit"
            if p.default is not None and p.type in ("int", "float"):
                assert p.low <= p.default <= p.high, p.name


def test_every_variable_the_playbooks_and_roles_read_is_declared():
    read = variables_read()
    assert "kvmnetlab_repo" in read and "kvmnetlab_lab_name" in read  # the scan finds them
    undeclared = {name: str(where) for name, where in read.items()
                  if name not in declared.BY_NAME}
    assert not undeclared, f"read but not declared in kvmnetlab/parameters.py: {undeclared}"


def test_every_declared_variable_is_read_somewhere():
    # the campaign's are read by name by kvmnetlab.lab.campaign_validate; the others by a
    # playbook, a role, an inventory or a connection plugin
    text = "\n".join(p.read_text() for p in [
        *yaml_files(), *(REPO / "inventory").rglob("*.yml"),
        *(REPO / "collections/ansible_collections/kvmnetlab/lab/plugins/connection").glob(
            "*.py")])
    unread = [p.name for p in declared.PARAMETERS
              if not p.recorded and not re.search(rf"\b{p.name}\b", text)]
    assert not unread, f"declared but read nowhere: {unread}"


def test_every_kvmnetlab_variable_an_inventory_sets_is_declared():
    for path in sorted((REPO / "inventory").rglob("*.yml")):
        document = yaml.safe_load(path.read_text()) or {}
        names = set(VARIABLE.findall(yaml.safe_dump(document)))
        if path.name != "hosts.yml":
            names &= set(document)  # what the file sets, not what its values mention
        unknown = sorted(n for n in names if n not in declared.BY_NAME)
        assert not unknown, f"{path.relative_to(REPO)}: undeclared {unknown}"


# --------------------------------------------------------------------------- README


def test_the_readme_table_is_produced_from_the_declaration():
    section = readme_section()
    assert declared.markdown_table() in section, (
        "README.md's table of campaign parameters differs from kvmnetlab/parameters.py; "
        "paste the output of python -m kvmnetlab.parameters into its section")
    rows = [line for line in section.splitlines() if line.startswith("| `kvmnetlab_")]
    assert [line.split("`")[1] for line in rows] == [
        p.name for p in declared.group(*declared.RECORDED, "run")]


def test_the_readme_table_would_show_a_changed_bound():
    changed = [declared.Parameter(**{**p.__dict__, "high": 999})
               if p.name == "kvmnetlab_repetitions" else p for p in declared.PARAMETERS]
    assert declared.markdown_table(
        p for p in changed if p.group in (*declared.RECORDED, "run")) not in readme_section()


# --------------------------------------------------------------------------- role options


def argument_spec(role, entry="main"):
    specs = yaml.safe_load((REPO / f"roles/{role}/meta/argument_specs.yml").read_text())
    return specs["argument_specs"][entry]["options"]


@pytest.mark.parametrize("p", [p for p in declared.PARAMETERS if p.role_option],
                         ids=lambda p: p.name)
def test_a_role_option_carrying_a_parameter_agrees_with_its_declaration(p):
    role, option = p.role_option.split(".")
    spec = argument_spec(role)[option]
    assert spec["type"] == ARGSPEC_TYPES[p.type], option
    assert spec.get("default") == p.default, option
    defaults = yaml.safe_load((REPO / f"roles/{role}/defaults/main.yml").read_text())
    assert defaults[option] == p.default, option
    # the role gets the value the preflight validated and the manifest records
    handed = [line for path in yaml_files() if path.parts[-2] == "playbooks"
              for line in path.read_text().splitlines() if f"{option}:" in line]
    assert handed and all(f"kvmnetlab_campaign_state.parameters.{p.key}" in line
                          for line in handed), handed


def test_argument_specs_name_only_declared_variables():
    for path in sorted((REPO / "roles").glob("*/meta/argument_specs.yml")):
        unknown = sorted({n for n in VARIABLE.findall(path.read_text())
                          if n not in declared.BY_NAME})
        assert not unknown, f"{path.relative_to(REPO)} names undeclared {unknown}"


def test_the_rehearsed_campaign_sets_declared_parameters_within_bounds():
    rehearsed = yaml.safe_load((REPO / "roles/rehearsal/defaults/main.yml").read_text())[
        "rehearsal_campaign"]
    assert set(rehearsed) <= {p.name for p in declared.recorded()}
    raw = declared.from_variables({**LOCAL, **rehearsed})
    params = campaign.validate_parameters(raw, SCENARIOS)
    assert params.repetitions == rehearsed["kvmnetlab_repetitions"]


# --------------------------------------------------------------------------- inventories


def test_the_embedded_labs_values_are_the_declared_defaults():
    for p in declared.recorded() + declared.group("run"):
        if p.name not in LOCAL:
            assert not p.required, f"inventory/local does not set {p.name}"
            continue
        value = LOCAL[p.name]
        if p.shown is None:
            expected = list(p.default) if isinstance(p.default, tuple) else p.default
            assert value == expected, p.name
        elif value not in (None, []):
            assert str(value) in p.shown, p.name


@pytest.mark.parametrize("lab", ["local", "lab.example"])
def test_each_labs_campaign_is_valid(lab):
    values = yaml.safe_load((REPO / f"inventory/{lab}/group_vars/all/campaign.yml").read_text())
    params = campaign.validate_parameters(declared.from_variables(values), SCENARIOS)
    assert params.ping_count == values["kvmnetlab_ping_count"]


# --------------------------------------------------------------------------- the preflight


def bounded():
    return [p for p in declared.recorded() if p.low is not None and p.type != "list"]


@pytest.mark.parametrize("p", bounded(), ids=lambda p: p.name)
def test_the_preflight_enforces_every_declared_bound(p):
    good = declared.from_variables(LOCAL)
    # (the search's lowest rate must stay below its highest: min_pps at max_pps's bound
    # cannot be tried)
    edges = (p.low,) if p.key == "search_min_pps" else (p.low, p.high)
    for edge in edges:
        raw = {**good, p.key: edge, **({"search_min_pps": 1} if p.key == "search_max_pps"
                                        else {})}
        assert campaign.validate_parameters(raw, SCENARIOS).as_dict()[p.key] == edge
    step = 1 if p.type == "int" else max(abs(p.low), abs(p.high)) * 1e-3 or 1e-3
    for outside in (p.low - step, p.high + step):
        with pytest.raises(ConfigError) as err:
            campaign.validate_parameters({**good, p.key: outside}, SCENARIOS)
        assert err.value.field == p.name


def test_list_items_are_held_to_their_declared_bounds():
    p = declared.BY_NAME["kvmnetlab_search_load_fractions"]
    good = declared.from_variables(LOCAL)
    with pytest.raises(ConfigError) as err:
        campaign.validate_parameters({**good, p.key: [p.low / 2]}, SCENARIOS)
    assert err.value.field == f"{p.name}[0]"


def test_the_preflight_names_no_parameter_by_hand():
    # what the plays do (their comments may name a variable)
    text = yaml.safe_dump(yaml.safe_load((REPO / "playbooks/preflight.yml").read_text()))
    by_hand = sorted({p.name for p in declared.recorded()} & set(VARIABLE.findall(text)))
    assert not by_hand, f"preflight.yml renames {by_hand}; they are read by their names"


def validate_action(task_vars, tmp_path):
    """kvmnetlab.lab.campaign_validate run on ``task_vars`` (no play, no host)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible_collections.kvmnetlab.lab.plugins.action.campaign_validate import ActionModule

    task = SimpleNamespace(args={}, action="campaign_validate", check_mode=False,
                           resolved_action="kvmnetlab.lab.campaign_validate", async_val=0)
    plugin = ActionModule(task, SimpleNamespace(_shell=SimpleNamespace(tmpdir=None)), None,
                          DataLoader(), Templar(loader=DataLoader(), variables=task_vars))
    args = {"repo": str(REPO), "scenario_file": "scenarios/seed.yml",
            "results_dir": str(tmp_path / "results"), "campaign_id": None,
            "lock_dir": str(tmp_path / "lock"), "lab": {"name": "here", "kind": "embedded"}}
    return plugin.act(args, task_vars)["campaign"]


def test_the_preflight_reads_each_parameter_by_the_name_a_user_sets(tmp_path):
    given = {**LOCAL, "kvmnetlab_search_trial_s": "0.4", "kvmnetlab_sockperf": "yes",
             "kvmnetlab_scenarios": "baseline", "kvmnetlab_seed": 11}
    validated = validate_action(given, tmp_path)
    parameters = validated["parameters"]
    assert parameters["search_trial_s"] == 0.4 and parameters["sockperf"] is True
    assert parameters["scenarios"] == ["baseline"] and parameters["seed"] == 11
    # every recorded key is a declared variable's name without its prefix
    assert set(parameters) <= {p.key for p in declared.recorded()}
    assert validated["lock_path"] == declared.lock_path(str(tmp_path / "lock"), "here")
    assert not (tmp_path / "lock").exists(), "validation takes no lock"


def test_the_preflight_refuses_a_bad_value_naming_the_variable(tmp_path):
    from ansible.errors import AnsibleActionFail

    with pytest.raises(AnsibleActionFail, match="kvmnetlab_search_trial_s"):
        validate_action({**LOCAL, "kvmnetlab_search_trial_s": 0.001}, tmp_path)
    with pytest.raises(AnsibleActionFail, match="kvmnetlab_sockperf"):
        validate_action({**LOCAL, "kvmnetlab_sockperf": "sometimes"}, tmp_path)


def test_the_lock_path_is_worked_out_in_one_place():
    assert declared.lock_path("/run/kvmnetlab", "local") == "/run/kvmnetlab/local.lock"
    for path in yaml_files():
        text = path.read_text()
        assert not re.search(r"kvmnetlab_lock_dir\s*\}\}\s*/", text), path.relative_to(REPO)


def test_the_search_settings_in_docs_analysis_have_the_declared_defaults():
    rows = [line.split("|") for line in (REPO / "docs/analysis.md").read_text().splitlines()
            if line.startswith("| `kvmnetlab_search")]
    assert len(rows) == len(declared.group("search"))
    for row in rows:
        p = declared.BY_NAME[row[1].strip().strip("`")]
        default = row[2].strip().strip("`")
        if p.type == "list":
            assert yaml.safe_load(default) == list(p.default), p.name
        else:
            assert yaml.safe_load(default.split(" (")[0]) == p.default, p.name


# --------------------------------------------------------------------------- the manifest


def test_the_manifest_records_the_declared_parameters_by_their_keys():
    recorded = {p.key for p in declared.recorded()}
    params = campaign.validate_parameters(declared.from_variables(LOCAL), SCENARIOS)
    # every declared campaign and search variable; sockperf only when on
    assert set(params.as_dict()) == recorded - {"sockperf"}
    on = campaign.validate_parameters({**declared.from_variables(LOCAL), "sockperf": True},
                                      SCENARIOS)
    assert set(on.as_dict()) == recorded
    # the stored campaigns (written before the search and sockperf) still hold declared keys
    for path in sorted((REPO / "tests/analysis_data/campaigns").glob("*/manifest.json")):
        keys = set(yaml.safe_load(path.read_text())["parameters"])
        assert keys and keys <= recorded, path


def test_validation_and_locking_happen_once_in_the_preflight():
    calls = {}
    for path in yaml_files():
        for action in ("kvmnetlab.lab.campaign_validate", "kvmnetlab.lab.campaign_start"):
            calls.setdefault(action, []).extend(
                [str(path.relative_to(REPO))] * path.read_text().count(f"{action}:"))
        if "kvmnetlab.lab.lab_lock:" in path.read_text():
            calls.setdefault("lock", []).append(str(path.relative_to(REPO)))
    assert calls["kvmnetlab.lab.campaign_validate"] == ["playbooks/preflight.yml"]
    assert calls["kvmnetlab.lab.campaign_start"] == ["roles/campaign/tasks/start.yml"]
    # taken in the preflight, released in finish.yml (and the teardown's own, if any)
    assert "playbooks/preflight.yml" in calls["lock"]
    assert not [p for p in calls["lock"] if p.startswith("roles/campaign/")]
    start = yaml.safe_load((REPO / "roles/campaign/tasks/start.yml").read_text())[0]
    assert start["kvmnetlab.lab.campaign_start"] == {"campaign": "{{ campaign_state }}"}
