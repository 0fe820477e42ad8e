"""The nightly schedule: roles/nightly through playbooks/nightly.yml, and execution-environment.yml.

playbooks/nightly.yml is run on localhost exactly as a user would, with every path the role
writes (unit folder, configuration, cron folder, log) moved into pytest's temporary folder by
extra variables: nothing under /etc is touched. PID 1 here is not systemd, so the systemd path
is forced (nightly_scheduler: systemd); the role writes and verifies the units and skips the
reload, enable and start, saying why. Checked:

1. a first run in check mode reports changes and writes nothing;
2. the real run installs both units, which `systemd-analyze verify` accepts; the service's
   ExecStart= names the existing kvmnetlab-nightly console script and `--config` the file
   written, which is YAML with the keys kvmnetlab-nightly reads and which the driver's own
   loader (nightly.config) accepts; the timer carries the schedule;
3. a second run, and check mode on top of it, report changed=0;
4. a unit that systemd-analyze rejects is never installed; a calendar event systemd cannot
   parse and a missing console script fail before anything changes, naming the variable;
5. nightly_state absent removes units, cron file and configuration;
6. the cron path writes the cron file with the schedule (and removes the units a systemd run
   left), and a second run changes nothing;
7. the role's defaults, argument spec and README agree;
8. `ansible-builder create` writes the execution environment's build context offline.

The last test applies the role to a guest of the embedded lab, which runs systemd, and checks
that the timer is active with a next elapse. It boots QEMU guests (minutes under TCG), so it is
opt-in, like the other nightly tests that boot one: KVMNETLAB_NIGHTLY=1 (and root).
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from nightly.status import NOTIFY_TIMEOUT_S
from tests.helpers import BIN, REPO, ansible_env, recap, role_spec
from tests.lab.test_guests import EXTRA as GUEST_EXTRA
from tests.lab.test_guests import GUEST, STATE_DIR
from tests.lab.test_guests import topology as guest_topology  # noqa: F401 (a fixture, by name)

ROLE = REPO / "roles" / "nightly"
PLAYBOOK = REPO / "playbooks" / "nightly.yml"
COMMAND = REPO / ".venv" / "bin" / "kvmnetlab-nightly"
UNIT = "kvmnetlab-nightly"
CONFIG_KEYS = {"repo", "inventory", "results_dir", "extra_vars", "min_free_gib",
               "keep_raw_nights", "notify_command", "p_value", "min_segment", "max_skipped",
               "timeout_h"}
NOT_PID1 = "systemd is not PID 1 on localhost"


# --- running the playbook ----------------------------------------------------------------------


def paths(folder: Path) -> dict:
    """Every path the role writes, inside ``folder``."""
    return {
        "nightly_unit_dir": str(folder / "systemd"),
        "nightly_config_path": str(folder / "etc" / "kvmnetlab" / "nightly.yml"),
        "nightly_cron_dir": str(folder / "cron.d"),
        "nightly_log_path": str(folder / "log" / "kvmnetlab-nightly.log"),
    }


def role_vars(folder: Path, **over) -> dict:
    return {
        **paths(folder),
        "nightly_scheduler": "systemd",
        "nightly_extra_vars": {"kvmnetlab_repetitions": 3, "kvmnetlab_ping_count": 100},
        "nightly_results_dir": str(folder / "results"),
        "nightly_min_free_gib": 5,
        "nightly_notify_command": ["logger", "-t", "kvmnetlab-nightly"],
        "nightly_p_value": 0.001,
        "nightly_cron_packages": [],  # never install packages on this machine
        **over,
    }


def run(folder: Path, variables: dict, *args: str,
        path_prefix: Path | None = None) -> tuple[subprocess.CompletedProcess, str]:
    """playbooks/nightly.yml on localhost with ``variables`` as extra vars (a JSON file)."""
    extra = folder / "extra.json"
    extra.write_text(json.dumps(variables))
    env = ansible_env()
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), str(PLAYBOOK), "-e", f"@{extra}", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    return done, done.stdout + done.stderr


def written(folder: Path) -> list[str]:
    """Files and folders under ``folder`` other than the test's own extra-vars file."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != "extra.json")


