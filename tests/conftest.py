"""Fixtures shared by every folder of tests/ (the helpers are in tests/helpers.py)."""

from __future__ import annotations

import os

import pytest

from tests.helpers import lab_namespaces, playbook


@pytest.fixture(scope="session")
def root_only():
    if os.geteuid() != 0:
        pytest.skip("the embedded lab needs root (network namespaces)")


@pytest.fixture(scope="session", autouse=True)
def leave_the_lab_as_found():
    """Tests that run site.yml (which leaves the embedded lab up, as a user's campaign
    does) must not leave it behind: if the session made the lab, the session tears it
    down (site.yml --tags teardown), so a test run leaves no namespace, tap or QEMU."""
    before = set(lab_namespaces())
    yield
    if before or os.geteuid() != 0:
        return
    if set(lab_namespaces()):
        playbook("site.yml", "--tags", "teardown", timeout=900)

