"""``dropout-bench trial``: train both arms of one config on one seed and print (or draw) them."""
from __future__ import annotations

import argparse
import json
import sys

from .args import UsageError, add_config_flags, config_from_args

TRIAL_EXAMPLES = """examples:
  dropout-bench trial                           # the seed experiment, seed 0
  dropout-bench trial --seed 3 --dropout 0.2 --plot fit.png
  dropout-bench trial --n-train 50 --width 100 --json
  dropout-bench trial --reference               # the tutorial's own training loop
"""


def add_trial_command(sub) -> None:
    p = sub.add_parser(
        "trial", help="train the plain and the dropout net on one seed",
        description="Train the plain and the dropout net of one config on one seed and print the result.",
        epilog=TRIAL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(p)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw the seed's picture (points and both fits)")
    p.add_argument("--animate", metavar="FILE.gif", help="redraw the picture every eval_every steps")
    p.add_argument("--reference", action="store_true",
                   help="use the seed tutorial's own training loop instead of the engine")
    p.set_defaults(func=cmd_trial)


def cmd_trial(args: argparse.Namespace) -> int:
    from bench import run_reference_trial, run_trial
    from bench.trial import check_device

    cfg = config_from_args(args)
    check_device(cfg.device)
    for path, suffix in ((args.plot, ".png"), (args.animate, ".gif")):
        if path and not path.lower().endswith(suffix):
            raise UsageError(f"{path!r}: expected a {suffix} file name")
    want_fits = bool(args.plot or args.animate)
    if want_fits and cfg.input_dim != 1:
        raise UsageError(f"--plot/--animate draw fitted curves over one input; {cfg.task} has {cfg.input_dim}")
    if args.reference:
        if len(cfg.arms) > 2:
            raise UsageError("--reference runs the tutorial's loop, plain and dropout only; drop --arms")
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
    from analysis.pages.files import atomic_write
    from analysis.pages.fit_picture import animate_trial_fit, plot_trial_fit, save_animation

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
        f"{c['task']}  seed {c['seed']}  n_train {c['n_train']}  width {c['width']}  depth {c['depth']}  "
        f"dropout {c['dropout']:g}  steps {c['steps']}  lr {c['lr']:g}  device {c['device']}",
        f"{'arm':<14}{'train MSE':>11}{'train loss':>12}{'test MSE':>10}{'gap':>9}{'step ms':>9}  status",
    ]
    arms = (("plain", result.plain), (f"dropout {arm_rate(result):g}", result.dropout), *result.comparators.items())
    for name, arm in arms:
        lines.append(
            f"{name:<14}{arm.train_mse:>11.4f}{arm.train_loss_last:>12.4f}{arm.test_mse:>10.4f}"
            f"{arm.gap:>9.4f}{arm.step_seconds_median * 1e3:>9.3f}  {arm.status}"
        )
    verdict = "dropout helped" if result.delta_test_mse > 0 else "dropout did not help"
    lines.append(f"delta test MSE (plain - dropout) = {result.delta_test_mse:+.4f}  ({verdict}; one seed proves nothing)")
    for name, arm in result.comparators.items():
        lines.append(f"delta test MSE ({name} - dropout) = {arm.test_mse - result.dropout.test_mse:+.4f}"
                     + (f"  (early stop kept step {arm.best_step}, stopped at {arm.stopped_step})"
                        if arm.best_step is not None else ""))
    lines.append("train MSE: eval mode; train loss: last train-mode loss; gap = test MSE - train MSE")
    return "\n".join(lines)


def arm_rate(result) -> float:
    return result.dropout.rate
