"""CLI: ``dropout-bench search SPEC`` (parse, translate, call ``sweeps.search.run_search``)."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

STORAGE_ENV = "DROPOUT_BENCH_STORAGE"
SEARCH_EXAMPLES = f"""examples:
  dropout-bench search sweeps/where_dropout_helps.toml              # results/where-dropout-helps/
  dropout-bench search sweeps/where_dropout_helps.toml --workers 2  # two processes on one study
  dropout-bench search my.toml --storage postgresql://me@db/optuna  # an RDB instead of the journal file
  (the same command on several machines, each with its own --out, shares that study)
  optuna studies --storage results/where-dropout-helps/optuna.journal
Rerunning the same command resumes the study; trials left running by a killed process are
failed and queued again. A password can come from ${STORAGE_ENV} or PGPASSWORD instead of the
command line.
"""


def add_search_command(sub) -> None:
    p = sub.add_parser("search", help="search configurations with Optuna (noise-aware, parallel, resumable)",
                       description="Search a space of trial configurations with Optuna; each configuration is "
                                   "trained on several seeds, the best are confirmed on fresh seeds.",
                       epilog=SEARCH_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="search spec (TOML); see sweeps/where_dropout_helps.toml")
    p.add_argument("--out", metavar="DIR", help="output folder (default results/<name>/)")
    p.add_argument("--storage", metavar="URL",
                   help=f"RDB URL for the study (default: DIR/optuna.journal; or ${STORAGE_ENV})")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes on the study (default: spec, else 1)")
    p.add_argument("--heartbeat", type=int, metavar="S",
                   help="RDB only: seconds between a worker's heartbeats; a trial 3 beats late is failed and "
                        "retried by any driver (default 20)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: spec, else cpu)")
    p.add_argument("--no-confirm", action="store_true", help="skip the confirmation stage on fresh seeds")
    p.add_argument("--no-report", action="store_true", help="do not write the search report at the end")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    from ..options import ExecutionOptions
    from ..reports import write_search_outputs
    from ..search import mask_argv, mask_url, run_search
    from ..spec import SpecError

    if args.workers is not None and args.workers < 1:
        raise SpecError(f"--workers {args.workers}: must be >= 1")
    storage = args.storage or os.environ.get(STORAGE_ENV) or None
    argv = ["dropout-bench", "search", *mask_argv(sys.argv[2:])]
    options = ExecutionOptions(device=args.device, **({"heartbeat": args.heartbeat} if args.heartbeat is not None else {}))
    summary = run_search(args.spec, out_dir=args.out, storage=storage, workers=args.workers, options=options,
                         confirm=not args.no_confirm, progress=not args.quiet, argv=argv)
    print(*summary.answer(), summary.line(), sep="\n")   # the confirmed score on fresh seeds leads
    if summary.interrupted:
        resume = f"dropout-bench search {args.spec} --out {summary.out_dir}"
        if args.storage:
            resume += f" --storage {mask_url(args.storage)}"
        name = signal.Signals(summary.stop_signal).name
        print(f"interrupted by {name}; every finished seed is stored and the study is saved. "
              f"Resume with:\n  {resume}", file=sys.stderr)
        return 128 + summary.stop_signal
    if summary.incomplete:
        print(f"the budget is not used up: {summary.worker_deaths} worker process(es) died; "
              "rerun the same command to go on", file=sys.stderr)
        return 1
    if not args.no_report:
        write_search_outputs(Path(summary.out_dir))
    return 0

