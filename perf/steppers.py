"""Training steps in isolation, for the benchmark suite: the engine's and the seed loop's.

A stepper is a zero-argument function that runs ``steps`` training steps of a fixed
set of arms and returns; calling it again continues training the same networks. Set-up
(data, initial weights, mask keys, buffers) happens once, when the stepper is built,
so a benchmark of the stepper times training steps only. Units: seconds, arm-steps
(one network, one optimizer update).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch import nn

from bench.config import TrialConfig
from bench.engine import Group
from bench.reference import build_net
from bench.results import dropout_arm, plain_arm
from bench.task import make_data

Stepper = Callable[[], torch.Tensor]  # returns the last step's train-mode loss per arm


def engine_stepper(cfg: TrialConfig, n_arms: int, *, dropout: bool, steps: int) -> Stepper:
    """``steps`` steps of one stacked group of ``n_arms`` arms, all plain or all with cfg.dropout
    (a group of 1 is the single engine)."""
    return group_stepper(cfg, n_arms, n_dropout=n_arms if dropout else 0, steps=steps)


def group_stepper(cfg: TrialConfig, n_arms: int, *, n_dropout: int, steps: int) -> Stepper:
    """``steps`` steps of one engine group of ``n_arms`` arms (seeds cfg.seed + i), the first
    ``n_dropout`` with dropout; returns the last step's loss per arm, (n_arms,)."""
    c = cfg.replace(steps=steps)
    grp = Group([(dropout_arm if i < n_dropout else plain_arm)(c.replace(seed=c.seed + i)) for i in range(n_arms)])

    def run() -> torch.Tensor:
        grp.rewind()
        with torch.no_grad():
            for s in range(steps):
                grp.step(s)
        if grp.device.type == "cuda":
            torch.cuda.synchronize(grp.device)
        return grp.losses[-1]                                    # (n_arms,)
    return run


def mixed_stepper(make: Callable[..., Stepper], cfg: TrialConfig, n_arms: int, *, dropout: bool,
                  steps: int) -> tuple[Stepper, int]:
    """A stepper of ``n_arms`` arms mixed as trials mix them, and its arm-steps per call.

    ``make(cfg, n, n_dropout=, steps=)`` builds one stepper (``group_stepper`` or a peer).
    With dropout, half the arms have it; one arm with dropout is a plain and a dropout
    stepper of one arm, called in turn, as the single engine trains a trial.
    """
    if not dropout:
        return make(cfg, n_arms, n_dropout=0, steps=steps), n_arms * steps
    if n_arms > 1:
        return make(cfg, n_arms, n_dropout=n_arms // 2, steps=steps), n_arms * steps
    plain, drop = make(cfg, 1, n_dropout=0, steps=steps), make(cfg, 1, n_dropout=1, steps=steps)
    return (lambda: torch.cat([plain(), drop()])), 2 * steps


def reference_stepper(cfg: TrialConfig, *, dropout: bool, steps: int) -> Stepper:
    """``steps`` steps of one of the seed loop's nets: nn.Sequential, torch.optim.Adam, nn.MSELoss."""
    device = torch.device(cfg.device)
    data = make_data(cfg)
    x, y = data.x.to(device), data.y.to(device)
    net = build_net(cfg, cfg.dropout if dropout else 0.0).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    loss_func = nn.MSELoss()
    cuda = device.type == "cuda"

    def run() -> torch.Tensor:
        for _ in range(steps):  # the seed's loop body
            loss = loss_func(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if cuda:
            torch.cuda.synchronize(device)
        return loss.detach().view(1)                                  # (1,)
    return run


def same_run_ratio(engine: Stepper, engine_arm_steps: int, reference: Stepper, reference_arm_steps: int,
                   rounds: int = 5) -> dict[str, float]:
    """Seconds per arm-step of both, measured alternately, and their ratio (reference / engine).

    Alternating rounds and taking medians makes the ratio robust to a machine whose
    speed drifts (other jobs, frequency scaling): both sides see the same conditions.
    """
    eng, ref = [], []
    for _ in range(rounds):
        for fn, n, out in ((engine, engine_arm_steps, eng), (reference, reference_arm_steps, ref)):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) / n)
    e, r = statistics.median(eng), statistics.median(ref)
    return {"engine_s_per_arm_step": e, "reference_s_per_arm_step": r, "speedup_vs_reference": r / e}
