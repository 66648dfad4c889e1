"""CLI: ``dropout-bench sweep``, ``status`` and ``export`` (parse, translate, call)."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from ..options import group_size_arg
from .args import add_backend_flags

SWEEP_EXAMPLES = """examples:
  dropout-bench sweep sweeps/quick.toml                 # results/quick/, all cores
  dropout-bench sweep sweeps/quick.toml --workers 1 --out /tmp/q
  dropout-bench sweep my.toml --retry-failed            # rerun trials stored as failed
  dropout-bench status results/quick
  dropout-bench sweep my.toml --backend dask --scheduler tcp://10.0.0.5:8786
Rerunning the same command resumes: finished trials are skipped.
"""


def add_sweep_commands(sub) -> None:
    p = sub.add_parser("sweep", help="run a grid sweep from a TOML spec (resumable)",
                       description="Run every (cell x seed) of a sweep spec exactly once; rerun to resume.",
                       epilog=SWEEP_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="sweep spec (TOML); see sweeps/quick.toml")
    p.add_argument("--out", metavar="DIR", help="output folder (default results/<name>/)")
    p.add_argument("--workers", "--n-jobs", dest="workers", type=int, metavar="N",
                   help="worker processes, one torch thread each (default: spec, else all cores; -1: all)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: spec, else cpu)")
    p.add_argument("--engine", choices=("auto", "single", "batched"), help="training engine (default auto)")
    p.add_argument("--group-size", type=group_size_arg, metavar="auto|ARMS",
                   help="arms per stacked computation (default auto: measured once per network shape on "
                        "this machine and cached; see bench/README.md)")
    p.add_argument("--retry-failed", action="store_true", help="rerun trials stored as failed")
    p.add_argument("--force-new", action="store_true",
                   help="if the spec's shared settings changed, archive the old store and start again")
    add_backend_flags(p)
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    s = sub.add_parser("status", help="progress, failures and ETA of a sweep, from its store",
                       description="Print progress, failures and the ETA of a running or stopped sweep.",
                       epilog="example:\n  dropout-bench status results/quick",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("dir", help="the sweep's output folder")
    s.set_defaults(func=cmd_status)

    e = sub.add_parser("export", help="write trials.parquet and trials.csv from a store",
                       epilog="example:\n  dropout-bench export results/quick",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("dir", help="the sweep's output folder")
    e.set_defaults(func=cmd_export)


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..options import ExecutionOptions
    from ..reports import write_sweep_outputs
    from ..run import run_sweep
    from ..spec import load_spec

    spec = load_spec(args.spec)
    options = ExecutionOptions(workers=args.workers, device=args.device, engine=args.engine,
                               group_size=args.group_size, backend=args.backend, scheduler=args.scheduler)
    summary = run_sweep(spec, out_dir=args.out, options=options, retry_failed=args.retry_failed,
                        force_new=args.force_new, progress=not args.quiet,
                        argv=["dropout-bench", "sweep", *sys.argv[2:]])
    print(summary.line())
    if summary.interrupted:
        resume = f"dropout-bench sweep {args.spec} --out {summary.out_dir}"
        name = signal.Signals(summary.stop_signal).name
        print(f"interrupted by {name}; every finished trial is stored. Resume with:\n  {resume}", file=sys.stderr)
        return 128 + summary.stop_signal
    if not args.no_report:
        write_sweep_outputs(Path(summary.out_dir))
    return 1 if summary.failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    from ..status import sweep_status

    print(sweep_status(args.dir).text())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..export import export_trials

    for path in export_trials(args.dir):
        print(path)
    return 0