def unit_settings(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values of a unit file (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path}: {raw!r} outside a section"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(settings: dict, section: str, key: str) -> str:
    values = settings[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}: {values}"
    return values[0]


# --- the systemd path, forced on a machine whose PID 1 is not systemd --------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nightly")


@pytest.fixture(scope="module")
def check_first(folder):
    """Check mode on a host the role has never touched."""
    return run(folder, role_vars(folder), "--check")


@pytest.fixture(scope="module")
def installed(folder, check_first):
    done, out = run(folder, role_vars(folder))
    assert done.returncode == 0, out[-6000:]
    return out


def test_check_mode_first_run_reports_changes_and_writes_nothing(folder, check_first):
    done, out = check_first
    assert done.returncode == 0, out[-6000:]
    assert recap(out)["localhost"]["changed"] >= 3, out[-6000:]  # folder, config, units
    assert written(folder) == []


def test_units_are_installed_and_systemd_analyze_verify_accepts_them(folder, installed):
    unit_dir = folder / "systemd"
    units = [unit_dir / f"{UNIT}.service", unit_dir / f"{UNIT}.timer"]
    assert sorted(p.name for p in unit_dir.iterdir()) == sorted(p.name for p in units)
    for unit in units:
        assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert UNIT not in done.stderr, done.stderr  # no warning about either unit


def test_exec_start_runs_the_console_script_on_the_written_config(folder, installed):
    service = unit_settings(folder / "systemd" / f"{UNIT}.service")
    assert one(service, "Service", "Type") == "oneshot"
    assert one(service, "Service", "WorkingDirectory") == str(REPO)
    assert one(service, "Service", "TimeoutStartSec") == "6h"
    assert one(service, "Service", "KillMode") == "mixed"  # a stop reaches the driver first
    assert int(one(service, "Service", "TimeoutStopSec")) > NOTIFY_TIMEOUT_S
    # A regression (exit 1) must fail the unit, and a failed night is not retried at once.
    assert "SuccessExitStatus" not in service["Service"]
    assert service["Service"].get("Restart", ["no"]) == ["no"]
    argv = shlex.split(one(service, "Service", "ExecStart"))
    assert argv[0] == str(COMMAND)
    assert Path(argv[0]).is_file() and os.access(argv[0], os.X_OK)
    assert argv[1:] == ["--config", paths(folder)["nightly_config_path"]]

    config_path = Path(argv[2])
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o640
    config = yaml.safe_load(config_path.read_text())
    assert set(config) == CONFIG_KEYS
    assert config == {
        "repo": str(REPO),
        "inventory": None,  # null keeps the driver's default
        "results_dir": str(folder / "results"),
        "extra_vars": {"kvmnetlab_repetitions": 3, "kvmnetlab_ping_count": 100},
        "min_free_gib": 5.0,
        "keep_raw_nights": None,
        "notify_command": ["logger", "-t", "kvmnetlab-nightly"],
        "p_value": 0.001,
        "min_segment": None,
        "max_skipped": None,
        "timeout_h": None,
    }


def test_the_driver_accepts_the_written_config(folder, installed):
    """kvmnetlab-nightly's own loader (what `--config` runs first; exit 2 on a bad file)."""
    from nightly import config as driver

    path = Path(paths(folder)["nightly_config_path"])
    settings = driver.build(driver.load_file(path), {"night_id": None}, path)
    assert settings.repo == REPO
    assert settings.inventory == REPO / "inventory" / "local"  # ansible.cfg's, through null
    assert settings.results_dir == folder / "results"
    assert settings.extra_vars == {"kvmnetlab_repetitions": 3, "kvmnetlab_ping_count": 100}
    assert settings.min_free_gib == 5.0
    assert settings.notify_command == ["logger", "-t", "kvmnetlab-nightly"]
    assert settings.p_value == 0.001
    assert settings.keep_raw_nights == driver.Settings.keep_raw_nights  # its default
    assert settings.min_segment is None  # the detector's default


def test_timer_carries_the_schedule(folder, installed):
    timer = unit_settings(folder / "systemd" / f"{UNIT}.timer")
    assert one(timer, "Timer", "OnCalendar") == "*-*-* 01:30:00"
    assert one(timer, "Timer", "RandomizedDelaySec") == "15min"
    assert one(timer, "Timer", "Persistent") == "true"
    assert one(timer, "Timer", "Unit") == f"{UNIT}.service"
    assert one(timer, "Install", "WantedBy") == "timers.target"


def test_systemd_is_left_alone_where_it_is_not_pid_1(installed):
    assert not Path("/run/systemd/system").exists(), "this machine runs systemd: test elsewhere"
    assert NOT_PID1 in installed
    # The task that enables and starts the timer was skipped (its banner is not shown).
    assert "Systemd | Enable and start the timer" not in installed


def test_second_run_and_check_mode_change_nothing(folder, installed):
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    for args in ((), ("--check",)):
        done, out = run(folder, role_vars(folder), *args)
        assert done.returncode == 0, out[-6000:]
        assert recap(out)["localhost"]["changed"] == 0, out[-6000:]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_a_unit_systemd_analyze_rejects_is_not_installed(folder, installed):
    service = folder / "systemd" / f"{UNIT}.service"
    before = service.read_bytes()
    # The role's internal ExecStart= value, overridden with one systemd refuses (not absolute).
    bad = {**role_vars(folder), "_nightly_exec": "relative/kvmnetlab-nightly --config x"}
    done, out = run(folder, bad)
    assert done.returncode != 0
    assert "failed to validate" in out, out[-4000:]
    assert "Neither a valid executable name nor an absolute path" in out, out[-4000:]
    assert service.read_bytes() == before


@pytest.mark.parametrize(
    ("over", "named"),
    [
        ({"nightly_on_calendar": "*-*-* 25:00:00"}, "nightly_on_calendar (*-*-* 25:00:00)"),
        ({"nightly_randomized_delay": "soon"}, "nightly_randomized_delay (soon)"),
        ({"nightly_command": "/nonexistent/kvmnetlab-nightly"},
         "nightly_command (/nonexistent/kvmnetlab-nightly) is not an executable file"),
        ({"nightly_repo": "/srv/kvm netlab"}, "nightly_repo (/srv/kvm netlab) must be an absolute"),
        ({"nightly_p_value": 1.5}, "nightly_p_value: must be > 0 and < 1, got 1.5"),
        ({"nightly_min_segment": 1}, "nightly_min_segment: must be >= 2, got 1"),
        ({"nightly_results_dir": "results"}, "nightly_results_dir: must be an absolute path"),
        ({"nightly_notify_command": []}, "nightly_notify_command: must be a non-empty string"),
    ],
    ids=["calendar", "delay", "command", "repo", "p_value", "min_segment", "results_dir", "notify"],
)
def test_a_bad_input_fails_before_anything_changes(tmp_path, over, named):
    done, out = run(tmp_path, role_vars(tmp_path, **over))
    assert done.returncode != 0
    assert named in " ".join(out.split()), out[-4000:]
    assert recap(out)["localhost"]["changed"] == 0
    assert written(tmp_path) == []


def test_absent_removes_units_cron_file_and_configuration(folder, installed):
    (folder / "cron.d").mkdir(exist_ok=True)
    (folder / "cron.d" / UNIT).write_text("# left by an earlier cron schedule\n")
    done, out = run(folder, role_vars(folder, nightly_state="absent"))
    assert done.returncode == 0, out[-6000:]
    assert list((folder / "systemd").iterdir()) == []
    assert list((folder / "cron.d").iterdir()) == []
    assert not Path(paths(folder)["nightly_config_path"]).exists()
    done, out = run(folder, role_vars(folder, nightly_state="absent"))
    assert recap(out)["localhost"]["changed"] == 0, out[-6000:]


# --- the cron path ---------------------------------------------------------------------------


@pytest.fixture()
def crontab_stub(tmp_path) -> Path:
    """A folder with a `crontab` that fails if it is ever run. ansible.builtin.cron looks for
    crontab even for a cron.d file (which it writes itself); this machine has no cron."""
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "crontab").write_text("#!/bin/sh\necho 'crontab must not be run' >&2\nexit 1\n")
    (stub / "crontab").chmod(0o755)
    return stub


