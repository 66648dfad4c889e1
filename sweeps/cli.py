"""The ``dropout-bench`` command line: parse, translate, call a library function.

Exit codes: 0 success, 2 bad input (one line on stderr, nothing written), 1 other failures
(a sweep with failed trials, a search whose workers kept dying), 128 + the signal's number
when stopped by a signal: 130 Ctrl-C (SIGINT), 143 SIGTERM, 129 SIGHUP (sweeps.signals).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from bench import ConfigError, TrialConfig
from bench.config import field_types

from .signals import exit_code, signal_name, stop_on_signals

EXAMPLES = """examples:
  dropout-bench sweep sweeps/quick.toml         # the default sweep and its report
  dropout-bench status results/quick
  dropout-bench search sweeps/where_dropout_helps.toml --workers 2
  dropout-bench report results/quick            # rewrite the report of a (partial) sweep
  dropout-bench speed --workers 2               # engines against the seed's own loop
  dropout-bench trial                           # the seed experiment, seed 0
  dropout-bench trial --seed 3 --dropout 0.2 --plot fit.png
  dropout-bench trial --n-train 50 --width 100 --json
"""


# Commands that train in this process (the report reruns a seed for its picture and draws
# the known answers' data): they set torch's thread count from --threads.
TRAINING_COMMANDS = frozenset({"trial", "sweep", "search", "report", "speed"})


class UsageError(Exception):
    """Bad input found after parsing; reported as one line with exit code 2."""


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


# ---- trial -----------------------------------------------------------------------------
def _add_trial(sub) -> None:
    p = sub.add_parser(
        "trial", help="train the plain and the dropout net on one seed",
        description="Train the plain and the dropout net of one config on one seed and print the result.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(p)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw the seed's picture (points and both fits)")
    p.add_argument("--animate", metavar="FILE.gif", help="redraw the picture every eval_every steps")
    p.add_argument("--reference", action="store_true",
                   help="use the seed tutorial's own training loop instead of the engine")
    p.set_defaults(func=cmd_trial)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    defaults = TrialConfig()
    group = p.add_argument_group("trial config (defaults reproduce the seed experiment)")
    for name, typ in field_types().items():
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg_{name}", metavar=typ.upper(),
                           type=_PARSERS[typ], default=None,
                           help=f"default {getattr(defaults, name)!r}")


def config_from_args(args: argparse.Namespace) -> TrialConfig:
    given = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
    return TrialConfig.from_dict(given)


def cmd_trial(args: argparse.Namespace) -> int:
    from bench import run_reference_trial, run_trial
    from bench.trial import check_device

    cfg = config_from_args(args)
    check_device(cfg.device)
    for path, suffix in ((args.plot, ".png"), (args.animate, ".gif")):
        if path and not path.lower().endswith(suffix):
            raise UsageError(f"{path!r}: expected a {suffix} file name")
    want_fits = bool(args.plot or args.animate)
    if args.reference:
        if want_fits:
            raise UsageError("--plot/--animate need the engine's fitted curves; drop --reference")
        result = run_reference_trial(cfg)
    else:
        result = run_trial(cfg, record_fits=want_fits)
    if args.plot or args.animate:
        _draw(result, args.plot, args.animate)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(format_trial(result))
    return 0


def _draw(result, png: str | None, gif: str | None) -> None:
    from analysis.seed_picture import animate_trial_fit, plot_trial_fit, save_animation
    from sweeps._files import atomic_write

    if png:
        fig, _ = plot_trial_fit(result)
        atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
        print(f"wrote {png}", file=sys.stderr)
    if gif:
        anim = animate_trial_fit(result)
        atomic_write(gif, lambda tmp: save_animation(anim, tmp))
        print(f"wrote {gif}", file=sys.stderr)


def format_trial(result) -> str:
    c = result.config
    lines = [
        f"seed {c['seed']}  n_train {c['n_train']}  width {c['width']}  depth {c['depth']}  "
        f"dropout {c['dropout']:g}  steps {c['steps']}  lr {c['lr']:g}  device {c['device']}",
        f"{'arm':<14}{'train MSE':>11}{'train loss':>12}{'test MSE':>10}{'gap':>9}{'step ms':>9}  status",
    ]
    for name, arm in (("plain", result.plain), (f"dropout {arm_rate(result):g}", result.dropout)):
        lines.append(
            f"{name:<14}{arm.train_mse:>11.4f}{arm.train_loss_last:>12.4f}{arm.test_mse:>10.4f}"
            f"{arm.gap:>9.4f}{arm.step_seconds_median * 1e3:>9.3f}  {arm.status}"
        )
    verdict = "dropout helped" if result.delta_test_mse > 0 else "dropout did not help"
    lines.append(f"delta test MSE (plain - dropout) = {result.delta_test_mse:+.4f}  ({verdict}; one seed proves nothing)")
    lines.append("train MSE: eval mode; train loss: last train-mode loss; gap = test MSE - train MSE")
    return "\n".join(lines)


def arm_rate(result) -> float:
    return result.dropout.rate


def _strict_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _strict_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


_PARSERS: dict[str, Callable[[str], Any]] = {"int": _strict_int, "float": _float, "str": str}

def _commands() -> list[Callable]:
    from ._cmd_report import add_report_command
    from ._cmd_search import add_search_command
    from ._cmd_speed import add_speed_command
    from ._cmd_sweep import add_sweep_commands

    return [add_sweep_commands, add_search_command, add_report_command, _add_trial, add_speed_command]


COMMANDS: list[Callable] = _commands()

if __name__ == "__main__":
    sys.exit(main())
