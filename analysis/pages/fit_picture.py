"""The seed tutorial's own picture for one trial: points, both fitted curves, both test losses;
and the rerun of a stored trial that records the fitted curves it needs.

Plot functions take data and return ``(fig, ax)``; they never save.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402

from bench import TrialConfig, TrialResult, fit_grid, make_data, run_trials  # noqa: E402

# colour-blind-safe pair (Okabe-Ito vermillion and blue)
PLAIN_COLOUR = "#D55E00"
DROPOUT_COLOUR = "#0072B2"


def rerun_with_fits(config: Mapping[str, Any], engine: str = "single") -> TrialResult:
    """Rerun a stored trial's config (a TrialConfig dict) on the CPU with its fitted curves recorded.

    Sweeps store no fitted curves, so a picture of a stored trial reruns it; pass the engine
    that stored the trial ("single" or "batched") so that the rerun matches it.
    """
    cfg = TrialConfig.from_dict(config).replace(device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small net: extra threads only contend (10x slower on a busy machine)
    try:
        return run_trials([cfg], engine=engine, record_fits=True)[0]
    finally:
        torch.set_num_threads(threads)


def plot_trial_fit(result: TrialResult, *, frame: Optional[int] = None, ax=None):
    """Train/test points and both arms' fitted curves, as in the seed's figure.

    ``frame`` picks an evaluation point of ``result.*.fit_history`` (default: the end).
    The result must come from ``run_trial(..., record_fits=True)``.
    """
    cfg = TrialConfig.from_dict(result.config)
    if cfg.input_dim != 1:
        raise ValueError(f"the fitted-curve picture needs a 1-input task; {cfg.task} has {cfg.input_dim} inputs")
    if result.plain.fit is None or result.dropout.fit is None:
        raise ValueError("this result has no fitted curves; run it with record_fits=True")
    data = make_data(cfg)
    grid = fit_grid().squeeze(1).numpy()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 5))
    ax.scatter(data.x.squeeze(1), data.y.squeeze(1), c="#CC79A7", s=50, alpha=0.5, label="train")
    ax.scatter(data.x.squeeze(1), data.y_test.squeeze(1), c="#56B4E9", s=50, alpha=0.5, label="test")
    idx = -1 if frame is None else frame
    step = result.plain.curve_steps[idx]
    for arm, colour, style, name in ((result.plain, PLAIN_COLOUR, "-", "plain"),
                                     (result.dropout, DROPOUT_COLOUR, "--", f"dropout({cfg.dropout:g})")):
        fit = arm.fit if frame is None else arm.fit_history[frame]
        ax.plot(grid, fit, style, color=colour, lw=3, label=name)
        ax.text(0.0, -1.2 if arm is result.plain else -1.5,
                f"{name} test MSE={arm.curve_test_mse[idx]:.4f}", color=colour, fontsize=12)
    ax.set_ylim(-2.5, 2.5)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"seed {cfg.seed}, n={cfg.n_train}, width {cfg.width}, step {step}")
    ax.legend(loc="upper left")
    return fig, ax


def animate_trial_fit(result: TrialResult) -> FuncAnimation:
    """An animation redrawing the picture at every evaluation point (every eval_every steps)."""
    fig, ax = plt.subplots(figsize=(7, 5))

    def draw(frame: int):
        ax.cla()
        plot_trial_fit(result, frame=frame, ax=ax)
        return []

    return FuncAnimation(fig, draw, frames=len(result.plain.curve_steps), blit=False)


def save_animation(anim: FuncAnimation, path: str, fps: int = 10) -> None:
    anim.save(path, writer=PillowWriter(fps=fps))
    plt.close(anim._fig)