def test_cron_path_writes_the_schedule_and_removes_the_units(tmp_path, crontab_stub):
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "cron.d").mkdir()
    done, out = run(folder, role_vars(folder))  # systemd first: its units must go
    assert done.returncode == 0, out[-6000:]
    assert (folder / "systemd" / f"{UNIT}.timer").exists()

    cron = role_vars(folder, nightly_scheduler="cron", nightly_cron_minute="15",
                     nightly_cron_hour="2", nightly_cron_weekday="1-5")
    done, out = run(folder, cron, path_prefix=crontab_stub)
    assert done.returncode == 0, out[-6000:]
    config = paths(folder)["nightly_config_path"]
    log = paths(folder)["nightly_log_path"]
    lines = (folder / "cron.d" / UNIT).read_text().splitlines()
    assert 'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"' in lines
    job = f"15 2 * * 1-5 root cd {REPO} && {COMMAND} --config {config} >> {log} 2>&1"
    assert job in lines, lines
    assert stat.S_IMODE((folder / "cron.d" / UNIT).stat().st_mode) & 0o022 == 0
    assert list((folder / "systemd").iterdir()) == []
    assert yaml.safe_load(Path(config).read_text())["repo"] == str(REPO)

    done, out = run(folder, cron, path_prefix=crontab_stub)
    assert done.returncode == 0, out[-6000:]
    assert recap(out)["localhost"]["changed"] == 0, out[-6000:]


