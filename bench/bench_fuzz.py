"""Benchmark: many seeded mutations of every parser's real fixtures, before and after.

    python bench/bench_fuzz.py                      # 40,000 mutations, this tree and 09eff4d
    python bench/bench_fuzz.py --mutations 4000
    python bench/bench_fuzz.py --before main~5      # compare with another commit's parsers
    python bench/bench_fuzz.py --before ''          # this tree only

The mutations and the invariants are those of the fuzz test in the default suite
(tests/collectors/fuzzing.py), spread evenly over the fixtures, each mutated input
made from its seed. Each parser's output on each input is counted as refused (the
project's ParseError), a crash (any other exception) or accepted; an accepted output
that breaks the tool's invariants (an infinite or negative RTT, a ping reply outside
the printed min/max, sockperf percentiles outside min..max, a trafgen usec of 10^6
or more, a count a table cannot hold...) is counted as impossible.

"Before" is the package at ``--before`` (default 09eff4d, the last commit whose
parsers read numbers with bare int()/float()): ``git archive`` of its collectors/
and kvmnetlab/ is unpacked into a temporary folder and imported from there by a
child process; nothing of it is kept. Needs git and the repository's history.

Exit status 1 when this tree's parsers crash or accept an impossible output.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FUZZING = REPO / "tests" / "collectors" / "fuzzing.py"
BEFORE = "09eff4d"


def _fuzzing():
    """tests/collectors/fuzzing.py of this tree, whatever ``collectors`` package is used."""
    spec = importlib.util.spec_from_file_location("kvmnetlab_bench_fuzzing", FUZZING)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def child(package: Path, mutations: int) -> dict:
    """Run in a child process: fuzz the parsers of the package at ``package``."""
    sys.path.insert(0, str(package))
    fuzzing = _fuzzing()
    import collectors  # the package chosen above

    if Path(collectors.__file__).resolve().parents[1] != package.resolve():
        raise SystemExit(f"imported {collectors.__file__}, not the package under {package}")
    fixtures = [(name, f) for name, files in fuzzing.CORPUS.items() for f in files]
    each = max(1, mutations // len(fixtures))
    counts: dict[str, dict[str, int]] = {}
    examples: list[str] = []
    started = time.process_time()
    with tempfile.TemporaryDirectory() as work:
        for name, fixture in fixtures:
            accepted, findings = fuzzing.fuzz(name, fixture, range(each), Path(work))
            c = counts.setdefault(name, {"mutations": 0, "accepted": 0, "crash": 0,
                                         "impossible": 0})
            c["mutations"] += each
            c["accepted"] += accepted
            for finding in findings:
                c[finding.kind] += 1
            examples += [str(f) for f in findings[:2]]
    return {"counts": counts, "examples": examples, "cpu_s": time.process_time() - started}


def run(package: Path, mutations: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(package),
                          "--mutations", str(mutations)], check=True, capture_output=True,
                         text=True, cwd=package)
    return json.loads(out.stdout)


def unpack(ref: str, into: Path) -> Path:
    """collectors/ and kvmnetlab/ at ``ref`` of this repository, unpacked in ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "collectors", "kvmnetlab"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def totals(result: dict) -> dict[str, int]:
    keys = ("mutations", "accepted", "crash", "impossible")
    return {k: sum(c[k] for c in result["counts"].values()) for k in keys}


def table(results: dict[str, dict]) -> str:
    labels = list(results)
    head = "| parser | mutations | " + " | ".join(
        f"{label} accepted | {label} crashes | {label} impossible" for label in labels) + " |"
    rows = [head, "|" + "---|" * (2 + 3 * len(labels))]
    names = sorted(next(iter(results.values()))["counts"])
    for name in [*names, "all"]:
        cells = []
        for label in labels:
            c = totals(results[label]) if name == "all" else results[label]["counts"][name]
            cells += [str(c["accepted"]), str(c["crash"]), str(c["impossible"])]
        first = results[labels[0]]
        count = totals(first)["mutations"] if name == "all" else first["counts"][name]["mutations"]
        rows.append(f"| {name} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutations", type=int, default=40_000,
                        help="mutated inputs in all, spread over the fixtures")
    parser.add_argument("--before", default=BEFORE,
                        help="the commit whose parsers are the 'before' ('' for none)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.mutations)))
        return 0
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.before:
            results[f"before ({args.before})"] = run(unpack(args.before, Path(tmp)),
                                                     args.mutations)
        results["after"] = run(REPO, args.mutations)
    print(table(results))
    print()
    for label, result in results.items():
        t = totals(result)
        print(f"{label}: {t['mutations']} mutations, {t['accepted']} accepted, {t['crash']} "
              f"crashes, {t['impossible']} accepted with impossible numbers "
              f"({result['cpu_s']:.1f} s CPU)")
        for example in result["examples"][:8]:
            print(f"    {example}")
    after = totals(results["after"])
    return 1 if after["crash"] or after["impossible"] else 0


if __name__ == "__main__":
    sys.exit(main())
