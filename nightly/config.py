"""The night's settings: defaults, a YAML config file, command-line flags (in that order).

Everything is validated here, before anything runs; a bad value raises
:class:`ConfigError` naming where it came from (the config file or the flag) and
the key.
"""

from __future__ import annotations

import configparser
import datetime as _dt
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# A campaign id, as kvmnetlab.campaign.CAMPAIGN_ID accepts it.
NIGHT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# Folders of results_dir that are not campaigns.
RESERVED_NAMES = ("history",)
# Variables the driver sets itself for site.yml.
DRIVER_VARS = ("kvmnetlab_results_dir", "kvmnetlab_campaign_id")


class ConfigError(ValueError):
    """A setting is wrong: ``source`` (file or "command line"), ``key``, why."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source, self.key, self.reason = source, key, message
        super().__init__(f"{source}: {key}: {message}")


@dataclass
class Settings:
    """One night's settings, validated; paths absolute."""

    repo: Path
    inventory: Path
    results_dir: Path
    night_id: str
    extra_vars: dict[str, Any] = field(default_factory=dict)
    min_free_gib: float = 2.0
    keep_raw_nights: int = 14
    notify_command: list[str] | None = None
    p_value: float | None = None
    min_segment: int | None = None
    tags: str | None = None
    skip_tags: str | None = None
    limit: str | None = None
    lock_file: Path | None = None
    max_skipped: int = 3
    timeout_h: float = 5.5  # below the systemd unit's TimeoutStartSec (6h by default)
    config_file: Path | None = None

    @property
    def night_dir(self) -> Path:
        return self.results_dir / self.night_id

    @property
    def nightly_dir(self) -> Path:
        return self.night_dir / "nightly"

    @property
    def history_dir(self) -> Path:
        return self.results_dir / "history"


# What makes a folder a kvmnetlab checkout when --repo is not given: site.yml, and the
# in-repo collection beside it (another project's site.yml is not taken for one).
CHECKOUT_MARKERS = ("site.yml", "collections/ansible_collections/kvmnetlab/lab/galaxy.yml")


def is_checkout(folder: Path) -> bool:
    """Whether ``folder`` holds a kvmnetlab checkout (every file of CHECKOUT_MARKERS)."""
    return all((folder / marker).is_file() for marker in CHECKOUT_MARKERS)


def default_repo(cwd: Path | None = None, installed: Path | None = None) -> Path:
    """The kvmnetlab checkout site.yml runs from when --repo is not given.

    The checkout this package is installed from, when it is one (./bootstrap.sh's editable
    install, or running from the source tree); else the current folder or the nearest folder
    above it that is a checkout: ``pip install .`` copies the package into site-packages,
    away from any checkout. Neither is a :class:`ConfigError` naming --repo.
    ``installed`` (this package's parent folder) and ``cwd`` are for tests.
    """
    source = (installed or Path(__file__).resolve().parents[1]).resolve()
    if is_checkout(source):
        return source
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_checkout(folder):
            return folder
    raise ConfigError(
        "command line", "--repo",
        f"not given, and no kvmnetlab checkout was found: this command is installed outside "
        f"one ({source}), and neither the current folder ({here}) nor a folder above it has "
        "site.yml and collections/ansible_collections/kvmnetlab/lab; run it from a checkout "
        "or give --repo DIR (repo: in the config file)")


def default_night_id(now: _dt.datetime | None = None) -> str:
    return (now or _dt.datetime.now(_dt.UTC)).strftime("%Y%m%dT%H%M%SZ")


def default_inventory(repo: Path) -> Path:
    """The inventory named by the checkout's ansible.cfg ([defaults] inventory)."""
    cfg = repo / "ansible.cfg"
    parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    try:
        parser.read(cfg, encoding="utf-8")
    except configparser.Error as exc:
        raise ConfigError(str(cfg), "defaults.inventory", f"cannot be read: {exc}") from None
    value = parser.get("defaults", "inventory", fallback="").split(",")[0].strip()
    if not value:
        raise ConfigError(str(cfg), "defaults.inventory",
                          "not set; give --inventory (or inventory: in the config file)")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (repo / path)


# --------------------------------------------------------------------------- value checks


