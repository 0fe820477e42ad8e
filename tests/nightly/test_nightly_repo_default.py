"""kvmnetlab-nightly's default --repo, for an editable and a non-editable install.

Fast, no lab. bootstrap.sh installs the packages in editable mode: the checkout they come
from is the default. ``pip install .`` copies them into site-packages, away from any
checkout: the default is then the current folder or the nearest checkout above it, and
without one the night stops with exit 2 and a message naming --repo.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nightly import cli, config
from tests.helpers import REPO


def make_checkout(folder: Path) -> Path:
    for marker in config.CHECKOUT_MARKERS:
        (folder / marker).parent.mkdir(parents=True, exist_ok=True)
        (folder / marker).write_text("---\n")
    return folder


def test_an_editable_install_runs_its_own_checkout(tmp_path):
    assert config.default_repo(cwd=tmp_path) == REPO
    assert config.default_repo(cwd=tmp_path, installed=REPO) == REPO


def test_an_install_outside_a_checkout_takes_the_current_folder_or_one_above(tmp_path):
    site_packages = tmp_path / "venv/lib/python3/site-packages"
    site_packages.mkdir(parents=True)
    checkout = make_checkout(tmp_path / "kvmnetlab")
    assert config.default_repo(cwd=checkout, installed=site_packages) == checkout
    inner = checkout / "roles/campaign"
    inner.mkdir(parents=True)
    assert config.default_repo(cwd=inner, installed=site_packages) == checkout


def test_another_projects_site_yml_is_not_a_checkout(tmp_path):
    site_packages = tmp_path / "site-packages"
    site_packages.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "site.yml").write_text("---\n")
    with pytest.raises(config.ConfigError) as refused:
        config.default_repo(cwd=other, installed=site_packages)
    assert refused.value.key == "--repo"
    assert str(site_packages) in str(refused.value) and str(other) in str(refused.value)
    assert "give --repo DIR" in str(refused.value)


def test_without_a_checkout_the_command_exits_2_naming_repo(tmp_path, monkeypatch, capsys):
    site_packages = tmp_path / "site-packages"
    site_packages.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    real = config.default_repo
    monkeypatch.setattr(config, "default_repo",
                        lambda cwd=None, installed=None: real(cwd, installed or site_packages))
    assert cli.main(["--night-id", "n1"]) == 2
    assert "--repo" in capsys.readouterr().err
