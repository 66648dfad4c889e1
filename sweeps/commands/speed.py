"""CLI: ``dropout-bench speed`` (parse, translate, call perf.speed)."""
from __future__ import annotations

import argparse
import json

from ..options import group_size_arg
from .args import UsageError, add_config_flags, config_from_args, positive_int

SPEED_EXAMPLES = """examples:
  dropout-bench speed                       # seed config: reference loop, single and batched engine
  dropout-bench speed --peers               # also stacked autograd and torch.func ensembling
  dropout-bench speed --workers 2           # also the batched engine in two processes
  dropout-bench speed --retune              # measure this machine's best group size again
  dropout-bench speed --json > speed.json   # the full report, machine and versions included
  dropout-bench speed --width 100 --steps 200 --trials 32 --group-size 16
Every ratio is against the reference loop measured in the same run; "of limit" is the
fraction of this machine's limit for the config (matrix products and Adam alone).
"""


def add_speed_command(sub) -> None:
    p = sub.add_parser("speed", help="time the engines against the seed's own training loop",
                       description="Time the reference seed loop, the single engine and the batched "
                                   "engine on one config, in one run, and print the ratios, the fraction "
                                   "of this machine's limit and where a step's time goes.",
                       epilog=SPEED_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=16, metavar="N", help="trials for the batched engine (default 16)")
    p.add_argument("--reference-trials", type=int, default=2, metavar="N",
                   help="trials for the reference loop (default 2; about 3 s each on one core)")
    p.add_argument("--single-trials", type=int, default=4, metavar="N", help="trials for the single engine (default 4)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="also time the batched engine in N processes, one torch thread each (default 1: off)")
    p.add_argument("--group-size", type=group_size_arg, default="auto", metavar="auto|ARMS",
                   help="arms per stacked group (default auto: measured once per machine and shape, then cached)")
    p.add_argument("--retune", action="store_true",
                   help="measure the best group size again for this config and update the cache first")
    p.add_argument("--peers", action="store_true",
                   help="also time what a user would write: stacked autograd and torch.func ensembling")
    # the same option as the global one, and the same destination: given here or before the
    # command, it means the same; not given, the global value (default 1) stands
    p.add_argument("--threads", type=positive_int, default=argparse.SUPPRESS, metavar="N",
                   help="torch threads in this process (default 1; also accepted before the command)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_config_flags(p)
    p.set_defaults(func=cmd_speed)


def cmd_speed(args: argparse.Namespace) -> int:
    from perf.speed import format_speed, measure_speed
    from perf.tune import group_size_choice

    cfg = config_from_args(args)  # ConfigError -> exit 2 with one line
    if args.retune and args.group_size != "auto":
        raise UsageError("--retune measures the best group size: give it without --group-size")
    if args.retune:   # the run below then reads the fresh entry from the cache
        group_size_choice(cfg, dropout=cfg.dropout > 0, retune=True)
    report = measure_speed(cfg, trials=args.trials, reference_trials=args.reference_trials,
                           single_trials=args.single_trials, workers=args.workers,
                           group_size=args.group_size, threads=args.threads, peers=args.peers)
    report["retuned"] = args.retune
    print(json.dumps(report, indent=2) if args.json else format_speed(report))
    return 0
