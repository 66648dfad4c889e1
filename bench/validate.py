"""The training side of the engine's validation: the same seeds through the engine, the
reference loop and the tutorial's verbatim loop, one row of final metrics per seed.

- **engine** (``run_trials``, batched) and **reference** (``bench.reference``: nn.Sequential,
  torch.optim.Adam, nn.MSELoss) share each seed's data and initial weights, so their plain
  arms are paired; their dropout arms draw different masks (hash against nn.Dropout's RNG).
- **masked**: the reference loop with the engine's own dropout masks, so both arms differ
  from the engine's only by float rounding.
- **tutorial**: the seed tutorial's code as written, with its global-RNG draws after
  ``torch.manual_seed(seed)`` (data, then the plain net's weights, then the dropout net's,
  then the masks), metrics taken the same way (eval mode, after the last step). Its data
  differ from the engine's, so it compares in distribution only.

Every metric is eval-mode MSE after ``cfg.steps`` steps: ``{arm}_train_mse``, ``{arm}_test_mse``.
The statistics live in ``analysis.numbers.validation``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from .config import TrialConfig
from .reference import run_reference_trial, tutorial_step
from .trial import run_trials

SOURCES = ("engine", "reference", "masked", "tutorial")
METRICS = ("plain_train_mse", "plain_test_mse", "dropout_train_mse", "dropout_test_mse")


def _metrics(result: Any) -> dict[str, float]:
    return {f"{arm}_{m}": float(getattr(getattr(result, arm), m))
            for arm in ("plain", "dropout") for m in ("train_mse", "test_mse")}


def tutorial_trial(cfg: TrialConfig) -> dict[str, float]:
    """The tutorial's loop as written (its global RNG from ``torch.manual_seed(cfg.seed)``), on cfg's sizes.

    Data: x = linspace(-1, 1, N) as a column, y = x + sigma N(0, 1), test y with fresh noise;
    two nn.Sequential nets built plain first, Adam(lr) each, MSELoss, both stepped in one loop.
    The caller's RNG state is restored afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        n, h, sd = cfg.n_train, cfg.width, cfg.noise_std
        x = torch.unsqueeze(torch.linspace(-1, 1, n), 1)
        y = x + sd * torch.normal(torch.zeros(n, 1), torch.ones(n, 1))
        test_y = x + sd * torch.normal(torch.zeros(n, 1), torch.ones(n, 1))
        nets = [_tutorial_net(cfg.depth, h, 0.0), _tutorial_net(cfg.depth, h, cfg.dropout)]
        opts = [torch.optim.Adam(net.parameters(), lr=cfg.lr) for net in nets]
        loss_func = torch.nn.MSELoss()
        for _ in range(cfg.steps):
            tutorial_step(nets, opts, loss_func, x, y)
        out = {}
        with torch.no_grad():
            for arm, net in zip(("plain", "dropout"), nets):
                net.eval()
                pred = net(x)
                out[f"{arm}_train_mse"] = loss_func(pred, y).item()
                out[f"{arm}_test_mse"] = loss_func(pred, test_y).item()
    return out


def _tutorial_net(depth: int, width: int, rate: float) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    fan_in = 1
    for _ in range(depth):
        layers.append(torch.nn.Linear(fan_in, width))
        if rate > 0:
            layers.append(torch.nn.Dropout(rate))
        layers.append(torch.nn.ReLU())
        fan_in = width
    layers.append(torch.nn.Linear(fan_in, 1))
    return torch.nn.Sequential(*layers)


def validation_rows(cfg: TrialConfig, seeds: Sequence[int], *, sources: Sequence[str] = SOURCES,
                    engine_lr_scale: float = 1.0) -> list[dict[str, Any]]:
    """One row per seed: ``{"seed", "engine": {...}, "reference": {...}, "masked": {...}, "tutorial": {...}}``.

    ``engine_lr_scale`` multiplies the engine's learning rate only: a deliberate bias, for
    checking that the validation can see one. CPU, in this process's torch threads.
    """
    cfgs = [cfg.replace(seed=int(s), device="cpu") for s in seeds]
    rows: list[dict[str, Any]] = [{"seed": c.seed} for c in cfgs]
    if "engine" in sources:
        biased = [c.replace(lr=c.lr * engine_lr_scale) for c in cfgs]
        for row, result in zip(rows, run_trials(biased, engine="batched")):
            row["engine"] = _metrics(result)
    for row, c in zip(rows, cfgs):
        if "reference" in sources:
            row["reference"] = _metrics(run_reference_trial(c))
        if "masked" in sources:
            row["masked"] = _metrics(run_reference_trial(c, masks="engine"))
        if "tutorial" in sources:
            row["tutorial"] = tutorial_trial(c)
    return rows