# --- the role's public API ---------------------------------------------------------------------


def spec_options() -> dict:
    return role_spec(ROLE)["options"]


def test_every_default_is_in_the_argument_spec_with_its_value():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    options = spec_options()
    assert set(options) == set(defaults)
    for name, value in defaults.items():
        assert name.startswith("nightly_"), name
        assert options[name].get("description"), name
        if isinstance(value, str) and "{{" in value:
            assert "default" not in options[name], name  # templated: described, not repeated
        else:
            assert options[name].get("default") == value, name


def test_readme_names_every_variable():
    readme = (ROLE / "README.md").read_text()
    for name in spec_options():
        assert f"`{name}`" in readme, name


def test_playbook_targets_localhost_unless_told_and_is_tagged():
    (play,) = yaml.safe_load(PLAYBOOK.read_text())
    assert play["hosts"] == "{{ nightly_hosts | default('localhost') }}"
    assert play["tags"] == ["nightly"]
    assert play["roles"] == [{"role": "nightly"}]


# --- the execution environment -----------------------------------------------------------------


def pins(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            found[name.strip().lower()] = version.split()[0]  # its hashes follow
    return found


def test_ansible_builder_create_writes_the_build_context_offline(tmp_path):
    context = tmp_path / "context"
    env = {**ansible_env(), "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    done = subprocess.run(
        [str(BIN / "ansible-builder"), "create", "-f", str(REPO / "execution-environment.yml"),
         "--context", str(context), "--output-filename", "Containerfile"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    build = context / "_build"

    requirements = (REPO / "requirements.txt").read_text()
    assert (build / "requirements.txt").read_text() == requirements
    repo_pins = pins(requirements)
    for runtime in ("pandas", "pyarrow", "matplotlib", "scipy", "jinja2", "pyyaml"):
        assert runtime in repo_pins, runtime

    containerfile = (context / "Containerfile").read_text()
    refs = f'ARG ANSIBLE_INSTALL_REFS="ansible-core=={repo_pins["ansible-core"]} ' \
           f'ansible-runner=={repo_pins["ansible-runner"]}"'
    assert refs in containerfile.splitlines()  # the same pins as the controller's .venv
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile.splitlines()
    assert "ENV PYTHONPATH=/runner/project" in containerfile.splitlines()

    assert "openssh-clients [platform:rpm]" in (build / "bindep.txt").read_text().splitlines()
    galaxy = yaml.safe_load((build / "requirements.yml").read_text())
    assert galaxy["collections"] == [{"name": "/build/collections/kvmnetlab/lab", "type": "dir"}]
    meta = yaml.safe_load((build / "collections/kvmnetlab/lab/galaxy.yml").read_text())
    assert (meta["namespace"], meta["name"]) == ("kvmnetlab", "lab")
    source = REPO / "collections/ansible_collections/kvmnetlab/lab"
    for plugin in source.rglob("*.py"):
        copy = build / "collections/kvmnetlab/lab" / plugin.relative_to(source)
        assert copy.read_bytes() == plugin.read_bytes(), plugin


# --- a guest of the embedded lab, which runs systemd (opt-in, not run by default yet) -----------

GUEST_PLAY = """\
- name: The guests
  ansible.builtin.import_playbook: {repo}/playbooks/guests.yml

- name: The nightly schedule
  ansible.builtin.import_playbook: {repo}/playbooks/nightly.yml
"""


# Opt-in: it boots the embedded lab's guest (minutes under TCG), like the other nightly tests
# that need one. Run it with KVMNETLAB_NIGHTLY=1 (as root).
@pytest.mark.guests
@pytest.mark.skipif(os.environ.get("KVMNETLAB_NIGHTLY") != "1",
                    reason="boots lab guests: set KVMNETLAB_NIGHTLY=1")
def test_timer_is_active_with_a_next_elapse_in_a_guest(root_only, request, tmp_path):
    import testinfra

    request.getfixturevalue("guest_topology")  # the lab's namespaces (made and removed if missing)

    play = tmp_path / "guest-nightly.yml"
    play.write_text(GUEST_PLAY.format(repo=REPO))
    extra = tmp_path / "extra.json"
    # auto picks systemd there. The guest has no checkout: its service would run /usr/bin/true
    # (the timer is the subject here, not a night).
    extra.write_text(json.dumps({**GUEST_EXTRA, "nightly_hosts": GUEST, "nightly_repo": "/root",
                                 "nightly_command": "/usr/bin/true"}))

    def apply() -> tuple[subprocess.CompletedProcess, str]:
        done = subprocess.run(
            [str(BIN / "ansible-playbook"), str(play), "-e", f"@{extra}"],
            cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=3600)
        return done, done.stdout + done.stderr

    try:
        done, out = apply()
        assert done.returncode == 0, out[-6000:]
        assert "systemd is not PID 1" not in out
        guest = testinfra.get_host(f"ssh://{GUEST}", ssh_config=str(STATE_DIR / "ssh" / "config"),
                                  sudo=True)
        shown = guest.check_output(f"systemctl show {UNIT}.timer -p ActiveState"
                                   " -p UnitFileState -p NextElapseUSecRealtime")
        props = dict(line.split("=", 1) for line in shown.splitlines())
        assert props["ActiveState"] == "active", shown
        assert props["UnitFileState"] == "enabled", shown
        assert props["NextElapseUSecRealtime"] not in ("", "0", "n/a"), shown

        done, out = apply()
        assert done.returncode == 0, out[-6000:]
        assert recap(out)[GUEST]["changed"] == 0, out[-6000:]
    finally:
        subprocess.run([str(BIN / "ansible-playbook"), "playbooks/guests.yml",
                        "--tags", "guests_teardown", "-e", json.dumps(GUEST_EXTRA)],
                       cwd=REPO, env=ansible_env(), capture_output=True, timeout=1800)
