"""bin/pin-requirements: requirements.txt is requirements.in's pins, each with the sha256 of
every file PyPI holds for it (offline here: PyPI's answers are stand-ins)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re

import pytest

from tests.helpers import REPO

SCRIPT = REPO / "bin" / "pin-requirements"


def load_script():
    loader = importlib.machinery.SourceFileLoader("pin_requirements", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


pin = load_script()
A, B, C = ("a" * 64), ("b" * 64), ("c" * 64)


def fake_pypi(projects: dict[str, dict[str, list[str]]], versioned: bool = True):
    """PyPI's JSON API for ``projects`` (name -> version -> sha256s); without
    ``versioned``, only the per-project document is served (as some mirrors do)."""
    asked = []

    def files(digests):
        return [{"filename": f"f{i}", "digests": {"sha256": d}} for i, d in enumerate(digests)]

    def fetch(url):
        asked.append(url)
        match = re.fullmatch(r"https://pypi.org/pypi/([^/]+)/(?:([^/]+)/)?json", url)
        name, version = match[1], match[2]
        if name not in projects:
            return None
        if version is not None:
            if not versioned or version not in projects[name]:
                return None
            return {"urls": files(projects[name][version])}
        return {"releases": {v: files(d) for v, d in projects[name].items()}}

    fetch.asked = asked
    return fetch


def test_pins_are_read_in_order_with_comments_and_blank_lines():
    text = "# header\n\nPyYAML==6.0.4  # why\nruamel.yaml==0.19.1\n"
    assert pin.parse_pins(text, "requirements.in") == [("PyYAML", "6.0.4"),
                                                       ("ruamel.yaml", "0.19.1")]


@pytest.mark.parametrize(("text", "expected"), [
    ("pandas>=3\n", "requirements.in:1: 'pandas>=3'"),
    ("pandas\n", "requirements.in:1: 'pandas'"),
    ("ok==1\n-e .\n", "requirements.in:2: '-e .'"),
    ("pandas==3.1.1 --hash=sha256:" + A + "\n", "requirements.in:1:"),
    ("Jinja2==3.1.6\njinja2==3.1.5\n", "requirements.in:2: jinja2 is already pinned on line 1"),
])
def test_anything_but_an_exact_pin_is_refused_naming_the_line(text, expected):
    with pytest.raises(pin.PinError) as refused:
        pin.parse_pins(text, "requirements.in")
    assert str(refused.value).startswith(expected)


def test_digests_come_from_the_versioned_document_when_served():
    fetch = fake_pypi({"ruff": {"0.17.6": [B, A], "0.17.5": [C]}})
    assert pin.release_digests("ruff", "0.17.6", fetch) == [A, B]
    assert fetch.asked == ["https://pypi.org/pypi/ruff/0.17.6/json"]


def test_digests_come_from_the_project_document_otherwise():
    fetch = fake_pypi({"ruff": {"0.17.6": [B, A], "0.17.5": [C]}}, versioned=False)
    assert pin.release_digests("ruff", "0.17.5", fetch) == [C]
    with pytest.raises(pin.PinError, match=r"ruff==9\.9: no such version"):
        pin.release_digests("ruff", "9.9", fetch)
    with pytest.raises(pin.PinError, match="nosuch: not on"):
        pin.release_digests("nosuch", "1", fetch)


def test_main_writes_every_pin_with_its_hashes(tmp_path):
    source = tmp_path / "requirements.in"
    source.write_text("# pins\nruff==0.17.6\nPyYAML==6.0.4\n")
    output = tmp_path / "requirements.txt"
    fetch = fake_pypi({"ruff": {"0.17.6": [A, B]}, "PyYAML": {"6.0.4": [C]}})
    assert pin.main(["--input", str(source), "--output", str(output)], fetch=fetch) == 0
    text = output.read_text()
    assert text.endswith(
        f"ruff==0.17.6 \\\n    --hash=sha256:{A} \\\n    --hash=sha256:{B}\n"
        f"PyYAML==6.0.4 \\\n    --hash=sha256:{C}\n")
    assert text.startswith("# Written by bin/pin-requirements from requirements.in")


def test_main_writes_nothing_when_a_pin_is_missing(tmp_path, capsys):
    source = tmp_path / "requirements.in"
    source.write_text("ruff==0.17.6\nnosuch==1.0\n")
    output = tmp_path / "requirements.txt"
    output.write_text("as it was\n")
    assert pin.main(["--input", str(source), "--output", str(output)],
                    fetch=fake_pypi({"ruff": {"0.17.6": [A]}})) == 1
    assert output.read_text() == "as it was\n"
    assert "nosuch: not on https://pypi.org/pypi" in capsys.readouterr().err


def hashed_pins(text: str) -> dict[str, list[str]]:
    """requirements.txt's pins (normalised name==version) and their hashes."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip().rstrip("\\").strip()
        if not line:
            continue
        if line.startswith("--hash=sha256:"):
            assert current is not None, line
            found[current].append(line.removeprefix("--hash=sha256:"))
        else:
            name, _, version = line.partition("==")
            current = f"{pin.normalise(name)}=={version}"
            found[current] = []
    return found


def test_requirements_txt_is_requirements_in_with_a_hash_for_every_pin():
    """The two files agree: run bin/pin-requirements after editing requirements.in."""
    pins = pin.parse_pins((REPO / "requirements.in").read_text(), "requirements.in")
    text = (REPO / "requirements.txt").read_text()
    hashed = hashed_pins(text)
    assert list(hashed) == [f"{pin.normalise(n)}=={v}" for n, v in pins]
    for name, digests in hashed.items():
        assert digests, f"{name}: no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests), name
    digests = {name: hashed[f"{pin.normalise(name)}=={version}"] for name, version in pins}
    assert text == pin.render(pins, digests, "requirements.in")


def test_the_project_s_direct_dependencies_are_pinned_alike():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {pin.normalise(n): v for n, v in
            pin.parse_pins((REPO / "requirements.in").read_text(), "requirements.in")}
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        name, _, version = requirement.partition("==")
        assert pins.get(pin.normalise(name)) == version, requirement
