"""The kvmnetlab.lab collection documents itself, and builds.

Fast, no lab. Every filter and every module of the collection has its own documentation as
ansible-doc prints it (no UNDOCUMENTED entry, none borrowing another plugin's doc); a
filter's documented options are its function's arguments; the collection's README names
exactly the plugins that exist; ``ansible-galaxy collection build`` succeeds and the
artifact carries the GPL-3.0-or-later license, with no invented URL.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import re
import subprocess
import tarfile

import pytest
import yaml

from tests.helpers import BIN, REPO, ansible_env

COLLECTION = REPO / "collections/ansible_collections/kvmnetlab/lab"
PLUGINS = COLLECTION / "plugins"
FQCN = "kvmnetlab.lab"


def filter_functions():
    """Filter name -> its function, from every FilterModule of plugins/filter/."""
    functions = {}
    for path in sorted((PLUGINS / "filter").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"kvmnetlab_docs_filter_{path.stem}",
                                                      path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, function in module.FilterModule().filters().items():
            assert name not in functions, f"filter {name} defined twice"
            functions[name] = function
    return functions


FILTERS = filter_functions()
MODULES = sorted(path.stem for path in (PLUGINS / "modules").glob("*.py"))
CONNECTIONS = sorted(path.stem for path in (PLUGINS / "connection").glob("*.py"))
CALLBACKS = sorted(path.stem for path in (PLUGINS / "callback").glob("*.py"))


def ansible_doc(*args: str) -> subprocess.CompletedProcess:
    """ansible-doc run from the checkout, with the project's ansible.cfg."""
    return subprocess.run([str(BIN / "ansible-doc"), *args], cwd=REPO, env=ansible_env(),
                          capture_output=True, text=True, timeout=300)


def listed(kind: str) -> dict[str, str]:
    """``ansible-doc -t <kind> -l kvmnetlab.lab``: name -> its short description."""
    done = ansible_doc("-t", kind, "-l", FQCN)
    assert done.returncode == 0, done.stderr
    entries = {}
    for line in done.stdout.splitlines():
        if line.strip():
            name, _, short = line.partition(" ")
            entries[name.removeprefix(f"{FQCN}.")] = short.strip()
    return entries


def documented(kind: str, names) -> dict[str, dict]:
    """ansible-doc's JSON of the named plugins, without a warning."""
    done = ansible_doc("-j", "-t", kind, *(f"{FQCN}.{name}" for name in names))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", f"ansible-doc warned:\n{done.stderr}"
    return {key.removeprefix(f"{FQCN}."): value for key, value in json.loads(done.stdout).items()}


@pytest.fixture(scope="module")
def filter_docs():
    return documented("filter", FILTERS)


@pytest.fixture(scope="module")
def module_docs():
    return documented("module", MODULES)


@pytest.mark.parametrize(("kind", "names"), [
    ("filter", sorted(FILTERS)), ("module", MODULES), ("connection", CONNECTIONS),
    ("callback", CALLBACKS)])
def test_ansible_doc_lists_every_plugin_documented(kind, names):
    entries = listed(kind)
    assert sorted(entries) == names
    undocumented = sorted(name for name, short in entries.items() if short == "UNDOCUMENTED")
    assert not undocumented, f"{kind} plugins without documentation: {undocumented}"


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_each_filter_shows_its_own_doc(filter_docs, name):
    entry = filter_docs[name]
    doc = entry["doc"]
    # its own doc: named after it, read from its own <name>.yml
    assert doc["name"] == name
    assert doc["filename"].endswith(f"/plugins/filter/{name}.yml"), doc["filename"]
    assert doc["short_description"] and doc["description"]
    assert entry["examples"] and f"{FQCN}.{name}" in entry["examples"]
    assert entry["return"]["_value"]["description"]
    options = doc["options"]
    assert options["_input"]["required"] is True
    for option, spec in options.items():
        assert spec.get("description") and spec.get("type"), f"{name}: {option}"
    # the documented options are the function's arguments after the input, in order for
    # the positional ones
    arguments = list(inspect.signature(FILTERS[name]).parameters)[1:]
    assert sorted(set(options) - {"_input"}) == sorted(arguments)
    positional = [p.strip() for p in (doc.get("positional") or "").split(",") if p.strip()]
    assert positional == arguments[:len(positional)]


def test_no_two_filters_share_a_description(filter_docs):
    shorts = [entry["doc"]["short_description"] for entry in filter_docs.values()]
    assert len(set(shorts)) == len(shorts)


@pytest.mark.parametrize("name", MODULES)
def test_each_module_shows_its_own_doc(module_docs, name):
    doc = module_docs[name]["doc"]
    assert doc["module"] == name
    assert doc["filename"].endswith(f"/plugins/modules/{name}.py"), doc["filename"]
    assert doc["short_description"] and doc["description"]
    assert module_docs[name]["examples"] and f"{FQCN}.{name}" in module_docs[name]["examples"]


