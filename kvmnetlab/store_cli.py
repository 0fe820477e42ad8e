"""kvmnetlab-store: check a campaign's result store, and move leftovers aside.

``kvmnetlab-store verify RESULTS_DIR`` reads a campaign folder (or a folder of
campaign folders) and reports the recorded files that are missing or altered,
the leftovers of interrupted commits, and the repetitions in each state. It
changes nothing and exits 1 on any problem (2 when a folder is not a campaign).
With ``--repair`` it does only what resuming the campaign would do to leftovers:
move them, unchanged, to superseded/<n>/ and record them there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kvmnetlab.errors import StoreError
from kvmnetlab.store import MANIFEST, RUN_STATES, Store, StoreCheck


def campaign_folders(path: Path) -> list[Path]:
    """``path`` when it holds a manifest, else its sub-folders that do (none: ``path``)."""
    if (path / MANIFEST).exists():
        return [path]
    found = sorted(p for p in path.glob(f"*/{MANIFEST}")) if path.is_dir() else []
    return [p.parent for p in found] or [path]


def describe(check: StoreCheck) -> list[str]:
    """The report's lines for one campaign (without its heading)."""
    states = [state for state in RUN_STATES if check.runs.get(state)]
    states += sorted(state for state in check.runs if state not in RUN_STATES
                     and check.runs[state])
    lines = ["  repetitions: " + ", ".join(
        f"{state}: {len(check.runs[state])} ({' '.join(check.runs[state])})"
        for state in states)]
    lines.append(f"  recorded raw files: {check.recorded}; missing: {len(check.missing)}, "
                 f"altered: {len(check.altered)}, pruned: {len(check.pruned)}")
    lines.append(f"  unrecorded leftovers: {len(check.leftovers)}")
    lines += [f"    {message}" for message in check.problems]
    return lines


def verify(root: Path, repair: bool) -> int:
    """Check (and with ``repair`` clean) one campaign; print the report; return its status."""
    store = Store(root)
    manifest = store.load()
    print(f"campaign {manifest['campaign_id']} ({root})")
    if repair:
        refused = store.check(manifest)
        if refused.altered or refused.missing:
            print("  not repaired: recorded files are missing or altered (below); repair "
                  "moves only unrecorded leftovers")
        else:
            manifest, moved = store.repair()
            for rel in moved:
                print(f"  moved to {rel}")
    check = store.check(manifest)
    for line in describe(check):
        print(line)
    problems = len(check.problems)
    print(f"  {problems} problem(s)" if problems else "  ok")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kvmnetlab-store", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="check a results folder; change nothing")
    check.add_argument("results_dir", type=Path, metavar="RESULTS_DIR",
                       help="a campaign folder (results/<campaign-id>) or a folder of them")
    check.add_argument("--repair", action="store_true",
                       help="move unrecorded leftovers to superseded/<n>/, as resume does")
    args = parser.parse_args(argv)
    status = 0
    for root in campaign_folders(args.results_dir):
        try:
            status = max(status, verify(root, args.repair))
        except StoreError as exc:
            print(f"kvmnetlab-store: {exc}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
