"""The whole repository passes ansible-lint (production profile), yamllint and ruff."""

import subprocess

import pytest

from tests.helpers import BIN, REPO, ansible_env


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=ansible_env(), capture_output=True, text=True,
                          timeout=900)


@pytest.mark.parametrize(
    "cmd",
    [
        (str(BIN / "ansible-lint"), "--nocolor", "--profile", "production"),
        (str(BIN / "yamllint"), "--strict", "."),
        (str(BIN / "ruff"), "check", "."),
    ],
    ids=["ansible-lint", "yamllint", "ruff"],
)
def test_linter_passes(cmd):
    done = run(*cmd)
    assert done.returncode == 0, f"{cmd[0]} failed:\n{done.stdout[-8000:]}\n{done.stderr[-4000:]}"