def test_no_two_modules_share_a_description(module_docs):
    shorts = [entry["doc"]["short_description"] for entry in module_docs.values()]
    assert len(set(shorts)) == len(shorts)


def stub_documentation(name: str) -> str:
    """The DOCUMENTATION string of a module file, as written (fragments not merged)."""
    tree = ast.parse((PLUGINS / "modules" / f"{name}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION":
            return node.value.value
    raise AssertionError(f"{name}: no DOCUMENTATION")


def test_controller_actions_take_their_shared_options_from_the_doc_fragment(module_docs):
    """The options every controller action repeats live in one doc fragment; what
    ansible-doc prints from it is what the action validates."""
    from ansible_collections.kvmnetlab.lab.plugins.plugin_utils import argspec

    users = [name for name in MODULES if "kvmnetlab.lab.controller"
             in (PLUGINS / "modules" / f"{name}.py").read_text()]
    assert len(users) >= 5
    for name in users:
        own = yaml.safe_load(stub_documentation(name))
        assert not any("runs on the controller only" in line for line in own["description"])
        doc = module_docs[name]["doc"]
        assert any("runs on the controller only" in note for note in doc["notes"]), name
        if "kvmnetlab.lab.controller.campaign_dir" in own["extends_documentation_fragment"]:
            assert "campaign_dir" not in own["options"], f"{name} repeats campaign_dir"
            assert doc["options"]["campaign_dir"]["type"] == "path"
    spec = argspec.spec_from_doc("extends_documentation_fragment: "
                                 "[kvmnetlab.lab.controller.campaign_dir]\n"
                                 "options: {x: {type: int, description: X.}}\n")
    assert spec == {"campaign_dir": {"type": "path", "required": True}, "x": {"type": "int"}}
    with pytest.raises(ValueError, match=r"only kvmnetlab\.lab"):
        argspec.spec_from_doc("extends_documentation_fragment: [other.coll.thing]\n")


def readme_sections() -> dict[str, set[str]]:
    """The plugin names the collection README gives under each of its ## headings."""
    sections: dict[str, set[str]] = {}
    current = ""
    for line in (COLLECTION / "README.md").read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = set()
        elif current:
            sections[current] |= set(re.findall(r"`kvmnetlab\.lab\.(\w+)`", line))
    return sections


def test_the_collection_readme_names_exactly_the_plugins_that_exist():
    sections = readme_sections()
    fragments = {path.stem for path in (PLUGINS / "doc_fragments").glob("*.py")}
    assert sections["Modules"] == set(MODULES)
    assert sections["Filters"] == set(FILTERS)
    assert sections["Connection plugins"] == set(CONNECTIONS)
    assert sections["Callback plugins"] == set(CALLBACKS)
    # a fragment is named with and without its variable (kvmnetlab.lab.controller.campaign_dir)
    assert sections["Doc fragments"] == fragments
    kinds = {path.name for path in PLUGINS.iterdir() if path.is_dir()}
    assert kinds <= {"action", "callback", "connection", "doc_fragments", "filter",
                     "module_utils", "modules", "plugin_utils"}, "a plugin type the README lacks"


def test_license_is_gpl3_at_the_root_and_in_the_collection():
    root, collection = REPO / "LICENSE", COLLECTION / "LICENSE"
    assert root.read_bytes() == collection.read_bytes()
    text = root.read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    assert galaxy["license"] == ["GPL-3.0-or-later"]
    assert 'license = "GPL-3.0-or-later"' in (REPO / "pyproject.toml").read_text()


def test_galaxy_metadata_invents_no_url():
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    assert not {"repository", "documentation", "homepage", "issues"} & set(galaxy)
    assert "example.invalid" not in (COLLECTION / "galaxy.yml").read_text()
    assert (galaxy["namespace"], galaxy["name"]) == ("kvmnetlab", "lab")
    assert re.fullmatch(r"\d+\.\d+\.\d+", galaxy["version"])


def test_the_collection_builds(tmp_path):
    done = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path)],
        cwd=COLLECTION, env=ansible_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    built = tmp_path / f"kvmnetlab-lab-{galaxy['version']}.tar.gz"
    assert built.is_file(), done.stdout
    with tarfile.open(built) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("MANIFEST.json"))
        license_text = tar.extractfile("LICENSE").read().decode()
    info = manifest["collection_info"]
    assert info["license"] == ["GPL-3.0-or-later"]
    assert all(info[key] is None for key in ("repository", "documentation", "homepage",
                                             "issues"))
    assert "GNU GENERAL PUBLIC LICENSE" in license_text
    assert not [name for name in names if "__pycache__" in name]
    for name in MODULES:
        assert f"plugins/modules/{name}.py" in names
    for path in (PLUGINS / "filter").glob("*.yml"):
        assert f"plugins/filter/{path.name}" in names
