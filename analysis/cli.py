"""Command line: ``kvmnetlab-report`` / ``python -m analysis RESULTS_DIR``.

Exit status: 0 report written (with --compare: nothing regressed, and every
scenario was shown unchanged or improved); 2 bad input (the message names the
file and the field, or the option); 3 report written, but a scenario regressed
against a campaign given with --compare; 4 report written, the comparison
inconclusive (nothing regressed, but not every scenario was shown unchanged).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from analysis import stats
from analysis.load import InputError
from analysis.report import Options, UsageError, build_report
from kvmnetlab.errors import StoreError

EXIT_OK, EXIT_BAD_INPUT, EXIT_REGRESSION, EXIT_INCONCLUSIVE = 0, 2, 3, 4
EXIT_BY_OUTCOME = {"unchanged": EXIT_OK, "regressed": EXIT_REGRESSION,
                   "inconclusive": EXIT_INCONCLUSIVE}

_EPILOG = """\
exit status:
  0  report written; with --compare the comparison is "unchanged": every scenario
     was shown unchanged (its change within the margins, TOST) or improved
  2  bad input: unreadable or malformed results folder, or a bad option
     (the message names the file and the field)
  3  report written, and with --compare a scenario regressed: its typical median
     RTT rose by more than --regression-threshold %, or its loss by more than
     --loss-threshold points, significantly (t test of the two campaigns' means,
     its standard error including the variation between nights, Holm-corrected,
     alpha = 1 - confidence)
  4  report written, and with --compare the comparison is "inconclusive": nothing
     regressed, but some scenario was not shown unchanged either (its interval is
     too wide: too few repetitions, or too few nights to know the variation
     between them)

examples:
  python -m analysis results/2025-11-26T0930-nightly
  python -m analysis results/new --compare results/yesterday results/reference \\
      --regression-threshold 5
  python -m analysis results/new --compare results/yesterday --history history/
  python -m analysis results/new --margin-us 2 --percentile 95 --log-x --out /tmp/report