def _string(source: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(source, key, f"must be a non-empty string, got {value!r}")
    return value


def _path(source: str, key: str, value: Any, base: Path) -> Path:
    path = Path(_string(source, key, value)).expanduser()
    return Path(os.path.abspath(path if path.is_absolute() else base / path))


def _number(source: str, key: str, value: Any, low: float, high: float | None = None,
            *, integer: bool = False, low_open: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        what = "an integer" if integer else "a number"
        raise ConfigError(source, key, f"must be {what}, got {value!r}")
    below = value <= low if low_open else value < low
    if below or (high is not None and value >= high):
        bounds = f"> {low:g}" if low_open else f">= {low:g}"
        if high is not None:
            bounds += f" and < {high:g}"
        raise ConfigError(source, key, f"must be {bounds}, got {value!r}")
    return value


def _tags(source: str, key: str, value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return ",".join(value)
    return _string(source, key, value)


def _command(source: str, key: str, value: Any) -> list[str]:
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    text = _string(source, key, value)
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ConfigError(source, key, f"cannot be split into arguments: {exc}") from None


def _extra_vars(source: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(source, key, f"must be a mapping of variable -> value, got {value!r}")
    out = {}
    for name, item in value.items():
        if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ConfigError(source, f"{key}.{name}", "is not a valid variable name")
        if name in DRIVER_VARS:
            raise ConfigError(source, f"{key}.{name}",
                              "is set by the driver (use results_dir / --night-id)")
        out[name] = item
    return out


def parse_extra_var(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line; VALUE is read as YAML (3 -> int, [a, b] -> list)."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise ConfigError("command line", "--extra-vars", f"expected KEY=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError("command line", f"--extra-vars {name}",
                          f"value is not valid YAML: {exc}") from None
    _extra_vars("command line", "--extra-vars", {name: value})
    return name, value


# --------------------------------------------------------------------------- the file

# config key -> (converter(source, key, value, base) -> value, attribute of Settings)
_KEYS: dict[str, Any] = {
    "repo": lambda s, k, v, b: _path(s, k, v, b),
    "inventory": lambda s, k, v, b: _path(s, k, v, b),
    "results_dir": lambda s, k, v, b: _path(s, k, v, b),
    "lock_file": lambda s, k, v, b: _path(s, k, v, b),
    "extra_vars": lambda s, k, v, b: _extra_vars(s, k, v),
    "min_free_gib": lambda s, k, v, b: float(_number(s, k, v, 0)),
    "keep_raw_nights": lambda s, k, v, b: _number(s, k, v, 0, integer=True),
    "notify_command": lambda s, k, v, b: _command(s, k, v),
    "p_value": lambda s, k, v, b: float(_number(s, k, v, 0, 1, low_open=True)),
    # a t test on either side of a change needs 2 nights at least
    "min_segment": lambda s, k, v, b: _number(s, k, v, 2, integer=True),
    "tags": lambda s, k, v, b: _tags(s, k, v),
    "skip_tags": lambda s, k, v, b: _tags(s, k, v),
    "limit": lambda s, k, v, b: _string(s, k, v),
    "max_skipped": lambda s, k, v, b: _number(s, k, v, 1, integer=True),
    "timeout_h": lambda s, k, v, b: float(_number(s, k, v, 0, 168, low_open=True)),
}
CONFIG_KEYS = tuple(_KEYS)


def convert(source: str, name: str, key: str, value: Any, base: Path) -> Any:
    """Check one setting ``key`` given as ``name`` (a config key or a flag) in ``source``."""
    return _KEYS[key](source, name, value, base)


def load_file(path: Path) -> dict[str, Any]:
    """Read and check a YAML config file; relative paths in it are from its folder."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "(file)", f"cannot be read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, "(file)", f"not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, "(file)", "must hold a mapping of key -> value")
    return check_values(data, source, path.resolve().parent)


#: the settings that are paths (relative ones are taken from the configuration's folder)
PATH_KEYS = ("repo", "inventory", "results_dir", "lock_file")
#: the settings that are numbers
NUMBER_KEYS = ("min_free_gib", "keep_raw_nights", "p_value", "min_segment", "max_skipped",
               "timeout_h")


def check_values(values: dict[Any, Any], source: str, base: Path | None, *,
                 prefix: str = "") -> dict[str, Any]:
    """Check a mapping of settings, as the config file holds them (an explicit null keeps
    the default); a key is named ``prefix`` + key in an error (the nightly role's
    variables are ``nightly_`` + key). Without ``base`` a path must be absolute."""
    out = {}
    for key, value in values.items():
        if key not in _KEYS:
            hint = " (night_id is a command-line option only)" if key == "night_id" else ""
            raise ConfigError(source, f"{prefix}{key}",
                              f"unknown key{hint}; known keys: {', '.join(CONFIG_KEYS)}")
        if value is None:
            continue  # an explicit null keeps the default
        name = f"{prefix}{key}"
        if base is None and key in PATH_KEYS and not (
                isinstance(value, str) and value.startswith("/")):
            raise ConfigError(source, name, f"must be an absolute path (a relative one would "
                                            f"be taken from the configuration's folder), got "
                                            f"{value!r}")
        out[key] = _KEYS[key](source, name, value, base or Path("/"))
    return out


def check_night_id(value: str) -> str:
    if not NIGHT_ID.match(value) or value in RESERVED_NAMES:
        raise ConfigError("command line", "--night-id",
                          f"must match {NIGHT_ID.pattern} and not be "
                          f"{' or '.join(RESERVED_NAMES)}, got {value!r}")
    return value


def build(file_values: dict[str, Any], flags: dict[str, Any],
          config_file: Path | None = None) -> Settings:
    """Merge defaults < config file < command-line flags into :class:`Settings`."""
    flags = dict(flags)
    merged: dict[str, Any] = {**file_values}
    extra = dict(file_values.get("extra_vars") or {})
    extra.update(flags.pop("extra_vars", None) or {})
    merged.update({k: v for k, v in flags.items() if v is not None})
    repo = merged.get("repo") or default_repo()
    if not (repo / "site.yml").is_file():
        raise ConfigError(_source("repo", flags, config_file), "repo",
                          f"{repo} is not a kvmnetlab checkout (no site.yml)")
    inventory = merged.get("inventory") or default_inventory(repo)
    if not inventory.exists():
        raise ConfigError(_source("inventory", flags, config_file), "inventory",
                          f"{inventory}: no such file or folder")
    night_id = check_night_id(merged.get("night_id") or default_night_id())
    settings = Settings(
        repo=repo,
        inventory=inventory,
        results_dir=merged.get("results_dir") or repo / "results",
        night_id=night_id,
        extra_vars=extra,
        config_file=config_file,
    )
    for key in ("min_free_gib", "keep_raw_nights", "notify_command", "p_value", "min_segment",
                "tags", "skip_tags", "limit", "lock_file", "max_skipped", "timeout_h"):
        if merged.get(key) is not None:
            setattr(settings, key, merged[key])
    return settings


def _source(key: str, flags: dict[str, Any], config_file: Path | None) -> str:
    if flags.get(key) is None and config_file is not None:
        return str(config_file)
    return "command line"
