"""CLI: ``dropout-bench report DIR`` (parse, translate, call ``analysis.pages.report.write_report``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.records.outcomes import OUTCOMES

REPORT_EXAMPLES = """examples:
  dropout-bench report results/quick                  # writes results/quick/report.html
  dropout-bench report results/quick --out /tmp/rq    # report elsewhere, store untouched
  dropout-bench report results/quick --smallest-effect 0.02   # a larger effect: an exploratory report
  dropout-bench report results/quick --interval BCa --resamples 1999 --no-seed-picture
"""


def add_report_command(sub) -> None:
    p = sub.add_parser("report", help="write the statistical report of a sweep (HTML, Markdown, PNG, CSV)",
                       description="Paired plain-versus-dropout statistics of a sweep or search folder: "
                                   "report.html (self-contained), report.md, figures/*.png, tables/*.csv.",
                       epilog=REPORT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="the sweep's output folder (holds its store)")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default: the sweep folder)")
    p.add_argument("--interval", choices=("t", "BCa", "percentile", "basic"), default="t",
                   help="interval of means: Student's t (default; it keeps its 95%% at 3-30 seeds) or a "
                        "bootstrap (under-covers at small seed counts)")
    p.add_argument("--smallest-effect", type=float, metavar="MSE",
                   help="smallest change in test MSE worth finding (default: the spec's [report] "
                        "smallest_effect, else 10%% of sigma^2); another value than the spec declared makes "
                        "the report exploratory, and it says so first")
    p.add_argument("--outcome", choices=tuple(OUTCOMES),
                   help="compare the arms on this outcome (default: the spec's [report] outcome, else "
                        "test_mse); excess_risk is test MSE without its test noise. An outcome other than the "
                        "declared one is chosen after the run: the report is marked exploratory")
    p.add_argument("--resamples", type=int, default=9_999, metavar="N",
                   help="bootstrap resamples per interval, with a bootstrap --interval (default 9999)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap's random stream (default 0)")
    p.add_argument("--no-seed-picture", action="store_true",
                   help="skip rerunning the median seed of the focus cell for its picture")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from bench import ConfigError

    src = Path(args.dir)
    if not src.is_dir():
        raise ConfigError(f"{src}: no such folder")
    if args.resamples < 100:
        raise ConfigError(f"--resamples {args.resamples}: must be >= 100")
    if args.smallest_effect is not None and not 0 < args.smallest_effect < float("inf"):
        raise ConfigError(f"--smallest-effect {args.smallest_effect}: must be a positive change in test MSE")
    from analysis.numbers.estimates import StatsOptions
    from analysis.pages.report import write_report

    from ..records import load_manifest, load_records, load_search

    records = load_records(src)       # a folder without a store raises StoreError (exit 2)
    manifest = load_manifest(src)
    options = StatsOptions(method=args.interval, seed=args.seed, n_resamples=args.resamples,
                           smallest_effect=args.smallest_effect, outcome=args.outcome)
    try:
        path = write_report(args.out or src, records=records, manifest=manifest, options=options,
                            seed_picture=not args.no_seed_picture)
    except ValueError as exc:          # an outcome these records do not hold, and the like
        raise ConfigError(str(exc)) from None
    print(f"wrote {path}", file=sys.stderr)
    if manifest.get("kind") == "search":
        from analysis.pages.search_report import write_search_report

        search = write_search_report(args.out or src, load_search(src), seed=args.seed, n_resamples=args.resamples)
        print(f"wrote {search}", file=sys.stderr)
    return 0