Every comparison treats the repetition as the unit (paired by block when the
campaign ran in blocks) and ends in one of three outcomes: different, equivalent
(within the margin) or inconclusive, with the repetitions that would likely
settle it. Across campaigns the night is the unit: a campaign is one draw of
the night, and the variation between nights comes from --history, or else from
a stated prior (three stored campaigns of one unchanged lab). Every statistic is
defined in the report beside the table that shows it, and in docs/analysis.md.
"""


def _fraction(name: str, low: float, high: float):
    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {value!r}") from None
        if not low < x < high:
            raise argparse.ArgumentTypeError(f"{name} must be in ({low:g}, {high:g}), got {x:g}")
        return x

    return parse


def _positive(name: str):
    return _fraction(name, 0.0, float("inf"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kvmnetlab-report",
        description=(
            "Analyse one kvmnetlab results folder (manifest.json + data/*.parquet) and write "
            "its report: report.md, a self-contained index.html, tables/*.csv and "
            "figures/*.png|svg. Reads nothing but the folder(s) given."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results", type=Path, metavar="RESULTS_DIR", help="campaign folder to analyse")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where to write the report (default: RESULTS_DIR/report); replaced "
                        "atomically, and only if it is empty or an earlier report")
    margin = p.add_mutually_exclusive_group()
    margin.add_argument("--margin-us", type=_positive("--margin-us"), metavar="X",
                        help="equivalence margin: the typical repetition medians of a pair "
                             "within ±X µs")
    margin.add_argument("--margin-rel", type=_positive("--margin-rel"), metavar="F",
                        help="equivalence margin: the ratio of a pair's typical repetition "
                             "medians within 1/(1+F) and 1+F (default 0.10, i.e. ±10 %%)")
    p.add_argument("--percentile", type=_fraction("--percentile", 0, 100), default=90.0,
                   metavar="P",
                   help="closeness to baseline: share of a scenario's probes at or below the "
                        "baseline's P-th percentile (default 90)")
    p.add_argument("--confidence", type=_fraction("--confidence", 0, 1), default=0.95,
                   metavar="C",
                   help="confidence level of every interval; tests use alpha = 1 - C "
                        "(default 0.95)")
    p.add_argument("--baseline", metavar="SCENARIO",
                   help="baseline scenario (default: the lowest-numbered scenario with "
                        "virtualization 'none' that has RTT data, else the first with data)")
    p.add_argument("--compare", type=Path, nargs="+", default=[], metavar="OLDER_RESULTS_DIR",
                   help="earlier campaign folder(s) to compare with (e.g. the previous night "
                        "and a reference); adds a comparison table and a trend figure")
    p.add_argument("--history", type=Path, metavar="DIR",
                   help="with --compare: where to learn how much nights differ: a nightly "
                        "history folder (its nights.parquet catalog, the done nights of the "
                        "newest segment) or a folder of campaign folders of the same lab "
                        "(one night each); at least 3 nights of a scenario")
    p.add_argument("--no-prior", dest="prior", action="store_false",
                   help="with --compare: without a history (or for a scenario it lacks), do "
                        "not fall back on the prior between-night sd; such comparisons are "
                        "then inconclusive")
    p.add_argument("--regression-threshold", type=_positive("--regression-threshold"),
                   default=10.0, metavar="PCT",
                   help="with --compare: a significant rise of median RTT by more than PCT %% "
                        "is a regression; a change shown within ±PCT %% is unchanged "
                        "(default 10)")
    p.add_argument("--loss-threshold", type=_positive("--loss-threshold"), default=1.0,
                   metavar="PP",
                   help="with --compare: a significant rise of loss by more than PP percentage "
                        "points is a regression; a change shown within ±PP points is "
                        "unchanged (default 1)")
    p.add_argument("--log-x", action="store_true",
                   help="logarithmic RTT axis in Figure 2 (CDF); chosen anyway when the "
                        "scenarios' RTTs span more than a factor of 20")
    p.add_argument("--resamples", type=int, default=stats.DEFAULT_RESAMPLES, metavar="B",
                   help="replicates of the two-level bootstrap "
                        f"(default {stats.DEFAULT_RESAMPLES})")
    p.add_argument("--seed", type=int, metavar="N",
                   help="bootstrap seed (default: the campaign's parameters.seed, else 0)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.history is not None and not args.compare:
        print("kvmnetlab-report: error: --history needs --compare", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.resamples < 100:
        print("kvmnetlab-report: error: --resamples must be at least 100", file=sys.stderr)
        return EXIT_BAD_INPUT
    margin = (
        stats.Margin(absolute_us=args.margin_us)
        if args.margin_us is not None
        else stats.Margin(relative=args.margin_rel if args.margin_rel is not None else 0.10)
    )
    options = Options(
        results=args.results,
        out=args.out,
        margin=margin,
        percentile=args.percentile,
        confidence=args.confidence,
        compare=tuple(args.compare),
        history=args.history,
        prior=args.prior,
        regression_threshold_pct=args.regression_threshold,
        loss_threshold_pp=args.loss_threshold,
        log_x=args.log_x,
        baseline=args.baseline,
        resamples=args.resamples,
        seed=args.seed,
    )
    try:
        outcome = build_report(options)
    except (InputError, StoreError, UsageError) as exc:
        print(f"kvmnetlab-report: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"report: {outcome.out / 'index.html'}")
    if not args.compare:
        return EXIT_OK
    for r in outcome.regressed.itertuples():
        print(
            f"REGRESSION {r.scenario} vs {r.older}: median RTT {r.median_change_pct:+.1f} %, "
            f"loss {r.loss_change_pp:+.2f} points",
            file=sys.stderr,
        )
    verdict = outcome.comparison_outcome
    if verdict == "inconclusive":
        print("INCONCLUSIVE: nothing regressed, but not every scenario was shown unchanged "
              "(see the report's Summary)", file=sys.stderr)
    return EXIT_BY_OUTCOME[verdict]


if __name__ == "__main__":
    sys.exit(main())
