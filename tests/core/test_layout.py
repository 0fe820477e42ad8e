"""The tests' own layout: every test file in the folder of what it tests.

tests/ holds six folders of test files (core, collectors, analysis, nightly, roles, lab;
the README's Tests section says what goes where), the helpers they share
(tests/helpers.py), the fixtures every folder uses (tests/conftest.py) and shared data
(fixtures/, analysis_data/, kernel_patches/). A test file named by path anywhere in the
checkout (docs, roles' READMEs, docstrings) must exist. Fast, no lab.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.helpers import REPO, TESTS

FOLDERS = ("core", "collectors", "analysis", "nightly", "roles", "lab")


def test_no_test_file_lies_directly_in_tests():
    stray = sorted(path.name for path in TESTS.glob("test_*.py"))
    assert not stray, f"move into one of tests/{{{','.join(FOLDERS)}}}/: {stray}"


def test_every_test_file_is_in_one_of_the_folders():
    elsewhere = sorted(str(path.relative_to(TESTS)) for path in TESTS.rglob("test_*.py")
                       if path.parent.parent != TESTS or path.parent.name not in FOLDERS)
    assert not elsewhere, f"test files outside tests/{{{','.join(FOLDERS)}}}/: {elsewhere}"


def test_each_folder_is_a_package_with_tests():
    # a package, so that its modules are tests.<folder>.test_x (no clash of basenames)
    for folder in FOLDERS:
        assert (TESTS / folder / "__init__.py").is_file(), folder
        assert list((TESTS / folder).glob("test_*.py")), f"tests/{folder} has no test file"


def test_shared_helpers_come_from_tests_helpers():
    """conftest.py holds fixtures only; what a test imports is in tests/helpers.py."""
    importing = re.compile(r"^\s*(from tests\.conftest import|import tests\.conftest)", re.M)
    users = sorted(str(path.relative_to(TESTS)) for path in TESTS.rglob("*.py")
                   if importing.search(path.read_text()))
    assert not users, f"import from tests.helpers instead of tests.conftest: {users}"


# Text that may name a test file; README.md is left out (its Tests and Layout sections are
# kept by hand), and so are the stored campaigns' raw files.
NAMED = re.compile(r"(?<![\w/.-])tests/[\w/]+\.(?:py|sh)\b")
SKIP_DIRS = {".git", ".venv", ".cache", "results", "__pycache__", ".pytest_cache", ".ruff_cache",
             "campaigns"}
TEXT = {".py", ".md", ".yml", ".yaml", ".sh", ".config", ".cfg", ".j2", ".txt"}


def test_every_test_file_named_in_the_checkout_exists():
    """Docs, roles' READMEs, comments and docstrings name test files by path: after a
    move, each must still name a file that exists."""
    missing = []
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            if path.suffix not in TEXT or path == REPO / "README.md":
                continue
            text = path.read_text(errors="replace")
            missing += [f"{path.relative_to(REPO)}: {named}" for named in NAMED.findall(text)
                        if not (REPO / named).exists()]
    assert not missing, "named test files that do not exist:\n" + "\n".join(missing)
