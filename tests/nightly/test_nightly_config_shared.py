"""The nightly role and kvmnetlab-nightly share one validation of the night's settings.

Fast, no lab. The role writes the driver's configuration file from nightly_<key> variables
and checks it with kvmnetlab.lab.nightly_config_check, which calls nightly/config.py, the
validation the driver applies to that file: no Jinja copy of its bounds.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml

from nightly import config
from tests.helpers import REPO

ROLE = REPO / "roles/nightly"
WRITTEN = yaml.safe_load((ROLE / "vars/main.yml").read_text())["_nightly_config"]
OPTIONS = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())[
    "argument_specs"]["main"]["options"]


def check(values):
    from ansible_collections.kvmnetlab.lab.plugins.action.nightly_config_check import (
        ActionModule,
    )

    task = SimpleNamespace(args={"config": values}, action="nightly_config_check",
                           resolved_action="kvmnetlab.lab.nightly_config_check",
                           check_mode=False, async_val=0)
    plugin = ActionModule(task, SimpleNamespace(_shell=SimpleNamespace(tmpdir=None)), None,
                          None, None)
    return plugin.act(plugin.validated_args(), {})["config"]


def test_each_key_the_role_writes_is_the_drivers_and_comes_from_its_own_variable():
    assert set(WRITTEN) <= set(config.CONFIG_KEYS)
    for key, value in WRITTEN.items():
        assert value == f"{{{{ nightly_{key} }}}}", f"{key} is derived by hand: {value}"
        assert f"nightly_{key}" in OPTIONS, f"nightly_{key} has no argument spec"


def test_the_argument_spec_types_are_the_drivers():
    for key in config.NUMBER_KEYS:
        assert OPTIONS[f"nightly_{key}"]["type"] in ("int", "float"), key
    for key in set(config.PATH_KEYS) & set(WRITTEN):
        assert OPTIONS[f"nightly_{key}"]["type"] in ("str", "path"), key


def test_the_role_no_longer_restates_the_bounds_in_jinja():
    tasks = (ROLE / "tasks/validate.yml").read_text()
    assert "kvmnetlab.lab.nightly_config_check" in tasks
    for key in ("p_value", "min_segment", "keep_raw_nights", "min_free_gib"):
        assert f"nightly_{key}" not in tasks, key


@pytest.mark.parametrize(("key", "value", "message"), [
    ("p_value", 1.5, "nightly_p_value: must be > 0 and < 1, got 1.5"),
    ("p_value", "half", "nightly_p_value: must be a number, got 'half'"),
    ("min_segment", 1, "nightly_min_segment: must be >= 2, got 1"),
    ("keep_raw_nights", -1, "nightly_keep_raw_nights: must be >= 0, got -1"),
    ("results_dir", "results", "nightly_results_dir: must be an absolute path"),
    ("notify_command", [], "nightly_notify_command: must be a non-empty string"),
    ("extra_vars", {"kvmnetlab_campaign_id": "x"}, "is set by the driver"),
])
def test_a_bad_setting_is_refused_as_the_driver_would_naming_the_variable(key, value, message):
    from ansible.errors import AnsibleActionFail

    with pytest.raises(AnsibleActionFail, match=r"^nightly role: ") as failed:
        check({key: value})
    assert message in failed.value.message
    # the driver refuses the same value in its configuration file
    with pytest.raises(config.ConfigError):
        config.check_values({key: value}, "nightly.yml", None)


def test_numbers_given_as_text_are_written_as_numbers_and_null_keeps_the_default():
    given = {"repo": "/srv/kvmnetlab", "inventory": None, "p_value": "0.01",
             "keep_raw_nights": "7", "min_free_gib": 2, "notify_command": "mail -s night me"}
    assert check(given) == {**given, "p_value": 0.01, "keep_raw_nights": 7}
