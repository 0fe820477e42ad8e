"""Keep a real campaign (or a nightly history) as test data, the way CAPTURE.md describes.

    python -m tests.analysis_data.keep CAMPAIGN_DIR DEST_DIR
    python -m tests.analysis_data.keep --history RESULTS_DIR DEST_DIR

A campaign keeps ``manifest.json`` and the four tables the analysis reads
(``data/{rtt,ping_summary,rate,costs}.parquet``, when present), copied unchanged;
the manifest's ``files`` keeps only those tables' entries (their sha256 still
match). A history keeps ``history/nights.parquet`` and every done night's
campaign kept as above, under ``DEST_DIR/nights/<night>``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pandas as pd

TABLES = ("data/rtt.parquet", "data/ping_summary.parquet", "data/rate.parquet",
          "data/costs.parquet")


def keep_campaign(src: Path, dest: Path) -> list[str]:
    """Copy the campaign ``src`` into ``dest`` (which must not exist); the tables kept."""
    manifest = json.loads((src / "manifest.json").read_text())
    kept = [t for t in TABLES if (src / t).is_file()]
    (dest / "data").mkdir(parents=True)
    for table in kept:
        shutil.copyfile(src / table, dest / table)
    manifest["files"] = {k: v for k, v in (manifest.get("files") or {}).items() if k in kept}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return kept


def keep_history(results: Path, dest: Path) -> list[str]:
    """Copy the catalog of ``results/history`` and each done night's campaign; the nights."""
    catalog = results / "history" / "nights.parquet"
    frame = pd.read_parquet(catalog)
    nights = sorted(frame.loc[frame["outcome"] == "done", "night"].astype(str).unique())
    dest.mkdir(parents=True)
    shutil.copyfile(catalog, dest / "nights.parquet")
    for night in nights:
        keep_campaign(results / night, dest / "nights" / night)
    return nights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", action="store_true",
                        help="SRC is a nightly results folder: keep its catalog and done nights")
    parser.add_argument("src", type=Path)
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    if args.dest.exists():
        parser.error(f"{args.dest}: exists already")
    if args.history:
        print(f"kept {len(keep_history(args.src, args.dest))} nights")
    else:
        print("kept", ", ".join(keep_campaign(args.src, args.dest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
