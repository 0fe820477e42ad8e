"""Command line: ``kvmnetlab-nightly``, one unattended night of the campaign."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nightly import config
from nightly.run import EXIT_FAILED, EXIT_USAGE, run_night

_EPILOG = """\
exit status:
  0  the night is done and no new regression was found, or it was skipped
     (another campaign holds the lab lock: not an error)
  1  the night is done and found a regression not reported before
  2  bad configuration or usage (the message names the file or option and the key);
     nothing ran
  3  the night failed: site.yml failed (the reason names the task, host and message),
     or its report, history or dashboard could not be made; the campaign folder is kept
     (also when the driver stops on an unexpected error, printed with its traceback)
  4  refused: less free disk space at the results folder than --min-free-gib
  5  skipped, and the --max-skipped-th night in a row to be: the lab lock may be stuck
     (the reason names its holder)

A night that a killed or rebooted driver left "running" (its status.json) is
recorded as failed ("interrupted") by the next night's start, which notifies for it.

examples:
  kvmnetlab-nightly --config /etc/kvmnetlab/nightly.yml
  kvmnetlab-nightly -e kvmnetlab_repetitions=3 -e 'kvmnetlab_scenarios=[baseline, virtio]'
  kvmnetlab-nightly --results-dir /srv/nightly --keep-raw 7 --notify /usr/local/bin/mail-status
  kvmnetlab-nightly --night-id 20260101T013000Z     run a failed night again (resume)

Every night writes RESULTS_DIR/<night-id>/ (the campaign, and nightly/ with the
ansible-runner artifacts and status.json) and updates RESULTS_DIR/history/
(nights.parquet, dashboard.html, status.json of the latest night). The config
file takes the long options' names with _ (results_dir, extra_vars as a mapping,
keep_raw_nights, notify_command, ...); options given here override it.
See docs/nightly.md.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kvmnetlab-nightly",
        description=(
            "Run one night of kvmnetlab's campaign unattended: check free disk space and "
            "the lab lock, run site.yml through ansible-runner, add the night to the history "
            "catalog, detect change points, redraw the trend dashboard, prune old nights' "
            "raw files, write status.json and run the notify command."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="YAML file of settings (keys: " + ", ".join(config.CONFIG_KEYS)
                        + "); relative paths in it are from its folder")
    p.add_argument("--repo", metavar="DIR",
                   help="kvmnetlab checkout to run site.yml from (default: the checkout this "
                        "command is installed from in editable mode, else the current folder "
                        "or the nearest folder above it that is a checkout)")
    p.add_argument("-i", "--inventory", metavar="PATH",
                   help="inventory of the lab (default: the checkout's ansible.cfg default)")
    p.add_argument("--results-dir", metavar="DIR",
                   help="folder of the nights and their history (default: REPO/results)")
    p.add_argument("-e", "--extra-vars", action="append", default=[], metavar="KEY=VALUE",
                   help="variable for site.yml, repeatable; VALUE is read as YAML "
                        "(e.g. kvmnetlab_ping_count=100, 'kvmnetlab_scenarios=[baseline]')")
    p.add_argument("--min-free-gib", metavar="N",
                   help="refuse the night (exit 4) below N GiB free at the results folder "
                        "(default 2)")
    p.add_argument("--keep-raw", metavar="N",
                   help="keep the raw files of the newest N done nights; older done nights "
                        "keep manifest, data/ and report/ only (default 14)")
    p.add_argument("--notify", metavar="CMD",
                   help="command run after the night with status.json's path as its last "
                        "argument (split like a shell would, no shell features); its failure "
                        "is reported, never fatal")
    p.add_argument("--p-value", metavar="P",
                   help="significance level of the change-point detection (default: "
                        "analysis.changepoints' default)")
    p.add_argument("--min-segment", metavar="N",
                   help="fewest nights on either side of a change point (at least 2; "
                        "default: analysis.changepoints' default)")
    p.add_argument("--night-id", metavar="ID",
                   help="the night's id and campaign id (default: UTC now, "
                        "YYYYmmddTHHMMSSZ); an existing failed night's id resumes it")
    p.add_argument("--lock-file", metavar="PATH",
                   help="the lab lock to check (default: kvmnetlab_lock_dir/"
                        "kvmnetlab_lab_name.lock as the inventory defines them)")
    p.add_argument("--max-skipped", metavar="N",
                   help="the N-th night skipped in a row exits 5 instead of 0, naming the "
                        "lock's holder (at least 1; default 3)")
    p.add_argument("--timeout-h", metavar="H",
                   help="hours site.yml may run before it is stopped and the night fails "
                        "(default 5.5, below the systemd unit's 6 h)")
    p.add_argument("--tags", metavar="TAGS", help="passed to ansible-playbook")
    p.add_argument("--skip-tags", metavar="TAGS", help="passed to ansible-playbook")
    p.add_argument("--limit", metavar="PATTERN", help="passed to ansible-playbook")
    return p


# option dest -> (config key, option as written)
_FLAGS = {
    "repo": ("repo", "--repo"),
    "inventory": ("inventory", "--inventory"),
    "results_dir": ("results_dir", "--results-dir"),
    "lock_file": ("lock_file", "--lock-file"),
    "min_free_gib": ("min_free_gib", "--min-free-gib"),
    "keep_raw": ("keep_raw_nights", "--keep-raw"),
    "notify": ("notify_command", "--notify"),
    "p_value": ("p_value", "--p-value"),
    "min_segment": ("min_segment", "--min-segment"),
    "tags": ("tags", "--tags"),
    "skip_tags": ("skip_tags", "--skip-tags"),
    "limit": ("limit", "--limit"),
    "max_skipped": ("max_skipped", "--max-skipped"),
    "timeout_h": ("timeout_h", "--timeout-h"),
}


_FLOATS = ("min_free_gib", "p_value", "timeout_h")


def _flag_value(key: str, flag: str, text: str) -> Any:
    value: Any = text
    if key in config.NUMBER_KEYS:
        try:
            value = float(text) if key in _FLOATS else int(text)
        except ValueError:
            kind = "a number" if key in _FLOATS else "an integer"
            raise config.ConfigError("command line", flag, f"must be {kind}, got {text!r}") \
                from None
    return config.convert("command line", flag, key, value, Path.cwd())


def settings_from(args: argparse.Namespace) -> config.Settings:
    file_values = config.load_file(args.config) if args.config else {}
    flags: dict[str, Any] = {}
    for dest, (key, flag) in _FLAGS.items():
        text = getattr(args, dest)
        if text is not None:
            flags[key] = _flag_value(key, flag, text)
    if args.extra_vars:
        flags["extra_vars"] = dict(config.parse_extra_var(t) for t in args.extra_vars)
    flags["night_id"] = args.night_id
    return config.build(file_values, flags, args.config)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = settings_from(args)
        return run_night(settings)
    except config.ConfigError as exc:
        print(f"kvmnetlab-nightly: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:  # a bug, or the machine: never exit 1, which means a regression
        traceback.print_exc()
        print("kvmnetlab-nightly: error: the night stopped on the error above", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
