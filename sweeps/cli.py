"""The ``dropout-bench`` command line: the top-level parser and ``main``; each command lives in sweeps/commands/.

Exit codes: 0 success, 2 bad input (one line on stderr, nothing written), 1 other failures
(a sweep with failed trials, a search whose workers kept dying), 128 + the signal's number
when stopped by a signal: 130 Ctrl-C (SIGINT), 143 SIGTERM, 129 SIGHUP (sweeps.signals).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from bench import ConfigError

from .commands import COMMANDS
from .commands.args import UsageError, positive_int
from .signals import exit_code, signal_name, stop_on_signals

EXAMPLES = """examples:
  dropout-bench sweep sweeps/quick.toml         # the default sweep and its report
  dropout-bench status results/quick
  dropout-bench search sweeps/where_dropout_helps.toml --workers 2
  dropout-bench report results/quick            # rewrite the report of a (partial) sweep
  dropout-bench speed --workers 2               # engines against the seed's own loop
  dropout-bench validate --seeds 500 --workers 2  # the engine equals the tutorial's loop?
  dropout-bench trial                           # the seed experiment, seed 0
  dropout-bench trial --seed 3 --dropout 0.2 --plot fit.png
  dropout-bench trial --n-train 50 --width 100 --json
"""


# Commands that train in this process (the report reruns a seed for its picture and draws
# the known answers' data): they set torch's thread count from --threads.
TRAINING_COMMANDS = frozenset({"trial", "sweep", "search", "report", "speed", "validate"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.command in TRAINING_COMMANDS:
        import torch  # only commands that train pay for it: --help, status and export start fast

        # one thread per process: on small nets extra threads cost more than they give
        torch.set_num_threads(args.threads)
    try:
        with stop_on_signals():              # SIGTERM and SIGHUP stop a run as Ctrl-C does
            return int(args.func(args) or 0)
    except (ConfigError, UsageError) as exc:
        print(f"dropout-bench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"dropout-bench {args.command}: interrupted by {signal_name(exc)}", file=sys.stderr)
        return exit_code(exc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dropout-bench",
        description="Seeded, paired plain-versus-dropout trials, sweeps and reports.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N",
                        help="torch threads in this process (default 1; sweep workers always use 1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
